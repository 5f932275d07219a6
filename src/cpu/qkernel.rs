//! Dot products of GGUF weight rows (Q4_1, Q5_0, Q8_0 blocks, as stored in
//! the file) with activations quantized to 8 bits per 32-element block.
//!
//! candle 0.11.1's Q4_1 and Q5_0 dot products are scalar loops and its Q8_0
//! one converts f16 scales through a non-inlined call per block; these
//! kernels do one AVX2 pass per block and fall back to a scalar reference
//! elsewhere. A Q5_0 element is `d*(q - 16)`: the block contributes
//! `d*dx*Σ q*qx - 16*d*s`, with q in 0..32 as the unsigned operand.
//! Math (llama.cpp's): a Q4_1 element is `d*q + m`, an activation `dx*qx`, so
//! a block contributes `d*dx*Σ q*qx + m*(dx*Σ qx)`; the second factor is the
//! activation block's precomputed `s`.

use half::f16;

use super::qblock::{BlockQ8, WFormat, QK};

/// True when the AVX2 kernels can run on this CPU.
pub fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::sync::OnceLock;
        static HAS: OnceLock<bool> = OnceLock::new();
        *HAS.get_or_init(|| {
            is_x86_feature_detected!("avx2")
                && is_x86_feature_detected!("fma")
                && is_x86_feature_detected!("f16c")
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[inline(always)]
fn quantize_block(x: &[f32], out: &mut BlockQ8) {
    let amax = x.iter().fold(0f32, |a, &v| a.max(v.abs()));
    let d = amax / 127.0;
    let id = if d > 0.0 { 1.0 / d } else { 0.0 };
    let mut sum = 0i32;
    for (q, &v) in out.qs.iter_mut().zip(x) {
        let r = (v * id).round_ties_even() as i32;
        *q = r as i8;
        sum += r;
    }
    out.d = d;
    out.s = d * sum as f32;
}

#[inline(always)]
fn quantize_row_scalar(x: &[f32], out: &mut [BlockQ8]) {
    for (xb, ob) in x.chunks_exact(QK).zip(out.iter_mut()) {
        quantize_block(xb, ob);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn quantize_row_avx2(x: &[f32], out: &mut [BlockQ8]) {
    // Same code; the target feature lets LLVM vectorize abs/round/convert.
    quantize_row_scalar(x, out)
}

/// Same results as `quantize_row_scalar` (`vcvtps2dq` rounds half to even
/// under the default MXCSR, as `round_ties_even` does), 16 lanes at a time:
/// LLVM does not vectorize the scalar form's max-reduction and rounding.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn quantize_row_avx512(x: &[f32], out: &mut [BlockQ8]) {
    use std::arch::x86_64::*;
    for (xb, ob) in x.chunks_exact(QK).zip(out.iter_mut()) {
        let a = _mm512_loadu_ps(xb.as_ptr());
        let b = _mm512_loadu_ps(xb.as_ptr().add(16));
        let amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(a), _mm512_abs_ps(b)));
        let d = amax / 127.0;
        let id = _mm512_set1_ps(if d > 0.0 { 1.0 / d } else { 0.0 });
        let qa = _mm512_cvtps_epi32(_mm512_mul_ps(a, id));
        let qb = _mm512_cvtps_epi32(_mm512_mul_ps(b, id));
        let p = ob.qs.as_mut_ptr() as *mut __m128i;
        _mm_storeu_si128(p, _mm512_cvtsepi32_epi8(qa));
        _mm_storeu_si128(p.add(1), _mm512_cvtsepi32_epi8(qb));
        ob.d = d;
        ob.s = d * _mm512_reduce_add_epi32(_mm512_add_epi32(qa, qb)) as f32;
    }
}

/// Quantizes one row (`x.len()` a multiple of 32) into `out`.
pub fn quantize_row(x: &[f32], out: &mut [BlockQ8]) {
    debug_assert_eq!(x.len(), out.len() * QK);
    #[cfg(target_arch = "x86_64")]
    if super::avx512_vnni::available() {
        // SAFETY: the CPU has AVX-512F/BW (part of `available`).
        return unsafe { quantize_row_avx512(x, out) };
    }
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: the CPU has the features (checked above).
        return unsafe { quantize_row_avx2(x, out) };
    }
    quantize_row_scalar(x, out)
}

fn f16_at(b: &[u8], at: usize) -> f32 {
    f16::from_bits(u16::from_le_bytes([b[at], b[at + 1]])).to_f32()
}

/// Scalar reference: one weight row (`xs.len()` blocks) · activation row.
pub fn dot_scalar(fmt: WFormat, w: &[u8], xs: &[BlockQ8]) -> f32 {
    let bb = fmt.block_bytes();
    let mut acc = 0f32;
    for (wb, xb) in w.chunks_exact(bb).zip(xs) {
        match fmt {
            WFormat::Q4_1 => {
                let (d, m) = (f16_at(wb, 0), f16_at(wb, 2));
                let mut isum = 0i32;
                for j in 0..QK / 2 {
                    let byte = wb[4 + j];
                    isum += (byte & 0x0F) as i32 * xb.qs[j] as i32;
                    isum += (byte >> 4) as i32 * xb.qs[j + QK / 2] as i32;
                }
                acc += d * xb.d * isum as f32 + m * xb.s;
            }
            WFormat::Q5_0 => {
                let d = f16_at(wb, 0);
                let qh = u32::from_le_bytes([wb[2], wb[3], wb[4], wb[5]]);
                let mut isum = 0i32;
                for j in 0..QK / 2 {
                    let byte = wb[6 + j];
                    let lo = (byte & 0x0F) as i32 | (((qh >> j) & 1) << 4) as i32;
                    let hi = (byte >> 4) as i32 | (((qh >> (j + 16)) & 1) << 4) as i32;
                    isum += (lo - 16) * xb.qs[j] as i32 + (hi - 16) * xb.qs[j + QK / 2] as i32;
                }
                acc += d * xb.d * isum as f32;
            }
            WFormat::Q8_0 => {
                let d = f16_at(wb, 0);
                let isum: i32 = wb[2..2 + QK]
                    .iter()
                    .zip(&xb.qs)
                    .map(|(&a, &b)| a as i8 as i32 * b as i32)
                    .sum();
                acc += d * xb.d * isum as f32;
            }
        }
    }
    acc
}

#[cfg(target_arch = "x86_64")]
fn has_vnni() -> bool {
    use std::sync::OnceLock;
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| {
        is_x86_feature_detected!("avx512vnni") && is_x86_feature_detected!("avx512vl")
    })
}

// `k` indexes N activation rows and their sums side by side.
#[allow(clippy::needless_range_loop)]
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use crate::cpu::qblock::{BlockQ8, WFormat, Q4_1_BYTES, Q5_0_BYTES, Q8_0_BYTES};
    use std::arch::x86_64::*;

    #[inline(always)]
    unsafe fn hsum(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_movehdup_ps(s));
        _mm_cvtss_f32(s)
    }

    /// Σ over 32 products u8 × i8 (u8 ≤ 128) as 8 f32 lanes.
    #[inline(always)]
    unsafe fn dot_u8_i8<const VNNI: bool>(a: __m256i, b: __m256i) -> __m256 {
        let i = if VNNI {
            _mm256_dpbusd_epi32(_mm256_setzero_si256(), a, b)
        } else {
            _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), _mm256_set1_epi16(1))
        };
        _mm256_cvtepi32_ps(i)
    }

    #[inline(always)]
    unsafe fn load_x(xb: &BlockQ8) -> __m256i {
        _mm256_loadu_si256(xb.qs.as_ptr() as *const __m256i)
    }

    /// Running sums of one row · N activation rows: `acc` lanes add up
    /// `d*dx*Σ q*qx`, `ms` the per-block offsets (`m*s`).
    #[derive(Clone, Copy)]
    struct Sums<const N: usize> {
        acc: [__m256; N],
        ms: [f32; N],
    }

    /// Decodes weight block `b` and adds its products with the N rows'
    /// block `b` to `sums`.
    #[inline(always)]
    unsafe fn block<const N: usize, const VNNI: bool>(
        fmt: WFormat,
        p: *const u8,
        xs: &[&[BlockQ8]; N],
        b: usize,
        sums: &mut Sums<N>,
    ) {
        let f16_at = |at: *const u8| {
            let h = (at as *const u16).read_unaligned();
            _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h as i32)))
        };
        let m4 = _mm_set1_epi8(0x0F);
        let nibbles = |at: *const u8| {
            let q = _mm_loadu_si128(at as *const __m128i);
            let lo = _mm_and_si128(q, m4);
            let hi = _mm_and_si128(_mm_srli_epi16(q, 4), m4);
            _mm256_set_m128i(hi, lo)
        };
        // (unsigned weights, d, the offset per unit of `s`)
        let (wv, d, m) = match fmt {
            WFormat::Q4_1 => {
                let pb = p.add(b * Q4_1_BYTES);
                (nibbles(pb.add(4)), f16_at(pb), f16_at(pb.add(2)))
            }
            WFormat::Q5_0 => {
                let pb = p.add(b * Q5_0_BYTES);
                // Byte i of a lane pair picks qh's byte i / 8, tests bit i % 8.
                let spread = _mm256_set_epi64x(
                    0x0303_0303_0303_0303,
                    0x0202_0202_0202_0202,
                    0x0101_0101_0101_0101,
                    0,
                );
                let bit = _mm256_set1_epi64x(0x8040_2010_0804_0201u64 as i64);
                let qh = (pb.add(2) as *const i32).read_unaligned();
                let hb = _mm256_shuffle_epi8(_mm256_set1_epi32(qh), spread);
                let set = _mm256_cmpeq_epi8(_mm256_and_si256(hb, bit), bit);
                let fifth = _mm256_and_si256(set, _mm256_set1_epi8(0x10));
                let d = f16_at(pb);
                (_mm256_or_si256(nibbles(pb.add(6)), fifth), d, -16.0 * d)
            }
            WFormat::Q8_0 => {
                let pb = p.add(b * Q8_0_BYTES);
                let wv = _mm256_loadu_si256(pb.add(2) as *const __m256i);
                // one unsigned operand: |w|, and x carrying w's sign
                let aw = _mm256_sign_epi8(wv, wv);
                let d = f16_at(pb);
                for k in 0..N {
                    let xb = xs[k].get_unchecked(b);
                    let f = dot_u8_i8::<VNNI>(aw, _mm256_sign_epi8(load_x(xb), wv));
                    sums.acc[k] = _mm256_fmadd_ps(_mm256_set1_ps(d * xb.d), f, sums.acc[k]);
                }
                return;
            }
        };
        for k in 0..N {
            let xb = xs[k].get_unchecked(b);
            let f = dot_u8_i8::<VNNI>(wv, load_x(xb));
            sums.acc[k] = _mm256_fmadd_ps(_mm256_set1_ps(d * xb.d), f, sums.acc[k]);
            sums.ms[k] += m * xb.s;
        }
    }

    /// One weight row against N activation rows; N rows share each weight
    /// block's decoding. Even and odd blocks add into separate sums: with
    /// one, each block waited for the previous block's FMA (4 cycles), which
    /// bounded decode (N = 1) at a block per 4 cycles.
    #[inline(always)]
    unsafe fn dot_n<const N: usize, const VNNI: bool>(
        fmt: WFormat,
        w: &[u8],
        xs: [&[BlockQ8]; N],
    ) -> [f32; N] {
        let p = w.as_ptr();
        let nb = xs[0].len();
        let zero = Sums {
            acc: [_mm256_setzero_ps(); N],
            ms: [0f32; N],
        };
        let (mut even, mut odd) = (zero, zero);
        let mut b = 0;
        while b + 2 <= nb {
            block::<N, VNNI>(fmt, p, &xs, b, &mut even);
            block::<N, VNNI>(fmt, p, &xs, b + 1, &mut odd);
            b += 2;
        }
        if b < nb {
            block::<N, VNNI>(fmt, p, &xs, b, &mut even);
        }
        let mut out = [0f32; N];
        for k in 0..N {
            out[k] = hsum(_mm256_add_ps(even.acc[k], odd.acc[k])) + even.ms[k] + odd.ms[k];
        }
        out
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn dot_avx2<const N: usize>(
        fmt: WFormat,
        w: &[u8],
        xs: [&[BlockQ8]; N],
    ) -> [f32; N] {
        dot_n::<N, false>(fmt, w, xs)
    }

    #[target_feature(enable = "avx2,fma,f16c,avx512vnni,avx512vl")]
    pub unsafe fn dot_vnni<const N: usize>(
        fmt: WFormat,
        w: &[u8],
        xs: [&[BlockQ8]; N],
    ) -> [f32; N] {
        dot_n::<N, true>(fmt, w, xs)
    }
}

/// One weight row · N activation rows (each `nb` blocks), fastest kernel.
#[inline]
pub fn dot_rows<const N: usize>(fmt: WFormat, w: &[u8], xs: [&[BlockQ8]; N]) -> [f32; N] {
    let nb = xs[0].len();
    assert!(w.len() >= nb * fmt.block_bytes() && xs.iter().all(|x| x.len() == nb));
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: features checked; lengths asserted above.
        return unsafe {
            if has_vnni() {
                avx2::dot_vnni::<N>(fmt, w, xs)
            } else {
                avx2::dot_avx2::<N>(fmt, w, xs)
            }
        };
    }
    xs.map(|x| dot_scalar(fmt, w, x))
}

/// One weight row · one activation row, with the fastest kernel available.
#[inline]
pub fn dot(fmt: WFormat, w: &[u8], xs: &[BlockQ8]) -> f32 {
    dot_rows::<1>(fmt, w, [xs])[0]
}

/// The AVX2 kernel without VNNI, for tests on CPUs that have VNNI.
#[cfg(all(test, target_arch = "x86_64"))]
fn dot_plain_avx2(fmt: WFormat, w: &[u8], xs: &[BlockQ8]) -> f32 {
    assert!(has_avx2());
    unsafe { avx2::dot_avx2::<1>(fmt, w, [xs])[0] }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::quantized::{GgmlDType, QTensor};
    use candle_core::{Device, Tensor};

    fn check(fmt: WFormat, dt: GgmlDType) {
        let (n, k) = (7, 32 * 9);
        let dev = Device::Cpu;
        let w = Tensor::randn(0f32, 1.0, (n, k), &dev).unwrap();
        let x: Vec<f32> = Tensor::randn(0f32, 1.0, k, &dev)
            .unwrap()
            .to_vec1()
            .unwrap();
        let q = QTensor::quantize(&w, dt).unwrap();
        let bytes = q.data().unwrap().to_vec();
        let wd = q.dequantize(&dev).unwrap().to_vec2::<f32>().unwrap();
        let mut xq = vec![BlockQ8::default(); k / QK];
        quantize_row(&x, &mut xq);
        let mut xs = vec![BlockQ8::default(); k / QK];
        quantize_row_scalar(&x, &mut xs);
        for (a, b) in xq.iter().zip(&xs) {
            assert_eq!(a.qs, b.qs);
            assert_eq!(a.d, b.d);
        }
        let rb = k / QK * fmt.block_bytes();
        for r in 0..n {
            let row = &bytes[r * rb..(r + 1) * rb];
            let fast = dot(fmt, row, &xq);
            let slow = dot_scalar(fmt, row, &xq);
            #[cfg(target_arch = "x86_64")]
            if has_avx2() {
                let plain = dot_plain_avx2(fmt, row, &xq);
                assert!((plain - slow).abs() <= 1e-4 * (1.0 + slow.abs()));
            }
            let four = dot_rows::<4>(fmt, row, [&xq, &xs, &xq, &xs]);
            assert!(four
                .iter()
                .all(|&v| (v - fast).abs() <= 1e-4 * (1.0 + slow.abs())));
            let exact: f32 = wd[r].iter().zip(&x).map(|(a, b)| a * b).sum();
            assert!(
                (fast - slow).abs() <= 1e-4 * (1.0 + slow.abs()),
                "{fast} {slow}"
            );
            // activation quantization error only: ~|w|·|x|/127 over k terms
            assert!(
                (slow - exact).abs() < 0.05 * (k as f32).sqrt(),
                "{slow} {exact}"
            );
        }
    }

    #[test]
    fn q4_1_kernel_matches_reference() {
        check(WFormat::Q4_1, GgmlDType::Q4_1);
    }

    #[test]
    fn q5_0_kernel_matches_reference() {
        check(WFormat::Q5_0, GgmlDType::Q5_0);
    }

    #[test]
    fn q8_0_kernel_matches_reference() {
        check(WFormat::Q8_0, GgmlDType::Q8_0);
    }
}
