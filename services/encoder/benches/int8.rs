//! int8 kernel microbenchmark: G multiply-adds per second per core for the
//! encoder's layer shapes, for every kernel this CPU runs.
//!
//!     RAYON_NUM_THREADS=1 cargo bench -p triage-encoder --bench int8
//!
//! Prints one JSON object per (kernel, shape). Run with one thread for the
//! per-core figure; the minimum time of the repeats is kept (the machine is
//! shared, so slower repeats are other processes, not the kernel).

use std::time::Instant;

use triage_encoder::int8::{Epilogue, Kernel, PackedLinear, QuantizedRows};

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let threads = rayon::current_num_threads();
    // Measured from inside the pool: called from outside it, every `forward`
    // would hand its job to a sleeping worker and block until it finished,
    // and the futex wake-ups (tens of µs in a VM) would be counted as kernel time.
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("a rayon pool");
    pool.install(|| measure(threads));
}

fn measure(threads: usize) {
    // (tokens, out, in): fused QKV, attention output, FFN in (GELU), FFN out;
    // FFN in once more without its GELU, to show what the epilogue costs.
    let shapes = [
        (110, 1152, 384, "qkv"),
        (110, 384, 384, "ao"),
        (110, 1536, 384, "fi"),
        (110, 1536, 384, "fi_without_gelu"),
        (110, 384, 1536, "fo"),
    ];
    // `TRIAGE_INT8_KERNEL=avx2` (say) measures that kernel alone.
    let only =
        std::env::var(triage_encoder::int8::KERNEL_ENV).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    if let Some(name) = only.as_deref().filter(|n| !Kernel::ALL.iter().any(|k| k.name() == *n && k.supported())) {
        eprintln!("{}={name}: not a kernel this CPU runs; nothing measured", triage_encoder::int8::KERNEL_ENV);
    }
    let chosen = |k: &Kernel| only.as_deref().is_none_or(|name| name == k.name());
    for kernel in Kernel::ALL.into_iter().filter(|k| k.supported() && chosen(k)) {
        // Best of five: the machine is shared.
        let peak = (0..5)
            .filter_map(|_| kernel.peak_macs_per_second())
            .fold(None, |m: Option<f64>, p| Some(m.map_or(p, |m| m.max(p))));
        for &(m, n, k, name) in &shapes {
            for m in [m, 1024] {
                let x: Vec<f32> = (0..m * k).map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0).collect();
                let w: Vec<f32> = (0..n * k).map(|i| ((i * 104_729) % 997) as f32 / 5000.0 - 0.1).collect();
                let layer = PackedLinear::new(kernel, &w, &vec![0.0; n], n, k);
                let mut q = QuantizedRows::default();
                q.quantize(&x, k, kernel);
                let mut out = vec![0f32; m * n];
                let epilogue = if name == "fi" { Epilogue::Gelu } else { Epilogue::Bias };
                let reps = (2e9 / (m * n * k) as f64).ceil() as usize;
                let mut best = f64::MAX;
                let mut best_q = f64::MAX;
                for _ in 0..reps.max(5) {
                    let s = Instant::now();
                    q.quantize(&x, k, kernel);
                    let t = Instant::now();
                    layer.forward(&q, epilogue, &mut out);
                    best = best.min(t.elapsed().as_secs_f64());
                    best_q = best_q.min(t.duration_since(s).as_secs_f64());
                }
                let gmacs = (m * n * k) as f64 / best / 1e9;
                println!(
                    "{}",
                    serde_json::json!({
                        "kernel": kernel.name(), "layer": name, "m": m, "n": n, "k": k, "threads": threads,
                        "best_us": best * 1e6, "quantize_us": best_q * 1e6,
                        "gmacs_per_s": gmacs, "gmacs_per_s_per_core": gmacs / threads as f64,
                        "peak_gmacs_per_s": peak.map(|p| p / 1e9),
                    })
                );
            }
        }
    }
}
