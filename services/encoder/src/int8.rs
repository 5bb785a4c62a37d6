//! int8 linear layers: `y = x·Wᵀ + b` with int8 weights and u8 activations.
//!
//! - Weights: symmetric per output channel, quantized once at load from the
//!   (merged) f32 weights and packed into panels of [`NR`] output channels,
//!   4 consecutive input elements per channel (`[panel][k/4][NR][4]`), the
//!   operand order of `vpdpbusd`.
//! - Activations: asymmetric per token (row) at run time, `x ≈ s·(q − z)`
//!   with `q` in 0..=255; the zero point is removed after the integer dot
//!   product through each channel's weight sum.
//! - Accumulation in i32, then one fused epilogue: scale and bias, then GELU
//!   or a residual add.
//!
//! Kernels, picked at run time by CPU detection: AVX-512 VNNI and AVX-VNNI
//! (`vpdpbusd`), AVX2 (`vpmaddubsw` + `vpmaddwd`, with weights limited to 7 bits
//! because `vpmaddubsw` saturates its i16 pair sums: 2·255·63 < 32767), and a
//! portable fallback. `TRIAGE_INT8_KERNEL` names the kernel to use instead
//! (`portable`, `avx2`, `avxvnni`, `avx512vnni`); one the CPU lacks is refused.
//!
//! This module holds the crate's only SIMD intrinsics; every `unsafe` block
//! says why it is sound.

use rayon::prelude::*;

/// Output channels per packed panel (two zmm or four ymm registers of i32).
const NR: usize = 32;
/// The tallest micro-tile (AVX-512's: 12 rows × 2 registers of accumulators
/// leave 8 of the 32 zmm registers for weights and broadcasts).
const MAX_ROWS: usize = 12;
/// Rows per parallel task: the quantized activations of one task stay in L2
/// while the task walks its weight panels.
const MC: usize = 96;
// A task's rows start a row group (`QuantizedRows`), and the tiles read whole
// groups from there without bounds checks: MC must be a multiple of every
// kernel's tile height.
const _: () = {
    let mut i = 0;
    while i < Kernel::ALL.len() {
        assert!(MC.is_multiple_of(Kernel::ALL[i].rows()) && Kernel::ALL[i].rows() <= MAX_ROWS);
        i += 1;
    }
};
/// The environment variable that overrides kernel detection.
pub const KERNEL_ENV: &str = "TRIAGE_INT8_KERNEL";

/// The integer dot-product kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    Avx512Vnni,
    AvxVnni,
    Avx2,
    Portable,
}

impl Kernel {
    pub const ALL: [Kernel; 4] = [Kernel::Avx512Vnni, Kernel::AvxVnni, Kernel::Avx2, Kernel::Portable];

    pub fn name(self) -> &'static str {
        match self {
            Kernel::Avx512Vnni => "avx512vnni",
            Kernel::AvxVnni => "avxvnni",
            Kernel::Avx2 => "avx2",
            Kernel::Portable => "portable",
        }
    }

    /// Whether this CPU can run the kernel.
    pub fn supported(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            match self {
                // VL and FMA too, which every AVX-512 VNNI CPU has: the tests
                // run the 256-bit helpers under this check.
                Kernel::Avx512Vnni => {
                    is_x86_feature_detected!("avx512f")
                        && is_x86_feature_detected!("avx512bw")
                        && is_x86_feature_detected!("avx512vl")
                        && is_x86_feature_detected!("avx512vnni")
                        && is_x86_feature_detected!("fma")
                }
                Kernel::AvxVnni => {
                    is_x86_feature_detected!("avx2")
                        && is_x86_feature_detected!("fma")
                        && is_x86_feature_detected!("avxvnni")
                }
                Kernel::Avx2 => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
                Kernel::Portable => true,
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            self == Kernel::Portable
        }
    }

    /// The fastest kernel this CPU runs, or the one `TRIAGE_INT8_KERNEL` names.
    pub(crate) fn select() -> Result<Kernel, String> {
        Self::choose(std::env::var(KERNEL_ENV).ok().as_deref())
    }

    fn choose(requested: Option<&str>) -> Result<Kernel, String> {
        match requested.map(str::trim).filter(|s| !s.is_empty()) {
            None => Ok(Self::ALL.into_iter().find(|k| k.supported()).unwrap_or(Kernel::Portable)),
            Some(name) => {
                let k = Self::ALL.into_iter().find(|k| k.name() == name).ok_or_else(|| {
                    format!("{KERNEL_ENV}={name:?}: not a kernel (avx512vnni | avxvnni | avx2 | portable)")
                })?;
                if k.supported() {
                    Ok(k)
                } else {
                    Err(format!("{KERNEL_ENV}={name}: this CPU lacks the instructions"))
                }
            }
        }
    }

    /// The kernel's instruction peak on one core, in multiply-adds per second:
    /// twelve independent accumulator chains of its dot-product instruction
    /// in registers, no memory traffic (the bound a kernel is measured
    /// against). `None` for the portable kernel, which has no one instruction.
    pub fn peak_macs_per_second(self) -> Option<f64> {
        #[cfg(target_arch = "x86_64")]
        if self != Kernel::Portable && self.supported() {
            let iters = 2_000_000;
            let start = std::time::Instant::now();
            // SAFETY: the CPU has the kernel's instructions (checked above);
            // the loops touch registers only.
            let macs = unsafe {
                match self {
                    Kernel::Avx512Vnni => x86::peak512(iters),
                    Kernel::AvxVnni => x86::peak_vnni256(iters),
                    _ => x86::peak_avx2(iters),
                }
            };
            return Some(macs as f64 / start.elapsed().as_secs_f64());
        }
        None
    }

    /// Largest weight magnitude: 7 bits where `vpmaddubsw` would saturate.
    fn weight_max(self) -> f32 {
        if self == Kernel::Avx2 {
            63.0
        } else {
            127.0
        }
    }

    /// Rows per micro-tile: as many accumulators as the register file holds.
    /// Activations are stored in groups of this many rows ([`QuantizedRows`]).
    const fn rows(self) -> usize {
        match self {
            Kernel::Avx512Vnni => 12,
            Kernel::AvxVnni => 3,
            Kernel::Avx2 => 2,
            Kernel::Portable => 4,
        }
    }
}

/// Rows of activations quantized to u8, one scale and zero point per row.
///
/// Stored in groups of as many rows as the kernel's tile takes, each group's
/// rows interleaved 4 bytes at a time (`[group][k/4][row][4]`): a tile then
/// reads the 4 bytes of all its rows for one step at one address, and its
/// broadcasts need no per-row address arithmetic. Rows are padded to a
/// multiple of 4 bytes and the rows to whole groups, with zeros (the padding
/// meets zero weights, and padding rows are never written out).
#[derive(Default)]
pub struct QuantizedRows {
    data: Vec<u8>,
    scale: Vec<f32>,
    zero: Vec<i32>,
    rows: usize,
    k: usize,
    /// Bytes per row (`k` rounded up to 4); a group takes `group · stride`.
    stride: usize,
    /// Rows per group: the tile height of the kernel quantized for.
    group: usize,
}

impl QuantizedRows {
    /// Quantizes `x` (`rows × k`, row-major) for `kernel`, reusing this
    /// buffer's memory. The portable kernel quantizes without SIMD too.
    pub fn quantize(&mut self, x: &[f32], k: usize, kernel: Kernel) {
        assert!(k > 0 && x.len().is_multiple_of(k), "activations are not rows of {k}");
        let rows = x.len() / k;
        let (stride, group) = (k.next_multiple_of(4), kernel.rows());
        self.data.clear();
        self.data.resize(rows.next_multiple_of(group) * stride, 0);
        self.scale.resize(rows, 0.0);
        self.zero.resize(rows, 0);
        (self.rows, self.k, self.stride, self.group) = (rows, k, stride, group);
        let simd = kernel != Kernel::Portable;
        let work = self.data.par_chunks_mut(group * stride).zip(self.scale.par_chunks_mut(group));
        let work = work.zip(self.zero.par_chunks_mut(group)).zip(x.par_chunks(group * k));
        work.with_min_len(2).for_each_init(
            || vec![0u8; stride],
            |row_q, (((q, s), z), x)| {
                for (i, ((s, z), row)) in s.iter_mut().zip(z).zip(x.chunks_exact(k)).enumerate() {
                    (*s, *z) = quantize_row(row, &mut row_q[..k], simd);
                    for (step, bytes) in row_q.chunks_exact(4).enumerate() {
                        q[(step * group + i) * 4..][..4].copy_from_slice(bytes);
                    }
                }
            },
        );
    }

    /// Byte `j` of row `r` (tests read the layout through this).
    #[cfg(test)]
    fn byte(&self, r: usize, j: usize) -> u8 {
        let (g, i) = (r / self.group, r % self.group);
        self.data[g * self.group * self.stride + (j / 4 * self.group + i) * 4 + j % 4]
    }
}

/// Asymmetric u8 quantization of one row; the range always holds 0, so zero
/// is exact and a constant row does not divide by zero.
fn quantize_row(row: &[f32], out: &mut [u8], simd: bool) -> (f32, i32) {
    #[cfg(target_arch = "x86_64")]
    if simd && is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        // SAFETY: AVX2 and FMA were just detected; `out` is as long as `row`.
        return unsafe { x86::quantize_row(row, out) };
    }
    let (lo, hi) = row.iter().fold((0f32, 0f32), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let (scale, zero) = row_params(lo, hi);
    let inv = 1.0 / scale;
    for (q, &v) in out.iter_mut().zip(row) {
        *q = (v * inv + zero).round_ties_even().clamp(0.0, 255.0) as u8;
    }
    (scale, zero as i32)
}

/// Scale and zero point for a row ranging over `[lo, hi]` (`lo ≤ 0 ≤ hi`).
fn row_params(lo: f32, hi: f32) -> (f32, f32) {
    if hi - lo <= f32::MIN_POSITIVE {
        return (1.0, 0.0);
    }
    let scale = (hi - lo) / 255.0;
    (scale, (-lo / scale).round_ties_even().clamp(0.0, 255.0))
}

/// What follows `scale · acc + bias` in the epilogue.
#[derive(Clone, Copy)]
pub enum Epilogue<'a> {
    Bias,
    /// GELU (the erf form, as e5's `hidden_act = "gelu"`).
    Gelu,
    /// Adds a `rows × n` residual.
    Residual(&'a [f32]),
}

/// A linear layer's weights, quantized and packed for one kernel.
pub struct PackedLinear {
    kernel: Kernel,
    n: usize,
    k: usize,
    /// `k` rounded up to a multiple of 4.
    kp: usize,
    data: Vec<i8>,
    /// Per output channel, padded to whole panels.
    scale: Vec<f32>,
    col_sum: Vec<i32>,
    bias: Vec<f32>,
}

impl PackedLinear {
    /// Quantizes `weight` (`n × k`, row-major: PyTorch's `[out, in]`) per output
    /// channel and packs it.
    ///
    /// # Panics
    /// If this CPU cannot run `kernel` (every later `unsafe` call into the
    /// kernel's code rests on that check).
    pub fn new(kernel: Kernel, weight: &[f32], bias: &[f32], n: usize, k: usize) -> Self {
        assert!(kernel.supported(), "the {} kernel needs instructions this CPU lacks", kernel.name());
        assert_eq!(weight.len(), n * k, "weight is not {n} × {k}");
        assert_eq!(bias.len(), n, "bias is not {n} long");
        let kp = k.next_multiple_of(4);
        let panels = n.div_ceil(NR);
        let mut data = vec![0i8; panels * NR * kp];
        let mut scale = vec![0f32; panels * NR];
        let mut col_sum = vec![0i32; panels * NR];
        let qmax = kernel.weight_max();
        for (c, row) in weight.chunks_exact(k).enumerate() {
            let amax = row.iter().fold(0f32, |m, v| m.max(v.abs()));
            let s = if amax > 0.0 { amax / qmax } else { 1.0 };
            scale[c] = s;
            let (panel, lane) = (c / NR, c % NR);
            for (i, &v) in row.iter().enumerate() {
                let q = (v / s).round_ties_even().clamp(-qmax, qmax) as i8;
                data[panel * NR * kp + (i / 4) * NR * 4 + lane * 4 + i % 4] = q;
                col_sum[c] += q as i32;
            }
        }
        let mut padded_bias = vec![0f32; panels * NR];
        padded_bias[..n].copy_from_slice(bias);
        Self { kernel, n, k, kp, data, scale, col_sum, bias: padded_bias }
    }

    /// `out = epilogue(x·Wᵀ + b)`, `out` being `rows × n`; parallel over tiles
    /// of rows and weight panels on the rayon pool.
    pub fn forward(&self, x: &QuantizedRows, epilogue: Epilogue<'_>, out: &mut [f32]) {
        assert_eq!(x.k, self.k, "activations have {} columns, the layer takes {}", x.k, self.k);
        assert_eq!(x.group, self.kernel.rows(), "activations were quantized for another kernel");
        let (m, n) = (x.rows, self.n);
        assert_eq!(out.len(), m * n, "output is not {m} × {n}");
        if let Epilogue::Residual(r) = epilogue {
            assert_eq!(r.len(), m * n, "residual is not {m} × {n}");
        }
        let panels = n.div_ceil(NR);
        let tasks = m.div_ceil(MC) * panels;
        let out = SharedOut(out.as_mut_ptr());
        (0..tasks).into_par_iter().for_each(|t| {
            let (m0, p) = ((t / panels) * MC, t % panels);
            let m1 = (m0 + MC).min(m);
            #[cfg(target_arch = "x86_64")]
            if self.kernel != Kernel::Portable && (p + 1) * NR <= n {
                // Whole panels: integer tiles with the epilogue in registers.
                return self.fused_task(x, m0, m1, p, epilogue, out);
            }
            let mut acc = [0i32; MAX_ROWS * NR];
            let mr = self.kernel.rows();
            let mut r0 = m0;
            while r0 < m1 {
                let rows = mr.min(m1 - r0);
                self.tile(x, r0, rows, p, &mut acc);
                let cols = NR.min(n - p * NR);
                for r in 0..rows {
                    let row = r0 + r;
                    // SAFETY: tasks own disjoint (row range, panel) tiles, so no
                    // two threads write the same element, and `row < m`,
                    // `p·NR + cols ≤ n` keep the slice inside `out` (m × n).
                    let dst = unsafe { std::slice::from_raw_parts_mut(out.get().add(row * n + p * NR), cols) };
                    let acc = acc[r * NR..(r + 1) * NR].try_into().expect("NR lanes");
                    self.finish(acc, x.scale[row], x.zero[row], p * NR, row, epilogue, dst);
                }
                r0 += rows;
            }
        });
    }

    /// One task of `forward` on a whole panel `p`, rows `m0..m1`, through the
    /// SIMD kernel's fused epilogue.
    #[cfg(target_arch = "x86_64")]
    fn fused_task(&self, x: &QuantizedRows, m0: usize, m1: usize, p: usize, epilogue: Epilogue<'_>, out: SharedOut) {
        let (n, c0) = (self.n, p * NR);
        // SAFETY (both `add`s): row `m0 < m` and column `c0 < n` lie inside
        // the `m × n` residual and output (`forward` checked their lengths).
        let residual = match epilogue {
            Epilogue::Residual(r) => unsafe { r.as_ptr().add(m0 * n + c0) },
            _ => std::ptr::null(),
        };
        let sink = x86::Epi {
            xs: x.scale[m0..].as_ptr(),
            xz: x.zero[m0..].as_ptr(),
            ws: self.scale[c0..].as_ptr(),
            bias: self.bias[c0..].as_ptr(),
            cs: self.col_sum[c0..].as_ptr(),
            gelu: matches!(epilogue, Epilogue::Gelu),
            res: residual,
            out: unsafe { out.get().add(m0 * n + c0) },
            ldo: n,
        };
        let a = &x.data[m0 * x.stride..m1.next_multiple_of(x.group) * x.stride];
        let b = &self.data[p * NR * self.kp..(p + 1) * NR * self.kp];
        // SAFETY: the kernel runs on this CPU (`Kernel::supported`) and is not
        // the portable one (the caller's check); `a` holds the task's row
        // groups and `b` one whole panel; the task owns output rows m0..m1 of
        // panel `p` (disjoint from every other task's), which `sink` points
        // at with row stride n, and the panel's NR channels and the rows'
        // scales lie behind its other pointers.
        unsafe { x86::fused(self.kernel, a, x.stride, m1 - m0, b, self.kp / 4, &sink) };
    }

    /// Integer dot products of `rows` activation rows from `r0` with panel `p`,
    /// into `acc[r·NR + lane]` (the path of partial panels and the portable
    /// kernel; whole panels on x86 go through `x86::fused`).
    fn tile(&self, x: &QuantizedRows, r0: usize, rows: usize, p: usize, acc: &mut [i32; MAX_ROWS * NR]) {
        // The tile's whole group (rows are grouped by the tile height).
        let a = &x.data[r0 * x.stride..(r0 + x.group) * x.stride];
        let b = &self.data[p * NR * self.kp..(p + 1) * NR * self.kp];
        let k4 = self.kp / 4;
        debug_assert!(rows >= 1 && rows <= self.kernel.rows());
        match self.kernel {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the kernel was chosen only if the CPU has the instructions
            // (`Kernel::supported`), `a` holds one group of `rows()` rows of
            // `kp` bytes and `b` one panel of `k4·NR·4` bytes, the extents the
            // kernel reads.
            Kernel::Avx512Vnni => unsafe { x86::avx512vnni(a, rows, b, k4, acc) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            Kernel::AvxVnni => unsafe { x86::avxvnni(a, rows, b, k4, acc) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            Kernel::Avx2 => unsafe { x86::avx2(a, rows, b, k4, acc) },
            _ => portable(a, rows, b, k4, acc),
        }
    }

    /// The epilogue for one row of one panel, written straight into `dst`
    /// when the panel is whole (through a fixed-size array, so the loops have
    /// no remainders), through a local panel otherwise.
    #[allow(clippy::too_many_arguments)]
    fn finish(
        &self,
        acc: &[i32; NR],
        xs: f32,
        xz: i32,
        c0: usize,
        row: usize,
        epilogue: Epilogue<'_>,
        dst: &mut [f32],
    ) {
        let residual = match epilogue {
            Epilogue::Residual(r) => Some(&r[row * self.n + c0..][..dst.len()]),
            _ => None,
        };
        let gelu = matches!(epilogue, Epilogue::Gelu);
        match <&mut [f32; NR]>::try_from(&mut *dst) {
            Ok(whole) => self.panel_epilogue(acc, xs, xz, c0, gelu, residual, whole),
            Err(_) => {
                let mut y = [0f32; NR];
                self.panel_epilogue(acc, xs, xz, c0, gelu, residual, &mut y);
                let cols = dst.len();
                dst.copy_from_slice(&y[..cols]);
            }
        }
    }

    /// `y = scale · acc + bias`, then GELU or `+ residual` (as long as the
    /// real columns); the per-channel arrays are padded to whole panels.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn panel_epilogue(
        &self,
        acc: &[i32; NR],
        xs: f32,
        xz: i32,
        c0: usize,
        gelu: bool,
        residual: Option<&[f32]>,
        y: &mut [f32; NR],
    ) {
        let ws: &[f32; NR] = self.scale[c0..c0 + NR].try_into().expect("padded to whole panels");
        let bias: &[f32; NR] = self.bias[c0..c0 + NR].try_into().expect("padded to whole panels");
        let cs: &[i32; NR] = self.col_sum[c0..c0 + NR].try_into().expect("padded to whole panels");
        for i in 0..NR {
            y[i] = xs * ws[i] * (acc[i] - xz * cs[i]) as f32 + bias[i];
        }
        if gelu {
            y.iter_mut().for_each(|v| *v = gelu_erf(*v));
        }
        if let Some(r) = residual {
            y.iter_mut().zip(r).for_each(|(v, r)| *v += r);
        }
    }
}

/// Query rows per block of the attention products, and keys (or value
/// columns) per block. Every key (or value row) loaded is used by all `QB`
/// query rows: with 4 rows, streaming a 512-token head's keys from L2 bound
/// the products; 12 rows × 2 zmm registers fill AVX-512's register file.
pub(crate) const QB: usize = 12;
pub(crate) const AB: usize = 32;

/// Attention scores for `rows ≤ QB` query rows: `scores[r·lp + j] = Σ_d
/// q[r·hd + d] · kt[d·lp + j]`, the keys transposed (`hd × lp`) with `lp` a
/// multiple of [`AB`]. Rows past `rows` are left as they were.
pub(crate) fn attention_scores(
    kernel: Kernel,
    q: &[f32],
    kt: &[f32],
    hd: usize,
    lp: usize,
    rows: usize,
    scores: &mut [f32],
) {
    assert!(q.len() == QB * hd && kt.len() == hd * lp && scores.len() == QB * lp && lp.is_multiple_of(AB));
    rows_product(kernel, q, hd, kt, lp, hd, lp, rows, scores);
}

/// Attention output for `rows ≤ QB` rows of probabilities: `out[r·hd + c] =
/// Σ_{j<len} p[r·lp + j] · v[j·stride + c]`, `hd` a multiple of [`AB`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn attention_values(
    kernel: Kernel,
    p: &[f32],
    lp: usize,
    len: usize,
    v: &[f32],
    stride: usize,
    hd: usize,
    rows: usize,
    out: &mut [f32],
) {
    assert!(p.len() == QB * lp && len >= 1 && len <= lp && hd.is_multiple_of(AB) && out.len() == QB * hd);
    assert!(stride >= hd && v.len() >= (len - 1) * stride + hd);
    rows_product(kernel, p, lp, v, stride, len, hd, rows, out);
}

/// Softmax's numerator in place, `e^(x − max)`; returns 1 / its sum, for the
/// caller to apply after the value product. On 16 or 8 lanes for the SIMD
/// kernels, in portable Rust otherwise.
pub(crate) fn softmax_numerator(kernel: Kernel, x: &mut [f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    match kernel {
        // SAFETY: that kernel is only chosen on a CPU with AVX-512F.
        Kernel::Avx512Vnni if !x.is_empty() => return unsafe { x86::softmax_numerator512(x) },
        // SAFETY: those kernels are only chosen on a CPU with AVX2 and FMA.
        Kernel::AvxVnni | Kernel::Avx2 if !x.is_empty() => return unsafe { x86::softmax_numerator256(x) },
        _ => {}
    }
    let _ = kernel;
    exp_minus_max(x)
}

/// The portable form of [`softmax_numerator`]. Maximum and sum run over 8
/// lanes so that they vectorise (a plain fold is one long dependency chain).
fn exp_minus_max(x: &mut [f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; 8];
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        lanes.iter_mut().zip(c).for_each(|(m, &v)| *m = if v > *m { v } else { *m });
    }
    let max = chunks.remainder().iter().chain(&lanes).fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    x.iter_mut().for_each(|v| *v = exp(*v - max));
    let mut sums = [0f32; 8];
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        sums.iter_mut().zip(c).for_each(|(s, &v)| *s += v);
    }
    1.0 / (chunks.remainder().iter().sum::<f32>() + sums.iter().sum::<f32>())
}

/// `exp`'s constants (Cephes' `expf`), shared by the scalar and SIMD forms:
/// adding `EXP_MAGIC` (1.5·2^23) rounds to an integer and leaves it in the
/// low mantissa bits; ln 2 split in two for the reduction; the polynomial's
/// coefficients, highest power first.
const EXP_MAGIC: f32 = 12_582_912.0;
const EXP_LN2_HI: f32 = 0.693_359_4;
const EXP_LN2_LO: f32 = 2.121_944_4e-4;
const EXP_P: [f32; 6] = [1.987_569_1e-4, 1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 1.666_666_5e-1, 5e-1];

/// e^x for x ≤ 0 (softmax after subtracting the maximum): 2^n · p(r) with a
/// degree-6 polynomial on |r| ≤ ln2/2; relative error about 2e-7, and inputs
/// below −87 give e^−87. Branch- and cast-free so that `exp_minus_max`'s
/// loop vectorises: 2^n is built from n in the low mantissa bits.
#[inline(always)]
fn exp(x: f32) -> f32 {
    let x = x.max(-87.0);
    let t = x * std::f32::consts::LOG2_E + EXP_MAGIC;
    let n = t - EXP_MAGIC;
    let r = x - n * EXP_LN2_HI + n * EXP_LN2_LO;
    let p = EXP_P[1..].iter().fold(EXP_P[0], |p, &c| p * r + c);
    let e = p * r * r + r + 1.0;
    e * f32::from_bits(t.to_bits().wrapping_sub(EXP_MAGIC.to_bits() - 127) << 23)
}

/// Both attention products: `out[r·n + c] = Σ_{k<kk} a[r·lda + k] · b[k·ldb + c]`
/// for the first `rows ≤ QB` rows `r` and every column `c < n`, `n` a
/// multiple of [`AB`].
#[allow(clippy::too_many_arguments)]
fn rows_product(
    kernel: Kernel,
    a: &[f32],
    lda: usize,
    b: &[f32],
    ldb: usize,
    kk: usize,
    n: usize,
    rows: usize,
    out: &mut [f32],
) {
    assert!((1..=QB).contains(&rows) && kk >= 1 && lda >= kk && a.len() >= (rows - 1) * lda + kk);
    assert!(ldb >= n && b.len() >= (kk - 1) * ldb + n && n.is_multiple_of(AB) && out.len() >= rows * n);
    #[cfg(target_arch = "x86_64")]
    if kernel == Kernel::Avx512Vnni {
        // SAFETY: that kernel is only chosen on a CPU with AVX-512F; the
        // lengths were checked above.
        return unsafe { x86::rows_product512(a, lda, b, ldb, kk, n, rows, out) };
    }
    #[cfg(target_arch = "x86_64")]
    if matches!(kernel, Kernel::AvxVnni | Kernel::Avx2) {
        // SAFETY: those kernels are only chosen on a CPU with AVX2 and FMA;
        // the lengths were checked above.
        return unsafe { x86::rows_product256(a, lda, b, ldb, kk, n, rows, out) };
    }
    // The portable kernel, four rows at a time.
    let _ = kernel;
    for r0 in (0..rows).step_by(4) {
        let rr = 4.min(rows - r0);
        for c0 in (0..n).step_by(AB) {
            let mut acc = [[0f32; AB]; 4];
            for k in 0..kk {
                let bk: &[f32; AB] = b[k * ldb + c0..][..AB].try_into().expect("AB columns");
                for (r, acc) in acc.iter_mut().enumerate().take(rr) {
                    let ar = a[(r0 + r) * lda + k];
                    acc.iter_mut().zip(bk).for_each(|(s, b)| *s = ar.mul_add(*b, *s));
                }
            }
            for (r, acc) in acc.iter().enumerate().take(rr) {
                out[(r0 + r) * n + c0..][..AB].copy_from_slice(acc);
            }
        }
    }
}

/// The output pointer shared by the tasks of one `forward`.
#[derive(Clone, Copy)]
struct SharedOut(*mut f32);
impl SharedOut {
    /// A method, not a field access, so that closures capture the whole
    /// (Send + Sync) wrapper rather than the bare pointer.
    fn get(self) -> *mut f32 {
        self.0
    }
}
// SAFETY: the pointer is only written through disjoint tiles (see `forward`)
// while the `&mut` it came from is borrowed for the whole parallel loop.
unsafe impl Send for SharedOut {}
// SAFETY: as above.
unsafe impl Sync for SharedOut {}

/// The fallback: plain integer loops over the packed layout.
fn portable(a: &[u8], rows: usize, b: &[i8], k4: usize, acc: &mut [i32; MAX_ROWS * NR]) {
    const G: usize = Kernel::Portable.rows();
    acc.fill(0);
    for s in 0..k4 {
        let bs = &b[s * NR * 4..(s + 1) * NR * 4];
        for r in 0..rows {
            let av = &a[(s * G + r) * 4..][..4];
            let out = &mut acc[r * NR..(r + 1) * NR];
            for (o, w) in out.iter_mut().zip(bs.chunks_exact(4)) {
                *o += av.iter().zip(w).map(|(&a, &w)| a as i32 * w as i32).sum::<i32>();
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{Kernel, AB, ERF_P, ERF_Q, EXP_LN2_HI, EXP_LN2_LO, EXP_MAGIC, EXP_P, MAX_ROWS, NR};

    /// Dispatches a row count to the const-generic tile, so that the row loop
    /// unrolls and the accumulators live in registers.
    macro_rules! by_rows {
        ($f:ident, $rows:expr, [$($n:literal)*], $args:tt) => {
            match $rows {
                $($n => by_rows!(@call $f, $n, $args),)*
                _ => unreachable!("tile of {} rows", $rows),
            }
        };
        (@call $f:ident, $n:literal, ($($arg:expr),*)) => {
            $f::<$n>($($arg),*)
        };
    }

    /// Twelve chains of `op` on constant operands the optimiser cannot see
    /// through; returns the multiply-adds done.
    macro_rules! peak_loop {
        ($iters:expr, $zero:expr, $a:expr, $b:expr, $lanes:expr, |$acc:ident, $x:ident, $y:ident| $op:expr) => {{
            let ($x, $y) = (std::hint::black_box($a), std::hint::black_box($b));
            let mut accs = [$zero; 12];
            for _ in 0..$iters {
                for $acc in accs.iter_mut() {
                    *$acc = $op;
                }
            }
            std::hint::black_box(accs);
            $iters * 12 * $lanes
        }};
    }

    /// # Safety
    /// The CPU must have AVX-512F/BW/VNNI.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(super) unsafe fn peak512(iters: usize) -> usize {
        let (a, b) = (_mm512_set1_epi32(0x0101_0101), _mm512_set1_epi32(0x0102_0304));
        peak_loop!(iters, _mm512_setzero_si512(), a, b, 64, |acc, x, y| _mm512_dpbusd_epi32(*acc, x, y))
    }

    /// # Safety
    /// The CPU must have AVX2 and AVX-VNNI.
    #[target_feature(enable = "avx2,avxvnni")]
    pub(super) unsafe fn peak_vnni256(iters: usize) -> usize {
        let (a, b) = (_mm256_set1_epi32(0x0101_0101), _mm256_set1_epi32(0x0102_0304));
        peak_loop!(iters, _mm256_setzero_si256(), a, b, 32, |acc, x, y| _mm256_dpbusd_avx_epi32(*acc, x, y))
    }

    /// # Safety
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn peak_avx2(iters: usize) -> usize {
        // `vpmaddubsw` and `vpmaddwd` do not read the accumulator, so with
        // constant operands they would be hoisted out of the loop: the i8
        // operands are passed through memory every iteration instead (one
        // load per multiply, as in the kernel).
        let (a, ones) = (_mm256_set1_epi32(0x0101_0101), _mm256_set1_epi16(1));
        let mut ws = [_mm256_setzero_si256(); 12];
        for (i, w) in ws.iter_mut().enumerate() {
            *w = _mm256_set1_epi8(i as i8 + 1);
        }
        let mut accs = [_mm256_setzero_si256(); 12];
        for _ in 0..iters {
            let ws = std::hint::black_box(&ws);
            for (acc, w) in accs.iter_mut().zip(ws) {
                *acc = _mm256_add_epi32(*acc, _mm256_madd_epi16(_mm256_maddubs_epi16(a, *w), ones));
            }
        }
        std::hint::black_box(accs);
        iters * 12 * 32
    }

    /// [`super::rows_product`] on zmm accumulators: blocks of `rows` × 32
    /// columns (up to 12 × 2 registers), so that each step of k loads two
    /// registers of `b` for up to 24 multiply-adds.
    ///
    /// # Safety
    /// The CPU must have AVX-512F; the slices must have the lengths that
    /// `rows_product` checks.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn rows_product512(
        a: &[f32],
        lda: usize,
        b: &[f32],
        ldb: usize,
        kk: usize,
        n: usize,
        rows: usize,
        out: &mut [f32],
    ) {
        for c0 in (0..n).step_by(AB) {
            // SAFETY: c0 + 32 ≤ n, and `rows ≤ QB = 12`.
            unsafe { by_rows!(block512, rows, [1 2 3 4 5 6 7 8 9 10 11 12], (a, lda, b, ldb, kk, n, c0, out)) }
        }
    }

    /// One `R × 32` block of [`rows_product512`] at column `c0`.
    ///
    /// # Safety
    /// AVX-512F; `c0 + 32 ≤ n`, `R == rows`, and the lengths `rows_product` checks.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn block512<const R: usize>(
        a: &[f32],
        lda: usize,
        b: &[f32],
        ldb: usize,
        kk: usize,
        n: usize,
        c0: usize,
        out: &mut [f32],
    ) {
        let mut acc = [[_mm512_setzero_ps(); 2]; R];
        for k in 0..kk {
            // SAFETY: `k·ldb + c0 + 32 ≤ (kk − 1)·ldb + n ≤ b.len()`.
            let (b0, b1) = unsafe {
                let bk = b.as_ptr().add(k * ldb + c0);
                (_mm512_loadu_ps(bk), _mm512_loadu_ps(bk.add(16)))
            };
            for (r, acc) in acc.iter_mut().enumerate() {
                // SAFETY: `r·lda + k < (rows − 1)·lda + kk ≤ a.len()` (unchecked:
                // a bounds check per broadcast costs a fifth of the loop).
                let ar = _mm512_set1_ps(unsafe { *a.get_unchecked(r * lda + k) });
                acc[0] = _mm512_fmadd_ps(ar, b0, acc[0]);
                acc[1] = _mm512_fmadd_ps(ar, b1, acc[1]);
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            // SAFETY: `r·n + c0 + 32 ≤ rows·n ≤ out.len()`.
            unsafe {
                let o = out.as_mut_ptr().add(r * n + c0);
                _mm512_storeu_ps(o, acc[0]);
                _mm512_storeu_ps(o.add(16), acc[1]);
            }
        }
    }

    /// [`super::rows_product`] on ymm accumulators, for the AVX2 kernels:
    /// up to 6 rows × 16 columns a block (12 of the 16 ymm registers), so
    /// that each step of k loads two registers of `b` for up to 12
    /// multiply-adds; the `QB` rows take two blocks.
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA; the slices must have the lengths that
    /// `rows_product` checks.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn rows_product256(
        a: &[f32],
        lda: usize,
        b: &[f32],
        ldb: usize,
        kk: usize,
        n: usize,
        rows: usize,
        out: &mut [f32],
    ) {
        for r0 in (0..rows).step_by(6) {
            let rr = 6.min(rows - r0);
            let (a, out) = (&a[r0 * lda..], &mut out[r0 * n..]);
            for c0 in (0..n).step_by(16) {
                // SAFETY: c0 + 16 ≤ n (n is a multiple of 32); rows r0..r0+rr
                // of `a` and `out` are inside the lengths `rows_product` checked.
                unsafe { by_rows!(block256, rr, [1 2 3 4 5 6], (a, lda, b, ldb, kk, n, c0, out)) }
            }
        }
    }

    /// One `R × 16` block of [`rows_product256`] at column `c0`.
    ///
    /// # Safety
    /// AVX2 and FMA; `c0 + 16 ≤ n`, `a` holds `R` rows (`(R − 1)·lda + kk`),
    /// `out` `R` rows of `n`, and `b` the lengths `rows_product` checks.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn block256<const R: usize>(
        a: &[f32],
        lda: usize,
        b: &[f32],
        ldb: usize,
        kk: usize,
        n: usize,
        c0: usize,
        out: &mut [f32],
    ) {
        debug_assert!(a.len() >= (R - 1) * lda + kk && out.len() >= (R - 1) * n + c0 + 16);
        let mut acc = [[_mm256_setzero_ps(); 2]; R];
        for k in 0..kk {
            // SAFETY: `k·ldb + c0 + 16 ≤ (kk − 1)·ldb + n ≤ b.len()`.
            let (b0, b1) = unsafe {
                let bk = b.as_ptr().add(k * ldb + c0);
                (_mm256_loadu_ps(bk), _mm256_loadu_ps(bk.add(8)))
            };
            for (r, acc) in acc.iter_mut().enumerate() {
                // SAFETY: `r·lda + k < (R − 1)·lda + kk ≤ a.len()`.
                let ar = _mm256_set1_ps(unsafe { *a.get_unchecked(r * lda + k) });
                acc[0] = _mm256_fmadd_ps(ar, b0, acc[0]);
                acc[1] = _mm256_fmadd_ps(ar, b1, acc[1]);
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            // SAFETY: `r·n + c0 + 16 ≤ (R − 1)·n + c0 + 16 ≤ out.len()`.
            unsafe {
                let o = out.as_mut_ptr().add(r * n + c0);
                _mm256_storeu_ps(o, acc[0]);
                _mm256_storeu_ps(o.add(8), acc[1]);
            }
        }
    }

    /// [`softmax_numerator512`] on 8 lanes, for the AVX2 kernels; the last
    /// `len % 8` scores go through a padded register (no masked loads in AVX2).
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn softmax_numerator256(x: &mut [f32]) -> f32 {
        let body = x.len() / 8 * 8;
        let (head, tail) = x.split_at_mut(body);
        let mut last = [f32::NEG_INFINITY; 8];
        last[..tail.len()].copy_from_slice(tail);
        // SAFETY (all loads and stores): `i + 8 ≤ body`, and `last` holds 8.
        unsafe {
            let p = head.as_mut_ptr();
            let mut m = _mm256_loadu_ps(last.as_ptr());
            for i in (0..body).step_by(8) {
                m = _mm256_max_ps(m, _mm256_loadu_ps(p.add(i)));
            }
            let mut lanes = [0f32; 8];
            _mm256_storeu_ps(lanes.as_mut_ptr(), m);
            let max = _mm256_set1_ps(lanes.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)));
            let mut sum = _mm256_setzero_ps();
            for i in (0..body).step_by(8) {
                let e = exp256(_mm256_sub_ps(_mm256_loadu_ps(p.add(i)), max));
                _mm256_storeu_ps(p.add(i), e);
                sum = _mm256_add_ps(sum, e);
            }
            _mm256_storeu_ps(lanes.as_mut_ptr(), sum);
            let mut total: f32 = lanes.iter().sum();
            if !tail.is_empty() {
                _mm256_storeu_ps(last.as_mut_ptr(), exp256(_mm256_sub_ps(_mm256_loadu_ps(last.as_ptr()), max)));
                tail.copy_from_slice(&last[..tail.len()]);
                total += tail.iter().sum::<f32>();
            }
            1.0 / total
        }
    }

    /// [`exp512`] on 8 lanes.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn exp256(x: __m256) -> __m256 {
        let x = _mm256_max_ps(x, _mm256_set1_ps(-87.0));
        let t = _mm256_fmadd_ps(x, _mm256_set1_ps(std::f32::consts::LOG2_E), _mm256_set1_ps(EXP_MAGIC));
        let n = _mm256_sub_ps(t, _mm256_set1_ps(EXP_MAGIC));
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(EXP_LN2_HI), x);
        let r = _mm256_fmadd_ps(n, _mm256_set1_ps(EXP_LN2_LO), r);
        let mut p = _mm256_set1_ps(EXP_P[0]);
        for c in &EXP_P[1..] {
            p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(*c));
        }
        let e = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0));
        let bits = _mm256_slli_epi32::<23>(_mm256_sub_epi32(
            _mm256_castps_si256(t),
            _mm256_set1_epi32((EXP_MAGIC.to_bits() - 127) as i32),
        ));
        _mm256_mul_ps(e, _mm256_castsi256_ps(bits))
    }

    /// Softmax's numerator in place, `e^(x − max)`, on 16 lanes; returns
    /// 1 / the sum, which the caller applies to the weighted values instead
    /// (one pass over the row fewer). Same polynomial as [`super::exp`].
    ///
    /// # Safety
    /// The CPU must have AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn softmax_numerator512(x: &mut [f32]) -> f32 {
        let (len, p) = (x.len(), x.as_mut_ptr());
        let tail = (len % 16) as u32;
        let tail_mask: __mmask16 = ((1u32 << tail) - 1) as __mmask16;
        let body = len - tail as usize;
        let neg = _mm512_set1_ps(f32::NEG_INFINITY);
        // SAFETY (all loads and stores): `i + 16 ≤ body ≤ len`, and the tail's
        // masked accesses touch only lanes below `len`.
        unsafe {
            let mut m = _mm512_mask_loadu_ps(neg, tail_mask, p.add(body));
            for i in (0..body).step_by(16) {
                m = _mm512_max_ps(m, _mm512_loadu_ps(p.add(i)));
            }
            let max = _mm512_set1_ps(_mm512_reduce_max_ps(m));
            let mut sum = _mm512_setzero_ps();
            for i in (0..body).step_by(16) {
                let e = exp512(_mm512_sub_ps(_mm512_loadu_ps(p.add(i)), max));
                _mm512_storeu_ps(p.add(i), e);
                sum = _mm512_add_ps(sum, e);
            }
            if tail > 0 {
                let v = _mm512_mask_loadu_ps(max, tail_mask, p.add(body));
                let e = _mm512_maskz_mov_ps(tail_mask, exp512(_mm512_sub_ps(v, max)));
                _mm512_mask_storeu_ps(p.add(body), tail_mask, e);
                sum = _mm512_add_ps(sum, e);
            }
            1.0 / _mm512_reduce_add_ps(sum)
        }
    }

    /// [`super::exp`] (x ≤ 0) on 16 lanes, with fused multiply-adds.
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn exp512(x: __m512) -> __m512 {
        let x = _mm512_max_ps(x, _mm512_set1_ps(-87.0));
        let t = _mm512_fmadd_ps(x, _mm512_set1_ps(std::f32::consts::LOG2_E), _mm512_set1_ps(EXP_MAGIC));
        let n = _mm512_sub_ps(t, _mm512_set1_ps(EXP_MAGIC));
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(EXP_LN2_HI), x);
        let r = _mm512_fmadd_ps(n, _mm512_set1_ps(EXP_LN2_LO), r);
        let mut p = _mm512_set1_ps(EXP_P[0]);
        for c in &EXP_P[1..] {
            p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(*c));
        }
        let e = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.0));
        let bits = _mm512_slli_epi32::<23>(_mm512_sub_epi32(
            _mm512_castps_si512(t),
            _mm512_set1_epi32((EXP_MAGIC.to_bits() - 127) as i32),
        ));
        _mm512_mul_ps(e, _mm512_castsi512_ps(bits))
    }

    /// [`super::quantize_row`] with AVX2: 8 lanes of min/max, then
    /// round-to-nearest-even conversion and saturating packs to u8.
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA, and `out` must be as long as `row`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn quantize_row(row: &[f32], out: &mut [u8]) -> (f32, i32) {
        debug_assert_eq!(row.len(), out.len());
        let n8 = row.len() / 8 * 8;
        let (mut lo, mut hi) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        for i in (0..n8).step_by(8) {
            // SAFETY: `i + 8 ≤ row.len()`.
            let v = unsafe { _mm256_loadu_ps(row.as_ptr().add(i)) };
            (lo, hi) = (_mm256_min_ps(lo, v), _mm256_max_ps(hi, v));
        }
        let (mut l, mut h) = ([0f32; 8], [0f32; 8]);
        // SAFETY: both arrays hold 8 floats.
        unsafe { (_mm256_storeu_ps(l.as_mut_ptr(), lo), _mm256_storeu_ps(h.as_mut_ptr(), hi)) };
        let lo = row[n8..].iter().chain(&l).fold(0f32, |a, &v| a.min(v));
        let hi = row[n8..].iter().chain(&h).fold(0f32, |a, &v| a.max(v));
        let (scale, zero) = super::row_params(lo, hi);
        let (inv, zv) = (_mm256_set1_ps(1.0 / scale), _mm256_set1_ps(zero));
        for i in (0..n8).step_by(8) {
            // SAFETY: `i + 8 ≤ row.len() = out.len()`.
            unsafe {
                let v = _mm256_fmadd_ps(_mm256_loadu_ps(row.as_ptr().add(i)), inv, zv);
                // cvtps rounds to nearest even (the default MXCSR mode); the
                // packs saturate to 0..=255.
                let q = _mm256_cvtps_epi32(v);
                let w = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
                let b = _mm_packus_epi16(w, w);
                _mm_storel_epi64(out.as_mut_ptr().add(i).cast(), b);
            }
        }
        let inv = 1.0 / scale;
        for (q, &v) in out[n8..].iter_mut().zip(&row[n8..]) {
            *q = (v * inv + zero).round_ties_even().clamp(0.0, 255.0) as u8;
        }
        (scale, zero as i32)
    }

    /// Where a tile's results go: raw i32 sums (`NR` per row) for the
    /// caller's epilogue, or straight through the fused epilogue.
    #[derive(Clone, Copy)]
    enum Sink<'a> {
        Acc(*mut i32),
        Out(&'a Epi),
    }

    /// What the fused epilogue needs for the rows of one task and one whole
    /// panel: `y = xs·ws·(acc − xz·cs) + bias`, then GELU or `+ res`, stored
    /// at `out` (row stride `ldo`). Pointers are to row 0 of the task and
    /// channel 0 of the panel.
    #[derive(Clone, Copy)]
    pub(super) struct Epi {
        pub xs: *const f32,
        pub xz: *const i32,
        pub ws: *const f32,
        pub bias: *const f32,
        pub cs: *const i32,
        pub gelu: bool,
        /// Null without a residual.
        pub res: *const f32,
        pub out: *mut f32,
        pub ldo: usize,
    }

    impl Epi {
        /// The same, from row `r` of the task on.
        ///
        /// # Safety
        /// Row `r` must be one of the task's rows.
        unsafe fn rows_from(&self, r: usize) -> Epi {
            // SAFETY: row `r` is inside the rows the pointers cover.
            unsafe {
                Epi {
                    xs: self.xs.add(r),
                    xz: self.xz.add(r),
                    res: if self.res.is_null() { self.res } else { self.res.add(r * self.ldo) },
                    out: self.out.add(r * self.ldo),
                    ..*self
                }
            }
        }
    }

    /// `rows` activation rows (`a`: whole groups of `kernel.rows()` rows,
    /// `stride` bytes a row) times one whole weight panel `b`, through the
    /// fused epilogue `e`, tile by tile.
    ///
    /// # Safety
    /// `kernel` must run on this CPU and not be the portable one; `a` must
    /// hold `rows` rows rounded up to whole groups, `stride == 4·k4` (the rows'
    /// padded length), `b` one
    /// panel of `k4·NR·4` bytes, and `e`'s pointers must cover `rows` rows and
    /// `NR` channels.
    pub(super) unsafe fn fused(kernel: Kernel, a: &[u8], stride: usize, rows: usize, b: &[i8], k4: usize, e: &Epi) {
        debug_assert!(a.len() >= rows.next_multiple_of(kernel.rows()) * stride && b.len() >= k4 * NR * 4);
        let mr = kernel.rows();
        let mut r0 = 0;
        while r0 < rows {
            let n = mr.min(rows - r0);
            // SAFETY: rows r0..r0+n are the task's, so the offsets stay inside
            // `a` and `e`'s extents; the kernel's instructions are present.
            unsafe {
                let (ap, sink) = (a.as_ptr().add(r0 * stride), e.rows_from(r0));
                let sink = Sink::Out(&sink);
                match kernel {
                    Kernel::Avx512Vnni => {
                        by_rows!(tile512, n, [1 2 3 4 5 6 7 8 9 10 11 12], (ap, b.as_ptr(), k4, sink))
                    }
                    Kernel::AvxVnni => by_rows!(tile_vnni256, n, [1 2 3], (ap, b.as_ptr(), k4, sink)),
                    Kernel::Avx2 => by_rows!(tile_avx2, n, [1 2], (ap, b.as_ptr(), k4, sink)),
                    Kernel::Portable => unreachable!("the portable kernel has no fused tile"),
                }
            }
            r0 += n;
        }
    }

    /// # Safety
    /// The CPU must have AVX-512F/BW/VNNI; `a` must hold one group of 12 rows
    /// (`k4·12·4` bytes, of which `rows` are used) and `b` at least `k4·NR·4` bytes.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(super) unsafe fn avx512vnni(a: &[u8], rows: usize, b: &[i8], k4: usize, acc: &mut [i32; MAX_ROWS * NR]) {
        debug_assert!(a.len() >= k4 * 12 * 4 && b.len() >= k4 * NR * 4);
        let sink = Sink::Acc(acc.as_mut_ptr());
        // SAFETY: forwarded from this function's contract.
        unsafe { by_rows!(tile512, rows, [1 2 3 4 5 6 7 8 9 10 11 12], (a.as_ptr(), b.as_ptr(), k4, sink)) }
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn tile512<const R: usize>(a: *const u8, b: *const i8, k4: usize, sink: Sink<'_>) {
        const G: usize = Kernel::Avx512Vnni.rows();
        let mut acc = [[_mm512_setzero_si512(); 2]; R];
        for s in 0..k4 {
            // SAFETY (all reads): `s < k4` and `r < R ≤ G` stay inside the
            // extents the caller guarantees.
            let b0 = unsafe { _mm512_loadu_si512(b.add(s * NR * 4).cast()) };
            let b1 = unsafe { _mm512_loadu_si512(b.add(s * NR * 4 + 64).cast()) };
            let step = unsafe { a.add(s * G * 4) };
            for (r, acc) in acc.iter_mut().enumerate() {
                let av = _mm512_set1_epi32(unsafe { step.add(r * 4).cast::<i32>().read_unaligned() });
                acc[0] = _mm512_dpbusd_epi32(acc[0], av, b0);
                acc[1] = _mm512_dpbusd_epi32(acc[1], av, b1);
            }
        }
        match sink {
            Sink::Acc(out) => {
                for (r, acc) in acc.iter().enumerate() {
                    // SAFETY: `out` has room for MAX_ROWS rows of NR.
                    unsafe {
                        _mm512_storeu_si512(out.add(r * NR).cast(), acc[0]);
                        _mm512_storeu_si512(out.add(r * NR + 16).cast(), acc[1]);
                    }
                }
            }
            // SAFETY: `e` covers these R rows (the caller's contract).
            Sink::Out(e) => unsafe { epilogue512(&acc, e) },
        }
    }

    /// The fused epilogue on a tile's accumulators, 16 channels a register.
    ///
    /// # Safety
    /// The CPU must have AVX-512F; `e` must cover `R` rows.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    #[inline]
    unsafe fn epilogue512<const R: usize>(acc: &[[__m512i; 2]; R], e: &Epi) {
        // SAFETY (all reads and writes): `e`'s pointers cover R rows of the
        // task and the panel's NR = 2·16 channels.
        unsafe {
            let ws = [_mm512_loadu_ps(e.ws), _mm512_loadu_ps(e.ws.add(16))];
            let bias = [_mm512_loadu_ps(e.bias), _mm512_loadu_ps(e.bias.add(16))];
            let cs = [_mm512_loadu_si512(e.cs.cast()), _mm512_loadu_si512(e.cs.add(16).cast())];
            for (r, acc) in acc.iter().enumerate() {
                let xs = _mm512_set1_ps(*e.xs.add(r));
                let xz = _mm512_set1_epi32(*e.xz.add(r));
                for j in 0..2 {
                    let dot = _mm512_sub_epi32(acc[j], _mm512_mullo_epi32(xz, cs[j]));
                    let mut y = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(xs, ws[j]), bias[j]);
                    if e.gelu {
                        y = gelu512(y);
                    }
                    let at = r * e.ldo + j * 16;
                    if !e.res.is_null() {
                        y = _mm512_add_ps(y, _mm512_loadu_ps(e.res.add(at)));
                    }
                    _mm512_storeu_ps(e.out.add(at), y);
                }
            }
        }
    }

    /// [`super::gelu_erf`] on 16 lanes; the division is a 14-bit reciprocal
    /// and one Newton step (within an ulp or two of `vdivps`), a quarter of the
    /// cost of `vdivps`.
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub(super) fn gelu512(x: __m512) -> __m512 {
        let z = _mm512_mul_ps(x, _mm512_set1_ps(std::f32::consts::FRAC_1_SQRT_2));
        let z = _mm512_min_ps(_mm512_max_ps(z, _mm512_set1_ps(-4.0)), _mm512_set1_ps(4.0));
        let z2 = _mm512_mul_ps(z, z);
        let mut p = _mm512_set1_ps(ERF_P[0]);
        for c in &ERF_P[1..] {
            p = _mm512_fmadd_ps(p, z2, _mm512_set1_ps(*c));
        }
        let mut q = _mm512_set1_ps(ERF_Q[0]);
        for c in &ERF_Q[1..] {
            q = _mm512_fmadd_ps(q, z2, _mm512_set1_ps(*c));
        }
        let r = _mm512_rcp14_ps(q);
        let r = _mm512_mul_ps(r, _mm512_fnmadd_ps(q, r, _mm512_set1_ps(2.0)));
        let erf = _mm512_mul_ps(_mm512_mul_ps(z, p), r);
        let erf = _mm512_min_ps(_mm512_max_ps(erf, _mm512_set1_ps(-1.0)), _mm512_set1_ps(1.0));
        let half = _mm512_mul_ps(x, _mm512_set1_ps(0.5));
        _mm512_fmadd_ps(half, erf, half)
    }

    /// # Safety
    /// The CPU must have AVX2, FMA and AVX-VNNI; otherwise as [`avx512vnni`] (`rows ≤ 3`).
    #[target_feature(enable = "avx2,fma,avxvnni")]
    pub(super) unsafe fn avxvnni(a: &[u8], rows: usize, b: &[i8], k4: usize, acc: &mut [i32; MAX_ROWS * NR]) {
        debug_assert!(rows <= 3 && a.len() >= k4 * 3 * 4 && b.len() >= k4 * NR * 4);
        let sink = Sink::Acc(acc.as_mut_ptr());
        // SAFETY: forwarded from this function's contract.
        unsafe { by_rows!(tile_vnni256, rows, [1 2 3], (a.as_ptr(), b.as_ptr(), k4, sink)) }
    }

    // Indices, not iterators: the (row, register) grid of accumulators reads as one.
    #[allow(clippy::needless_range_loop)]
    #[target_feature(enable = "avx2,fma,avxvnni")]
    unsafe fn tile_vnni256<const R: usize>(a: *const u8, b: *const i8, k4: usize, sink: Sink<'_>) {
        const G: usize = Kernel::AvxVnni.rows();
        let mut acc = [[_mm256_setzero_si256(); 4]; R];
        for s in 0..k4 {
            let mut av = [_mm256_setzero_si256(); R];
            for (r, av) in av.iter_mut().enumerate() {
                // SAFETY: inside the caller's extents (see `avx512vnni`).
                *av = _mm256_set1_epi32(unsafe { a.add((s * G + r) * 4).cast::<i32>().read_unaligned() });
            }
            for j in 0..4 {
                // SAFETY: inside the caller's extents.
                let bj = unsafe { _mm256_loadu_si256(b.add(s * NR * 4 + j * 32).cast()) };
                for r in 0..R {
                    acc[r][j] = _mm256_dpbusd_avx_epi32(acc[r][j], av[r], bj);
                }
            }
        }
        // SAFETY: the sink covers these R rows (the caller's contract).
        unsafe { sink256(&acc, sink) }
    }

    /// # Safety
    /// The CPU must have AVX2 and FMA; otherwise as [`avx512vnni`] (`rows ≤ 2`),
    /// and every weight within ±63 so that `vpmaddubsw` cannot saturate.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn avx2(a: &[u8], rows: usize, b: &[i8], k4: usize, acc: &mut [i32; MAX_ROWS * NR]) {
        debug_assert!(rows <= 2 && a.len() >= k4 * 2 * 4 && b.len() >= k4 * NR * 4);
        let sink = Sink::Acc(acc.as_mut_ptr());
        // SAFETY: forwarded from this function's contract.
        unsafe { by_rows!(tile_avx2, rows, [1 2], (a.as_ptr(), b.as_ptr(), k4, sink)) }
    }

    // Indices, not iterators: the (row, register) grid of accumulators reads as one.
    #[allow(clippy::needless_range_loop)]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn tile_avx2<const R: usize>(a: *const u8, b: *const i8, k4: usize, sink: Sink<'_>) {
        const G: usize = Kernel::Avx2.rows();
        let ones = _mm256_set1_epi16(1);
        let mut acc = [[_mm256_setzero_si256(); 4]; R];
        for s in 0..k4 {
            let mut av = [_mm256_setzero_si256(); R];
            for (r, av) in av.iter_mut().enumerate() {
                // SAFETY: inside the caller's extents (see `avx512vnni`).
                *av = _mm256_set1_epi32(unsafe { a.add((s * G + r) * 4).cast::<i32>().read_unaligned() });
            }
            for j in 0..4 {
                // SAFETY: inside the caller's extents.
                let bj = unsafe { _mm256_loadu_si256(b.add(s * NR * 4 + j * 32).cast()) };
                for r in 0..R {
                    // u8·i8 pairs summed to i16 (exact for 7-bit weights), then
                    // pairs of i16 summed to i32: the same sums as vpdpbusd.
                    let pairs = _mm256_maddubs_epi16(av[r], bj);
                    acc[r][j] = _mm256_add_epi32(acc[r][j], _mm256_madd_epi16(pairs, ones));
                }
            }
        }
        // SAFETY: the sink covers these R rows (the caller's contract).
        unsafe { sink256(&acc, sink) }
    }

    /// The 256-bit tiles' results into their sink: stored as i32, or through
    /// the fused epilogue 8 channels a register.
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA; the sink must cover `R` rows.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn sink256<const R: usize>(acc: &[[__m256i; 4]; R], sink: Sink<'_>) {
        // SAFETY (all reads and writes): an `Acc` sink has room for MAX_ROWS
        // rows of NR = 4·8 lanes; an `Out` sink covers R rows and the panel's NR
        // channels.
        unsafe {
            let e = match sink {
                Sink::Acc(out) => {
                    for (r, acc) in acc.iter().enumerate() {
                        for (j, v) in acc.iter().enumerate() {
                            _mm256_storeu_si256(out.add(r * NR + j * 8).cast(), *v);
                        }
                    }
                    return;
                }
                Sink::Out(e) => e,
            };
            for j in 0..4 {
                let ws = _mm256_loadu_ps(e.ws.add(j * 8));
                let bias = _mm256_loadu_ps(e.bias.add(j * 8));
                let cs = _mm256_loadu_si256(e.cs.add(j * 8).cast());
                for (r, acc) in acc.iter().enumerate() {
                    let xz = _mm256_set1_epi32(*e.xz.add(r));
                    let dot = _mm256_sub_epi32(acc[j], _mm256_mullo_epi32(xz, cs));
                    let scale = _mm256_mul_ps(_mm256_set1_ps(*e.xs.add(r)), ws);
                    let mut y = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), scale, bias);
                    if e.gelu {
                        y = gelu256(y);
                    }
                    let at = r * e.ldo + j * 8;
                    if !e.res.is_null() {
                        y = _mm256_add_ps(y, _mm256_loadu_ps(e.res.add(at)));
                    }
                    _mm256_storeu_ps(e.out.add(at), y);
                }
            }
        }
    }

    /// [`super::gelu_erf`] on 8 lanes.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    pub(super) fn gelu256(x: __m256) -> __m256 {
        let z = _mm256_mul_ps(x, _mm256_set1_ps(std::f32::consts::FRAC_1_SQRT_2));
        let z = _mm256_min_ps(_mm256_max_ps(z, _mm256_set1_ps(-4.0)), _mm256_set1_ps(4.0));
        let z2 = _mm256_mul_ps(z, z);
        let mut p = _mm256_set1_ps(ERF_P[0]);
        for c in &ERF_P[1..] {
            p = _mm256_fmadd_ps(p, z2, _mm256_set1_ps(*c));
        }
        let mut q = _mm256_set1_ps(ERF_Q[0]);
        for c in &ERF_Q[1..] {
            q = _mm256_fmadd_ps(q, z2, _mm256_set1_ps(*c));
        }
        let erf = _mm256_div_ps(_mm256_mul_ps(z, p), q);
        let erf = _mm256_min_ps(_mm256_max_ps(erf, _mm256_set1_ps(-1.0)), _mm256_set1_ps(1.0));
        let half = _mm256_mul_ps(x, _mm256_set1_ps(0.5));
        _mm256_fmadd_ps(half, erf, half)
    }

    /// [`gelu512`] or [`gelu256`] over `x`, a whole number of registers, for
    /// the tests.
    ///
    /// # Safety
    /// The CPU must have AVX-512F (`wide`) or AVX2 and FMA.
    #[cfg(test)]
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) unsafe fn gelu_lanes512(x: &mut [f32]) {
        for c in x.chunks_exact_mut(16) {
            // SAFETY: `c` holds 16 floats.
            unsafe { _mm512_storeu_ps(c.as_mut_ptr(), gelu512(_mm512_loadu_ps(c.as_ptr()))) };
        }
    }

    /// # Safety
    /// The CPU must have AVX2 and FMA.
    #[cfg(test)]
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn gelu_lanes256(x: &mut [f32]) {
        for c in x.chunks_exact_mut(8) {
            // SAFETY: `c` holds 8 floats.
            unsafe { _mm256_storeu_ps(c.as_mut_ptr(), gelu256(_mm256_loadu_ps(c.as_ptr()))) };
        }
    }
}

/// GELU, erf form: `x/2 · (1 + erf(x/√2))`.
#[inline(always)]
fn gelu_erf(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// erf's rational approximation: numerator and denominator coefficients in
/// x², highest power first (Eigen's `generic_fast_erf_float`).
const ERF_P: [f32; 7] =
    [-2.726_142_3e-10, 2.770_681_4e-8, -2.101_024e-6, -5.692_506_4e-5, -7.349_906_3e-4, -2.954_6e-3, -1.609_603_3e-2];
const ERF_Q: [f32; 5] = [-1.456_607_2e-5, -2.133_740_6e-4, -1.682_827e-3, -7.373_329e-3, -1.426_474e-2];

/// erf as a rational function of x on [-4, 4] (saturated outside), branch-free
/// so that loops over it vectorise (plain multiply-adds, not `mul_add`,
/// which is a libm call on a build without FMA); error under 1e-6.
#[inline(always)]
fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let p = ERF_P[1..].iter().fold(ERF_P[0], |p, &c| p * x2 + c);
    let q = ERF_Q[1..].iter().fold(ERF_Q[0], |q, &c| q * x2 + c);
    // The rational function overshoots ±1 by an ulp or two near the clamp.
    (x * p / q).clamp(-1.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (xorshift), so failures reproduce.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn uniform(&mut self) -> f32 {
            (self.next() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    fn kernels() -> Vec<Kernel> {
        Kernel::ALL.into_iter().filter(|k| k.supported()).collect()
    }

    /// The quantized layer computed the slow, obvious way from the same
    /// integers: the reference every kernel must reproduce.
    fn naive(layer: &PackedLinear, x: &QuantizedRows, epilogue: Epilogue<'_>) -> Vec<f32> {
        let (m, n, k) = (x.rows, layer.n, layer.k);
        let mut out = vec![0f32; m * n];
        for r in 0..m {
            for c in 0..n {
                let mut dot = 0i64;
                for i in 0..k {
                    let w = layer.data[(c / NR) * NR * layer.kp + (i / 4) * NR * 4 + (c % NR) * 4 + i % 4];
                    dot += (x.byte(r, i) as i64 - x.zero[r] as i64) * w as i64;
                }
                let mut v = x.scale[r] * layer.scale[c] * dot as f32 + layer.bias[c];
                match epilogue {
                    Epilogue::Bias => {}
                    Epilogue::Gelu => {
                        v = 0.5 * v * (1.0 + candle_core::cpu::erf::erf_f64(v as f64 / 2f64.sqrt()) as f32)
                    }
                    Epilogue::Residual(res) => v += res[r * n + c],
                }
                out[r * n + c] = v;
            }
        }
        out
    }

    fn close(got: &[f32], want: &[f32], what: &str) {
        let mag = want.iter().fold(1e-3f32, |m, v| m.max(v.abs()));
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!((g - w).abs() <= 1e-5 * mag + 1e-6, "{what}: element {i}: {g} vs {w}");
        }
    }

    fn check(kernel: Kernel, m: usize, n: usize, k: usize, x: &[f32], w: &[f32], rng: &mut Rng) {
        let bias: Vec<f32> = (0..n).map(|_| rng.uniform()).collect();
        let residual: Vec<f32> = (0..m * n).map(|_| rng.uniform() * 3.0).collect();
        let layer = PackedLinear::new(kernel, w, &bias, n, k);
        let mut q = QuantizedRows::default();
        q.quantize(x, k, kernel);
        for (name, e) in
            [("bias", Epilogue::Bias), ("gelu", Epilogue::Gelu), ("residual", Epilogue::Residual(&residual))]
        {
            let mut out = vec![f32::NAN; m * n];
            layer.forward(&q, e, &mut out);
            close(&out, &naive(&layer, &q, e), &format!("{} {m}x{n}x{k} {name}", kernel.name()));
        }
        // And the quantized product stays near the f32 product it stands for.
        let mut out = vec![0f32; m * n];
        layer.forward(&q, Epilogue::Bias, &mut out);
        for r in 0..m {
            let xmax = x[r * k..(r + 1) * k].iter().fold(0f32, |a, v| a.max(v.abs()));
            for c in 0..n {
                let wmax = w[c * k..(c + 1) * k].iter().fold(0f32, |a, v| a.max(v.abs()));
                let exact: f32 = (0..k).map(|i| x[r * k + i] * w[c * k + i]).sum::<f32>() + bias[c];
                // Rounding errors of ±half a step on both sides, summed over k.
                let bound = k as f32 * xmax * wmax * (1.0 / 255.0 + 0.5 / kernel.weight_max()) + 1e-5;
                let got = out[r * n + c];
                assert!((got - exact).abs() <= bound, "{} {m}x{n}x{k}: {got} vs {exact}", kernel.name());
            }
        }
    }

    #[test]
    fn every_kernel_matches_the_reference_on_random_and_edge_shapes() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut shapes = vec![
            (1, 1, 1),
            (1, 32, 384),
            (1, 33, 5),
            (7, 31, 3),
            (9, 64, 37),
            (17, 40, 1536),
            (110, 96, 384),
            (110, 40, 37),
        ];
        for _ in 0..12 {
            shapes.push((1 + rng.below(40), 1 + rng.below(100), 1 + rng.below(200)));
        }
        for kernel in kernels() {
            for &(m, n, k) in &shapes {
                let x: Vec<f32> = (0..m * k).map(|_| rng.uniform() * 4.0).collect();
                let w: Vec<f32> = (0..n * k).map(|_| rng.uniform() * 0.1).collect();
                check(kernel, m, n, k, &x, &w, &mut rng);
            }
        }
    }

    #[test]
    fn extreme_values_neither_saturate_nor_overflow() {
        let mut rng = Rng(7);
        let (m, n, k) = (5, 40, 1541);
        for kernel in kernels() {
            // Every activation at 0 or 255 after quantization, weights at ±max:
            // the worst case for the i16 pair sums of the AVX2 kernel.
            let x: Vec<f32> = (0..m * k).map(|i| if (i / 3) % 2 == 0 { 1e4 } else { -1e4 }).collect();
            let w: Vec<f32> = (0..n * k).map(|i| if i % 5 == 0 { -2.0 } else { 2.0 }).collect();
            check(kernel, m, n, k, &x, &w, &mut rng);
            // All-positive and all-zero rows, a zero weight row, tiny values.
            let mut x: Vec<f32> = (0..m * k).map(|_| rng.uniform().abs() * 1e-20).collect();
            x[k..2 * k].fill(0.0);
            x[2 * k..3 * k].fill(3.5);
            let mut w: Vec<f32> = (0..n * k).map(|_| rng.uniform()).collect();
            w[..k].fill(0.0);
            check(kernel, m, n, k, &x, &w, &mut rng);
        }
    }

    #[test]
    fn attention_products_agree_on_every_path() {
        let mut rng = Rng(5);
        // 45 tokens pad to 64 keys, 70 to 96; every row count of a block.
        for (len, rows) in (1..=QB).map(|rows| (if rows % 2 == 0 { 45usize } else { 70 }, rows)) {
            let (hd, stride) = (64, 3 * 64 + 5);
            let lp = len.next_multiple_of(AB);
            let q: Vec<f32> = (0..QB * hd).map(|_| rng.uniform()).collect();
            let mut kt: Vec<f32> = (0..hd * lp).map(|_| rng.uniform()).collect();
            kt.chunks_exact_mut(lp).for_each(|r| r[len..].fill(0.0));
            let p: Vec<f32> = (0..QB * lp).map(|_| rng.uniform().abs()).collect();
            let v: Vec<f32> = (0..(len - 1) * stride + hd).map(|_| rng.uniform()).collect();
            for kernel in kernels() {
                let mut scores = vec![f32::NAN; QB * lp];
                attention_scores(kernel, &q, &kt, hd, lp, rows, &mut scores);
                let mut out = vec![f32::NAN; QB * hd];
                attention_values(kernel, &p, lp, len, &v, stride, hd, rows, &mut out);
                for r in 0..QB {
                    for j in 0..lp {
                        let want: f32 = (0..hd).map(|d| q[r * hd + d] * kt[d * lp + j]).sum();
                        let got = scores[r * lp + j];
                        // Rows past `rows` are not touched.
                        assert!(
                            if r < rows { (got - want).abs() < 1e-4 } else { got.is_nan() },
                            "{} score {r},{j}",
                            kernel.name()
                        );
                    }
                    for c in 0..hd {
                        let want: f32 = (0..len).map(|j| p[r * lp + j] * v[j * stride + c]).sum();
                        let got = out[r * hd + c];
                        assert!(
                            if r < rows { (got - want).abs() < 1e-4 } else { got.is_nan() },
                            "{} value {r},{c}",
                            kernel.name()
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn simd_and_portable_quantization_agree() {
        let mut rng = Rng(11);
        for k in [1, 7, 8, 9, 384, 1541] {
            let x: Vec<f32> = (0..3 * k).map(|i| rng.uniform() * (1 + i % 5) as f32).collect();
            let (mut a, mut b) = (QuantizedRows::default(), QuantizedRows::default());
            a.quantize(&x, k, kernels()[0]);
            b.quantize(&x, k, Kernel::Portable);
            assert_eq!((&a.scale, &a.zero), (&b.scale, &b.zero), "k = {k}");
            // An fma against a multiply and an add may round a tie differently.
            for (r, row) in x.chunks(k).enumerate() {
                for (i, &v) in row.iter().enumerate() {
                    assert!(a.byte(r, i).abs_diff(b.byte(r, i)) <= 1, "k = {k}");
                    let back = b.scale[r] * (b.byte(r, i) as i32 - b.zero[r]) as f32;
                    assert!((back - v).abs() <= b.scale[r] * 0.5001, "k = {k}: {v} came back as {back}");
                }
            }
        }
    }

    #[test]
    fn the_environment_can_force_the_fallback_and_unknown_kernels_are_refused() {
        assert_eq!(Kernel::choose(Some("portable")), Ok(Kernel::Portable));
        assert_eq!(Kernel::choose(None), Ok(kernels()[0]));
        assert_eq!(Kernel::choose(Some("")), Ok(kernels()[0]));
        assert!(Kernel::choose(Some("avx1024")).is_err());
        for k in Kernel::ALL {
            assert_eq!(Kernel::choose(Some(k.name())).is_ok(), k.supported(), "{}", k.name());
        }
        // What this process was started with (the CI runs the tests once with
        // TRIAGE_INT8_KERNEL=portable) must be honoured.
        if std::env::var(KERNEL_ENV).is_ok_and(|v| v == "portable") {
            assert_eq!(Kernel::select(), Ok(Kernel::Portable));
        }
    }

    #[test]
    fn simd_gelu_matches_libm_lane_by_lane() {
        let x: Vec<f32> = (-10_000..10_000).map(|i| i as f32 / 1000.0).collect();
        let want = |x: f32| 0.5 * x as f64 * (1.0 + candle_core::cpu::erf::erf_f64(x as f64 / 2f64.sqrt()));
        let mut runs: Vec<(&str, Vec<f32>)> = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            if Kernel::Avx512Vnni.supported() {
                let mut y = x.clone();
                // SAFETY: AVX-512F, AVX2 and FMA are present (checked above);
                // 20,000 is a whole number of 16-lane registers.
                unsafe { x86::gelu_lanes512(&mut y) };
                runs.push(("gelu512", y));
            }
            if Kernel::Avx2.supported() {
                let mut y = x.clone();
                // SAFETY: AVX2 and FMA are present; 20,000 is a whole number of 8-lane registers.
                unsafe { x86::gelu_lanes256(&mut y) };
                runs.push(("gelu256", y));
            }
        }
        for (name, y) in runs {
            for (&x, &g) in x.iter().zip(&y) {
                assert!((g as f64 - want(x)).abs() < 1e-6 * (1.0 + x.abs() as f64), "{name}({x}) = {g} vs {}", want(x));
            }
        }
    }

    #[test]
    fn fast_erf_and_gelu_match_libm() {
        for i in -6000..=6000 {
            let x = i as f32 / 1000.0;
            let want = candle_core::cpu::erf::erf_f64(x as f64);
            assert!((erf(x) as f64 - want).abs() < 1e-6, "erf({x}) = {} vs {want}", erf(x));
            let g = 0.5 * x as f64 * (1.0 + candle_core::cpu::erf::erf_f64(x as f64 / 2f64.sqrt()));
            assert!((gelu_erf(x) as f64 - g).abs() < 1e-6 * (1.0 + x.abs() as f64), "gelu_erf({x})");
        }
    }

    #[test]
    fn fast_exp_matches_std_on_the_softmax_range() {
        for i in 0..=90_000 {
            let x = -(i as f32) / 1000.0;
            let (got, want) = (exp(x), x.exp());
            assert!((got - want).abs() <= 4e-7 * want + 1e-37, "exp({x}) = {got} vs {want}");
        }
    }

    #[test]
    fn softmax_sums_to_one_and_keeps_order() {
        for kernel in Kernel::ALL.into_iter().filter(|k| k.supported()) {
            // Lengths around the 8- and 16-lane blocks, tails included.
            for len in [1usize, 5, 8, 15, 16, 17, 45, 512] {
                let x: Vec<f32> = (0..len).map(|i| ((i * 37) % 23) as f32 * 0.7 - 8.0).collect();
                let mut got = x.clone();
                let inv = softmax_numerator(kernel, &mut got);
                got.iter_mut().for_each(|v| *v *= inv);
                let max = x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
                let total: f64 = x.iter().map(|&v| ((v - max) as f64).exp()).sum();
                for (i, (&g, &v)) in got.iter().zip(&x).enumerate() {
                    let want = ((v - max) as f64).exp() / total;
                    assert!((g as f64 - want).abs() < 1e-6, "{} len {len} [{i}]: {g} vs {want}", kernel.name());
                }
                assert!((got.iter().sum::<f32>() - 1.0).abs() < 1e-5, "{} len {len}", kernel.name());
            }
        }
        // The numerator alone over exp's whole range, on every path: with a
        // maximum of 0 it is e^x itself (e^−87 below −87).
        for kernel in Kernel::ALL.into_iter().filter(|k| k.supported()) {
            let x: Vec<f32> = (0..=90_000).map(|i| -(i as f32) / 1000.0).collect();
            let mut got = x.clone();
            softmax_numerator(kernel, &mut got);
            for (&x, &g) in x.iter().zip(&got) {
                let want = x.exp();
                assert!((g - want).abs() <= 4e-7 * want + 1e-37, "{} e^{x} = {g} vs {want}", kernel.name());
            }
        }
        let mut x = vec![3.0, -1.0, 0.5, 3.0, -200.0];
        let inv = exp_minus_max(&mut x);
        x.iter_mut().for_each(|v| *v *= inv);
        assert!((x.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(x[0] == x[3] && x[0] > x[2] && x[2] > x[1] && x[1] > x[4]);
        let e: Vec<f32> = [3f32, -1.0, 0.5].iter().map(|v| (v - 3.0).exp()).collect();
        let total = 2.0 * e[0] + e[1] + e[2];
        assert!((x[1] - e[1] / total).abs() < 1e-6);
    }
}
