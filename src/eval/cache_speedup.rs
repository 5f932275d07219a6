//! KV-cache speedup: greedy generation with the cache (one token per step)
//! against recomputing the whole prefix every step (a fresh cache each
//! step). Both must emit the same tokens.

use std::time::Instant;

use crate::decode::generate::{generate, GenerateOpts};
use crate::decode::sampling::next_token;
use crate::error::{other, Result};
use crate::model::{ForwardOpts, Model};

#[derive(Debug, Clone, PartialEq)]
pub struct CacheSpeedup {
    pub new_tokens: usize,
    pub with_cache_s: f64,
    pub without_cache_s: f64,
    pub speedup: f64,
}

/// Greedy without a cache: every step runs prompt + generated so far.
pub fn generate_no_cache(model: &Model, prompt: &[u32], n: usize) -> Result<Vec<u32>> {
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(0);
    let mut ids = prompt.to_vec();
    for _ in 0..n {
        let pos: Vec<i64> = (0..ids.len() as i64).collect();
        let out = model.forward(&ids, &pos, &mut model.new_cache(), &ForwardOpts::default())?;
        ids.push(next_token(&out.logits.expect("last"), 0.0, &mut rng)?);
    }
    Ok(ids[prompt.len()..].to_vec())
}

pub fn cache_speedup(model: &Model, prompt: &[u32], n: usize) -> Result<CacheSpeedup> {
    let t = Instant::now();
    let g = generate(
        model,
        prompt,
        &GenerateOpts {
            max_new_tokens: n,
            temperature: 0.0,
            seed: 0,
            stop_ids: vec![],
        },
    )?;
    let with_cache_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let nc = generate_no_cache(model, prompt, n)?;
    let without_cache_s = t.elapsed().as_secs_f64();
    if nc != g.new_ids {
        // f32 rounding of batched vs incremental attention may flip a near
        // tie; report rather than hide it.
        let at = nc.iter().zip(&g.new_ids).position(|(a, b)| a != b);
        tracing::warn!("cache vs no-cache tokens differ first at {at:?}");
        if at == Some(0) {
            return Err(other(
                "cache and no-cache generation disagree on the first token",
            ));
        }
    }
    Ok(CacheSpeedup {
        new_tokens: n,
        with_cache_s,
        without_cache_s,
        speedup: without_cache_s / with_cache_s,
    })
}
