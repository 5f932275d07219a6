//! One-off `kvlab generate` and `kvlab perplexity`, outside pipelines, with the
//! same engine; unspecified options take the defaults of stages/<kind>.toml.

use super::gguf_path::gguf_of;
use super::stage_defaults::or_default;
use kvlab::decode::generate::{generate_with, GenerateOpts};
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
        .resolve(or_default(None, "generate", "press_every")?)?;
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
    // A press with speculation, sampling, --press-every or --press-on runs
    // through the decoder's press hook (cache-only presses); otherwise the
    // prompt is prefilled with what the press observes (any press).
    let hooked = press.as_ref().is_some_and(|p| {
        spec.is_some() || temperature != 0.0 || p.press_every.is_some() || p.press_on.is_some()
    });
    if let Some(p) = press.as_ref().filter(|_| !hooked) {
        kvlab::eval::press_run::check(
            "command line",
            &p.press,
            &p.budget,
            prompt_ids.len(),
            model.config().n_layers,
        )
        .map_err(super::press_flags::as_flag_error)?;
        return super::press_generate::press_qa_generate(
            &super::press_generate::QaRun {
                json: a.json,
                tok: &tok,
                model: &model,
                prompt_ids: &prompt_ids,
                stop_ids: &stop_ids,
                max_tokens,
                dtype: &dtype,
                kv_dtype: &kv_dtype,
            },
            p,
        );
    }
    let decode_press = match press.as_ref() {
        Some(p) => Some(super::press_generate::decode_press(p)?),
        None => None,
    };
    let mut runner = match &decode_press {
        Some(d) => kvlab::decode::cache_press::PressRunner::new(d, "command line")
            .map_err(super::press_flags::as_flag_error)?,
        None => None,
    };
    let mut no_press = kvlab::decode::spec::NoPress;
    let hook: &mut dyn kvlab::decode::spec::PressHook = match runner.as_mut() {
        Some(r) => r,
        None => &mut no_press,
    };
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
        let (gen, mut extra) = run
            .generate(&spec, &prompt_ids, hook)
            .map_err(super::press_generate::flag_error)?;
        super::press_generate::add_bytes(
            &mut extra,
            &decode_press,
            gen.kv_bytes,
            gen.draft_kv_bytes,
        );
        (
            gen.new_ids,
            gen.ttft_ms,
            gen.tpot_ms,
            gen.stop_reason,
            Some(extra),
        )
    } else {
        if decode_press.as_ref().is_some_and(|d| d.on_draft()) {
            anyhow::bail!(input_err(
                "command line",
                "--press-on",
                "plain decoding has no draft: --press-on target"
            ));
        }
        let gen = generate_with(
            &model,
            &prompt_ids,
            &GenerateOpts {
                max_new_tokens: max_tokens,
                temperature,
                seed,
                stop_ids,
            },
            hook,
        )
        .map_err(super::press_flags::as_flag_error)?;
        let extra = decode_press.as_ref().map(|_| {
            let mut e = serde_json::json!({});
            super::press_generate::add_bytes(&mut e, &decode_press, gen.kv_bytes, 0);
            e
        });
        (
            gen.new_ids,
            gen.ttft_ms,
            gen.tpot_ms,
            gen.stop_reason,
            extra,
        )
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
        if let Some(s) = spec.as_ref().filter(|s| s.get("drafted").is_some()) {
            eprintln!(
                "speculative: drafted {}, accepted {}, acceptance rate {:.3}, mean accepted length {:.2}",
                s["drafted"], s["accepted"], s["acceptance_rate"].as_f64().unwrap_or(0.0),
                s["mean_accepted_len"].as_f64().unwrap_or(0.0)
            );
        }
        if let Some(s) = spec.as_ref().filter(|s| s.get("press").is_some()) {
            eprintln!(
                "press {} ratio {} on {}: cache {} bytes (draft {})",
                s["press"], s["ratio"], s["press_on"], s["kv_bytes"], s["draft_kv_bytes"]
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
        // compressed, its second half scored (--stride is not used). The
        // press is checked against that half first, naming its own flags.
        kvlab::eval::press_run::check(
            "command line",
            &p.press,
            &p.budget,
            window / 2,
            model.config().n_layers,
        )
        .map_err(super::press_flags::as_flag_error)?;
        let spec = kvlab::eval::compressed_perplexity::PressSpec {
            press: &p.press,
            budget: &p.budget,
            press_every: p.press_every,
            inputs: kvlab::eval::press_run::PressInputs {
                anchors: None,
                repeat_prompt: Some(super::press_generate::repeat_prompt(&tok)?),
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
            // The perplexity window itself (the press's is --press-window).
            kvlab::Error::Input { field, msg, .. } if field == "window" => {
                anyhow::Error::from(input_err("command line", "--window", msg))
            }
            e => super::press_flags::as_flag_error(e),
        })?;
        let after = r.bytes_after.iter().sum::<usize>() / r.bytes_after.len().max(1);
        let before = r.bytes_before.iter().sum::<usize>() / r.bytes_before.len().max(1);
        if a.json {
            println!(
                "{}",
                serde_json::json!({ "ppl": r.ppl, "tokens": r.tokens, "windows": r.nll_per_window.len(), "window": window, "press": p.name, "ratio": p.ratio, "budget": p.budget_tokens, "press_every": p.press_every.unwrap_or(0), "bytes_before": before, "bytes_after": after, "dtype": dtype, "kv_dtype": kv_dtype })
            );
        } else {
            println!("ppl {:.4}", r.ppl);
            println!("tokens {}", r.tokens);
            println!("bytes {before} -> {after}");
        }
        return Ok(0);
    }
    let bos = tok.model_bos();
    let r = perplexity(&model, &ids, window, stride, max_windows, bos)?;
    if a.json {
        println!(
            "{}",
            serde_json::json!({ "ppl": r.ppl, "tokens": r.tokens, "windows": r.nll_per_window.len(), "window": window, "stride": stride, "bos": bos, "nll_per_window": r.nll_per_window, "text_tokens": ids.len(), "ids_blake3": kvlab::store::hashing::ids_blake3(&ids), "dtype": dtype, "kv_dtype": kv_dtype })
        );
    } else {
        println!("ppl {:.4}", r.ppl);
        println!("tokens {}", r.tokens);
    }
    Ok(0)
}
