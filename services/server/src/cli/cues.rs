//! `triage cues`: the cue lexicon's evidence for each text (no model needed).

use std::io::Write;
use std::process::ExitCode;

use clap::Args;
use serde_json::json;
use triage_risk::CueLexicon;

use super::input::open_input;

#[derive(Args, Debug)]
pub struct CuesArgs {
    /// Input file, or - for stdin ({"id","text"} JSON Lines or plain lines).
    #[arg(default_value = "-")]
    pub input: String,
    /// Also print the suppressed cues and why each was suppressed.
    #[arg(long, env = "TRIAGE_CUES_VERBOSE")]
    pub verbose: bool,
}

pub fn run(args: CuesArgs) -> anyhow::Result<ExitCode> {
    let lexicon = CueLexicon::builtin()?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for item in open_input(&args.input)? {
        let item = item?;
        let r = lexicon.analyse(&item.text);
        let mut rec = json!({"id": item.id, "evidence": r.evidence});
        if args.verbose {
            let sup: Vec<_> = r.suppressed.iter().map(|(e, why)| json!({"evidence": e, "why": why})).collect();
            rec["suppressed"] = json!(sup);
        }
        serde_json::to_writer(&mut out, &rec)?;
        out.write_all(b"\n")?;
    }
    Ok(ExitCode::SUCCESS)
}
