//! Q4_K rows (the bulk of a Q4_K_M file) times activations quantized to 8
//! bits per 256-element super-block: one weight row against N activation
//! rows, so the tokens of a prompt share each super-block's decoding, which
//! candle's kernel repeats per token; the f16 scales convert inline.
//!
//! GGUF layout of a 144-byte super-block: f16 `d`, f16 `dmin`, 12 bytes of
//! 6-bit scales `sc` and mins `m` of its eight 32-element sub-blocks, then
//! 128 bytes of nibbles (bytes `32j..32j+32` hold sub-block `2j` in the low
//! nibbles, `2j+1` in the high). An element is `d*sc*q - dmin*m`, so a
//! sub-block contributes `dx*(d*sc*Σ q*qx - dmin*m*Σ qx)`.

use half::f16;

use super::qblock::ActK;

/// Bytes per Q4_K super-block.
pub const Q4K_BYTES: usize = 144;

/// The eight 6-bit scales and mins packed in 12 bytes.
#[inline(always)]
fn scales_mins(s: &[u8]) -> ([u8; 8], [u8; 8]) {
    let (mut sc, mut m) = ([0u8; 8], [0u8; 8]);
    for j in 0..4 {
        sc[j] = s[j] & 63;
        m[j] = s[j + 4] & 63;
        sc[j + 4] = (s[j + 8] & 0x0F) | ((s[j] >> 6) << 4);
        m[j + 4] = (s[j + 8] >> 4) | ((s[j + 4] >> 6) << 4);
    }
    (sc, m)
}

fn f16_at(b: &[u8], at: usize) -> f32 {
    f16::from_bits(u16::from_le_bytes([b[at], b[at + 1]])).to_f32()
}

/// Scalar reference: one weight row · one activation row.
pub fn dot_scalar(w: &[u8], xs: &[ActK]) -> f32 {
    let mut acc = 0f32;
    for (wb, xb) in w.chunks_exact(Q4K_BYTES).zip(xs) {
        let (d, dmin) = (f16_at(wb, 0), f16_at(wb, 2));
        let (sc, m) = scales_mins(&wb[4..16]);
        let (mut isum, mut msum) = (0i32, 0i32);
        for j in 0..4 {
            for e in 0..32 {
                let byte = wb[16 + 32 * j + e];
                isum += sc[2 * j] as i32 * (byte & 0x0F) as i32 * xb.qs[64 * j + e] as i32;
                isum += sc[2 * j + 1] as i32 * (byte >> 4) as i32 * xb.qs[64 * j + 32 + e] as i32;
            }
        }
        for (s, &ms) in m.iter().enumerate() {
            msum += ms as i32 * xb.sum32(s);
        }
        acc += xb.d * (d * isum as f32 - dmin * msum as f32);
    }
    acc
}

// `k` indexes N activation rows and their sums side by side.
#[allow(clippy::needless_range_loop)]
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{scales_mins, ActK, Q4K_BYTES};
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn dot<const N: usize>(w: &[u8], xs: [&[ActK]; N]) -> [f32; N] {
        let nsb = xs[0].len();
        let m4 = _mm256_set1_epi8(0x0F);
        let mut acc = [_mm256_setzero_ps(); N];
        let mut mins = [0f32; N];
        for b in 0..nsb {
            let wb = w.get_unchecked(b * Q4K_BYTES..(b + 1) * Q4K_BYTES);
            let dm = _mm_cvtph_ps(_mm_cvtsi32_si128(
                (wb.as_ptr() as *const i32).read_unaligned(),
            ));
            let d = _mm_cvtss_f32(dm);
            let dmin = _mm_cvtss_f32(_mm_movehdup_ps(dm));
            let (sc, m) = scales_mins(&wb[4..16]);
            let mut sumi = [_mm256_setzero_si256(); N];
            for j in 0..4 {
                let bits = _mm256_loadu_si256(wb.as_ptr().add(16 + 32 * j) as *const __m256i);
                let lo = _mm256_and_si256(bits, m4);
                let hi = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
                let s_lo = _mm256_set1_epi16(sc[2 * j] as i16);
                let s_hi = _mm256_set1_epi16(sc[2 * j + 1] as i16);
                for k in 0..N {
                    let xq = xs[k].get_unchecked(b).qs.as_ptr().add(64 * j);
                    let x_lo = _mm256_loadu_si256(xq as *const __m256i);
                    let x_hi = _mm256_loadu_si256(xq.add(32) as *const __m256i);
                    let p_lo = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, x_lo), s_lo);
                    let p_hi = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, x_hi), s_hi);
                    sumi[k] = _mm256_add_epi32(sumi[k], _mm256_add_epi32(p_lo, p_hi));
                }
            }
            for k in 0..N {
                let xb = xs[k].get_unchecked(b);
                let mut msum = 0i32;
                for s in 0..8 {
                    msum += m[s] as i32 * xb.sum32(s);
                }
                acc[k] = _mm256_fmadd_ps(
                    _mm256_set1_ps(xb.d * d),
                    _mm256_cvtepi32_ps(sumi[k]),
                    acc[k],
                );
                mins[k] -= xb.d * dmin * msum as f32;
            }
        }
        let mut out = [0f32; N];
        for k in 0..N {
            let v = acc[k];
            let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
            let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
            let s = _mm_add_ss(s, _mm_movehdup_ps(s));
            out[k] = _mm_cvtss_f32(s) + mins[k];
        }
        out
    }
}

/// One weight row · N activation rows (each `nsb` super-blocks).
#[inline]
pub fn dot_rows<const N: usize>(w: &[u8], xs: [&[ActK]; N]) -> [f32; N] {
    let nsb = xs[0].len();
    assert!(w.len() >= nsb * Q4K_BYTES && xs.iter().all(|x| x.len() == nsb));
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
    fn q4k_kernel_matches_reference_and_dequantized_weights() {
        crate::cpu::test_data::check_k_kernel(
            candle_core::quantized::GgmlDType::Q4K,
            Q4K_BYTES,
            dot_scalar,
            dot_rows::<1>,
            dot_rows::<2>,
        );
    }
}
