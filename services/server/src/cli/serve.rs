//! `triage serve`: the HTTP service.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use triage_risk::Policy;

use super::risk::{load_triage, RiskModelArgs};
use super::store::{write_private, StoreArgs};
use super::ModelArgs;
use triage_server::http::{self, AppState, ConnLimits, Evals, Keys, Limits, Role, Service, ServiceConfig};

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "TRIAGE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Keys file ([[key]] tables of name, role, sha256). Default: <data-dir>/keys.toml;
    /// when that does not exist, one admin key is made and printed once.
    #[arg(long, env = "TRIAGE_KEYS")]
    pub keys: Option<PathBuf>,
    /// Escalation policy (reloaded on SIGHUP). Default: models/policy.toml when it
    /// exists, else the built-in copy of it. A path that is given must exist.
    #[arg(long, env = "TRIAGE_POLICY")]
    pub policy: Option<PathBuf>,
    /// Most texts waiting for or in inference; beyond it requests get 503 with Retry-After.
    #[arg(long, env = "TRIAGE_QUEUE_SIZE", default_value_t = 128)]
    pub queue_size: usize,
    /// Most texts judged in one encoder pass: texts of concurrent requests
    /// waiting together share a pass, up to this many and --max-batch-tokens.
    #[arg(long, env = "TRIAGE_MAX_BATCH", default_value_t = 16)]
    pub max_batch: usize,
    /// Most encoder tokens in one pass (a text costlier on its own still goes,
    /// alone). Small passes keep the encoder's activations in cache (BENCHMARKS.md).
    #[arg(long, env = "TRIAGE_MAX_BATCH_TOKENS", default_value_t = 512)]
    pub max_batch_tokens: usize,
    /// Most encoder tokens one batch may cost (each text's chunks, at most 512 tokens each);
    /// a costlier batch gets 400 `batch_too_large`. 16,384 is about 2 s of inference on two idle cores.
    #[arg(long, env = "TRIAGE_MAX_REQUEST_TOKENS", default_value_t = 16_384)]
    pub max_request_tokens: usize,
    /// Largest request body, in bytes.
    #[arg(long, env = "TRIAGE_MAX_BODY_BYTES", default_value_t = 2 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Seconds a connection may take to send a request's head. The clock also
    /// runs while a kept-alive connection waits for its next request, so it is
    /// the idle limit too; the connection is closed without an answer.
    #[arg(long, env = "TRIAGE_HEADER_TIMEOUT", default_value = "10", value_parser = seconds)]
    pub header_timeout: Duration,
    /// Seconds from the end of a request's head to the last byte of its body (408 `request_timeout`).
    #[arg(long, env = "TRIAGE_BODY_TIMEOUT", default_value = "30", value_parser = seconds)]
    pub body_timeout: Duration,
    /// Seconds from the end of a request's head to its answer, queue wait and inference included (408 `request_timeout`).
    #[arg(long, env = "TRIAGE_REQUEST_TIMEOUT", default_value = "120", value_parser = seconds)]
    pub request_timeout: Duration,
    /// Most connections open at once; more wait in the listen backlog until one closes.
    #[arg(long, env = "TRIAGE_MAX_CONNECTIONS", default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
    /// Answer a client that shuts down its sending side after its request
    /// (some scripts and proxies do). A server cannot tell that from a client
    /// that has gone, so with this on, work for a client that gave up is no
    /// longer cancelled when it leaves: it runs until `--request-timeout`.
    #[arg(long, env = "TRIAGE_HALF_CLOSE", default_value_t = false, action = clap::ArgAction::Set)]
    pub half_close: bool,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub risk: RiskModelArgs,
}

/// A positive number of seconds (fractions allowed).
fn seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s.trim().parse().map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if secs.is_nan() || secs <= 0.0 {
        return Err("must be more than 0 seconds".into());
    }
    Duration::try_from_secs_f64(secs).map_err(|e| e.to_string())
}

/// Where the policy is read from when no path is given (run from the repository).
const DEFAULT_POLICY_PATH: &str = "models/policy.toml";

fn load_policy(given: Option<&PathBuf>) -> anyhow::Result<(Policy, Option<PathBuf>)> {
    let path = match given {
        Some(p) => p.clone(),
        None if Path::new(DEFAULT_POLICY_PATH).exists() => PathBuf::from(DEFAULT_POLICY_PATH),
        None => {
            tracing::info!("no policy file given and none in models/; using the built-in policy");
            return Ok((Policy::builtin()?, None));
        }
    };
    // A mistyped path must not quietly fall back to other rules.
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading the policy {}", path.display()))?;
    let p = Policy::from_toml(&text).with_context(|| format!("in {}", path.display()))?;
    Ok((p, Some(path)))
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
    anyhow::ensure!(args.max_batch_tokens >= 1, "--max-batch-tokens must be at least 1");
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets(&[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0])?
        .install_recorder()
        .context("installing the metrics recorder")?;
    args.store.private_data_dir()?;
    let keys = load_keys(&args)?;
    let (policy, policy_path) = load_policy(args.policy.as_ref())?;
    let triage = Arc::new(load_triage(&args.model, &args.risk)?);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        let store = args.store.open(triage.encoder().dim()).await?;
        if !args.store.store_text {
            let n = store.count_with_text().await?;
            anyhow::ensure!(
                n == 0,
                "--store-text false, but the case store holds the text of {n} cases, and they would still be served: \
                 stop here and run `triage cases redact` first"
            );
        }
        let salt = args.store.salt()?;
        let judge: Arc<dyn triage_risk::Judge> = triage.clone();
        let config = ServiceConfig {
            policy,
            policy_path,
            salt,
            store_text: args.store.store_text,
            queue_size: args.queue_size,
            batching: triage_queue::Batching { max_texts: args.max_batch, max_tokens: args.max_batch_tokens },
        };
        let service = Service::start(judge, store.clone(), config);
        let evals = Evals::start(args.store.data_dir.join("evals"), &service)?;
        let limits = Limits {
            max_body_bytes: args.max_body_bytes,
            max_request_tokens: args.max_request_tokens,
            body_timeout: args.body_timeout,
            request_timeout: args.request_timeout,
        };
        let state = Arc::new(AppState::new(service, keys, limits, metrics, evals));
        let listener =
            tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("binding {}", args.listen))?;
        tracing::info!(
            listen = %listener.local_addr()?,
            store = store.kind(),
            model_version = %triage.model().version,
            "serving"
        );
        let conn = ConnLimits {
            header_timeout: args.header_timeout,
            max_connections: args.max_connections as usize,
            half_close: args.half_close,
        };
        Ok(http::serve(listener, state, conn).await?)
    })?;
    // The last store handle is dropped here: the embedded shard flushes and releases its lock.
    Ok(())
}
