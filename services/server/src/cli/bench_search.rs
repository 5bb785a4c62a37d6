//! `triage bench-search`: the embedded store at scale, on synthetic cases,
//! one command for the BENCHMARKS.md table.
//!
//! The generator (seeded, so a run is repeatable):
//! - **Vectors**: 384-d, unit length, in `cases / 2000` clusters (at least
//!   10). A case is `normalized(g + 0.8·c + 0.45·e)`: `g` one shared
//!   direction (e5 packs all complaints into a narrow cone), `c` its
//!   cluster's centre, `e` its own noise, each a Gaussian of unit expected
//!   length. Queries are new cases drawn the same way, not stored.
//! - **Payload**: district `d00` for 10 % of cases, `d01` for 1 %, the rest
//!   spread over 30 others; labels `collective` 10 %, `self_harm` 1 %,
//!   `livelihood` 40 %, `violence` 3 %, `retaliation` 2 %; level red 1 %,
//!   orange 9 %, yellow 40 %, blue 50 % (so `min_level` orange is 10 %,
//!   red 1 %); `received_at` uniform over 1,000 days; a reporter from a pool
//!   of `cases / 3` (one reporter in 3,000 files 30 cases); no text (an
//!   analyst-visible text adds about 1 KB a case on disk).
//! - **Terms**: 40 a case, 60 % from its cluster's 300 topic terms and the
//!   rest from a 50,000-term vocabulary, both Zipf-like; BM25 weights as
//!   `terms::document` gives them.
//!
//! Measured: import rate (batches of 1,000, each flushed, as the service
//! writes), index build time, on-disk size; per filter, top-10 latency p50
//! and p99 and recall@10 against exact search, for the dense list, the word
//! list alone, Qdrant's one-round fusion of the two, and the hybrid search
//! the service runs (`triage_cases::expand`); the time to profile the
//! store; this process's peak RSS; and, with
//! `--serve`, the peak RSS of `triage serve` on the store while it answers
//! searches by case id.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use serde::Serialize;
use triage_cases::{
    expand, normalized, CaseFilter, CaseQuery, CaseRecord, CaseStore, EdgeStore, Hit, Ranking, Refine, SparseVector,
    StoreProfile, DEFAULT_RANKING, HNSW_EF, HYBRID,
};
use triage_proto::{Label, RiskLevel};

const DIM: usize = 384;
const DAY: i64 = 86_400;
const T0: i64 = 1_700_000_000;

#[derive(Args, Debug)]
pub struct BenchSearchArgs {
    /// Synthetic cases to store.
    #[arg(long, env = "TRIAGE_BENCH_CASES", default_value_t = 1_000_000)]
    pub cases: usize,
    /// Queries per row.
    #[arg(long, env = "TRIAGE_BENCH_QUERIES", default_value_t = 200)]
    pub queries: usize,
    /// HNSW beam widths to measure on the dense list (hybrid rows use the service's).
    #[arg(long, env = "TRIAGE_BENCH_EF", value_delimiter = ',', default_value = "128")]
    pub ef: Vec<usize>,
    /// Store directory: made and filled if it holds no store, reused if it does.
    #[arg(long, env = "TRIAGE_BENCH_DIR")]
    pub dir: PathBuf,
    /// Seed of the generator.
    #[arg(long, env = "TRIAGE_BENCH_SEED", default_value_t = 20)]
    pub seed: u64,
    /// Also start `triage serve` on the store and report its peak RSS (needs the model).
    #[arg(long, env = "TRIAGE_BENCH_SERVE")]
    pub serve: bool,
    /// Write the figures as JSON here.
    #[arg(long, env = "TRIAGE_BENCH_JSON")]
    pub json: Option<PathBuf>,
}

/// splitmix64: small, fast, and the same on every machine.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed ^ 0x9e37_79b9_7f4a_7c15)
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: usize) -> usize {
        (self.unit() * n as f64) as usize % n.max(1)
    }
    fn gauss(&mut self) -> f32 {
        let (u, v) = (self.unit().max(1e-12), self.unit());
        ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32
    }
    /// Gaussian vector of unit expected length.
    fn noise(&mut self) -> Vec<f32> {
        let s = 1.0 / (DIM as f32).sqrt();
        (0..DIM).map(|_| self.gauss() * s).collect()
    }
    /// Zipf-like rank in 0..n (density ∝ 1/rank).
    fn zipf(&mut self, n: usize) -> usize {
        (((n as f64 + 1.0).powf(self.unit())) as usize).saturating_sub(1).min(n - 1)
    }
}

struct Generator {
    seed: u64,
    shared: Vec<f32>,
    centres: Vec<Vec<f32>>,
    reporters: usize,
}

impl Generator {
    fn new(cases: usize, seed: u64) -> Self {
        let mut r = Rng::new(seed);
        let shared = r.noise();
        let centres = (0..(cases / 2000).max(10)).map(|_| r.noise()).collect();
        Self { seed, shared, centres, reporters: (cases / 3).max(1) }
    }

    fn vector(&self, r: &mut Rng, cluster: usize) -> Vec<f32> {
        let e = r.noise();
        let c = &self.centres[cluster];
        normalized((0..DIM).map(|i| self.shared[i] + 0.8 * c[i] + 0.45 * e[i]).collect())
    }

    fn terms(&self, r: &mut Rng, cluster: usize) -> SparseVector {
        let mut pairs = Vec::with_capacity(40);
        for _ in 0..40 {
            let term = if r.unit() < 0.6 { 1_000_000 + cluster * 300 + r.zipf(300) } else { r.zipf(50_000) };
            pairs.push((triage_cases::terms::term_id(&format!("t{term}")), 1.0));
        }
        // Repeats add up to a term frequency; BM25 saturates it as `terms::document` does.
        let tf = SparseVector::from_pairs(pairs);
        let values = tf.values.iter().map(|&f| triage_cases::terms::BM25.weight(f, 40.0)).collect();
        SparseVector { indices: tf.indices, values }
    }

    fn case(&self, i: usize) -> CaseRecord {
        let mut r = Rng::new(self.seed.wrapping_mul(1_000_003).wrapping_add(i as u64));
        let cluster = r.below(self.centres.len());
        let u = r.unit();
        let district = if u < 0.10 {
            "d00".to_string()
        } else if u < 0.11 {
            "d01".to_string()
        } else {
            format!("d{:02}", 2 + r.below(30))
        };
        let mut labels = Vec::new();
        for (l, p) in [
            (Label::Violence, 0.03),
            (Label::Retaliation, 0.02),
            (Label::SelfHarm, 0.01),
            (Label::Collective, 0.10),
            (Label::Livelihood, 0.40),
        ] {
            if r.unit() < p {
                labels.push(l);
            }
        }
        let u = r.unit();
        let level = if u < 0.01 {
            RiskLevel::Red
        } else if u < 0.10 {
            RiskLevel::Orange
        } else if u < 0.50 {
            RiskLevel::Yellow
        } else {
            RiskLevel::Blue
        };
        CaseRecord {
            case_id: format!("syn-{i}"),
            text: None,
            labels,
            level,
            base_level: Some(level),
            risk_level: Some(level),
            escalations: Vec::new(),
            district: Some(district),
            reporter_hash: Some(format!("rep-{}", r.zipf(self.reporters))),
            received_at: Some(T0 + (r.unit() * 1000.0 * DAY as f64) as i64),
            model_version: Some("synthetic".into()),
            indexed_at: T0,
            vector: self.vector(&mut r, cluster),
            sparse: self.terms(&mut r, cluster),
        }
    }

    fn query(&self, q: usize) -> CaseQuery {
        let mut r = Rng::new(self.seed ^ 0xdead_beef ^ (q as u64).wrapping_mul(7_919));
        let cluster = r.below(self.centres.len());
        let dense = self.vector(&mut r, cluster);
        // Weighed as a stored case's, as the service weighs a query (`terms::query`).
        let sparse = self.terms(&mut r, cluster);
        CaseQuery::new(dense, sparse, Ranking::Dense)
    }
}

/// The filters measured, with their share of cases by construction.
fn filters() -> Vec<(&'static str, CaseFilter)> {
    let f = CaseFilter::default;
    vec![
        ("none", f()),
        ("district 10 %", CaseFilter { district: Some("d00".into()), ..f() }),
        ("district 1 %", CaseFilter { district: Some("d01".into()), ..f() }),
        ("label 10 %", CaseFilter { labels: vec![Label::Collective], ..f() }),
        ("label 1 %", CaseFilter { labels: vec![Label::SelfHarm], ..f() }),
        ("min_level 10 %", CaseFilter { min_level: Some(RiskLevel::Orange), ..f() }),
        ("min_level 1 %", CaseFilter { min_level: Some(RiskLevel::Red), ..f() }),
        ("received 10 %", CaseFilter { received_from: Some(T0 + 300 * DAY), received_to: Some(T0 + 400 * DAY), ..f() }),
        ("received 1 %", CaseFilter { received_from: Some(T0 + 500 * DAY), received_to: Some(T0 + 510 * DAY), ..f() }),
        ("reporter (about 30 cases)", CaseFilter { reporter_hash: Some("rep-1".into()), ..f() }),
    ]
}

#[derive(Serialize)]
struct Row {
    filter: String,
    ranking: String,
    ef: usize,
    p50_ms: f64,
    p99_ms: f64,
    recall_at_10: f64,
}

impl Row {
    /// A row from the queries' times, in any order.
    fn timed(filter: &str, ranking: String, ef: usize, mut times: Vec<Duration>, recall_at_10: f64) -> Self {
        times.sort();
        Self {
            filter: filter.to_string(),
            ranking,
            ef,
            p50_ms: percentile(&times, 0.5),
            p99_ms: percentile(&times, 0.99),
            recall_at_10,
        }
    }
}

#[derive(Serialize, Default)]
struct Report {
    cases: u64,
    import_per_s: Option<f64>,
    index_build_s: Option<f64>,
    disk_mb: f64,
    /// Profiling the store (a sample of its cases), once per store.
    profile_ms: f64,
    bench_peak_rss_mb: f64,
    serve_peak_rss_mb: Option<f64>,
    /// `triage serve`'s resident memory after the searches, split into its
    /// own (anonymous) pages and pages of mapped files (the binary, the
    /// model blob, the store's files), which the kernel can drop and re-read.
    serve_rss_anon_mb: Option<f64>,
    serve_rss_file_mb: Option<f64>,
    rows: Vec<Row>,
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn ids(h: &[Hit]) -> Vec<String> {
    h.iter().map(|h| h.case.case_id.clone()).collect()
}

fn dir_size(p: &std::path::Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(p) else { return 0 };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// A memory figure of a process from /proc/PID/status (Linux), in MB.
fn status_mb(pid: &str, field: &str) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Peak resident memory of a process, in MB.
fn peak_rss_mb(pid: &str) -> f64 {
    status_mb(pid, "VmHWM")
}

/// `triage serve`'s memory: peak, and now its own and its mapped files' pages.
struct ServeMemory {
    peak_mb: f64,
    anon_mb: f64,
    file_mb: f64,
}

pub fn run(args: BenchSearchArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.cases >= 1000 && args.queries >= 1 && !args.ef.is_empty(),
        "need ≥ 1000 cases, queries and ef"
    );
    let gen = Generator::new(args.cases, args.seed);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let cases_dir = args.dir.join("cases");
    let store = EdgeStore::open(&cases_dir, DIM)?;
    let mut report = Report::default();
    let have = rt.block_on(store.count())? as usize;
    if have < args.cases {
        let bar = super::risk::progress(args.cases - have, "generating and importing");
        let started = Instant::now();
        for start in (have..args.cases).step_by(1000) {
            let batch: Vec<CaseRecord> = (start..(start + 1000).min(args.cases)).map(|i| gen.case(i)).collect();
            bar.inc(batch.len() as u64);
            rt.block_on(store.upsert(batch))?;
        }
        bar.finish_and_clear();
        let secs = started.elapsed().as_secs_f64();
        report.import_per_s = Some((args.cases - have) as f64 / secs);
        eprintln!("imported {} cases in {secs:.0} s; building the index", args.cases - have);
        let started = Instant::now();
        rt.block_on(store.optimize())?;
        report.index_build_s = Some(started.elapsed().as_secs_f64());
    }
    report.cases = rt.block_on(store.count())?;
    report.disk_mb = dir_size(&cases_dir) as f64 / 1e6;

    // The service profiles the store once and keeps it (`StoreProfile`); timed here on its own.
    let t = Instant::now();
    let profile = rt.block_on(StoreProfile::new().get(&store))?;
    report.profile_ms = t.elapsed().as_secs_f64() * 1e3;
    eprintln!("store profiled in {:.0} ms", report.profile_ms);
    let queries: Vec<CaseQuery> = (0..args.queries).map(|q| gen.query(q)).collect();
    for (name, filter) in filters() {
        // The word list alone is shown for where hybrid's time goes (its
        // inverted index is searched exactly, so its recall is 1 by
        // construction), and one round of fusion for what centring and
        // feedback add to it.
        let lists = [
            (Ranking::Dense, "dense", Refine::NONE),
            (Ranking::Sparse, "sparse", Refine::NONE),
            (DEFAULT_RANKING, "fusion, one round", Refine::NONE),
            (DEFAULT_RANKING, "hybrid", HYBRID),
        ];
        for (ranking, label, refine) in lists {
            let mut truth = Vec::with_capacity(queries.len());
            let mut exact_times = Vec::with_capacity(queries.len());
            for q in &queries {
                let q = CaseQuery { ranking, exact: true, ..q.clone() };
                let t = Instant::now();
                truth.push(ids(&rt.block_on(expand::query(&store, &profile, &q, &filter, 10, refine))?));
                exact_times.push(t.elapsed());
            }
            // Exact search (every vector compared, after the filter) is what a
            // store without the graph would do: timed as the baseline.
            if ranking != Ranking::Sparse {
                let row = Row::timed(name, format!("{label} exact"), 0, exact_times, 1.0);
                eprintln!(
                    "{:<26} {:<18} exact: p50 {:>7.2} ms, p99 {:>7.2} ms",
                    row.filter, row.ranking, row.p50_ms, row.p99_ms
                );
                report.rows.push(row);
            }
            // Hybrid is measured as the service runs it; the beam-width sweep is on the dense list.
            let efs: &[usize] = if ranking == Ranking::Dense { &args.ef } else { &[HNSW_EF] };
            for &ef in efs {
                let mut times = Vec::with_capacity(queries.len());
                let mut found = 0usize;
                let mut wanted = 0usize;
                for (q, want) in queries.iter().zip(&truth) {
                    let q = CaseQuery { ranking, ef: Some(ef), ..q.clone() };
                    let t = Instant::now();
                    let got = ids(&rt.block_on(expand::query(&store, &profile, &q, &filter, 10, refine))?);
                    times.push(t.elapsed());
                    found += want.iter().filter(|w| got.contains(w)).count();
                    wanted += want.len();
                }
                let recall = if wanted == 0 { 1.0 } else { found as f64 / wanted as f64 };
                let row = Row::timed(name, label.to_string(), ef, times, recall);
                eprintln!(
                    "{:<26} {:<18} ef {:>4}: p50 {:>7.2} ms, p99 {:>7.2} ms, recall@10 {:.3}",
                    row.filter, row.ranking, row.ef, row.p50_ms, row.p99_ms, row.recall_at_10
                );
                report.rows.push(row);
            }
        }
    }
    report.bench_peak_rss_mb = peak_rss_mb("self");
    drop(store);
    if args.serve {
        let m = serve_rss(&args, args.queries)?;
        report.serve_peak_rss_mb = Some(m.peak_mb);
        report.serve_rss_anon_mb = Some(m.anon_mb);
        report.serve_rss_file_mb = Some(m.file_mb);
    }

    println!("| filter | ranking | ef | p50 ms | p99 ms | recall@10 |\n|---|---|---|---|---|---|");
    for r in &report.rows {
        println!(
            "| {} | {} | {} | {:.2} | {:.2} | {:.3} |",
            r.filter, r.ranking, r.ef, r.p50_ms, r.p99_ms, r.recall_at_10
        );
    }
    println!(
        "\n{} cases; import {} cases/s; index build {} s; on disk {:.0} MB; peak RSS: this process {:.0} MB, triage serve {}",
        report.cases,
        report.import_per_s.map_or("(reused)".into(), |x| format!("{x:.0}")),
        report.index_build_s.map_or("(reused)".into(), |x| format!("{x:.0}")),
        report.disk_mb,
        report.bench_peak_rss_mb,
        match (report.serve_peak_rss_mb, report.serve_rss_anon_mb, report.serve_rss_file_mb) {
            (Some(p), Some(a), Some(f)) => format!("{p:.0} MB (after the searches: {a:.0} MB its own, {f:.0} MB mapped files)"),
            _ => "not measured".into(),
        },
    );
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Starts `triage serve` on the store with a one-off analyst key, sends
/// searches by case id, and reads its peak RSS before stopping it.
fn serve_rss(args: &BenchSearchArgs, searches: usize) -> anyhow::Result<ServeMemory> {
    use sha2::{Digest, Sha256};
    let key = format!("bench-{}", std::process::id());
    let keys = args.dir.join("bench-keys.toml");
    std::fs::write(
        &keys,
        format!("[[key]]\nname = \"bench\"\nrole = \"analyst\"\nsha256 = \"{}\"\n", hex::encode(Sha256::digest(&key))),
    )?;
    let addr = "127.0.0.1:18765";
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .args(["serve", "--listen", addr, "--data-dir"])
        .arg(&args.dir)
        .arg("--keys")
        .arg(&keys)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .context("starting triage serve")?;
    let pid = child.id().to_string();
    let result = (|| {
        let deadline = Instant::now() + Duration::from_secs(300);
        while http(addr, "GET", "/readyz", None, "").map(|(s, _)| s != 200).unwrap_or(true) {
            anyhow::ensure!(Instant::now() < deadline, "triage serve was not ready in 5 minutes");
            std::thread::sleep(Duration::from_millis(500));
        }
        let mut r = Rng::new(args.seed);
        for _ in 0..searches {
            let body = format!("{{\"case_id\":\"syn-{}\",\"top_k\":10}}", r.below(args.cases));
            let (status, _) = http(addr, "POST", "/v1/cases/search", Some(&key), &body)?;
            anyhow::ensure!(status == 200, "search answered {status}");
        }
        Ok(ServeMemory {
            peak_mb: peak_rss_mb(&pid),
            anon_mb: status_mb(&pid, "RssAnon"),
            file_mb: status_mb(&pid, "RssFile") + status_mb(&pid, "RssShmem"),
        })
    })();
    let _ = child.kill();
    let _ = child.wait();
    result
}

/// A minimal HTTP/1.1 exchange (the bench needs no client library): status and body.
fn http(addr: &str, method: &str, path: &str, key: Option<&str>, body: &str) -> anyhow::Result<(u16, String)> {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let auth = key.map(|k| format!("Authorization: Bearer {k}\r\n")).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let status = out.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    Ok((status, out))
}
