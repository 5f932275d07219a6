//! The attention mask of the tensor path, from absolute positions (see
//! `attention`): key j is visible to query i iff `visible(q_pos[i],
//! k_pos[j])`. Built on the host for the CPU, and on the device from the
//! position lists alone elsewhere, so a GPU prefill uploads T + L positions
//! instead of a T x L mask per layer.

use candle_core::{DType, Device, Tensor};

use crate::cpu::visible::visible;
use crate::error::Result;
use crate::kv::KvCache;

/// The key positions of each KV head of `layer` (one list when all heads
/// hold the same positions).
fn key_positions(cache: &KvCache, layer: usize) -> Vec<&[i64]> {
    if cache.is_per_head(layer) {
        (0..cache.kv_heads())
            .map(|h| cache.head_positions(layer, h))
            .collect()
    } else {
        vec![cache.positions(layer)]
    }
}

/// True unless every key is visible to every query (plain decode), in
/// O(T + L): all pairs pass iff the latest key is no later than the
/// earliest query and, with a window, the widest span is inside it.
pub(crate) fn needs_mask(
    q_pos: &[i64],
    cache: &KvCache,
    layer: usize,
    window: Option<usize>,
) -> bool {
    let (Some(&q_min), Some(&q_max)) = (q_pos.iter().min(), q_pos.iter().max()) else {
        return false;
    };
    key_positions(cache, layer).iter().any(|ks| {
        let (Some(&k_min), Some(&k_max)) = (ks.iter().min(), ks.iter().max()) else {
            return false;
        };
        !(visible(q_min, k_max, window) && visible(q_max, k_min, window))
    })
}

/// For one query whose window hides the oldest keys: the index from which
/// the keys of `layer` are all visible and before which none is, when the
/// cache holds one ascending position list for all heads (the usual case
/// of a sliding-window layer past its window). Decode then attends to that
/// suffix alone, on the unmasked kernel.
pub(crate) fn visible_suffix(
    q_pos: &[i64],
    cache: &KvCache,
    layer: usize,
    window: Option<usize>,
) -> Option<usize> {
    let (&[q], Some(_)) = (q_pos, window) else {
        return None;
    };
    if cache.is_per_head(layer) {
        return None;
    }
    let ks = cache.positions(layer);
    if !ks.windows(2).all(|w| w[0] < w[1]) || ks.last().is_some_and(|&k| k > q) {
        return None;
    }
    // Ascending and none later than q: visibility only grows along ks.
    Some(ks.partition_point(|&k| !visible(q, k, window)))
}

/// Additive mask `[heads_or_1, 1, T, L]` (0 or -inf) on the host, or None
/// when `needs_mask` says no.
pub(crate) fn build_mask(
    q_pos: &[i64],
    cache: &KvCache,
    layer: usize,
    window: Option<usize>,
    dev: &Device,
) -> Result<Option<Tensor>> {
    if !needs_mask(q_pos, cache, layer, window) {
        return Ok(None);
    }
    let heads = key_positions(cache, layer);
    let (t, l) = (q_pos.len(), heads[0].len());
    let mut m = Vec::with_capacity(heads.len() * t * l);
    for ks in &heads {
        for &q in q_pos {
            m.extend(ks.iter().map(|&k| {
                if visible(q, k, window) {
                    0f32
                } else {
                    f32::NEG_INFINITY
                }
            }));
        }
    }
    Ok(Some(Tensor::from_vec(m, (heads.len(), 1, t, l), dev)?))
}

/// Positions stay exact in f32 below this (2^24).
const F32_EXACT: i64 = 1 << 24;

/// `build_mask` computed on `dev` from the positions: `q - k` per pair,
/// compared with 0 and the window, and `ln` of the 0/1 result (0 or -inf).
/// Positions beyond f32's exact range take the host path.
pub(crate) fn device_mask(
    q_pos: &[i64],
    cache: &KvCache,
    layer: usize,
    window: Option<usize>,
    dev: &Device,
) -> Result<Option<Tensor>> {
    if !needs_mask(q_pos, cache, layer, window) {
        return Ok(None);
    }
    let heads = key_positions(cache, layer);
    let exact = |p: &i64| p.abs() < F32_EXACT;
    if !q_pos.iter().all(exact) || !heads.iter().all(|ks| ks.iter().all(exact)) {
        return build_mask(q_pos, cache, layer, window, dev);
    }
    let (h, t, l) = (heads.len(), q_pos.len(), heads[0].len());
    let q: Vec<f32> = q_pos.iter().map(|&p| p as f32).collect();
    let k: Vec<f32> = heads
        .iter()
        .flat_map(|ks| ks.iter().map(|&p| p as f32))
        .collect();
    let q = Tensor::from_vec(q, (1, 1, t, 1), dev)?;
    let k = Tensor::from_vec(k, (h, 1, 1, l), dev)?;
    let d = q.broadcast_sub(&k)?; // [h, 1, t, l]: q - k
    let mut vis = d.ge(0f64)?.to_dtype(DType::F32)?;
    if let Some(w) = window {
        vis = (vis * d.lt(w as f64)?.to_dtype(DType::F32)?)?;
    }
    Ok(Some(vis.log()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::Rope;

    fn cache_with(positions: &[i64], kv_heads: usize) -> KvCache {
        let dev = Device::Cpu;
        let mut c = KvCache::new(1, kv_heads, 4, DType::F32, &dev, Rope::new(4, 1e4));
        let n = positions.len();
        let k = Tensor::zeros((kv_heads, n, 4), DType::F32, &dev).unwrap();
        c.append(0, &k, &k, positions).unwrap();
        c
    }

    fn same(a: Option<Tensor>, b: Option<Tensor>) {
        match (a, b) {
            (None, None) => {}
            (Some(a), Some(b)) => {
                assert_eq!(a.dims(), b.dims());
                let a: Vec<f32> = a.flatten_all().unwrap().to_vec1().unwrap();
                let b: Vec<f32> = b.flatten_all().unwrap().to_vec1().unwrap();
                assert_eq!(a, b);
            }
            (a, b) => panic!("mask {:?} vs {:?}", a.is_some(), b.is_some()),
        }
    }

    /// Prefill after a cached prefix, windows, decode, and per-head
    /// positions after eviction: the device construction (run here on the
    /// CPU) equals the host one, and both agree with `needs_mask`.
    #[test]
    fn device_mask_equals_host_mask() {
        let dev = Device::Cpu;
        let prefix: Vec<i64> = (0..6).collect();
        let mut per_head = cache_with(&(0..10).collect::<Vec<_>>(), 2);
        per_head
            .gather_heads(0, &[vec![0, 3, 5, 9], vec![1, 2, 8, 9]])
            .unwrap();
        let cases: Vec<(KvCache, Vec<i64>, Option<usize>)> = vec![
            (cache_with(&prefix, 1), vec![4, 5], None),
            (cache_with(&prefix, 1), vec![5], None),
            (cache_with(&prefix, 1), vec![5], Some(3)),
            (cache_with(&prefix, 2), vec![3, 4, 5], Some(2)),
            (per_head, vec![7, 9], None),
        ];
        for (cache, q, w) in cases {
            let host = build_mask(&q, &cache, 0, w, &dev).unwrap();
            let on_dev = device_mask(&q, &cache, 0, w, &dev).unwrap();
            assert_eq!(host.is_some(), needs_mask(&q, &cache, 0, w), "{q:?} {w:?}");
            same(host, on_dev);
        }
    }
}
