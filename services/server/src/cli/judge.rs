//! `triage judge`: labels, level, reasons and evidence for each text.

use std::io::Write;
use std::process::ExitCode;

use clap::Args;
use serde_json::json;

use super::input::open_input;
use super::{risk, ModelArgs};

#[derive(Args, Debug)]
pub struct JudgeArgs {
    /// Input file, or - for stdin ({"id","text"} JSON Lines or plain lines).
    #[arg(default_value = "-")]
    pub input: String,
    /// Also write each text's raw decision (head probabilities, bars, a forced
    /// threat label) under "decision", for error analysis; not part of the wire answer.
    #[arg(long, env = "TRIAGE_JUDGE_SCORES")]
    pub scores: bool,
    #[command(flatten)]
    pub risk: risk::RiskModelArgs,
    #[command(flatten)]
    pub model: ModelArgs,
}

pub fn run(args: JudgeArgs) -> anyhow::Result<ExitCode> {
    let triage = risk::load_triage(&args.model, &args.risk)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut failed = 0;
    for item in open_input(&args.input)? {
        let item = item?;
        let rec = match triage.judge(&item.text) {
            Ok(j) if args.scores => json!({"id": item.id, "result": j, "decision": j.decision}),
            Ok(j) => json!({"id": item.id, "result": j}),
            Err(e) => {
                failed += 1;
                json!({"id": item.id, "error": {"message": e.to_string()}})
            }
        };
        serde_json::to_writer(&mut out, &rec)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(if failed > 0 { ExitCode::from(2) } else { ExitCode::SUCCESS })
}
