//! GGUF weight blocks repacked 16 rows at a time for AVX-512 VNNI.
//!
//! `qkernel` dots one weight row with an activation row: per 32-weight block
//! it decodes 16 bytes, runs one 256-bit `vpdpbusd` and finishes with scalar
//! scale arithmetic — about 15 instructions for 32 multiply-adds. Here the
//! same block of 16 consecutive rows sits side by side: lane `i` of a 512-bit
//! register holds four weights of row `i`, the matching four activations are
//! broadcast, and one `vpdpbusd` does 64 multiply-adds for 16 rows; the
//! scales of the 16 rows are one vector. Decoding a block is shared by all
//! rows of the group and, in prefill, by up to 8 tokens.
//!
//! Layout of one group (16 rows) × one block (32 columns), 64-byte aligned:
//! - Q4_1, 320 bytes: 4 × 64 bytes of nibbles — chunk `c`, row `i` holds the
//!   file's bytes `4c..4c+4` of that row's block (low nibbles: elements
//!   `4c..4c+4`, high nibbles: `16+4c..`) — then 16 f16 `d`, 16 f16 `m`.
//! - Q8_0, 576 bytes: 8 × 64 bytes (chunk `c`, row `i`: elements `4c..4c+4`),
//!   16 f16 `d`, 16 i16 `Σ w` (for a correction: the activations are fed as
//!   unsigned bytes `x + 128`, since `vpdpbusd` multiplies u8 by i8, and
//!   `128 Σ w` is taken off the integer sum).

use super::avx512_vnni::available;
use super::qblock::{BlockQ8, WFormat, Q4_1_BYTES, Q8_0_BYTES, QK};

/// Rows per group.
pub const ROWS: usize = 16;

#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u8; 64]);

/// A weight matrix `[rows, cols]` in 16-row groups.
pub struct Packed {
    fmt: WFormat,
    rows: usize,
    nb: usize,
    lines: Vec<Line>,
}

impl std::fmt::Debug for Packed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Packed({:?}, {}x{})", self.fmt, self.rows, self.nb * QK)
    }
}

/// Bytes of one group × block; `None`: no packed kernel for the format
/// (Q5_0 runs on the AVX2 row kernel).
fn group_block_bytes(fmt: WFormat) -> Option<usize> {
    match fmt {
        WFormat::Q4_1 => Some(320),
        WFormat::Q8_0 => Some(576),
        WFormat::Q5_0 => None,
    }
}

impl Packed {
    /// Repacks `bytes` (the file's row-major blocks); `None` when rows are
    /// not a multiple of 16 or the format has no packed kernel.
    pub fn new(fmt: WFormat, bytes: &[u8], rows: usize, cols: usize) -> Option<Packed> {
        if !rows.is_multiple_of(ROWS) || !cols.is_multiple_of(QK) {
            return None;
        }
        let nb = cols / QK;
        let gbb = group_block_bytes(fmt)?;
        let mut lines = vec![Line([0; 64]); rows / ROWS * nb * gbb / 64];
        let rb = nb * fmt.block_bytes();
        // SAFETY: `Line` is 64 plain bytes; the slice covers exactly `lines`.
        let out = unsafe {
            std::slice::from_raw_parts_mut(lines.as_mut_ptr() as *mut u8, lines.len() * 64)
        };
        for g in 0..rows / ROWS {
            for b in 0..nb {
                let o = &mut out[(g * nb + b) * gbb..(g * nb + b + 1) * gbb];
                for i in 0..ROWS {
                    let r = g * ROWS + i;
                    let blk = &bytes[r * rb + b * fmt.block_bytes()..][..fmt.block_bytes()];
                    match fmt {
                        WFormat::Q4_1 => {
                            debug_assert_eq!(blk.len(), Q4_1_BYTES);
                            for c in 0..4 {
                                o[c * 64 + i * 4..][..4].copy_from_slice(&blk[4 + 4 * c..][..4]);
                            }
                            o[256 + 2 * i..][..2].copy_from_slice(&blk[0..2]);
                            o[288 + 2 * i..][..2].copy_from_slice(&blk[2..4]);
                        }
                        WFormat::Q8_0 => {
                            debug_assert_eq!(blk.len(), Q8_0_BYTES);
                            for c in 0..8 {
                                o[c * 64 + i * 4..][..4].copy_from_slice(&blk[2 + 4 * c..][..4]);
                            }
                            o[512 + 2 * i..][..2].copy_from_slice(&blk[0..2]);
                            // |Σ w| ≤ 32 · 128: fits i16
                            let wsum: i32 = blk[2..].iter().map(|&q| q as i8 as i32).sum();
                            o[544 + 2 * i..][..2].copy_from_slice(&(wsum as i16).to_le_bytes());
                        }
                        WFormat::Q5_0 => unreachable!("no packed Q5_0 layout"),
                    }
                }
            }
        }
        Some(Packed {
            fmt,
            rows,
            nb,
            lines,
        })
    }

    /// The rows of `parts` one after another (groups are independent, so
    /// this appends them); `None` unless formats and widths agree.
    pub fn concat(parts: &[&Packed]) -> Option<Packed> {
        let (fmt, nb) = (parts[0].fmt, parts[0].nb);
        if parts.iter().any(|p| p.fmt != fmt || p.nb != nb) {
            return None;
        }
        Some(Packed {
            fmt,
            nb,
            rows: parts.iter().map(|p| p.rows).sum(),
            lines: parts.iter().flat_map(|p| p.lines.iter().copied()).collect(),
        })
    }

    fn group_ptr(&self, g: usize) -> *const u8 {
        debug_assert!(g < self.rows / ROWS);
        let gbb = group_block_bytes(self.fmt).expect("packed format");
        // SAFETY: in bounds for g < groups.
        unsafe { (self.lines.as_ptr() as *const u8).add(g * self.nb * gbb) }
    }

    /// Activations as the kernel for this format wants them: Q8_0 weights
    /// are signed, so the activations become unsigned `x + 128`.
    pub fn prepare(&self, xq: &mut [BlockQ8]) {
        if self.fmt == WFormat::Q8_0 {
            for b in xq {
                for q in &mut b.qs {
                    *q = (*q as u8 ^ 0x80) as i8;
                }
            }
        }
    }

    /// Rows `16g..16g+16` for N tokens: `xs[k]` is token k's `nb` prepared
    /// blocks, `out[k]` receives its 16 results.
    #[inline]
    pub fn group<const N: usize>(&self, g: usize, xs: [&[BlockQ8]; N], out: [&mut [f32]; N]) {
        assert!(available() && g < self.rows / ROWS);
        assert!(xs.iter().all(|x| x.len() == self.nb) && out.iter().all(|o| o.len() >= ROWS));
        #[cfg(target_arch = "x86_64")]
        // SAFETY: CPU features and lengths checked above.
        unsafe {
            let xp = xs.map(|x| x.as_ptr());
            let op = out.map(|o| o.as_mut_ptr());
            match self.fmt {
                WFormat::Q4_1 => avx512::group_q4_1::<N>(self.group_ptr(g), self.nb, xp, op),
                WFormat::Q8_0 => avx512::group_q8_0::<N>(self.group_ptr(g), self.nb, xp, op),
                WFormat::Q5_0 => unreachable!("no packed Q5_0 layout"),
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::BlockQ8;
    use std::arch::x86_64::*;

    #[inline(always)]
    unsafe fn word(xb: *const BlockQ8, c: usize) -> __m512i {
        _mm512_set1_epi32(((*xb).qs.as_ptr() as *const i32).add(c).read_unaligned())
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vnni,fma,f16c")]
    pub unsafe fn group_q4_1<const N: usize>(
        p: *const u8,
        nb: usize,
        xs: [*const BlockQ8; N],
        out: [*mut f32; N],
    ) {
        let m4 = _mm512_set1_epi8(0x0F);
        let mut acc = [_mm512_setzero_ps(); N];
        let mut accm = [_mm512_setzero_ps(); N];
        for b in 0..nb {
            let pb = p.add(b * 320);
            let l: [__m512i; 4] = std::array::from_fn(|c| _mm512_load_si512(pb.add(c * 64) as _));
            let lo: [__m512i; 4] = std::array::from_fn(|c| _mm512_and_si512(l[c], m4));
            let hi: [__m512i; 4] =
                std::array::from_fn(|c| _mm512_and_si512(_mm512_srli_epi16(l[c], 4), m4));
            let d = _mm512_cvtph_ps(_mm256_load_si256(pb.add(256) as _));
            let m = _mm512_cvtph_ps(_mm256_load_si256(pb.add(288) as _));
            for k in 0..N {
                let xb = xs[k].add(b);
                let mut i0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo[0], word(xb, 0));
                let mut i1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo[1], word(xb, 1));
                i0 = _mm512_dpbusd_epi32(i0, lo[2], word(xb, 2));
                i1 = _mm512_dpbusd_epi32(i1, lo[3], word(xb, 3));
                i0 = _mm512_dpbusd_epi32(i0, hi[0], word(xb, 4));
                i1 = _mm512_dpbusd_epi32(i1, hi[1], word(xb, 5));
                i0 = _mm512_dpbusd_epi32(i0, hi[2], word(xb, 6));
                i1 = _mm512_dpbusd_epi32(i1, hi[3], word(xb, 7));
                let isum = _mm512_cvtepi32_ps(_mm512_add_epi32(i0, i1));
                acc[k] = _mm512_fmadd_ps(isum, _mm512_mul_ps(d, _mm512_set1_ps((*xb).d)), acc[k]);
                accm[k] = _mm512_fmadd_ps(m, _mm512_set1_ps((*xb).s), accm[k]);
            }
        }
        for k in 0..N {
            _mm512_storeu_ps(out[k], _mm512_add_ps(acc[k], accm[k]));
        }
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vnni,fma,f16c")]
    pub unsafe fn group_q8_0<const N: usize>(
        p: *const u8,
        nb: usize,
        xs: [*const BlockQ8; N],
        out: [*mut f32; N],
    ) {
        let mut acc = [_mm512_setzero_ps(); N];
        for b in 0..nb {
            let pb = p.add(b * 576);
            let w: [__m512i; 8] = std::array::from_fn(|c| _mm512_load_si512(pb.add(c * 64) as _));
            let d = _mm512_cvtph_ps(_mm256_load_si256(pb.add(512) as _));
            let wsum = _mm512_cvtepi16_epi32(_mm256_load_si256(pb.add(544) as _));
            let corr = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32::<7>(wsum));
            for k in 0..N {
                let xb = xs[k].add(b);
                let mut i0 = _mm512_dpbusd_epi32(corr, word(xb, 0), w[0]);
                let mut i1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), word(xb, 1), w[1]);
                i0 = _mm512_dpbusd_epi32(i0, word(xb, 2), w[2]);
                i1 = _mm512_dpbusd_epi32(i1, word(xb, 3), w[3]);
                i0 = _mm512_dpbusd_epi32(i0, word(xb, 4), w[4]);
                i1 = _mm512_dpbusd_epi32(i1, word(xb, 5), w[5]);
                i0 = _mm512_dpbusd_epi32(i0, word(xb, 6), w[6]);
                i1 = _mm512_dpbusd_epi32(i1, word(xb, 7), w[7]);
                let isum = _mm512_cvtepi32_ps(_mm512_add_epi32(i0, i1));
                acc[k] = _mm512_fmadd_ps(isum, _mm512_mul_ps(d, _mm512_set1_ps((*xb).d)), acc[k]);
            }
        }
        for k in 0..N {
            _mm512_storeu_ps(out[k], acc[k]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::qkernel::{dot_scalar, quantize_row};
    use candle_core::quantized::{GgmlDType, QTensor};
    use candle_core::{Device, Tensor};

    fn check(fmt: WFormat, dt: GgmlDType) {
        if !available() {
            eprintln!("no AVX-512 VNNI here: packed kernels not tested");
            return;
        }
        let (n, k) = (48, 32 * 7);
        let dev = Device::Cpu;
        let w = Tensor::randn(0f32, 1.0, (n, k), &dev).unwrap();
        let q = QTensor::quantize(&w, dt).unwrap();
        let bytes = q.data().unwrap().to_vec();
        let p = Packed::new(fmt, &bytes, n, k).unwrap();
        let rb = k / QK * fmt.block_bytes();
        let toks: Vec<Vec<BlockQ8>> = (0..8)
            .map(|_| {
                let x: Vec<f32> = Tensor::randn(0f32, 1.0, k, &dev)
                    .unwrap()
                    .to_vec1()
                    .unwrap();
                let mut xq = vec![BlockQ8::default(); k / QK];
                quantize_row(&x, &mut xq);
                xq
            })
            .collect();
        let prepared: Vec<Vec<BlockQ8>> = toks
            .iter()
            .map(|t| {
                let mut t = t.clone();
                p.prepare(&mut t);
                t
            })
            .collect();
        let mut got = vec![[0f32; ROWS]; 8];
        for g in 0..n / ROWS {
            let [a, b, c, d, e, f, h, i] = &mut got[..] else {
                unreachable!()
            };
            let x = |j: usize| &prepared[j][..];
            p.group::<8>(
                g,
                [x(0), x(1), x(2), x(3), x(4), x(5), x(6), x(7)],
                [a, b, c, d, e, f, h, i],
            );
            let mut one = [0f32; ROWS];
            p.group::<1>(g, [x(3)], [&mut one]);
            for i in 0..ROWS {
                let r = g * ROWS + i;
                let row = &bytes[r * rb..(r + 1) * rb];
                for (t, tok) in toks.iter().enumerate() {
                    let want = dot_scalar(fmt, row, tok);
                    let tol = 1e-6 * k as f32 + 1e-4 * want.abs();
                    assert!((got[t][i] - want).abs() <= tol, "{fmt:?} row {r} tok {t}");
                }
                assert_eq!(one[i], got[3][i], "N=1 and N=8 agree exactly");
            }
        }
    }

    #[test]
    fn q4_1_packed_matches_reference() {
        check(WFormat::Q4_1, GgmlDType::Q4_1);
    }

    #[test]
    fn q8_0_packed_matches_reference() {
        check(WFormat::Q8_0, GgmlDType::Q8_0);
    }

    #[test]
    fn rows_not_a_multiple_of_16_are_not_packed() {
        assert!(Packed::new(WFormat::Q8_0, &[0; 34 * 3], 3, 32).is_none());
    }
}
