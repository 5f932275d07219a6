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

/// `scales_mins` in registers: scales and mins as 8 bytes each of a u64
/// (byte i = sub-block i). Kernels read them without a store and reload,
/// which stalls on store forwarding once per super-block.
#[inline(always)]
fn scales_mins_u64(s: &[u8]) -> (u64, u64) {
    let word = |i: usize| u32::from_le_bytes([s[i], s[i + 1], s[i + 2], s[i + 3]]);
    let (a0, a1, a2) = (word(0), word(4), word(8));
    let sc_lo = a0 & 0x3f3f_3f3f;
    let m_lo = a1 & 0x3f3f_3f3f;
    let sc_hi = (a2 & 0x0f0f_0f0f) | (((a0 >> 6) & 0x0303_0303) << 4);
    let m_hi = ((a2 >> 4) & 0x0f0f_0f0f) | (((a1 >> 6) & 0x0303_0303) << 4);
    (
        sc_lo as u64 | (sc_hi as u64) << 32,
        m_lo as u64 | (m_hi as u64) << 32,
    )
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
    use super::{scales_mins_u64, ActK, Q4K_BYTES};
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn dot<const N: usize>(w: &[u8], xs: [&[ActK]; N]) -> [f32; N] {
        let nsb = xs[0].len();
        let m4 = _mm256_set1_epi8(0x0F);
        let mut acc = [_mm256_setzero_ps(); N];
        // Σ over sub-blocks of dx·dmin·m·Σqx, in 8 lanes until the end.
        let mut macc = [_mm256_setzero_ps(); N];
        for b in 0..nsb {
            let wb = w.get_unchecked(b * Q4K_BYTES..(b + 1) * Q4K_BYTES);
            let dm = _mm_cvtph_ps(_mm_cvtsi32_si128(
                (wb.as_ptr() as *const i32).read_unaligned(),
            ));
            let d = _mm_cvtss_f32(dm);
            let dmin = _mm_cvtss_f32(_mm_movehdup_ps(dm));
            let (sc, m) = scales_mins_u64(&wb[4..16]);
            // Each min twice, as i16: it multiplies both 16-sums of its sub-block.
            let mv = _mm_cvtsi64_si128(m as i64);
            let m16 = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(mv, mv));
            let mut sumi = [_mm256_setzero_si256(); N];
            for j in 0..4 {
                let bits = _mm256_loadu_si256(wb.as_ptr().add(16 + 32 * j) as *const __m256i);
                let lo = _mm256_and_si256(bits, m4);
                let hi = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
                let s_lo = _mm256_set1_epi16((sc >> (16 * j) & 0xff) as i16);
                let s_hi = _mm256_set1_epi16((sc >> (16 * j + 8) & 0xff) as i16);
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
                let sums = _mm256_loadu_si256(xb.sums.as_ptr() as *const __m256i);
                let msum = _mm256_madd_epi16(m16, sums);
                acc[k] = _mm256_fmadd_ps(
                    _mm256_set1_ps(xb.d * d),
                    _mm256_cvtepi32_ps(sumi[k]),
                    acc[k],
                );
                macc[k] = _mm256_fmadd_ps(
                    _mm256_set1_ps(xb.d * dmin),
                    _mm256_cvtepi32_ps(msum),
                    macc[k],
                );
            }
        }
        let mut out = [0f32; N];
        for k in 0..N {
            let v = _mm256_sub_ps(acc[k], macc[k]);
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
    fn packed_scales_read_alike() {
        let mut s = [0u8; 12];
        for seed in 0..64u32 {
            s.iter_mut()
                .enumerate()
                .for_each(|(i, b)| *b = (seed * 37 + i as u32 * 101) as u8);
            let (sc, m) = scales_mins(&s);
            let (sc64, m64) = scales_mins_u64(&s);
            assert_eq!((sc64.to_le_bytes(), m64.to_le_bytes()), (sc, m));
        }
    }

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
