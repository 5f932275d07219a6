//! Needle in a haystack: one planted fact at a given depth of an essay context.

use super::haystack::{haystack, ChunkRef};
use super::sample::{Sample, TokenCounter};
use super::word_lists::CITIES;
use crate::error::Result;
use rand::Rng;

pub fn needle_samples(
    chunks: &[ChunkRef],
    lengths: &[i64],
    depths: &[f64],
    count: TokenCounter,
    rng: &mut impl Rng,
) -> Result<Vec<Sample>> {
    let mut out = Vec::new();
    for &len in lengths {
        for &depth in depths {
            let city = CITIES[rng.random_range(0..CITIES.len())];
            let number: u32 = rng.random_range(1_000_000..10_000_000);
            let needle = format!(
                "\nThe special magic number for {city} is {number}. Remember it: {number}.\n"
            );
            let n_needle = count(&needle)?;
            let mut ctx = haystack(chunks, (len as usize).saturating_sub(n_needle), rng);
            ctx.plant(depth, needle, "plant:needle".into(), n_needle);
            out.push(Sample {
                sample_id: format!("needle-{len}-{depth:.2}"),
                task: "needle".into(),
                context_tokens: len,
                depth: Some(depth),
                n_context_tokens: ctx.tokens() as i64,
                segments: ctx.segments,
                segment_ids: ctx.ids,
                question: format!("What is the special magic number for {city}?"),
                answers: vec![number.to_string()],
            });
        }
    }
    Ok(out)
}
