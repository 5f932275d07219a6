//! Projections and the token embedding. A `Linear` is either a dense weight
//! `[out, in]` (f32/f16/bf16) or a quantized one (candle `QMatMul`, GGUF
//! blocks); both map `[T, in] -> [T, out]`. Projections that read the same
//! input (q/k/v, gate/up) are fused into one matmul when their formats agree:
//! one pass over the activations and one pool dispatch instead of three.

use std::borrow::Cow;
use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QMatMul, QStorage, QTensor};
use candle_core::{CpuStorage, DType, Module, Storage, Tensor};

use crate::cpu::block_matmul::BlockMatmul;
use crate::cpu::matvec;
use crate::cpu::qmatmul::FastQ;
use crate::error::Result;

#[derive(Debug, Clone)]
pub enum Weight {
    Dense(Tensor),
    Quant(Arc<QTensor>),
}

/// What a `Linear` multiplies with. A weight with a kernel of kvlab's own
/// keeps only that kernel's copy of the blocks (not the file's `QTensor`
/// too, which would double the weights' memory).
#[derive(Debug, Clone)]
enum Kernel {
    Dense(Tensor),
    /// Q4_1/Q5_0/Q8_0 on CPU (see `qmatmul`).
    Fast(Arc<FastQ>),
    /// K-quants, Q4_0, Q5_1 on CPU: candle's dot products on kvlab's pool
    /// (see `block_matmul`).
    Blocks(Arc<BlockMatmul>),
    /// candle's `QMatMul` for the rest (other devices, odd shapes).
    Candle(QMatMul, Arc<QTensor>),
}

#[derive(Debug, Clone)]
pub struct Linear {
    kernel: Kernel,
    bias: Option<Tensor>,
    out_dim: usize,
}

impl Linear {
    pub fn new(weight: Weight, bias: Option<Tensor>) -> Result<Self> {
        let (out_dim, kernel) = match weight {
            Weight::Dense(w) => (w.dims2()?.0, Kernel::Dense(w)),
            Weight::Quant(q) => {
                if let Some(f) = FastQ::new(&q)? {
                    (f.rows(), Kernel::Fast(Arc::new(f)))
                } else if let Some(b) = BlockMatmul::new(&q)? {
                    (b.rows(), Kernel::Blocks(Arc::new(b)))
                } else {
                    let rows = q.shape().dims2()?.0;
                    (rows, Kernel::Candle(QMatMul::from_arc(q.clone())?, q))
                }
            }
        };
        Ok(Linear {
            kernel,
            bias,
            out_dim,
        })
    }

    pub fn out_dim(&self) -> usize {
        self.out_dim
    }

    pub fn is_quantized(&self) -> bool {
        !matches!(self.kernel, Kernel::Dense(_))
    }

    /// `x` `[T, in]` -> `[T, out]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = match &self.kernel {
            Kernel::Fast(f) => f.forward(x)?.to_dtype(x.dtype())?,
            Kernel::Blocks(b) => b.forward(x)?.to_dtype(x.dtype())?,
            Kernel::Candle(q, _) => q.forward(&x.contiguous()?)?,
            Kernel::Dense(w) => match dense_few_rows(w, x)? {
                Some(y) => y,
                None => x.matmul(&w.t()?)?,
            },
        };
        match &self.bias {
            Some(b) => Ok(y.broadcast_add(b)?),
            None => Ok(y),
        }
    }
}

/// `x · wᵀ` with `matvec` for a few f32 rows (decode); `None`: not a case
/// it covers.
fn dense_few_rows(w: &Tensor, x: &Tensor) -> Result<Option<Tensor>> {
    let ((t, k), (n, kw)) = (x.dims2()?, w.dims2()?);
    if !x.device().is_cpu() || t > matvec::MAX_ROWS || k != kw || !matvec::supports(k) {
        return Ok(None);
    }
    if w.dtype() != DType::F32 || x.dtype() != DType::F32 || !w.is_contiguous() {
        return Ok(None);
    }
    let x = x.contiguous()?;
    let out = {
        let ((ws, wl), (xs, xl)) = (w.storage_and_layout(), x.storage_and_layout());
        let (Storage::Cpu(CpuStorage::F32(wd)), Storage::Cpu(CpuStorage::F32(xd))) = (&*ws, &*xs)
        else {
            return Ok(None);
        };
        let (wo, xo) = (wl.start_offset(), xl.start_offset());
        matvec::matvec(&wd[wo..wo + n * k], n, k, &xd[xo..xo + t * k], t)
    };
    Ok(Some(Tensor::from_vec(out, (t, n), x.device())?))
}

/// Concatenates the rows of same-format weights; `None` when they differ.
fn concat_rows(parts: &[&Linear]) -> Result<Option<Linear>> {
    let bias = if parts.iter().all(|p| p.bias.is_some()) {
        let bs: Vec<Tensor> = parts.iter().filter_map(|p| p.bias.clone()).collect();
        Some(Tensor::cat(&bs, 0)?)
    } else if parts.iter().any(|p| p.bias.is_some()) {
        return Ok(None);
    } else {
        None
    };
    let out_dim = parts.iter().map(|p| p.out_dim).sum();
    let kernel = match &parts[0].kernel {
        Kernel::Dense(w0) => {
            let mut ws = Vec::new();
            for p in parts {
                match &p.kernel {
                    Kernel::Dense(w) if w.dtype() == w0.dtype() => ws.push(w.clone()),
                    _ => return Ok(None),
                }
            }
            Kernel::Dense(Tensor::cat(&ws, 0)?)
        }
        Kernel::Fast(_) => {
            let mut fs = Vec::new();
            for p in parts {
                match &p.kernel {
                    Kernel::Fast(f) => fs.push(f.as_ref()),
                    _ => return Ok(None),
                }
            }
            match FastQ::concat(&fs) {
                Some(f) => Kernel::Fast(Arc::new(f)),
                None => return Ok(None),
            }
        }
        Kernel::Blocks(_) => {
            let mut bs = Vec::new();
            for p in parts {
                match &p.kernel {
                    Kernel::Blocks(b) => bs.push(b.as_ref()),
                    _ => return Ok(None),
                }
            }
            match BlockMatmul::concat(&bs) {
                Some(b) => Kernel::Blocks(Arc::new(b)),
                None => return Ok(None),
            }
        }
        Kernel::Candle(_, q0) => {
            let dt = q0.dtype();
            let k = q0.shape().dims2()?.1;
            let mut bytes = Vec::new();
            let mut rows = 0;
            for p in parts {
                match &p.kernel {
                    Kernel::Candle(_, q) if q.dtype() == dt && q.shape().dims2()?.1 == k => {
                        bytes.extend_from_slice(&q.data()?);
                        rows += q.shape().dims2()?.0;
                    }
                    _ => return Ok(None),
                }
            }
            let st = QStorage::from_data(Cow::Owned(bytes), &q0.device(), dt)?;
            let q = Arc::new(QTensor::new(st, (rows, k))?);
            Kernel::Candle(QMatMul::from_arc(q.clone())?, q)
        }
    };
    Ok(Some(Linear {
        kernel,
        bias,
        out_dim,
    }))
}

/// Several projections of one input, run as one matmul when possible.
#[derive(Debug, Clone)]
pub struct FusedLinear {
    parts: Vec<Linear>,
    /// Output widths of the logical projections, in order.
    widths: Vec<usize>,
}

impl FusedLinear {
    pub fn new(parts: Vec<Linear>) -> Result<Self> {
        let widths = parts.iter().map(|p| p.out_dim()).collect();
        let refs: Vec<&Linear> = parts.iter().collect();
        let parts = match concat_rows(&refs)? {
            Some(f) => vec![f],
            None => parts,
        };
        Ok(FusedLinear { parts, widths })
    }

    pub fn is_fused(&self) -> bool {
        self.parts.len() == 1 && self.widths.len() > 1
    }

    /// One output `[T, width_i]` per logical projection.
    pub fn forward(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        if self.parts.len() == self.widths.len() {
            return self.parts.iter().map(|p| p.forward(x)).collect();
        }
        let y = self.parts[0].forward(x)?;
        let mut out = Vec::with_capacity(self.widths.len());
        let mut at = 0;
        for &w in &self.widths {
            out.push(y.narrow(1, at, w)?);
            at += w;
        }
        Ok(out)
    }
}

/// Token embedding table `[vocab, hidden]`; the quantized form dequantizes
/// only the looked-up rows.
#[derive(Debug, Clone)]
pub enum Embedding {
    Dense(Tensor),
    Quant(Arc<QTensor>),
}

impl Embedding {
    /// `[T, hidden]` in `dtype`.
    pub fn forward(&self, ids: &Tensor, dtype: DType) -> Result<Tensor> {
        let x = match self {
            Embedding::Dense(w) => w.index_select(ids, 0)?,
            Embedding::Quant(q) => q.embedding(ids)?,
        };
        Ok(x.to_dtype(dtype)?)
    }

    /// The same table as an output projection (tied embeddings).
    pub fn as_linear(&self) -> Result<Linear> {
        match self {
            Embedding::Dense(w) => Linear::new(Weight::Dense(w.clone()), None),
            Embedding::Quant(q) => Linear::new(Weight::Quant(q.clone()), None),
        }
    }
}

/// Formats `LoadOptions::requant_q8` re-quantizes to Q8_0. Until Q5_0 had
/// a kernel here and the K-quants ran on kvlab's pool (`block_matmul`),
/// that was the fast path (candle ran them on one core); now it is an A/B
/// switch (`KVLAB_REQUANT_Q8=1`) that costs ~1.9x the weight memory.
pub fn is_slow_quant(dt: GgmlDType) -> bool {
    matches!(
        dt,
        GgmlDType::Q5_0 | GgmlDType::Q5_1 | GgmlDType::Q4K | GgmlDType::Q6K
    )
}

/// Re-quantizes to Q8_0 (rows must be a multiple of 32 wide).
pub fn requant_q8(q: &QTensor) -> Result<QTensor> {
    let t = q.dequantize(&q.device())?;
    Ok(QTensor::quantize(&t, GgmlDType::Q8_0)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// Every block type of the Qwen2.5-Coder and Gemma 3 GGUFs multiplies
    /// like its dequantized f32 weights (activations are quantized to 8 bits
    /// per block, so not exactly), also after re-quantizing Q5_0 to Q8_0.
    #[test]
    fn k_quant_and_legacy_blocks_match_their_dequantized_weights() {
        let dev = Device::Cpu;
        let (n, k, t) = (48, 512, 3);
        let w = crate::cpu::test_data::uniform(7, n * k, 1.0);
        let w = Tensor::from_vec(w, (n, k), &dev).unwrap();
        let x =
            Tensor::from_vec(crate::cpu::test_data::uniform(8, t * k, 1.0), (t, k), &dev).unwrap();
        for dt in [
            GgmlDType::Q4K,
            GgmlDType::Q5_0,
            GgmlDType::Q6K,
            GgmlDType::Q8_0,
        ] {
            let q = QTensor::quantize(&w, dt).unwrap();
            let dense = Linear::new(Weight::Dense(q.dequantize(&dev).unwrap()), None).unwrap();
            let want = dense.forward(&x).unwrap();
            let mut quants = vec![q];
            if is_slow_quant(dt) {
                let r = requant_q8(&quants[0]).unwrap();
                quants.push(r);
            }
            for q in quants {
                let qdt = q.dtype();
                let lin = Linear::new(Weight::Quant(Arc::new(q)), None).unwrap();
                assert!(lin.is_quantized());
                let got = lin.forward(&x).unwrap();
                let err = (&got - &want).unwrap().abs().unwrap().max_all().unwrap();
                let scale = want.abs().unwrap().max_all().unwrap();
                let rel = err.to_scalar::<f32>().unwrap() / scale.to_scalar::<f32>().unwrap();
                assert!(rel < 0.03, "{dt:?} as {qdt:?}: relative error {rel}");
            }
        }
    }
}
