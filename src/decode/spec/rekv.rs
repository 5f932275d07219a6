//! ReKV instrumentation (seed 000): at every rejection, how close is the
//! rejected token's K/V to the ground truth at its position, i.e. the
//! target's K/V of the token actually emitted there?
//!
//! - `same_model`: the target's own K/V of the rejected token (computed by
//!   the verification forward; read before the rollback) vs the target's
//!   K/V of the emitted token (written by the next forward, so the rejected
//!   rows wait in `Pending` until then), same layer and head.
//! - `cross_model`: the draft model's K/V of the rejected token vs the
//!   target's of the emitted one, draft layer i against target layer
//!   `round(i·(Lt−1)/(Ld−1))`, the first `min(kv_heads)` heads and, when the
//!   head dims differ, the first `min(head_dim)` dims (`head_dim_mismatch`).
//!   Self-speculation maps its layers to themselves.
//!
//! Off by default; when off nothing is read or kept.

use crate::error::Result;
use crate::kv::KvCache;
use candle_core::DType;

/// One layer's K and V of one position, `[kv_heads * head_dim]` each.
#[derive(Debug, Clone)]
pub struct LayerRows {
    pub k: Vec<f32>,
    pub v: Vec<f32>,
}

/// Per layer (None where the layer holds no entry at that position).
#[derive(Debug, Clone)]
pub struct KvRows {
    pub layers: Vec<Option<LayerRows>>,
    pub kv_heads: usize,
    pub head_dim: usize,
}

/// The K/V rows of the entry at absolute position `pos`, per layer; None
/// when no layer holds it.
pub fn kv_at(cache: &KvCache, pos: i64) -> Result<Option<KvRows>> {
    let mut layers = Vec::with_capacity(cache.n_layers());
    for l in 0..cache.n_layers() {
        let idx = cache.positions(l).iter().rposition(|&p| p == pos);
        layers.push(match idx {
            Some(i) => {
                let get = |t: candle_core::Tensor| -> Result<Vec<f32>> {
                    Ok(t.narrow(1, i, 1)?
                        .to_dtype(DType::F32)?
                        .flatten_all()?
                        .to_vec1()?)
                };
                Some(LayerRows {
                    k: get(cache.k_view(l)?)?,
                    v: get(cache.v_view(l)?)?,
                })
            }
            None => None,
        });
    }
    if layers.iter().all(|l| l.is_none()) {
        return Ok(None);
    }
    Ok(Some(KvRows {
        layers,
        kv_heads: cache.kv_heads(),
        head_dim: cache.head_dim(),
    }))
}

/// One rejection compared at one (layer, head): the `rejections` table row.
#[derive(Debug, Clone, PartialEq)]
pub struct RekvEvent {
    /// Set by the caller (0 from the library).
    pub sample: usize,
    pub round: usize,
    /// Window position of the rejected token (0 = first drafted).
    pub window_pos: usize,
    pub abs_pos: usize,
    pub draft_token: u32,
    pub target_token: u32,
    /// The draft's probability of the token it drafted.
    pub draft_conf: f32,
    /// 1-based rank of the drafted token under the target's logits.
    pub target_rank: usize,
    pub layer_draft: usize,
    pub layer_target: usize,
    pub head: usize,
    pub cos_k: f32,
    pub cos_v: f32,
    pub l2_k: f32,
    pub l2_v: f32,
    /// "same_model" or "cross_model".
    pub mode: &'static str,
    /// The draft's head_dim differs: only the first min(head_dim) dims compared.
    pub head_dim_mismatch: bool,
}

/// A rejection waiting for the emitted token's K/V.
pub(crate) struct Pending {
    pub round: usize,
    pub window_pos: usize,
    pub abs_pos: usize,
    pub draft_token: u32,
    pub draft_conf: f32,
    pub target_rank: usize,
    /// The target's K/V of the rejected token.
    pub target_rejected: KvRows,
    /// The draft's (cross_model), with the draft's layer count for the
    /// proportional mapping (None: self-speculation, identity).
    pub draft_rejected: Option<(KvRows, Option<usize>)>,
}

/// `round(i·(lt−1)/(ld−1))` (draft layer -> target layer).
pub fn map_layer(i: usize, ld: usize, lt: usize) -> usize {
    if ld <= 1 {
        return 0;
    }
    ((i * (lt - 1)) as f64 / (ld - 1) as f64).round() as usize
}

fn cos_l2(a: &[f32], b: &[f32]) -> (f32, f32) {
    let (mut dot, mut na, mut nb, mut d2) = (0f64, 0f64, 0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (x as f64, y as f64);
        dot += x * y;
        na += x * x;
        nb += y * y;
        d2 += (x - y) * (x - y);
    }
    let cos = if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        (dot / (na.sqrt() * nb.sqrt())).clamp(-1.0, 1.0)
    };
    (cos as f32, d2.sqrt() as f32)
}

fn head(rows: &[f32], h: usize, hd: usize, dims: usize) -> &[f32] {
    &rows[h * hd..h * hd + dims]
}

impl Pending {
    /// Compares against the target's K/V of the emitted token `truth`.
    pub fn resolve(&self, truth: &KvRows, target_token: u32, out: &mut Vec<RekvEvent>) {
        let lt = truth.layers.len();
        let mut push =
            |mode, ld_i: usize, lt_i: usize, a: &LayerRows, a_hd: usize, a_heads: usize| {
                let Some(Some(b)) = truth.layers.get(lt_i) else {
                    return;
                };
                let dims = a_hd.min(truth.head_dim);
                for h in 0..a_heads.min(truth.kv_heads) {
                    let (cos_k, l2_k) = cos_l2(
                        head(&a.k, h, a_hd, dims),
                        head(&b.k, h, truth.head_dim, dims),
                    );
                    let (cos_v, l2_v) = cos_l2(
                        head(&a.v, h, a_hd, dims),
                        head(&b.v, h, truth.head_dim, dims),
                    );
                    out.push(RekvEvent {
                        sample: 0,
                        round: self.round,
                        window_pos: self.window_pos,
                        abs_pos: self.abs_pos,
                        draft_token: self.draft_token,
                        target_token,
                        draft_conf: self.draft_conf,
                        target_rank: self.target_rank,
                        layer_draft: ld_i,
                        layer_target: lt_i,
                        head: h,
                        cos_k,
                        cos_v,
                        l2_k,
                        l2_v,
                        mode,
                        head_dim_mismatch: a_hd != truth.head_dim,
                    });
                }
            };
        let tr = &self.target_rejected;
        for (l, rows) in tr.layers.iter().enumerate() {
            if let Some(a) = rows {
                push("same_model", l, l, a, tr.head_dim, tr.kv_heads);
            }
        }
        if let Some((d, ld)) = &self.draft_rejected {
            for (l, rows) in d.layers.iter().enumerate() {
                if let Some(a) = rows {
                    let to = ld.map_or(l, |ld| map_layer(l, ld, lt));
                    push("cross_model", l, to, a, d.head_dim, d.kv_heads);
                }
            }
        }
    }
}

/// 1-based rank of `tok` under `logits` (1 + the number of larger logits).
pub fn rank_of(logits: &[f32], tok: u32) -> usize {
    let v = logits[tok as usize];
    1 + logits.iter().filter(|&&x| x > v).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_mapping_and_metrics() {
        assert_eq!(map_layer(0, 16, 32), 0);
        assert_eq!(map_layer(15, 16, 32), 31);
        assert_eq!(map_layer(7, 16, 32), 14); // 7*31/15 = 14.47
        assert_eq!(map_layer(1, 2, 3), 2);
        let (c, l2) = cos_l2(&[1.0, 0.0], &[2.0, 0.0]);
        assert!((c - 1.0).abs() < 1e-6 && (l2 - 1.0).abs() < 1e-6);
        let (c, _) = cos_l2(&[1.0, 0.0], &[-1.0, 0.0]);
        assert!((c + 1.0).abs() < 1e-6);
        assert_eq!(rank_of(&[0.1, 0.5, 0.3], 2), 2);
        assert_eq!(rank_of(&[0.1, 0.5, 0.3], 1), 1);
    }

    #[test]
    fn head_dim_mismatch_compares_the_common_dims() {
        let truth = KvRows {
            layers: vec![Some(LayerRows {
                k: vec![1.0, 0.0, 5.0, 0.0, 1.0, 7.0],
                v: vec![1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
            })],
            kv_heads: 2,
            head_dim: 3,
        };
        let rej = KvRows {
            layers: vec![Some(LayerRows {
                k: vec![2.0, 0.0, 0.0, 3.0],
                v: vec![1.0, 1.0, -1.0, -1.0],
            })],
            kv_heads: 2,
            head_dim: 2,
        };
        let p = Pending {
            round: 0,
            window_pos: 0,
            abs_pos: 5,
            draft_token: 1,
            draft_conf: 0.5,
            target_rank: 2,
            target_rejected: truth.clone(),
            draft_rejected: Some((rej, Some(1))),
        };
        let mut ev = vec![];
        p.resolve(&truth, 2, &mut ev);
        let same: Vec<_> = ev.iter().filter(|e| e.mode == "same_model").collect();
        let cross: Vec<_> = ev.iter().filter(|e| e.mode == "cross_model").collect();
        assert_eq!((same.len(), cross.len()), (2, 2));
        assert!(same
            .iter()
            .all(|e| e.cos_k > 0.9999 && e.l2_k == 0.0 && !e.head_dim_mismatch));
        // head 0: [2,0] vs [1,0] -> cos 1; head 1: [0,3] vs [0,1] -> cos 1.
        assert!(cross
            .iter()
            .all(|e| (e.cos_k - 1.0).abs() < 1e-6 && e.head_dim_mismatch));
        assert!((cross[1].cos_v + 1.0).abs() < 1e-6);
    }
}
