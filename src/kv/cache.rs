//! The KV cache: a plain owned value. Per layer, K and V live in a buffer
//! `[kv_heads, capacity, head_dim]` that grows in blocks of `BLOCK` positions,
//! so decode writes one column with `slice_set` instead of copying the cache.
//! Every entry carries its absolute position, per layer and per KV head, so
//! eviction may differ per layer (and per head); attention masks are built
//! from these positions, never from indices.
//!
//! Aliasing: `k_view`/`v_view` share the buffer and are only valid until the
//! next mutation of this cache (truncate followed by append overwrites in
//! place). `k`/`v` return copies that stay valid. `Clone` deep-copies.

use candle_core::{DType, Device, Tensor};

use super::rope::Rope;
use crate::error::{other, Result};

/// Growth granularity of the per-layer buffers, in positions.
pub const BLOCK: usize = 256;

#[derive(Debug)]
pub(crate) struct LayerKv {
    /// `[kv_heads, cap, head_dim]`, contiguous; entries `0..len` are valid.
    pub(crate) k: Option<Tensor>,
    pub(crate) v: Option<Tensor>,
    pub(crate) len: usize,
    /// Positions per KV head; all rows equal unless `per_head`.
    pub(crate) pos: Vec<Vec<i64>>,
    pub(crate) per_head: bool,
    /// A recycled entry at this position (its last): the next append at the
    /// same position keeps it instead of writing the new K/V (rejected-KV
    /// recycling, see `decode::spec::recycle`).
    pub(crate) keep_at: Option<i64>,
}

impl LayerKv {
    fn cap(&self) -> usize {
        self.k.as_ref().map_or(0, |k| k.dims()[1])
    }
}

#[derive(Debug)]
pub struct KvCache {
    pub(crate) layers: Vec<LayerKv>,
    kv_heads: usize,
    head_dim: usize,
    dtype: DType,
    device: Device,
    rope: Rope,
}

impl Clone for KvCache {
    /// A deep copy: the clone never shares a buffer with `self`.
    fn clone(&self) -> Self {
        let copy = |t: &Option<Tensor>| t.as_ref().map(|t| t.copy().expect("copy tensor"));
        KvCache {
            layers: self
                .layers
                .iter()
                .map(|l| LayerKv {
                    k: copy(&l.k),
                    v: copy(&l.v),
                    len: l.len,
                    pos: l.pos.clone(),
                    per_head: l.per_head,
                    keep_at: l.keep_at,
                })
                .collect(),
            kv_heads: self.kv_heads,
            head_dim: self.head_dim,
            dtype: self.dtype,
            device: self.device.clone(),
            rope: self.rope.clone(),
        }
    }
}

fn round_up(n: usize) -> usize {
    n.div_ceil(BLOCK).max(1) * BLOCK
}

impl KvCache {
    pub fn new(
        n_layers: usize,
        kv_heads: usize,
        head_dim: usize,
        dtype: DType,
        device: &Device,
        rope: Rope,
    ) -> Self {
        let layers = (0..n_layers)
            .map(|_| LayerKv {
                k: None,
                v: None,
                len: 0,
                pos: vec![Vec::new(); kv_heads],
                per_head: false,
                keep_at: None,
            })
            .collect();
        KvCache {
            layers,
            kv_heads,
            head_dim,
            dtype,
            device: device.clone(),
            rope,
        }
    }

    pub fn n_layers(&self) -> usize {
        self.layers.len()
    }
    pub fn kv_heads(&self) -> usize {
        self.kv_heads
    }
    pub fn head_dim(&self) -> usize {
        self.head_dim
    }
    pub fn dtype(&self) -> DType {
        self.dtype
    }
    pub fn device(&self) -> &Device {
        &self.device
    }
    pub fn rope(&self) -> &Rope {
        &self.rope
    }

    /// Number of entries in `layer`.
    pub fn len(&self, layer: usize) -> usize {
        self.layers[layer].len
    }

    pub fn is_empty(&self) -> bool {
        self.layers.iter().all(|l| l.len == 0)
    }

    /// Absolute positions of `layer`'s entries (of KV head 0 when the layer
    /// was gathered per head; see `head_positions`).
    pub fn positions(&self, layer: usize) -> &[i64] {
        &self.layers[layer].pos[0]
    }

    pub fn head_positions(&self, layer: usize, head: usize) -> &[i64] {
        &self.layers[layer].pos[head]
    }

    /// True when `layer`'s KV heads hold different positions.
    pub fn is_per_head(&self, layer: usize) -> bool {
        self.layers[layer].per_head
    }

    /// One past the largest position held anywhere (0 when empty): the
    /// position of the next token in plain left-to-right decoding.
    pub fn next_position(&self) -> i64 {
        self.layers
            .iter()
            .flat_map(|l| l.pos.iter().flatten())
            .max()
            .map_or(0, |p| p + 1)
    }

    /// Zero-copy view `[kv_heads, len, head_dim]`; valid until the next mutation.
    pub fn k_view(&self, layer: usize) -> Result<Tensor> {
        self.view(layer, true)
    }
    pub fn v_view(&self, layer: usize) -> Result<Tensor> {
        self.view(layer, false)
    }

    /// Owned contiguous copy `[kv_heads, len, head_dim]`.
    pub fn k(&self, layer: usize) -> Result<Tensor> {
        Ok(self.view(layer, true)?.copy()?)
    }
    pub fn v(&self, layer: usize) -> Result<Tensor> {
        Ok(self.view(layer, false)?.copy()?)
    }

    fn view(&self, layer: usize, is_k: bool) -> Result<Tensor> {
        let l = &self.layers[layer];
        let buf = if is_k { &l.k } else { &l.v };
        match buf {
            Some(t) => Ok(t.narrow(1, 0, l.len)?),
            None => Ok(Tensor::zeros(
                (self.kv_heads, 0, self.head_dim),
                self.dtype,
                &self.device,
            )?),
        }
    }

    /// Appends `k`, `v` `[kv_heads, T, head_dim]` at `positions` (length T).
    pub fn append(
        &mut self,
        layer: usize,
        k: &Tensor,
        v: &Tensor,
        positions: &[i64],
    ) -> Result<()> {
        let t = positions.len();
        let l = &mut self.layers[layer];
        if let Some(p) = l.keep_at.take() {
            // Keep the recycled entry: skip the new K/V at its position.
            if t > 0 && positions[0] == p && l.pos[0].last() == Some(&p) {
                if t == 1 {
                    return Ok(());
                }
                let (k, v) = (k.narrow(1, 1, t - 1)?, v.narrow(1, 1, t - 1)?);
                return self.append(layer, &k, &v, &positions[1..]);
            }
        }
        let want = (self.kv_heads, t, self.head_dim);
        if k.dims3()? != want || v.dims3()? != want {
            return Err(other(format!(
                "kv append: expected K/V {want:?}, got {:?} / {:?}",
                k.dims(),
                v.dims()
            )));
        }
        let (kvh, hd, dtype, dev) = (
            self.kv_heads,
            self.head_dim,
            self.dtype,
            self.device.clone(),
        );
        let l = &mut self.layers[layer];
        let need = l.len + t;
        if need > l.cap() {
            let cap = round_up(need);
            let nk = Tensor::zeros((kvh, cap, hd), dtype, &dev)?;
            let nv = Tensor::zeros((kvh, cap, hd), dtype, &dev)?;
            if l.len > 0 {
                if let (Some(ok), Some(ov)) = (&l.k, &l.v) {
                    nk.slice_set(&ok.narrow(1, 0, l.len)?.contiguous()?, 1, 0)?;
                    nv.slice_set(&ov.narrow(1, 0, l.len)?.contiguous()?, 1, 0)?;
                }
            }
            l.k = Some(nk);
            l.v = Some(nv);
        }
        let (bk, bv) = (
            l.k.as_ref().expect("k buffer"),
            l.v.as_ref().expect("v buffer"),
        );
        bk.slice_set(&k.to_dtype(dtype)?.contiguous()?, 1, l.len)?;
        bv.slice_set(&v.to_dtype(dtype)?.contiguous()?, 1, l.len)?;
        l.len = need;
        for p in l.pos.iter_mut() {
            p.extend_from_slice(positions);
        }
        Ok(())
    }

    /// Marks `layer`'s last entry, at `pos`, as a recycled stand-in: the next
    /// append at `pos` keeps it (see `LayerKv::keep_at`).
    pub fn keep_entry_at(&mut self, layer: usize, pos: i64) {
        let l = &mut self.layers[layer];
        if l.pos.first().and_then(|p| p.last()) == Some(&pos) {
            l.keep_at = Some(pos);
        }
    }

    /// Keeps the first `len` entries of every layer (layers already shorter
    /// are left alone): rollback of rejected draft tokens.
    pub fn truncate(&mut self, len: usize) {
        for layer in 0..self.layers.len() {
            self.truncate_layer(layer, len);
        }
    }

    pub fn truncate_layer(&mut self, layer: usize, len: usize) {
        let l = &mut self.layers[layer];
        if len < l.len {
            l.len = len;
            for p in l.pos.iter_mut() {
                p.truncate(len);
            }
        }
    }

    /// Keeps the entries at `keep` (indices into the layer, in the given
    /// order) for all KV heads of `layer`.
    pub fn gather(&mut self, layer: usize, keep: &[usize]) -> Result<()> {
        let heads = vec![keep.to_vec(); self.kv_heads];
        self.gather_heads(layer, &heads)?;
        self.layers[layer].per_head = false;
        Ok(())
    }

    /// `gather` on every layer with the same indices.
    pub fn gather_all(&mut self, keep: &[usize]) -> Result<()> {
        for layer in 0..self.layers.len() {
            self.gather(layer, keep)?;
        }
        Ok(())
    }

    /// Per-head eviction: `keep[h]` lists the entries kept for KV head h; all
    /// lists must have the same length.
    pub fn gather_heads(&mut self, layer: usize, keep: &[Vec<usize>]) -> Result<()> {
        let len = self.layers[layer].len;
        if keep.len() != self.kv_heads {
            return Err(other(format!(
                "gather_heads: {} keep lists for {} KV heads",
                keep.len(),
                self.kv_heads
            )));
        }
        let n = keep[0].len();
        if keep.iter().any(|k| k.len() != n) {
            return Err(other("gather_heads: keep lists differ in length"));
        }
        if let Some(bad) = keep.iter().flatten().find(|&&i| i >= len) {
            return Err(other(format!(
                "gather: index {bad} out of range (len {len})"
            )));
        }
        let (kv, vv) = (self.k_view(layer)?, self.v_view(layer)?);
        let mut ks = Vec::with_capacity(self.kv_heads);
        let mut vs = Vec::with_capacity(self.kv_heads);
        let l = &self.layers[layer];
        let mut pos = Vec::with_capacity(self.kv_heads);
        for (h, idx) in keep.iter().enumerate() {
            let ids: Vec<u32> = idx.iter().map(|&i| i as u32).collect();
            let ids = Tensor::from_vec(ids, n, &self.device)?;
            ks.push(kv.narrow(0, h, 1)?.index_select(&ids, 1)?);
            vs.push(vv.narrow(0, h, 1)?.index_select(&ids, 1)?);
            pos.push(idx.iter().map(|&i| l.pos[h][i]).collect::<Vec<i64>>());
        }
        let per_head = pos.iter().any(|p| p != &pos[0]);
        let l = &mut self.layers[layer];
        l.k = Some(Tensor::cat(&ks, 0)?);
        l.v = Some(Tensor::cat(&vs, 0)?);
        l.len = n;
        l.pos = pos;
        l.per_head = per_head;
        Ok(())
    }

    fn check_compatible(&self, other_: &KvCache) -> Result<()> {
        if other_.n_layers() != self.n_layers()
            || other_.kv_heads != self.kv_heads
            || other_.head_dim != self.head_dim
        {
            return Err(other(format!(
                "kv splice: shapes differ ({} layers x {} heads x {} vs {} x {} x {})",
                self.n_layers(),
                self.kv_heads,
                self.head_dim,
                other_.n_layers(),
                other_.kv_heads,
                other_.head_dim
            )));
        }
        Ok(())
    }

    /// Inserts all of `src`'s entries at index `offset` of every layer
    /// (entries from `offset` on move behind them). Positions come from
    /// `src`; re-rotate it first (`rerotate`) to move it.
    pub fn splice(&mut self, offset: usize, src: &KvCache) -> Result<()> {
        self.check_compatible(src)?;
        for layer in 0..self.layers.len() {
            self.splice_layer(layer, offset, src)?;
        }
        Ok(())
    }

    /// Appends all of `src`'s entries at the end of every layer.
    pub fn extend(&mut self, src: &KvCache) -> Result<()> {
        self.check_compatible(src)?;
        for layer in 0..self.layers.len() {
            let at = self.layers[layer].len;
            self.splice_layer(layer, at, src)?;
        }
        Ok(())
    }

    fn splice_layer(&mut self, layer: usize, offset: usize, src: &KvCache) -> Result<()> {
        let len = self.layers[layer].len;
        if offset > len {
            return Err(other(format!("kv splice: offset {offset} > len {len}")));
        }
        let n = src.len(layer);
        if n == 0 {
            return Ok(());
        }
        let join = |a: Tensor, b: Tensor| -> Result<Tensor> {
            let b = b.to_dtype(self.dtype)?;
            let parts = [
                a.narrow(1, 0, offset)?,
                b,
                a.narrow(1, offset, len - offset)?,
            ];
            Ok(Tensor::cat(&parts, 1)?)
        };
        let k = join(self.k_view(layer)?, src.k_view(layer)?)?;
        let v = join(self.v_view(layer)?, src.v_view(layer)?)?;
        let sl = &src.layers[layer];
        let l = &mut self.layers[layer];
        for (h, p) in l.pos.iter_mut().enumerate() {
            let tail = p.split_off(offset);
            p.extend_from_slice(&sl.pos[h]);
            p.extend(tail);
        }
        l.per_head = l.pos.iter().any(|p| p != &l.pos[0]);
        l.k = Some(k);
        l.v = Some(v);
        l.len = len + n;
        Ok(())
    }

    /// Moves every key by `delta` positions (one more RoPE rotation by
    /// `delta`) and shifts the stored positions; values are unchanged.
    pub fn rerotate(&mut self, delta: i64) -> Result<()> {
        if delta == 0 {
            return Ok(());
        }
        for layer in 0..self.layers.len() {
            let len = self.layers[layer].len;
            if len == 0 {
                continue;
            }
            // Rotated in f32 whatever the storage: an f16 rotation would add
            // its own rounding to the stored keys'.
            let k = self.k_view(layer)?.to_dtype(DType::F32)?;
            let k = self
                .rope
                .apply(&k, &vec![delta; len])?
                .to_dtype(self.dtype)?;
            let l = &mut self.layers[layer];
            l.k = Some(k);
            l.v = Some(l.v.as_ref().expect("v buffer").narrow(1, 0, len)?.copy()?);
            for p in l.pos.iter_mut().flatten() {
                *p += delta;
            }
        }
        Ok(())
    }

    /// Bytes held by the valid entries (K and V).
    pub fn nbytes(&self) -> usize {
        let per = self.kv_heads * self.head_dim * self.dtype.size_in_bytes() * 2;
        self.layers.iter().map(|l| l.len * per).sum()
    }

    pub(crate) fn from_parts(
        layers: Vec<(Tensor, Tensor, Vec<Vec<i64>>)>,
        dtype: DType,
        device: &Device,
        rope: Rope,
    ) -> Result<Self> {
        let (kv_heads, _, head_dim) = layers
            .first()
            .map(|(k, _, _)| k.dims3())
            .transpose()?
            .unwrap_or((0, 0, rope.head_dim()));
        let layers = layers
            .into_iter()
            .map(|(k, v, pos)| {
                let len = k.dims()[1];
                let per_head = pos.iter().any(|p| p != &pos[0]);
                LayerKv {
                    k: Some(k),
                    v: Some(v),
                    len,
                    pos,
                    per_head,
                    keep_at: None,
                }
            })
            .collect();
        Ok(KvCache {
            layers,
            kv_heads,
            head_dim,
            dtype,
            device: device.clone(),
            rope,
        })
    }
}
