//! Q6_K rows (the output and down projections of Q4_K_M files) times
//! activation super-blocks (`ActK`): one weight row against N activation
//! rows, so a prompt's tokens share each super-block's decoding.
//!
//! GGUF layout of a 210-byte super-block: 128 bytes `ql` (low 4 bits), 64
//! bytes `qh` (high 2 bits), 16 i8 scales, f16 `d`. Value `e` of a 128-value
//! half `h` sits, with `g = (e % 128) / 32` and `l = e % 32`, in the low (g
//! 0, 1) or high (g 2, 3) nibble of `ql[64h + 32(g % 2) + l]` and bits
//! `2g..2g+2` of `qh[32h + l]`; its scale is `scales[e / 16]`. An element
//! is `d*sc*(q - 32)`, so a 16-value group contributes
//! `dx*d*sc*(Σ q*qx - 32*Σ qx)`.

use half::f16;

use super::qblock::{ActK, QK_K};

/// Bytes per Q6_K super-block.
pub const Q6K_BYTES: usize = 210;

/// The 6-bit value `e` (0..256) of a super-block.
fn value(wb: &[u8], e: usize) -> i32 {
    let (h, g, l) = (e / 128, e % 128 / 32, e % 32);
    let ql = wb[64 * h + 32 * (g % 2) + l];
    let low = if g < 2 { ql & 0x0F } else { ql >> 4 };
    let high = (wb[128 + 32 * h + l] >> (2 * g)) & 3;
    (low | (high << 4)) as i32
}

/// Scalar reference: one weight row · one activation row.
pub fn dot_scalar(w: &[u8], xs: &[ActK]) -> f32 {
    let mut acc = 0f32;
    for (wb, xb) in w.chunks_exact(Q6K_BYTES).zip(xs) {
        let d = f16::from_bits(u16::from_le_bytes([wb[208], wb[209]])).to_f32();
        let mut isum = 0i32;
        for i in 0..QK_K / 16 {
            let sc = wb[192 + i] as i8 as i32;
            let dot: i32 = (16 * i..16 * i + 16)
                .map(|e| value(wb, e) * xb.qs[e] as i32)
                .sum();
            isum += sc * (dot - 32 * xb.sums[i] as i32);
        }
        acc += xb.d * d * isum as f32;
    }
    acc
}

// `k` indexes N activation rows and their sums side by side.
#[allow(clippy::needless_range_loop)]
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{ActK, Q6K_BYTES};
    use std::arch::x86_64::*;

    /// Bits 0-1 of each byte moved to bits 4-5.
    #[inline(always)]
    unsafe fn hi2(m3: __m256i, bits: __m256i) -> __m256i {
        _mm256_slli_epi16(_mm256_and_si256(bits, m3), 4)
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn dot<const N: usize>(w: &[u8], xs: [&[ActK]; N]) -> [f32; N] {
        let nsb = xs[0].len();
        let (m4, m3) = (_mm256_set1_epi8(0x0F), _mm256_set1_epi8(3));
        let mut acc = [_mm256_setzero_ps(); N];
        for b in 0..nsb {
            let p = w.as_ptr().add(b * Q6K_BYTES);
            let d = _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(
                (p.add(208) as *const u16).read_unaligned() as i32,
            )));
            let sc = std::slice::from_raw_parts(p.add(192) as *const i8, 16);
            let sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(p.add(192) as *const __m128i));
            let mut sumi = [_mm256_setzero_si256(); N];
            for h in 0..2 {
                let ql0 = _mm256_loadu_si256(p.add(64 * h) as *const __m256i);
                let ql1 = _mm256_loadu_si256(p.add(64 * h + 32) as *const __m256i);
                let qh = _mm256_loadu_si256(p.add(128 + 32 * h) as *const __m256i);
                let q = [
                    _mm256_or_si256(_mm256_and_si256(ql0, m4), hi2(m3, qh)),
                    _mm256_or_si256(_mm256_and_si256(ql1, m4), hi2(m3, _mm256_srli_epi16(qh, 2))),
                    _mm256_or_si256(
                        _mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4),
                        hi2(m3, _mm256_srli_epi16(qh, 4)),
                    ),
                    _mm256_or_si256(
                        _mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                        hi2(m3, _mm256_srli_epi16(qh, 6)),
                    ),
                ];
                for (g, &qg) in q.iter().enumerate() {
                    let i = 8 * h + 2 * g;
                    // values 0..16 of the group in the low 128 bits, 16..32 high
                    let s = _mm256_set_m128i(
                        _mm_set1_epi16(sc[i + 1] as i16),
                        _mm_set1_epi16(sc[i] as i16),
                    );
                    for k in 0..N {
                        let xq = xs[k].get_unchecked(b).qs.as_ptr().add(128 * h + 32 * g);
                        let x = _mm256_loadu_si256(xq as *const __m256i);
                        let p16 = _mm256_maddubs_epi16(qg, x);
                        sumi[k] = _mm256_add_epi32(sumi[k], _mm256_madd_epi16(p16, s));
                    }
                }
            }
            for k in 0..N {
                let xb = xs[k].get_unchecked(b);
                // The -32 offset of every value: 32·Σ sc·Σqx, spread over the lanes.
                let sums = _mm256_loadu_si256(xb.sums.as_ptr() as *const __m256i);
                let offset = _mm256_slli_epi32::<5>(_mm256_madd_epi16(sc16, sums));
                let v = _mm256_cvtepi32_ps(_mm256_sub_epi32(sumi[k], offset));
                acc[k] = _mm256_fmadd_ps(_mm256_set1_ps(xb.d * d), v, acc[k]);
            }
        }
        let mut out = [0f32; N];
        for k in 0..N {
            let v = acc[k];
            let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
            let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
            let s = _mm_add_ss(s, _mm_movehdup_ps(s));
            out[k] = _mm_cvtss_f32(s);
        }
        out
    }
}

/// One weight row · N activation rows (each `nsb` super-blocks).
#[inline]
pub fn dot_rows<const N: usize>(w: &[u8], xs: [&[ActK]; N]) -> [f32; N] {
    let nsb = xs[0].len();
    assert!(w.len() >= nsb * Q6K_BYTES && xs.iter().all(|x| x.len() == nsb));
    #[cfg(target_arch = "x86_64")]
    if super::qkernel::has_avx2() {
        // SAFETY: features checked; lengths asserted above.
        return unsafe { avx2::dot::<N>(w, xs) };
    }
    xs.map(|x| dot_scalar(w, x))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q6k_kernel_matches_reference_and_dequantized_weights() {
        crate::cpu::test_data::check_k_kernel(
            candle_core::quantized::GgmlDType::Q6K,
            Q6K_BYTES,
            dot_scalar,
            dot_rows::<1>,
            dot_rows::<2>,
        );
    }
}
