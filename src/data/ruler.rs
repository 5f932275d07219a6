//! RULER-style synthetic tasks over the essays, seeded and deterministic:
//! single / multi-key / multi-value needles, variable tracking and
//! common-word extraction.

use super::haystack::{haystack, ChunkRef, Context};
use super::sample::{Sample, TokenCounter};
use super::word_lists::{ADJECTIVES, NOUNS, WORDS};
use crate::error::{other, Result};
use rand::seq::SliceRandom;
use rand::Rng;

pub const TASKS: &[&str] = &["niah_single", "niah_multikey", "niah_multivalue", "variable_tracking", "common_words"];

fn key(rng: &mut impl Rng) -> String {
    format!("{}-{}", ADJECTIVES[rng.random_range(0..ADJECTIVES.len())], NOUNS[rng.random_range(0..NOUNS.len())])
}

fn value(rng: &mut impl Rng) -> String {
    rng.random_range(1_000_000u32..10_000_000).to_string()
}

fn needle_text(k: &str, v: &str) -> String {
    format!("\nOne of the special magic numbers for {k} is: {v}.\n")
}

/// Plant `texts` at evenly spread depths of an essay context of `len` tokens.
fn planted(chunks: &[ChunkRef], len: usize, texts: &[String], tag: &str, count: TokenCounter, rng: &mut impl Rng) -> Result<Context> {
    let sizes: Vec<usize> = texts.iter().map(|t| count(t)).collect::<Result<_>>()?;
    let mut ctx = haystack(chunks, len.saturating_sub(sizes.iter().sum()), rng);
    let n = texts.len();
    for (i, (t, s)) in texts.iter().zip(sizes).enumerate() {
        let depth = (i as f64 + rng.random::<f64>()) / n as f64;
        ctx.plant(depth, t.clone(), format!("plant:{tag}{i}"), s);
    }
    Ok(ctx)
}

pub fn ruler_sample(task: &str, idx: usize, chunks: &[ChunkRef], len: i64, count: TokenCounter, rng: &mut impl Rng) -> Result<Sample> {
    let l = len as usize;
    let (ctx, question, answers) = match task {
        "niah_single" => {
            let (k, v) = (key(rng), value(rng));
            let ctx = planted(chunks, l, &[needle_text(&k, &v)], "needle", count, rng)?;
            (ctx, format!("What is the special magic number for {k} mentioned in the provided text?"), vec![v])
        }
        "niah_multikey" => {
            let keys: Vec<String> = (0..4).map(|_| key(rng)).collect();
            let vals: Vec<String> = (0..4).map(|_| value(rng)).collect();
            let texts: Vec<String> = keys.iter().zip(&vals).map(|(k, v)| needle_text(k, v)).collect();
            let ask = rng.random_range(0..4);
            let ctx = planted(chunks, l, &texts, "needle", count, rng)?;
            (ctx, format!("What is the special magic number for {} mentioned in the provided text?", keys[ask]), vec![vals[ask].clone()])
        }
        "niah_multivalue" => {
            let k = key(rng);
            let vals: Vec<String> = (0..4).map(|_| value(rng)).collect();
            let texts: Vec<String> = vals.iter().map(|v| needle_text(&k, v)).collect();
            let ctx = planted(chunks, l, &texts, "needle", count, rng)?;
            (ctx, format!("What are all the special magic numbers for {k} mentioned in the provided text?"), vals)
        }
        "variable_tracking" => {
            let v = value(rng);
            let mut names: Vec<String> = Vec::new();
            while names.len() < 5 {
                let n: String = (0..5).map(|_| (b'A' + rng.random_range(0..26u8)) as char).collect();
                if !names.contains(&n) {
                    names.push(n);
                }
            }
            let mut texts = vec![format!("\nVAR {} = {v}\n", names[0])];
            for w in names.windows(2) {
                texts.push(format!("\nVAR {} = VAR {}\n", w[1], w[0]));
            }
            let ctx = planted(chunks, l, &texts, "var", count, rng)?;
            (ctx, format!("Find all variables that are assigned the value {v} in the text above."), names)
        }
        "common_words" => common_words(l, count, rng)?,
        _ => return Err(other(format!("unknown RULER task {task}"))),
    };
    Ok(Sample {
        sample_id: format!("{task}-{len}-{idx:03}"),
        task: task.into(),
        context_tokens: len,
        depth: None,
        n_context_tokens: ctx.tokens() as i64,
        segments: ctx.segments,
        segment_ids: ctx.ids,
        question,
        answers,
    })
}

/// A numbered word list in which 10 common words each occur `freq` times
/// and the other words fewer; `freq` starts at 30 (RULER's setting) and
/// shrinks until the list fits the budget. The answer is the 10 common words.
fn common_words(len: usize, count: TokenCounter, rng: &mut impl Rng) -> Result<(Context, String, Vec<String>)> {
    let mut pool: Vec<&str> = WORDS.to_vec();
    pool.shuffle(rng);
    let (common, rare) = pool.split_at(10);
    let render = |ws: &[&str]| ws.iter().enumerate().map(|(i, w)| format!("{}. {w}", i + 1)).collect::<Vec<_>>().join(" ");
    let mut text = String::new();
    for freq in [30usize, 24, 20, 16, 12, 10, 8, 6, 5, 4] {
        let rare_freq = (freq / 10).clamp(1, 3);
        let mut words: Vec<&str> = Vec::new();
        for w in common {
            words.extend(std::iter::repeat_n(*w, freq));
        }
        for w in rare {
            words.extend(std::iter::repeat_n(*w, rare_freq));
        }
        words.shuffle(rng);
        text = render(&words);
        if count(&text)? <= len {
            break;
        }
    }
    let n = count(&text)?;
    let ctx = Context { segments: vec![text], ids: vec!["plant:words".into()], n_tok: vec![n] };
    let answers = common.iter().map(|w| w.to_string()).collect();
    Ok((ctx, "What are the 10 most common words in the above list?".into(), answers))
}
