//! Hugging Face checkpoints: `config.json` plus `model.safetensors` or the
//! shards listed in `model.safetensors.index.json`, memory-mapped through
//! candle. A corrupt header or a tensor of the wrong shape is an input error
//! naming the file and the tensor.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::safetensors::MmapedSafetensors;
use candle_core::Device;

use super::config::ModelConfig;
use super::family::{self, gpt_neox};
use super::raw::Raw;
use super::role::Role;
use crate::error::{input_err, IoContext, Result};

pub(crate) struct StSource {
    st: MmapedSafetensors,
    /// Tensor name -> the file that holds it (for error messages).
    files: HashMap<String, PathBuf>,
    dir: PathBuf,
}

fn name(role: Role, layer: usize, bias: bool, cfg: &ModelConfig) -> String {
    if let Some(n) = family::hf_name(cfg.arch, role, layer, bias) {
        return n;
    }
    let suffix = if bias { "bias" } else { "weight" };
    let l = |s: &str| format!("model.layers.{layer}.{s}.{suffix}");
    match role {
        Role::Embed => format!("model.embed_tokens.{suffix}"),
        Role::OutNorm => format!("model.norm.{suffix}"),
        Role::LmHead => format!("lm_head.{suffix}"),
        Role::AttnNorm => l("input_layernorm"),
        Role::Q => l("self_attn.q_proj"),
        Role::K => l("self_attn.k_proj"),
        Role::V => l("self_attn.v_proj"),
        Role::O => l("self_attn.o_proj"),
        Role::FfnNorm => l("post_attention_layernorm"),
        Role::QNorm => l("self_attn.q_norm"),
        Role::KNorm => l("self_attn.k_norm"),
        Role::PostAttnNorm => l("post_attention_layernorm"),
        Role::PostFfnNorm => l("post_feedforward_layernorm"),
        Role::Gate => l("mlp.gate_proj"),
        Role::Up => l("mlp.up_proj"),
        Role::Down => l("mlp.down_proj"),
    }
}

/// The weight files of an HF directory.
fn shard_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let single = dir.join("model.safetensors");
    if single.exists() {
        return Ok(vec![single]);
    }
    let index = dir.join("model.safetensors.index.json");
    let idx_name = index.display().to_string();
    let text = std::fs::read_to_string(&index).ctx(format!(
        "{}: no model.safetensors or model.safetensors.index.json",
        dir.display()
    ))?;
    let j: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| input_err(&idx_name, "json", e))?;
    let map = j
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| input_err(&idx_name, "weight_map", "missing"))?;
    let mut files: Vec<PathBuf> = map
        .values()
        .filter_map(|v| v.as_str().map(|s| dir.join(s)))
        .collect();
    files.sort();
    files.dedup();
    Ok(files)
}

impl StSource {
    pub fn open(dir: &Path) -> Result<(Self, ModelConfig)> {
        let cfg = ModelConfig::from_hf_json(&dir.join("config.json"))?;
        let paths = shard_files(dir)?;
        let mut files = HashMap::new();
        for p in &paths {
            let pname = p.display().to_string();
            // Parse each header on its own first so an error names its file.
            let f = std::fs::File::open(p).ctx(&pname)?;
            // SAFETY: read-only map of a file nobody writes while we load.
            let bytes = unsafe { memmap2::Mmap::map(&f) }.ctx(&pname)?;
            let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| {
                input_err(
                    &pname,
                    "header",
                    format!("not a readable safetensors file: {e}"),
                )
            })?;
            for n in st.names() {
                files.insert(n.to_string(), p.clone());
            }
        }
        // SAFETY: the files are not modified while mapped (inherited from memmap2).
        let st = unsafe { MmapedSafetensors::multi(&paths) }
            .map_err(|e| input_err(dir.display(), "safetensors", e))?;
        Ok((
            StSource {
                st,
                files,
                dir: dir.to_path_buf(),
            },
            cfg,
        ))
    }

    pub fn has(&self, role: Role, layer: usize, bias: bool, cfg: &ModelConfig) -> bool {
        self.files.contains_key(&name(role, layer, bias, cfg))
    }

    pub fn get(
        &self,
        role: Role,
        layer: usize,
        bias: bool,
        expected: &[usize],
        cfg: &ModelConfig,
    ) -> Result<Raw> {
        let tname = name(role, layer, bias, cfg);
        // GPT-NeoX: q, k and v are thirds of one fused tensor.
        let part = gpt_neox::fused_part(cfg.arch, role);
        let fused;
        let expected = match part {
            Some(_) => {
                fused = gpt_neox::fused_shape(expected);
                &fused[..]
            }
            None => expected,
        };
        let Some(file) = self.files.get(&tname) else {
            return Err(input_err(self.dir.display(), &tname, "missing tensor"));
        };
        let fname = file.display().to_string();
        let view = self
            .st
            .get(&tname)
            .map_err(|e| input_err(&fname, &tname, e))?;
        if view.shape() != expected {
            return Err(input_err(
                &fname,
                &tname,
                format!("expected shape {expected:?}, found {:?}", view.shape()),
            ));
        }
        let t = self
            .st
            .load(&tname, &Device::Cpu)
            .map_err(|e| input_err(&fname, &tname, e))?;
        Ok(Raw::Dense(match part {
            Some(p) => gpt_neox::split(&t, p, cfg.n_heads, cfg.head_dim)
                .map_err(|e| input_err(&fname, &tname, e))?,
            None => t,
        }))
    }
}
