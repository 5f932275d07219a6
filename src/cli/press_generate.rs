//! `kvlab generate --press`: the two ways a press runs. Greedy plain
//! decoding without --press-every / --press-on prefills the prompt while
//! observing what the press needs (any press; `eval::press_qa`). Otherwise
//! (speculation, sampling, re-compression, a draft's cache) the press runs
//! through the decoder's hook (`decode::cache_press`), where only presses
//! that read the cache alone can run.

use super::press_flags::{as_flag_error, PressPlan};
use super::stage_defaults::or_default;
use kvlab::decode::cache_press::DecodePress;
use kvlab::error::input_err;
use kvlab::model::Model;
use kvlab::tokenizer::Tokenizer;

/// Special or punctuation per id: the anchors of anchor rules A and C.
pub fn anchor_flags(tok: &Tokenizer, ids: &[u32]) -> Vec<bool> {
    use kvlab::analysis::token_type::{classify, is_anchor};
    ids.iter()
        .map(|&i| {
            is_anchor(classify(
                &tok.token_text(i).unwrap_or_default(),
                tok.is_special(i),
            ))
        })
        .collect()
}

/// kvzip's repeat prompt (kvpress's, for a model without a chat template).
pub fn repeat_prompt(tok: &Tokenizer) -> anyhow::Result<Vec<u32>> {
    Ok([
        tok.encode("\n\nRepeat the previous context exactly.")?,
        tok.encode("\n")?,
    ]
    .concat())
}

/// The hook's settings from the flags (--press-on defaults to stages/generate.toml).
pub fn decode_press(p: &PressPlan) -> anyhow::Result<DecodePress> {
    let Some(ratio) = p.ratio else {
        return Err(input_err(
            "command line",
            "--press-budget",
            "a press during decoding takes --ratio (a token budget only after prefill)",
        )
        .into());
    };
    let d = DecodePress {
        name: p.name.clone(),
        ratio,
        on: or_default(p.press_on.clone(), "generate", "press_on")?,
        every: p.press_every.unwrap_or(0),
    };
    d.check()
        .map_err(|(f, m)| as_flag_error(input_err("command line", f, m)))?;
    Ok(d)
}

/// A hooked generation's error, naming flags for input errors.
pub fn flag_error(e: anyhow::Error) -> anyhow::Error {
    match e.downcast::<kvlab::Error>() {
        Ok(k) => as_flag_error(k),
        Err(e) => e,
    }
}

/// Adds the press and the cache bytes held at the end to `--json`'s object.
pub fn add_bytes(extra: &mut serde_json::Value, d: &Option<DecodePress>, kv: usize, draft: usize) {
    if let (Some(d), serde_json::Value::Object(m)) = (d, extra) {
        m.extend([
            ("press".to_string(), serde_json::json!(d.name)),
            ("ratio".to_string(), serde_json::json!(d.ratio)),
            ("press_on".to_string(), serde_json::json!(d.on)),
            ("press_every".to_string(), serde_json::json!(d.every)),
            ("kv_bytes".to_string(), serde_json::json!(kv)),
            ("draft_kv_bytes".to_string(), serde_json::json!(draft)),
        ]);
    }
}

pub struct QaRun<'a> {
    pub json: bool,
    pub tok: &'a Tokenizer,
    pub model: &'a Model,
    pub prompt_ids: &'a [u32],
    pub stop_ids: &'a [u32],
    pub max_tokens: usize,
    pub dtype: &'a str,
    pub kv_dtype: &'a str,
}

/// Prefill, compress, then decode greedily against the compressed cache.
pub fn press_qa_generate(r: &QaRun, p: &PressPlan) -> anyhow::Result<i32> {
    let t = std::time::Instant::now();
    let inputs = kvlab::eval::press_run::PressInputs {
        anchors: Some(anchor_flags(r.tok, r.prompt_ids)),
        repeat_prompt: Some(repeat_prompt(r.tok)?),
    };
    let ans = kvlab::eval::press_qa::answer(
        "command line",
        r.model,
        r.prompt_ids,
        &[],
        &p.press,
        &p.budget,
        &inputs,
        false,
        r.max_tokens,
        r.stop_ids,
    )
    .map_err(as_flag_error)?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    let text = r.tok.decode(&ans.new_ids)?;
    if r.json {
        let v = serde_json::json!({
            "prompt_ids": r.prompt_ids, "new_ids": ans.new_ids, "text": text,
            "dtype": r.dtype, "kv_dtype": r.kv_dtype,
            "press": p.name, "ratio": p.ratio, "budget": p.budget_tokens,
            "bytes_before": ans.bytes_before, "bytes_after": ans.bytes_after,
            "total_ms": ms,
        });
        println!("{v}");
    } else {
        println!("{text}");
        eprintln!(
            "{} prompt tokens, {} new; press {} ({}): cache {} -> {} bytes",
            r.prompt_ids.len(),
            ans.new_ids.len(),
            p.name,
            match (p.ratio, p.budget_tokens) {
                (Some(x), _) => format!("ratio {x}"),
                (None, Some(n)) => format!("budget {n}"),
                _ => String::new(),
            },
            ans.bytes_before,
            ans.bytes_after
        );
    }
    Ok(0)
}
