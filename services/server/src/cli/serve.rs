//! `triage serve`: the HTTP service.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use anyhow::Context;
use clap::Args;
use triage_risk::Policy;

use super::risk::{load_triage, RiskModelArgs};
use super::store::{write_private, StoreArgs};
use super::ModelArgs;
use crate::http::{self, AppState, Evals, InferenceQueue, Keys, Role};

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "TRIAGE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Keys file ([[key]] tables of name, role, sha256). Default: <data-dir>/keys.toml;
    /// when that does not exist, one admin key is made and printed once.
    #[arg(long, env = "TRIAGE_KEYS")]
    pub keys: Option<PathBuf>,
    /// Escalation policy (reloaded on SIGHUP). When the file is missing, the built-in copy of models/policy.toml is used.
    #[arg(long, env = "TRIAGE_POLICY", default_value = "models/policy.toml")]
    pub policy: PathBuf,
    /// Most texts waiting for or in inference; beyond it requests get 503 with Retry-After.
    #[arg(long, env = "TRIAGE_QUEUE_SIZE", default_value_t = 128)]
    pub queue_size: usize,
    /// Most texts judged in one encoder batch. 1 by measurement: on two cores,
    /// batching 32 waiting texts gave half the throughput of one at a time (BENCHMARKS.md).
    #[arg(long, env = "TRIAGE_MAX_BATCH", default_value_t = 1)]
    pub max_batch: usize,
    /// Largest request body, in bytes.
    #[arg(long, env = "TRIAGE_MAX_BODY_BYTES", default_value_t = 2 * 1024 * 1024)]
    pub max_body_bytes: usize,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub risk: RiskModelArgs,
}

fn load_policy(path: &PathBuf) -> anyhow::Result<(Policy, Option<PathBuf>)> {
    if path.exists() {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let p = Policy::from_toml(&text).with_context(|| format!("in {}", path.display()))?;
        return Ok((p, Some(path.clone())));
    }
    tracing::warn!(path = %path.display(), "policy file not found; using the built-in policy");
    Ok((Policy::builtin()?, None))
}

fn load_keys(args: &ServeArgs) -> anyhow::Result<Keys> {
    let path = args.keys.clone().unwrap_or_else(|| args.store.data_dir.join("keys.toml"));
    if !path.exists() && args.keys.is_none() {
        std::fs::create_dir_all(&args.store.data_dir)?;
        let (key, table) = http::new_key("admin", Role::Admin)?;
        write_private(&path, &table)?;
        // Printed once, to the terminal, not to the log: only its hash is kept.
        eprintln!("\nNo keys file; made {} with one admin key:\n\n    {key}\n\nSend it as `Authorization: Bearer KEY`. It is not shown again.\n", path.display());
    }
    let keys = Keys::load(&path)?;
    tracing::info!(path = %path.display(), keys = keys.len(), "keys loaded");
    Ok(keys)
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.queue_size >= triage_proto::MAX_BATCH,
        "--queue-size must be at least {}",
        triage_proto::MAX_BATCH
    );
    anyhow::ensure!(args.max_batch >= 1, "--max-batch must be at least 1");
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets(&[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0])?
        .install_recorder()
        .context("installing the metrics recorder")?;
    let keys = load_keys(&args)?;
    let (policy, policy_path) = load_policy(&args.policy)?;
    let triage = Arc::new(load_triage(&args.model, &args.risk)?);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        let store = args.store.open(triage.encoder().dim()).await?;
        let salt = args.store.salt()?;
        let queue = InferenceQueue::start(triage.clone(), args.queue_size, args.max_batch);
        let evals = Evals::start(args.store.data_dir.join("evals"), triage.clone(), queue.clone())?;
        let state = Arc::new(AppState {
            triage: triage.clone(),
            queue,
            store: store.clone(),
            policy: RwLock::new(Arc::new(policy)),
            policy_path,
            keys,
            salt,
            store_text: args.store.store_text,
            max_body_bytes: args.max_body_bytes,
            metrics,
            evals,
        });
        let listener =
            tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("binding {}", args.listen))?;
        tracing::info!(
            listen = %listener.local_addr()?,
            store = store.kind(),
            model_version = %triage.model().version,
            "serving"
        );
        http::serve(listener, state).await
    })?;
    // The last store handle is dropped here: the embedded shard flushes and releases its lock.
    Ok(())
}
