//! One-off `kvlab generate` and `kvlab perplexity`, outside pipelines, with the
//! same engine; unspecified options take the defaults of stages/<kind>.toml.

use super::gguf_path::gguf_of;
use super::stage_defaults::or_default;
use kvlab::decode::generate::{generate, GenerateOpts};
use kvlab::error::input_err;
use kvlab::eval::perplexity::perplexity;
use kvlab::model_source::{invalid_load, load_model, resolve_model};
use kvlab::tokenizer::{ChatMessage, Tokenizer};
use std::path::{Path, PathBuf};

pub struct GenerateArgs {
    pub model: String,
    pub prompt: Option<String>,
    pub prompt_ids_file: Option<PathBuf>,
    pub chat: bool,
    pub max_tokens: Option<usize>,
    pub temperature: Option<f64>,
    pub seed: Option<u64>,
    pub dtype: Option<String>,
    pub kv_dtype: Option<String>,
    pub device: Option<String>,
    pub json: bool,
    pub spec: super::spec_flags::SpecFlags,
    pub press: super::press_flags::PressFlags,
}

/// Bad `--dtype` / `--kv-dtype` / `--device` values (CUDA in a CPU-only
/// build too), named as flags before any loading.
pub(crate) fn check_load_flags(dtype: &str, kv_dtype: &str, device: &str) -> anyhow::Result<()> {
    match invalid_load(dtype, kv_dtype, device) {
        Some((field, msg)) => {
            let flag = format!("--{}", field.replace('_', "-"));
            anyhow::bail!(input_err("command line", flag, msg))
        }
        None => Ok(()),
    }
}

pub fn generate_cmd(store: &Path, a: GenerateArgs) -> anyhow::Result<i32> {
    let dtype: String = or_default(a.dtype, "generate", "dtype")?;
    let kv_dtype: String = or_default(a.kv_dtype, "generate", "kv_dtype")?;
    let device: String = or_default(a.device, "generate", "device")?;
    check_load_flags(&dtype, &kv_dtype, &device)?;
    let path = gguf_of(&resolve_model(&a.model, store)?)?;
    let spec = a.spec.resolve(store)?;
    let press = a
        .press
        .resolve(or_default(None, "press_eval", "press_every")?)?;
    let max_tokens: usize = or_default(a.max_tokens, "generate", "max_new_tokens")?;
    let temperature: f64 = or_default(a.temperature, "generate", "temperature")?;
    let seed: u64 = or_default(a.seed, "generate", "seed")?;
    let tok = Tokenizer::from_gguf_file(&path)?;
    let prompt_ids = match (&a.prompt, &a.prompt_ids_file) {
        (_, Some(f)) => read_ids(f)?,
        (Some(text), None) => {
            let text = if a.chat {
                tok.apply_chat_template(
                    &[ChatMessage {
                        role: "user".into(),
                        content: text.clone(),
                    }],
                    true,
                )?
            } else {
                text.clone()
            };
            tok.encode_for_model(&text)?
        }
        (None, None) => anyhow::bail!(input_err(
            "command line",
            "--prompt",
            "give --prompt TEXT or --prompt-ids-file FILE"
        )),
    };
    let model = load_model(&path, &dtype, &kv_dtype, &device)?;
    let stop_ids = if a.prompt_ids_file.is_some() {
        vec![]
    } else {
        tok.stop_ids()
    };
    if let Some(p) = press {
        if spec.is_some() || temperature != 0.0 {
            anyhow::bail!(input_err(
                "command line",
                "--press",
                "compressed generation is greedy and without speculation"
            ));
        }
        // Prefill, compress, then decode greedily against the compressed cache.
        let t = std::time::Instant::now();
        let inputs = kvlab::eval::press_run::PressInputs {
            anchors: Some(anchor_flags(&tok, &prompt_ids)),
            repeat_prompt: Some(repeat_prompt(&tok)?),
        };
        let ans = kvlab::eval::press_qa::answer(
            "command line",
            &model,
            &prompt_ids,
            &[],
            &p.press,
            &p.budget,
            &inputs,
            false,
            max_tokens,
            &stop_ids,
        )?;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        let text = tok.decode(&ans.new_ids)?;
        let extra = serde_json::json!({
            "press": p.name, "ratio": p.ratio,
            "bytes_before": ans.bytes_before, "bytes_after": ans.bytes_after,
            "total_ms": ms,
        });
        if a.json {
            let mut v = serde_json::json!({
                "prompt_ids": prompt_ids, "new_ids": ans.new_ids, "text": text,
                "dtype": dtype, "kv_dtype": kv_dtype,
            });
            if let (serde_json::Value::Object(m), serde_json::Value::Object(e)) = (&mut v, extra) {
                m.extend(e);
            }
            println!("{v}");
        } else {
            println!("{text}");
            eprintln!(
                "{} prompt tokens, {} new; press {} ratio {}: cache {} -> {} bytes",
                prompt_ids.len(),
                ans.new_ids.len(),
                p.name,
                p.ratio,
                ans.bytes_before,
                ans.bytes_after
            );
        }
        return Ok(0);
    }
    let (new_ids, ttft_ms, tpot_ms, stop_reason, extra) = if let Some(spec) = spec {
        let run = super::spec_flags::SpecRun {
            target: &model,
            target_path: &path,
            dtype: &dtype,
            kv_dtype: &kv_dtype,
            device: &device,
            max_tokens,
            temperature,
            seed,
            stop_ids,
        };
        let (gen, extra) = run.generate(&spec, &prompt_ids)?;
        (
            gen.new_ids,
            gen.ttft_ms,
            gen.tpot_ms,
            gen.stop_reason,
            Some(extra),
        )
    } else {
        let gen = generate(
            &model,
            &prompt_ids,
            &GenerateOpts {
                max_new_tokens: max_tokens,
                temperature,
                seed,
                stop_ids,
            },
        )?;
        (gen.new_ids, gen.ttft_ms, gen.tpot_ms, gen.stop_reason, None)
    };
    let text = tok.decode(&new_ids)?;
    print_generation(
        a.json,
        &prompt_ids,
        &new_ids,
        &text,
        ttft_ms,
        tpot_ms,
        &stop_reason,
        &dtype,
        &kv_dtype,
        extra,
    );
    Ok(0)
}

#[allow(clippy::too_many_arguments)]
fn print_generation(
    json: bool,
    prompt_ids: &[u32],
    new_ids: &[u32],
    text: &str,
    ttft_ms: f64,
    tpot_ms: f64,
    stop_reason: &str,
    dtype: &str,
    kv_dtype: &str,
    spec: Option<serde_json::Value>,
) {
    if json {
        let mut v = serde_json::json!({
            "prompt_ids": prompt_ids,
            "new_ids": new_ids,
            "text": text,
            "ttft_ms": ttft_ms,
            "tpot_ms": tpot_ms,
            "stop_reason": stop_reason,
            "dtype": dtype,
            "kv_dtype": kv_dtype,
        });
        if let (Some(serde_json::Value::Object(extra)), serde_json::Value::Object(m)) =
            (&spec, &mut v)
        {
            m.extend(extra.clone());
        }
        println!("{v}");
    } else {
        println!("{text}");
        eprintln!(
            "{} prompt tokens, {} new; ttft {:.1} ms, tpot {:.2} ms",
            prompt_ids.len(),
            new_ids.len(),
            ttft_ms,
            tpot_ms
        );
        if let Some(s) = spec {
            eprintln!(
                "speculative: drafted {}, accepted {}, acceptance rate {:.3}, mean accepted length {:.2}",
                s["drafted"], s["accepted"], s["acceptance_rate"].as_f64().unwrap_or(0.0),
                s["mean_accepted_len"].as_f64().unwrap_or(0.0)
            );
        }
    }
}

/// Token ids as JSON (`[1, 2, 3]`) or whitespace-separated integers.
pub(crate) fn read_ids(f: &Path) -> anyhow::Result<Vec<u32>> {
    let s =
        std::fs::read_to_string(f).map_err(|e| input_err(f.display(), "--prompt-ids-file", e))?;
    if let Ok(v) = serde_json::from_str::<Vec<u32>>(&s) {
        return Ok(v);
    }
    s.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|x| !x.is_empty())
        .map(|x| {
            x.parse::<u32>().map_err(|_| {
                input_err(
                    f.display(),
                    "--prompt-ids-file",
                    format!("'{x}' is not a token id"),
                )
                .into()
            })
        })
        .collect()
}

pub struct PerplexityArgs {
    pub model: String,
    pub text: PathBuf,
    pub window: Option<usize>,
    pub stride: Option<usize>,
    pub max_windows: Option<usize>,
    pub dtype: Option<String>,
    pub kv_dtype: Option<String>,
    pub device: Option<String>,
    pub json: bool,
    pub press: super::press_flags::PressFlags,
}

/// Special or punctuation per id: the anchors of anchor rules A and C.
fn anchor_flags(tok: &Tokenizer, ids: &[u32]) -> Vec<bool> {
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
fn repeat_prompt(tok: &Tokenizer) -> anyhow::Result<Vec<u32>> {
    Ok([
        tok.encode("\n\nRepeat the previous context exactly.")?,
        tok.encode("\n")?,
    ]
    .concat())
}

pub fn perplexity_cmd(store: &Path, a: PerplexityArgs) -> anyhow::Result<i32> {
    let window: usize = or_default(a.window, "perplexity", "window")?;
    let stride = a.stride.unwrap_or(window);
    let max_windows: usize = or_default(a.max_windows, "perplexity", "max_windows")?;
    let dtype: String = or_default(a.dtype, "perplexity", "dtype")?;
    let kv_dtype: String = or_default(a.kv_dtype, "perplexity", "kv_dtype")?;
    let device: String = or_default(a.device, "perplexity", "device")?;
    check_load_flags(&dtype, &kv_dtype, &device)?;
    let path = gguf_of(&resolve_model(&a.model, store)?)?;
    if window < 2 || stride == 0 || stride > window {
        anyhow::bail!(input_err(
            "command line",
            "--window/--stride",
            format!("need window >= 2 and 0 < stride <= window, got {window}/{stride}")
        ));
    }
    let text =
        std::fs::read_to_string(&a.text).map_err(|e| input_err(a.text.display(), "--text", e))?;
    let tok = Tokenizer::from_gguf_file(&path)?;
    let ids = tok.encode(&text)?;
    if ids.len() < window {
        anyhow::bail!(input_err(
            a.text.display(),
            "--window",
            format!(
                "the text has {} tokens, fewer than one window of {window}",
                ids.len()
            )
        ));
    }
    let press = a
        .press
        .resolve(or_default(None, "press_eval", "press_every")?)?;
    let model = load_model(&path, &dtype, &kv_dtype, &device)?;
    if let Some(p) = press {
        // Compressed-cache protocol: each window's first half prefilled and
        // compressed, its second half scored (--stride is not used).
        let spec = kvlab::eval::compressed_perplexity::PressSpec {
            press: &p.press,
            budget: &p.budget,
            press_every: p.press_every,
            inputs: kvlab::eval::press_run::PressInputs {
                anchors: None,
                repeat_prompt: Some(repeat_prompt(&tok)?),
            },
        };
        let r = kvlab::eval::compressed_perplexity::compressed_perplexity(
            "command line",
            &model,
            &ids,
            window,
            max_windows,
            Some(&spec),
        )
        .map_err(|e| match e {
            kvlab::Error::Input { field, msg, .. } => {
                let flag = if field == "ratio" {
                    "--ratio".to_string()
                } else {
                    format!("--{}", field.replace('_', "-"))
                };
                anyhow::Error::from(input_err("command line", flag, msg))
            }
            e => e.into(),
        })?;
        let after = r.bytes_after.iter().sum::<usize>() / r.bytes_after.len().max(1);
        let before = r.bytes_before.iter().sum::<usize>() / r.bytes_before.len().max(1);
        if a.json {
            println!(
                "{}",
                serde_json::json!({ "ppl": r.ppl, "tokens": r.tokens, "windows": r.nll_per_window.len(), "window": window, "press": p.name, "ratio": p.ratio, "press_every": p.press_every.unwrap_or(0), "bytes_before": before, "bytes_after": after, "dtype": dtype, "kv_dtype": kv_dtype })
            );
        } else {
            println!("ppl {:.4}", r.ppl);
            println!("tokens {}", r.tokens);
            println!("bytes {before} -> {after}");
        }
        return Ok(0);
    }
    let r = perplexity(&model, &ids, window, stride, max_windows)?;
    if a.json {
        println!(
            "{}",
            serde_json::json!({ "ppl": r.ppl, "tokens": r.tokens, "windows": r.nll_per_window.len(), "window": window, "stride": stride, "dtype": dtype, "kv_dtype": kv_dtype })
        );
    } else {
        println!("ppl {:.4}", r.ppl);
        println!("tokens {}", r.tokens);
    }
    Ok(0)
}
