//! A chunk's KV computed alone (after an optional shared prefix) and its
//! per-token surprisal, from one forward.

use candle_core::{DType, D};

use super::layout::Segment;
use crate::error::Result;
use crate::kv::KvCache;
use crate::model::{ForwardOpts, Logits, Model};

/// Runs `ids` at positions `prefix_len..` after `prefix_kv` and keeps only
/// their entries. Surprisal `-ln p(x_t | x_<t)` within the chunk; 0 for its
/// first token (nothing of the chunk precedes it).
pub fn compute_alone(model: &Model, prefix_kv: Option<&KvCache>, ids: &[u32]) -> Result<Segment> {
    let mut cache = prefix_kv.cloned().unwrap_or_else(|| model.new_cache());
    let p = cache.len(0);
    if ids.is_empty() {
        return Ok(Segment {
            ids: vec![],
            kv: model.new_cache(),
            surprisal: vec![],
        });
    }
    let pos: Vec<i64> = (p..p + ids.len()).map(|x| x as i64).collect();
    let opts = ForwardOpts {
        logits: Logits::All,
        ..Default::default()
    };
    let out = model.forward(ids, &pos, &mut cache, &opts)?;
    let logits = out.logits.expect("logits requested");
    let logp = candle_nn::ops::log_softmax(&logits.to_dtype(DType::F32)?, D::Minus1)?;
    let logp = logp.to_vec2::<f32>()?;
    let mut surprisal = vec![0f32; ids.len()];
    for t in 1..ids.len() {
        surprisal[t] = -logp[t - 1][ids[t] as usize];
    }
    if p > 0 {
        let keep: Vec<usize> = (p..p + ids.len()).collect();
        cache.gather_all(&keep)?;
    }
    Ok(Segment {
        ids: ids.to_vec(),
        kv: cache,
        surprisal,
    })
}
