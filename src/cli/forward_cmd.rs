//! `kvlab forward`, hidden plumbing for tools/gpu_check.sh: a model (GGUF or
//! Hugging Face directory; no tokenizer needed) run over given token ids.
//! Writes the last position's logits and the K/V of the first and last
//! layers as safetensors, times prefills and greedy decoding, and prints one
//! JSON object. Every timed region ends by reading a result back to the
//! host, so device work is finished inside it.

use super::model_cmds::{check_load_flags, read_ids};
use super::stage_defaults::or_default;
use kvlab::decode::generate::{generate, GenerateOpts};
use kvlab::error::input_err;
use kvlab::model::{ForwardOpts, Model};
use kvlab::model_source::{load_model, resolve_model};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Debug, clap::Args)]
pub struct ForwardArgs {
    /// A GGUF file, a Hugging Face directory or a pinned model name.
    #[arg(long)]
    model: String,
    /// Token ids: a JSON list or whitespace-separated integers.
    #[arg(long)]
    ids: PathBuf,
    /// quant, f32, f16 or bf16 (default: stages/generate.toml).
    #[arg(long)]
    dtype: Option<String>,
    #[arg(long)]
    kv_dtype: Option<String>,
    /// cpu, cuda or cuda:N.
    #[arg(long)]
    device: Option<String>,
    /// Write `logits` (f32 [vocab], last position) and `k.L`/`v.L` (f32
    /// [kv_heads, T, head_dim], keys after RoPE) of the first and last layer.
    #[arg(long)]
    out: Option<PathBuf>,
    /// With --out: run the first N ids (default: all).
    #[arg(long)]
    out_tokens: Option<usize>,
    /// Time a prefill of the first N ids, for each N (e.g. 512,4096).
    #[arg(long, value_delimiter = ',')]
    prefill: Vec<usize>,
    /// Time greedy decoding of this many tokens after `--decode-prompt` ids.
    #[arg(long, default_value_t = 0)]
    decode: usize,
    #[arg(long, default_value_t = 512)]
    decode_prompt: usize,
    /// Timed runs per prefill length after one warm-up (median reported).
    #[arg(long, default_value_t = 3)]
    repeat: usize,
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// One prefill of `ids` into a fresh cache, finished on the host.
fn prefill(model: &Model, ids: &[u32]) -> anyhow::Result<f64> {
    let t = Instant::now();
    let pos: Vec<i64> = (0..ids.len() as i64).collect();
    let mut cache = model.new_cache();
    let out = model.forward(ids, &pos, &mut cache, &ForwardOpts::default())?;
    let logits = out.logits.expect("Logits::Last requested");
    let _: Vec<f32> = logits.flatten_all()?.to_vec1()?;
    Ok(ms_since(t))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Logits and first/last-layer K/V of `ids`, as f32 host tensors.
fn dump(model: &Model, ids: &[u32], out: &Path) -> anyhow::Result<()> {
    use candle_core::{DType, Device, Tensor};
    let pos: Vec<i64> = (0..ids.len() as i64).collect();
    let mut cache = model.new_cache();
    let fwd = model.forward(ids, &pos, &mut cache, &ForwardOpts::default())?;
    let host = |t: Tensor| -> anyhow::Result<Tensor> {
        Ok(t.to_dtype(DType::F32)?.to_device(&Device::Cpu)?)
    };
    let mut ts: HashMap<String, Tensor> = HashMap::new();
    let logits = fwd.logits.expect("Logits::Last requested").flatten_all()?;
    ts.insert("logits".into(), host(logits)?);
    let last = cache.n_layers() - 1;
    for l in [0, last] {
        ts.insert(format!("k.{l}"), host(cache.k(l)?)?);
        ts.insert(format!("v.{l}"), host(cache.v(l)?)?);
    }
    candle_core::safetensors::save(&ts, out)
        .map_err(|e| anyhow::anyhow!("write {}: {e}", out.display()))
}

pub fn forward(store: &Path, a: ForwardArgs) -> anyhow::Result<i32> {
    let dtype: String = or_default(a.dtype, "generate", "dtype")?;
    let kv_dtype: String = or_default(a.kv_dtype, "generate", "kv_dtype")?;
    let device: String = or_default(a.device, "generate", "device")?;
    check_load_flags(&dtype, &kv_dtype, &device)?;
    let ids = read_ids(&a.ids)?;
    let need = a
        .prefill
        .iter()
        .copied()
        .chain([a.out_tokens.unwrap_or(0)])
        .chain((a.decode > 0).then_some(a.decode_prompt.max(1)))
        .max()
        .unwrap_or(0);
    if ids.is_empty() || need > ids.len() {
        anyhow::bail!(input_err(
            a.ids.display(),
            "--ids",
            format!("{} ids, the runs asked for need {need}", ids.len())
        ));
    }
    let path = resolve_model(&a.model, store)?;
    let t = Instant::now();
    let model = load_model(&path, &dtype, &kv_dtype, &device)?;
    let load_ms = ms_since(t);
    if let Some(out) = &a.out {
        dump(&model, &ids[..a.out_tokens.unwrap_or(ids.len())], out)?;
    }
    let mut prefills = Vec::new();
    for &n in &a.prefill {
        prefill(&model, &ids[..n])?; // warm-up: kernels, cuBLAS plans
        let runs = (0..a.repeat.max(1))
            .map(|_| prefill(&model, &ids[..n]))
            .collect::<anyhow::Result<Vec<f64>>>()?;
        let ms = median(runs.clone());
        prefills.push(serde_json::json!({
            "tokens": n, "ms": ms, "tok_s": n as f64 * 1e3 / ms, "runs_ms": runs,
        }));
    }
    let decode = if a.decode > 0 {
        let prompt = &ids[..a.decode_prompt.max(1)];
        let opts = |n| GenerateOpts {
            max_new_tokens: n,
            temperature: 0.0,
            seed: 0,
            stop_ids: vec![],
        };
        generate(&model, prompt, &opts(4))?; // warm-up of the decode shapes
        let g = generate(&model, prompt, &opts(a.decode))?;
        serde_json::json!({
            "prompt": prompt.len(), "tokens": g.new_ids.len(),
            "ttft_ms": g.ttft_ms, "tpot_ms": g.tpot_ms,
            "tok_s": if g.tpot_ms > 0.0 { 1e3 / g.tpot_ms } else { 0.0 },
            "new_ids": g.new_ids,
        })
    } else {
        serde_json::Value::Null
    };
    let v = serde_json::json!({
        "model": path.display().to_string(), "device": device, "dtype": dtype,
        "kv_dtype": kv_dtype, "load_ms": load_ms, "n_ids": ids.len(),
        "prefill": prefills, "decode": decode,
    });
    println!("{v}");
    Ok(0)
}
