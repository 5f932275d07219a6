//! Quantized matmul `[T, K] x [N, K]^T -> [T, N]` over GGUF blocks, split
//! over output rows on the rayon pool (see `crate::threads`).
//!
//! Replaces candle's `QMatMul` on CPU for Q4_1, Q5_0 and Q8_0: candle runs those on
//! its own barrier pool, whose main thread spins until the other worker has
//! finished — on a busy 2-core machine that wait was a third of decode time.
//! Rayon steals work instead, so a descheduled worker costs nothing.

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::Tensor;
use rayon::prelude::*;

use super::avx512_vnni;
use super::host_matmul::forward_rows;
use super::out_ptr::OutPtr;
use super::qblock::{BlockQ8, WFormat, QK};
use super::qkernel::{dot, dot_rows, quantize_row};
use super::qpack::{Packed, ROWS};
use crate::error::{other, Result};

/// Tokens per tile: a tile's activations (≤ 64 × K/32 × 40 bytes) stay in L2
/// while a chunk of weight rows is run over them.
const TOKEN_TILE: usize = 64;

/// A weight matrix in its file blocks, ready for `qkernel::dot`, or
/// repacked in 16-row groups for `qpack` where the CPU has AVX-512 VNNI.
#[derive(Debug)]
pub struct FastQ {
    fmt: WFormat,
    rows: usize,
    cols: usize,
    layout: Layout,
}

#[derive(Debug)]
enum Layout {
    Rows(Vec<u8>),
    Packed(Packed),
}

/// Group `g` for tokens `t0..t0+N` (`x_at(t)`: token t's blocks, `o_at(t,
/// g)`: its 16 outputs of group g).
fn tile<'a, const N: usize>(
    p: &Packed,
    g: usize,
    t0: usize,
    x_at: &impl Fn(usize) -> &'a [BlockQ8],
    o_at: &impl Fn(usize, usize) -> &'a mut [f32],
) {
    let xs = std::array::from_fn(|k| x_at(t0 + k));
    p.group::<N>(g, xs, std::array::from_fn(|k| o_at(t0 + k, g)));
}

impl FastQ {
    /// `None` when the format, shape or device has no kernel here (or the
    /// env var `KVLAB_CANDLE_QMATMUL` is set: candle's kernels, for A/B checks).
    pub fn new(q: &QTensor) -> Result<Option<Self>> {
        if std::env::var_os("KVLAB_CANDLE_QMATMUL").is_some() {
            return Ok(None);
        }
        let fmt = match q.dtype() {
            GgmlDType::Q4_1 => WFormat::Q4_1,
            GgmlDType::Q5_0 => WFormat::Q5_0,
            GgmlDType::Q8_0 => WFormat::Q8_0,
            _ => return Ok(None),
        };
        if !q.device().is_cpu() {
            return Ok(None);
        }
        let (rows, cols) = q.shape().dims2()?;
        if cols % QK != 0 {
            return Ok(None);
        }
        let bytes = q.data()?.to_vec();
        if bytes.len() != rows * cols / QK * fmt.block_bytes() {
            return Err(other(format!(
                "quantized weight: {} bytes for {rows}x{cols} {fmt:?}",
                bytes.len()
            )));
        }
        let packed = if avx512_vnni::available() && std::env::var_os("KVLAB_ROW_KERNEL").is_none() {
            Packed::new(fmt, &bytes, rows, cols)
        } else {
            None
        };
        let layout = match packed {
            Some(p) => Layout::Packed(p),
            None => Layout::Rows(bytes),
        };
        Ok(Some(FastQ {
            fmt,
            rows,
            cols,
            layout,
        }))
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The rows of `parts` one after another (fused projections); `None`
    /// unless formats, widths and layouts agree.
    pub fn concat(parts: &[&FastQ]) -> Option<FastQ> {
        let (fmt, cols) = (parts[0].fmt, parts[0].cols);
        if parts.iter().any(|p| p.fmt != fmt || p.cols != cols) {
            return None;
        }
        let rows = parts.iter().map(|p| p.rows).sum();
        let layout = match &parts[0].layout {
            Layout::Rows(_) => {
                let mut bytes = Vec::new();
                for p in parts {
                    match &p.layout {
                        Layout::Rows(b) => bytes.extend_from_slice(b),
                        Layout::Packed(_) => return None,
                    }
                }
                Layout::Rows(bytes)
            }
            Layout::Packed(_) => {
                let mut packed = Vec::new();
                for p in parts {
                    match &p.layout {
                        Layout::Packed(q) => packed.push(q),
                        Layout::Rows(_) => return None,
                    }
                }
                Layout::Packed(Packed::concat(&packed)?)
            }
        };
        Some(FastQ {
            fmt,
            rows,
            cols,
            layout,
        })
    }

    /// Quantizes the activations `x` (`t` rows of `cols`) to 8-bit blocks.
    fn quantize(&self, x: &[f32], t: usize) -> Vec<BlockQ8> {
        let nb = self.cols / QK;
        let mut xq = vec![BlockQ8::default(); t * nb];
        if t >= 8 {
            xq.par_chunks_mut(nb)
                .zip(x.par_chunks(self.cols))
                .for_each(|(o, r)| quantize_row(r, o));
        } else {
            for (o, r) in xq.chunks_mut(nb).zip(x.chunks(self.cols)) {
                quantize_row(r, o);
            }
        }
        xq
    }

    /// `x` `[t, cols]` row-major -> `[t, rows]` row-major.
    pub fn matmul_slice(&self, x: &[f32], t: usize) -> Vec<f32> {
        assert_eq!(x.len(), t * self.cols);
        match &self.layout {
            Layout::Rows(bytes) => self.matmul_rows(bytes, x, t),
            Layout::Packed(p) => self.matmul_packed(p, x, t),
        }
    }

    /// 16-row groups split over the pool; each task runs its groups over
    /// tiles of 8 tokens, so a tile's activations stay in L1 while the
    /// task's weights stay in L2.
    fn matmul_packed(&self, p: &Packed, x: &[f32], t: usize) -> Vec<f32> {
        let mut xq = self.quantize(x, t);
        p.prepare(&mut xq);
        let (n, nb) = (self.rows, self.cols / QK);
        let groups = n / ROWS;
        let mut out = vec![0f32; t * n];
        let threads = rayon::current_num_threads().max(1);
        // Several chunks per thread so a stalled thread's share is stolen.
        let chunk = groups.div_ceil(threads * 4).max(1);
        let ptr = OutPtr(out.as_mut_ptr());
        (0..groups.div_ceil(chunk)).into_par_iter().for_each(|c| {
            // Rebinding makes the closure capture the Send wrapper, not its raw pointer field.
            #[allow(clippy::redundant_locals)]
            let ptr = ptr;
            let gs = c * chunk..((c + 1) * chunk).min(groups);
            let x_at = |tt: usize| &xq[tt * nb..(tt + 1) * nb];
            // SAFETY: rows 16g..16g+16 of token tt belong to this task only.
            let o_at = |tt: usize, g: usize| unsafe {
                std::slice::from_raw_parts_mut(ptr.0.add(tt * n + g * ROWS), ROWS)
            };
            let mut t0 = 0;
            while t0 < t {
                let step = match t - t0 {
                    8.. => 8,
                    4..=7 => 4,
                    2..=3 => 2,
                    _ => 1,
                };
                for g in gs.clone() {
                    match step {
                        8 => tile::<8>(p, g, t0, &x_at, &o_at),
                        4 => tile::<4>(p, g, t0, &x_at, &o_at),
                        2 => tile::<2>(p, g, t0, &x_at, &o_at),
                        _ => tile::<1>(p, g, t0, &x_at, &o_at),
                    }
                }
                t0 += step;
            }
        });
        out
    }

    fn matmul_rows(&self, bytes: &[u8], x: &[f32], t: usize) -> Vec<f32> {
        let xq = self.quantize(x, t);
        let (n, nb) = (self.rows, self.cols / QK);
        let rb = nb * self.fmt.block_bytes();
        let mut out = vec![0f32; t * n];
        let threads = rayon::current_num_threads().max(1);
        // Several chunks per thread so a stalled thread's share is stolen.
        let chunk = if t == 1 {
            n.div_ceil(threads * 8).max(16)
        } else {
            32
        };
        let ptr = OutPtr(out.as_mut_ptr());
        let fmt = self.fmt;
        let n_chunks = n.div_ceil(chunk);
        (0..n_chunks).into_par_iter().for_each(|c| {
            // Rebinding makes the closure capture the Send wrapper, not its raw pointer field.
            #[allow(clippy::redundant_locals)]
            let ptr = ptr;
            let r0 = c * chunk;
            let r1 = (r0 + chunk).min(n);
            for t0 in (0..t).step_by(TOKEN_TILE) {
                let t1 = (t0 + TOKEN_TILE).min(t);
                let x_at = |tt: usize| &xq[tt * nb..(tt + 1) * nb];
                for r in r0..r1 {
                    let w = &bytes[r * rb..(r + 1) * rb];
                    // SAFETY (writes): (tt, r) belongs to this task only; in bounds.
                    let mut tt = t0;
                    // 8 tokens share each weight block's decoding (6% fewer
                    // kernel cycles than 4 on the 1,024-token prefill).
                    while tt + 8 <= t1 {
                        let v = dot_rows::<8>(
                            fmt,
                            w,
                            [
                                x_at(tt),
                                x_at(tt + 1),
                                x_at(tt + 2),
                                x_at(tt + 3),
                                x_at(tt + 4),
                                x_at(tt + 5),
                                x_at(tt + 6),
                                x_at(tt + 7),
                            ],
                        );
                        for (k, v) in v.into_iter().enumerate() {
                            unsafe { *ptr.0.add((tt + k) * n + r) = v };
                        }
                        tt += 8;
                    }
                    while tt + 4 <= t1 {
                        let v = dot_rows::<4>(
                            fmt,
                            w,
                            [x_at(tt), x_at(tt + 1), x_at(tt + 2), x_at(tt + 3)],
                        );
                        for (k, v) in v.into_iter().enumerate() {
                            unsafe { *ptr.0.add((tt + k) * n + r) = v };
                        }
                        tt += 4;
                    }
                    for tt in tt..t1 {
                        let v = dot(fmt, w, x_at(tt));
                        unsafe { *ptr.0.add(tt * n + r) = v };
                    }
                }
            }
        });
        out
    }

    /// `x` `[T, cols]` (any float dtype) -> `[T, rows]` f32.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        forward_rows(x, self.rows, self.cols, |x, t| self.matmul_slice(x, t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::max_diff;
    use candle_core::quantized::QMatMul;
    use candle_core::Device;
    use candle_core::Module;

    #[test]
    fn packed_and_row_layouts_agree() {
        if !avx512_vnni::available() {
            return;
        }
        let dev = Device::Cpu;
        for dt in [GgmlDType::Q4_1, GgmlDType::Q8_0] {
            for (rows, cols) in [(96usize, 64usize), (576, 576), (576, 1536)] {
                let w = Tensor::randn(0f32, 1.0, (rows, cols), &dev).unwrap();
                let q = QTensor::quantize(&w, dt).unwrap();
                let f = FastQ::new(&q).unwrap().expect("kernel");
                let bytes = q.data().unwrap().to_vec();
                assert!(matches!(f.layout, Layout::Packed(_)));
                for t in [1usize, 2, 3, 7, 70, 1024] {
                    let x: Vec<f32> = Tensor::randn(0f32, 1.0, (t, cols), &dev)
                        .unwrap()
                        .flatten_all()
                        .unwrap()
                        .to_vec1()
                        .unwrap();
                    let a = f.matmul_slice(&x, t);
                    let b = f.matmul_rows(&bytes, &x, t);
                    // f32 rounding of ~cols/32 block sums, each up to ~30
                    let tol = |b: f32| 1e-6 * cols as f32 + 1e-4 * b.abs();
                    for (i, (a, b)) in a.iter().zip(&b).enumerate() {
                        assert!((a - b).abs() <= tol(*b), "{dt:?} t={t} at {i}: {a} {b}");
                    }
                }
            }
        }
    }

    #[test]
    fn concat_equals_the_parts_side_by_side() {
        let dev = Device::Cpu;
        for (dt, rows) in [(GgmlDType::Q4_1, [32usize, 16]), (GgmlDType::Q8_0, [48, 5])] {
            let qs: Vec<QTensor> = rows
                .iter()
                .map(|&r| {
                    let w = Tensor::randn(0f32, 1.0, (r, 64), &dev).unwrap();
                    QTensor::quantize(&w, dt).unwrap()
                })
                .collect();
            let fs: Vec<FastQ> = qs.iter().map(|q| FastQ::new(q).unwrap().unwrap()).collect();
            let x = Tensor::randn(0f32, 1.0, (3, 64), &dev).unwrap();
            // rows 5 are not packed: a packed and a row-layout part do not mix
            let Some(c) = FastQ::concat(&[&fs[0], &fs[1]]) else {
                assert!(rows.iter().any(|r| r % ROWS != 0), "{dt:?}: concat refused");
                continue;
            };
            assert_eq!(c.rows(), rows[0] + rows[1]);
            let want =
                Tensor::cat(&[fs[0].forward(&x).unwrap(), fs[1].forward(&x).unwrap()], 1).unwrap();
            assert_eq!(max_diff(&c.forward(&x).unwrap(), &want), 0.0, "{dt:?}");
        }
    }

    #[test]
    fn matches_candle_qmatmul() {
        let dev = Device::Cpu;
        for dt in [GgmlDType::Q4_1, GgmlDType::Q5_0, GgmlDType::Q8_0] {
            let w = Tensor::randn(0f32, 1.0, (100, 96), &dev).unwrap();
            let q = QTensor::quantize(&w, dt).unwrap();
            let f = FastQ::new(&q).unwrap().expect("kernel");
            let m = QMatMul::from_qtensor(q).unwrap();
            for t in [1usize, 3, 70] {
                let x = Tensor::randn(0f32, 1.0, (t, 96), &dev).unwrap();
                let a = f.forward(&x).unwrap();
                let b = m.forward(&x).unwrap();
                let d = max_diff(&a, &b);
                // both quantize activations to 8 bits (scales f32 here, f16 there)
                assert!(d < 0.05, "{dt:?} t={t}: max diff {d}");
            }
        }
    }
}
