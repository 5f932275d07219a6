//! One-off `kvlab generate` and `kvlab perplexity`, outside pipelines, with the
//! same engine; unspecified options take the defaults of stages/<kind>.toml.

use kvlab::decode::generate::{generate, GenerateOpts};
use kvlab::error::input_err;
use kvlab::eval::perplexity::perplexity;
use kvlab::model_source::{invalid_dtype, load_model, resolve_model};
use kvlab::tokenizer::{ChatMessage, Tokenizer};
use std::path::{Path, PathBuf};

/// `given`, or the default of `key` in `stages/<kind>.toml` (the only place
/// defaults live; a missing or mistyped default is a bug in that file).
pub(crate) fn or_default<T: serde::de::DeserializeOwned>(
    given: Option<T>,
    kind: &str,
    key: &str,
) -> anyhow::Result<T> {
    if let Some(v) = given {
        return Ok(v);
    }
    let k = kvlab::stages::find(kind).expect("registered stage kind");
    let value = k
        .defaults()?
        .get(key)
        .cloned()
        .unwrap_or_else(|| panic!("stages/{kind}.toml lacks {key}"));
    Ok(value.try_into()?)
}

pub(crate) fn gguf_of(path: &Path) -> anyhow::Result<PathBuf> {
    if path.is_dir() {
        anyhow::bail!(input_err(path.display(), "--model", "generate/perplexity need a GGUF (its tokenizer); HF directories are loaded by the engine API only"));
    }
    Ok(path.to_path_buf())
}

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
    pub json: bool,
    pub spec: super::spec_flags::SpecFlags,
}

/// Bad `--dtype` / `--kv-dtype` values, named as flags before any loading.
fn check_dtype_flags(dtype: &str, kv_dtype: &str) -> anyhow::Result<()> {
    match invalid_dtype(dtype, kv_dtype) {
        Some((field, msg)) => {
            let flag = format!("--{}", field.replace('_', "-"));
            anyhow::bail!(input_err("command line", flag, msg))
        }
        None => Ok(()),
    }
}

pub fn generate_cmd(store: &Path, a: GenerateArgs) -> anyhow::Result<i32> {
    let path = gguf_of(&resolve_model(&a.model, store)?)?;
    let dtype: String = or_default(a.dtype, "generate", "dtype")?;
    let kv_dtype: String = or_default(a.kv_dtype, "generate", "kv_dtype")?;
    check_dtype_flags(&dtype, &kv_dtype)?;
    let spec = a.spec.resolve(store)?;
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
    let model = load_model(&path, &dtype, &kv_dtype)?;
    let stop_ids = if a.prompt_ids_file.is_some() {
        vec![]
    } else {
        tok.stop_ids()
    };
    if let Some(spec) = spec {
        let run = super::spec_flags::SpecRun {
            target: &model,
            target_path: &path,
            dtype: &dtype,
            kv_dtype: &kv_dtype,
            max_tokens,
            temperature,
            seed,
            stop_ids,
        };
        let (gen, extra) = run.generate(&spec, &prompt_ids)?;
        let text = tok.decode(&gen.new_ids)?;
        print_generation(
            a.json,
            &prompt_ids,
            &gen.new_ids,
            &text,
            gen.ttft_ms,
            gen.tpot_ms,
            &gen.stop_reason,
            &dtype,
            &kv_dtype,
            Some(extra),
        );
        return Ok(0);
    }
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
    let text = tok.decode(&gen.new_ids)?;
    print_generation(
        a.json,
        &prompt_ids,
        &gen.new_ids,
        &text,
        gen.ttft_ms,
        gen.tpot_ms,
        &gen.stop_reason,
        &dtype,
        &kv_dtype,
        None,
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
fn read_ids(f: &Path) -> anyhow::Result<Vec<u32>> {
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
    pub json: bool,
}

pub fn perplexity_cmd(store: &Path, a: PerplexityArgs) -> anyhow::Result<i32> {
    let path = gguf_of(&resolve_model(&a.model, store)?)?;
    let window: usize = or_default(a.window, "perplexity", "window")?;
    let stride = a.stride.unwrap_or(window);
    let max_windows: usize = or_default(a.max_windows, "perplexity", "max_windows")?;
    let dtype: String = or_default(a.dtype, "perplexity", "dtype")?;
    let kv_dtype: String = or_default(a.kv_dtype, "perplexity", "kv_dtype")?;
    check_dtype_flags(&dtype, &kv_dtype)?;
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
    let model = load_model(&path, &dtype, &kv_dtype)?;
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
