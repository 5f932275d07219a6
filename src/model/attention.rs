//! Grouped-query self-attention over the owned KV cache.
//!
//! The new tokens' K/V are appended to the cache first; then every query
//! attends to the layer's cache entries, masked by absolute positions: key j
//! is visible to query i iff `k_pos[j] <= q_pos[i]` (and, with a sliding
//! window W, `q_pos[i] - k_pos[j] < W`). One path serves prefill, decode,
//! multi-token verification, evicted caches and partial recomputation.
//!
//! GQA without copying the cache: the n_rep query heads that share a KV head
//! are stacked as rows, so Q is `[kv, n_rep*T, d]` against K `[kv, L, d]`.
//!
//! On the CPU the fused kernels (`cpu::decode_attn`, `cpu::prefill_attn`)
//! read the cache storage directly; elsewhere (CUDA) the tensor path runs
//! on the device, with its mask built there from the positions.

use std::ops::Range;

use candle_core::{CpuStorage, DType, Layout, Storage, Tensor};
use half::{bf16, f16};

use super::linear::{FusedLinear, Linear};
use super::mask::{build_mask, device_mask, needs_mask, visible_suffix};
use super::norm::Norm;
use super::role::Role;
use super::weights::Weights;
use crate::cpu::decode_attn::decode_attention;
use crate::cpu::kv_elem::KvElem;
use crate::cpu::prefill_attn::prefill_attention;
use crate::cpu::simd_level::SimdLevel;
use crate::error::Result;
use crate::kv::{KvCache, Rope};

/// How observed attention probabilities are pooled over the queries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pool {
    Sum,
    Mean,
    Max,
    /// No pooling: `[n_heads, n_queries, n_keys]`.
    Full,
}

/// Which queries' attention probabilities to return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observe {
    /// Indices into this call's tokens.
    pub queries: Range<usize>,
    pub pool: Pool,
}

#[derive(Debug, Clone)]
pub struct Attention {
    qkv: FusedLinear,
    o: Linear,
    n_heads: usize,
    n_kv: usize,
    head_dim: usize,
    window: Option<usize>,
    /// Score scale (1/sqrt(head_dim) unless the family sets one).
    scale: f64,
    /// Per-head norms of q and k before RoPE (QK-norm).
    qk_norm: Option<(Norm, Norm)>,
}

/// Where each KV head's `[L, hd]` rows start in the cache's storage.
#[derive(Clone, Copy)]
struct HeadRows {
    k_start: usize,
    k_stride: usize,
    v_start: usize,
    v_stride: usize,
    len: usize,
}

impl HeadRows {
    fn k(&self, h: usize) -> std::ops::Range<usize> {
        let at = self.k_start + h * self.k_stride;
        at..at + self.len
    }

    fn v(&self, h: usize) -> std::ops::Range<usize> {
        let at = self.v_start + h * self.v_stride;
        at..at + self.len
    }
}

/// The cache storage of one layer as the fused kernels read it.
enum HeadData<'a> {
    F32(&'a [f32], &'a [f32]),
    F16(&'a [f16], &'a [f16]),
    BF16(&'a [bf16], &'a [bf16]),
}

/// `$body` with `$k`, `$v` bound to the slices of whichever storage `$data`
/// holds (each arm is compiled for its element type).
macro_rules! with_storage {
    ($data:expr, |$k:ident, $v:ident| $body:expr) => {
        match $data {
            HeadData::F32($k, $v) => $body,
            HeadData::F16($k, $v) => $body,
            HeadData::BF16($k, $v) => $body,
        }
    };
}

/// Runs `f` over the raw storage of `keys`/`vals` `[kv, L, hd]`; None (the
/// caller takes the tensor path) unless both are f32, f16 or bf16 on CPU with
/// unit-stride rows (callers skip it off the CPU).
fn with_heads<R>(
    keys: &Tensor,
    vals: &Tensor,
    f: impl FnOnce(HeadData<'_>, HeadRows) -> Result<R>,
) -> Result<Option<R>> {
    let (_, l, hd) = keys.dims3()?;
    let ((ks, kl), (vs, vl)) = (keys.storage_and_layout(), vals.storage_and_layout());
    let rows_ok = |lay: &Layout| lay.stride()[1] == hd && lay.stride()[2] == 1;
    if !rows_ok(kl) || !rows_ok(vl) {
        return Ok(None);
    }
    let data = match (&*ks, &*vs) {
        (Storage::Cpu(CpuStorage::F32(kd)), Storage::Cpu(CpuStorage::F32(vd))) => {
            HeadData::F32(kd, vd)
        }
        (Storage::Cpu(CpuStorage::F16(kd)), Storage::Cpu(CpuStorage::F16(vd))) => {
            HeadData::F16(kd, vd)
        }
        (Storage::Cpu(CpuStorage::BF16(kd)), Storage::Cpu(CpuStorage::BF16(vd))) => {
            HeadData::BF16(kd, vd)
        }
        _ => return Ok(None),
    };
    let rows = HeadRows {
        k_start: kl.start_offset(),
        k_stride: kl.stride()[0],
        v_start: vl.start_offset(),
        v_stride: vl.stride()[0],
        len: l * hd,
    };
    f(data, rows).map(Some)
}

/// `q` as f32 rows, multiplied by `scale`.
fn scaled_f32(q: &Tensor, scale: f32) -> Result<Vec<f32>> {
    let q = q.to_dtype(DType::F32)?.flatten_all()?;
    Ok(q.to_vec1::<f32>()?.into_iter().map(|x| x * scale).collect())
}

/// One query over all of `keys`/`vals` `[kv, L, hd]` with `decode_attn`;
/// None when the cache storage is not one the kernels read.
fn fused_decode(
    q: &Tensor,
    keys: &Tensor,
    vals: &Tensor,
    nh: usize,
    scale: f32,
) -> Result<Option<Tensor>> {
    let (nkv, l, hd) = keys.dims3()?;
    with_heads(keys, vals, |data, rows| {
        let qv = scaled_f32(q, scale)?;
        let level = SimdLevel::best();
        let out = with_storage!(data, |kd, vd| {
            let (k_at, v_at) = (|h| &kd[rows.k(h)], |h| &vd[rows.v(h)]);
            decode_attention(level, &qv, nh, nkv, hd, l, k_at, v_at)
        });
        Ok(Tensor::from_vec(out, (1, nh * hd), q.device())?.to_dtype(q.dtype())?)
    })
}

/// All of this call's queries over the cache with `prefill_attn`; None when
/// the cache storage is not one the kernels read.
#[allow(clippy::too_many_arguments)]
fn fused_prefill(
    q: &Tensor,
    keys: &Tensor,
    vals: &Tensor,
    positions: &[i64],
    cache: &KvCache,
    layer: usize,
    window: Option<usize>,
    nh: usize,
    scale: f32,
) -> Result<Option<Tensor>> {
    let (nkv, _, hd) = keys.dims3()?;
    let t = positions.len();
    with_heads(keys, vals, |data, rows| {
        let qv = scaled_f32(q, scale)?;
        let per_head = cache.is_per_head(layer);
        let k_pos = |h| {
            if per_head {
                cache.head_positions(layer, h)
            } else {
                cache.positions(layer)
            }
        };
        let out = with_storage!(data, |kd, vd| {
            prefill_rows(&qv, (nh, nkv, hd), positions, window, k_pos, kd, vd, rows)
        });
        Ok(Tensor::from_vec(out, (t, nh * hd), q.device())?.to_dtype(q.dtype())?)
    })
}

/// `prefill_attention` over one storage type's head rows.
#[allow(clippy::too_many_arguments)]
fn prefill_rows<'a, E: KvElem>(
    q: &[f32],
    (nh, nkv, hd): (usize, usize, usize),
    positions: &[i64],
    window: Option<usize>,
    k_pos: impl Fn(usize) -> &'a [i64] + Sync,
    kd: &'a [E],
    vd: &'a [E],
    rows: HeadRows,
) -> Vec<f32> {
    let (k_at, v_at) = (|h| &kd[rows.k(h)], |h| &vd[rows.v(h)]);
    let level = SimdLevel::best();
    prefill_attention(level, q, nh, nkv, hd, positions, window, k_pos, k_at, v_at)
}

fn pool(p: &Tensor, how: Pool) -> Result<Tensor> {
    Ok(match how {
        Pool::Sum => p.sum(1)?,
        Pool::Mean => p.mean(1)?,
        Pool::Max => p.max(1)?,
        Pool::Full => p.clone(),
    })
}

impl Attention {
    pub(crate) fn load(w: &Weights, layer: usize) -> Result<Self> {
        let cfg = w.cfg;
        let b = cfg.attn_bias;
        let qkv = FusedLinear::new(vec![
            w.linear(Role::Q, layer, b)?,
            w.linear(Role::K, layer, b)?,
            w.linear(Role::V, layer, b)?,
        ])?;
        let qk_norm = if cfg.family.qk_norm {
            Some((
                Norm::load(w, Role::QNorm, layer)?,
                Norm::load(w, Role::KNorm, layer)?,
            ))
        } else {
            None
        };
        Ok(Attention {
            qkv,
            o: w.linear(Role::O, layer, cfg.attn_out_bias)?,
            n_heads: cfg.n_heads,
            n_kv: cfg.n_kv_heads,
            head_dim: cfg.head_dim,
            window: cfg.layer_window(layer),
            scale: cfg
                .family
                .query_scale
                .unwrap_or(1.0 / (cfg.head_dim as f64).sqrt()),
            qk_norm,
        })
    }

    /// Pre-RoPE queries `[n_heads, T, head_dim]` of `x` (the normed block
    /// input): what query-statistics presses (expected attention) need.
    pub fn pre_rope_queries(&self, x: &Tensor) -> Result<Tensor> {
        let t = x.dim(0)?;
        let q = self.qkv.forward(x)?.swap_remove(0);
        Ok(q.reshape((t, self.n_heads, self.head_dim))?
            .transpose(0, 1)?
            .contiguous()?)
    }

    /// The output projection alone, bias included: `[T, n_heads*head_dim] -> [T, hidden]`.
    pub fn out_proj(&self, x: &Tensor) -> Result<Tensor> {
        self.o.forward(x)
    }

    /// RoPE on the first `rope.head_dim()` dims of each head of `x`
    /// `[heads, T, hd]`; the rest pass through (partial rotary).
    fn rotate(&self, x: &Tensor, rope: &Rope, cos_sin: &(Tensor, Tensor)) -> Result<Tensor> {
        let (rd, hd) = (rope.head_dim(), self.head_dim);
        if rd == hd {
            return rope.apply_tables(x, &cos_sin.0, &cos_sin.1);
        }
        let rot = rope.apply_tables(&x.narrow(2, 0, rd)?, &cos_sin.0, &cos_sin.1)?;
        Ok(Tensor::cat(&[rot, x.narrow(2, rd, hd - rd)?], 2)?.contiguous()?)
    }

    /// `x` `[T, hidden]` -> `([T, hidden], observed probabilities)`.
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &self,
        x: &Tensor,
        positions: &[i64],
        rope: &Rope,
        cos_sin: &(Tensor, Tensor),
        cache: &mut KvCache,
        layer: usize,
        observe: Option<&Observe>,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let t = positions.len();
        let (nh, nkv, hd) = (self.n_heads, self.n_kv, self.head_dim);
        let n_rep = nh / nkv;
        let qkv = self.qkv.forward(x)?;
        let heads = |y: &Tensor, n: usize| -> Result<Tensor> {
            Ok(y.reshape((t, n, hd))?.transpose(0, 1)?.contiguous()?)
        };
        let (mut q, mut k) = (heads(&qkv[0], nh)?, heads(&qkv[1], nkv)?);
        if let Some((qn, kn)) = &self.qk_norm {
            (q, k) = (qn.forward(&q)?, kn.forward(&k)?);
        }
        let q = self.rotate(&q, rope, cos_sin)?;
        let k = self.rotate(&k, rope, cos_sin)?;
        let v = heads(&qkv[2], nkv)?;
        cache.append(layer, &k, &v, positions)?;

        let keys = cache.k_view(layer)?;
        let vals = cache.v_view(layer)?;
        let l = keys.dim(1)?;
        let scale = self.scale;
        let on_cpu = keys.device().is_cpu();
        if on_cpu
            && t == 1
            && observe.is_none()
            && !needs_mask(positions, cache, layer, self.window)
        {
            if let Some(out) = fused_decode(&q, &keys, &vals, nh, scale as f32)? {
                return Ok((self.o.forward(&out)?, None));
            }
        } else if on_cpu && observe.is_none() {
            // A sliding-window layer past its window: the visible keys are
            // the newest ones, a view of the cache with the same row strides.
            if let Some(j0) =
                visible_suffix(positions, cache, layer, self.window).filter(|&j0| j0 < l)
            {
                let (k, v) = (keys.narrow(1, j0, l - j0)?, vals.narrow(1, j0, l - j0)?);
                if let Some(out) = fused_decode(&q, &k, &v, nh, scale as f32)? {
                    return Ok((self.o.forward(&out)?, None));
                }
            }
        }
        if on_cpu && observe.is_none() && std::env::var_os("KVLAB_UNFUSED_PREFILL").is_none() {
            let (w, s) = (self.window, scale as f32);
            let out = fused_prefill(&q, &keys, &vals, positions, cache, layer, w, nh, s)?;
            if let Some(out) = out {
                return Ok((self.o.forward(&out)?, None));
            }
        }
        let mask = if on_cpu {
            build_mask(positions, cache, layer, self.window, x.device())?
        } else {
            device_mask(positions, cache, layer, self.window, x.device())?
        };
        // The cache may be stored narrower than the activations (f16 for f32).
        let (keys, vals) = (keys.to_dtype(q.dtype())?, vals.to_dtype(q.dtype())?);
        // Scaling Q (T rows) is cheaper than scaling the scores (T x L).
        let qg = (q.reshape((nkv, n_rep * t, hd))? * scale)?;
        let mut scores = qg.matmul(&keys.t()?)?.to_dtype(DType::F32)?;
        if let Some(mask) = mask {
            scores = scores
                .reshape((nkv, n_rep, t, l))?
                .broadcast_add(&mask)?
                .reshape((nkv, n_rep * t, l))?;
        }
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let observed = match observe {
            Some(o) => {
                let p = probs.reshape((nh, t, l))?;
                let qs = o.queries.start.min(t)..o.queries.end.min(t);
                Some(pool(&p.narrow(1, qs.start, qs.len())?, o.pool)?)
            }
            None => None,
        };
        let out = probs.to_dtype(vals.dtype())?.matmul(&vals)?; // [kv, n_rep*t, hd]
        let out = out
            .reshape((nh, t, hd))?
            .transpose(0, 1)?
            .reshape((t, nh * hd))?;
        Ok((self.o.forward(&out)?, observed))
    }
}
