//! Data for the attention kernels' tests: a seeded uniform stream, and the
//! same values in every cache storage.

use half::{bf16, f16};

/// Knuth's MMIX LCG: a reproducible stream of 64-bit states.
pub fn lcg(seed: u64) -> impl Iterator<Item = u64> {
    let step = |s: &u64| {
        Some(
            s.wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407),
        )
    };
    std::iter::successors(step(&seed), step)
}

/// `n` values uniform in `[-scale, scale)`, reproducible from `seed`.
pub fn uniform(seed: u64, n: usize, scale: f32) -> Vec<f32> {
    lcg(seed)
        .take(n)
        .map(|s| ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale)
        .collect()
}

/// `f32` holds values an f16 cache stores exactly (so f32 and f16 runs
/// must agree); `bf16_f32` the bf16-rounded ones as f32.
pub struct Stored {
    pub f32: Vec<f32>,
    pub f16: Vec<f16>,
    pub bf16: Vec<bf16>,
    pub bf16_f32: Vec<f32>,
}

impl Stored {
    /// Keys and values: `n` uniform values each, from seeds `seed`, `seed + 1`.
    pub fn kv(seed: u64, n: usize) -> (Stored, Stored) {
        (
            Stored::of(&uniform(seed, n, 1.0)),
            Stored::of(&uniform(seed + 1, n, 1.0)),
        )
    }

    pub fn of(x: &[f32]) -> Stored {
        let f16: Vec<f16> = x.iter().map(|&v| f16::from_f32(v)).collect();
        let bf16: Vec<bf16> = x.iter().map(|&v| bf16::from_f32(v)).collect();
        Stored {
            f32: f16.iter().map(|v| v.to_f32()).collect(),
            bf16_f32: bf16.iter().map(|v| v.to_f32()).collect(),
            f16,
            bf16,
        }
    }
}

/// The textbook softmax, for references.
pub fn softmax(x: &[f32]) -> Vec<f32> {
    let m = x.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = x.iter().map(|v| (v - m).exp()).collect();
    let z: f32 = e.iter().sum();
    e.iter().map(|v| v / z).collect()
}

pub fn assert_same(a: &[f32], b: &[f32], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}");
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() < 1e-6, "{what}: {x} vs {y}");
    }
}

/// A K-quant row kernel (`q4k`, `q6k`) against its scalar reference (1 and
/// 2 activation rows) and against candle's dequantized weights.
pub fn check_k_kernel(
    dt: candle_core::quantized::GgmlDType,
    block_bytes: usize,
    scalar: fn(&[u8], &[super::qblock::ActK]) -> f32,
    dot1: fn(&[u8], [&[super::qblock::ActK]; 1]) -> [f32; 1],
    dot2: fn(&[u8], [&[super::qblock::ActK]; 2]) -> [f32; 2],
) {
    use super::qblock::{quantize_row_k, ActK, QK_K};
    use candle_core::{quantized::QTensor, Device, Tensor};
    let (n, k) = (5, QK_K * 3);
    let dev = Device::Cpu;
    let w = Tensor::from_vec(uniform(21, n * k, 1.0), (n, k), &dev).unwrap();
    let q = QTensor::quantize(&w, dt).unwrap();
    let bytes = q.data().unwrap().to_vec();
    let wd = q.dequantize(&dev).unwrap().to_vec2::<f32>().unwrap();
    let x = uniform(22, 2 * k, 1.0);
    let mut xq = vec![ActK::default(); 2 * k / QK_K];
    quantize_row_k(&x[..k], &mut xq[..k / QK_K]);
    quantize_row_k(&x[k..], &mut xq[k / QK_K..]);
    let (x0, x1) = xq.split_at(k / QK_K);
    let rb = k / QK_K * block_bytes;
    for r in 0..n {
        let row = &bytes[r * rb..(r + 1) * rb];
        let slow = scalar(row, x0);
        let close = |a: f32, b: f32| (a - b).abs() <= 1e-4 * (1.0 + b.abs());
        assert!(close(dot1(row, [x0])[0], slow), "{dt:?} row {r}");
        let two = dot2(row, [x1, x0]);
        assert!(
            close(two[1], slow) && close(two[0], scalar(row, x1)),
            "{dt:?} row {r}"
        );
        // Exact against the dequantized weights times the dequantized
        // activations: only f32 rounding may differ.
        let xd: Vec<f32> = x0
            .iter()
            .flat_map(|b| b.qs.iter().map(move |&q| q as f32 * b.d))
            .collect();
        let same: f32 = wd[r].iter().zip(&xd).map(|(a, b)| a * b).sum();
        assert!(
            close(slow, same),
            "{dt:?} row {r}: {slow} vs dequantized {same}"
        );
        let exact: f32 = wd[r].iter().zip(&x[..k]).map(|(a, b)| a * b).sum();
        // activation quantization error only: ~|w|·|x|/127 over k terms
        assert!(
            (slow - exact).abs() < 0.05 * (k as f32).sqrt(),
            "{dt:?}: {slow} {exact}"
        );
    }
}
