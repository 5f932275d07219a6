//! A trainable llama-style decoder on candle autograd (RMSNorm, RoPE in HF's
//! `rotate_half` layout, causal MHA, SwiGLU). Parameters live in a
//! `candle_nn::VarMap` under Hugging Face llama tensor names, so
//! `save_hf` writes a directory `Model::load_hf_dir` loads as a llama model.
//!
//! Built from plain differentiable ops (not kvlab's fused inference kernels,
//! which have no backward).

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor, Var, D};
use candle_nn::VarMap;
use rand::{Rng, SeedableRng};

use crate::error::{other, IoContext, Result};
use crate::kv::Rope;

/// The architecture hyper-parameters written to `config.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct Shape {
    pub vocab_size: usize,
    pub dim: usize,
    pub n_heads: usize,
    pub intermediate_size: usize,
    pub n_layers: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    pub max_position: usize,
}

pub struct TrainModel {
    pub varmap: VarMap,
    pub shape: Shape,
    rope: Rope,
    device: Device,
}

fn layer_name(l: usize, s: &str) -> String {
    format!("model.layers.{l}.{s}.weight")
}

const LAYER_MATS: [&str; 7] = [
    "self_attn.q_proj",
    "self_attn.k_proj",
    "self_attn.v_proj",
    "self_attn.o_proj",
    "mlp.gate_proj",
    "mlp.up_proj",
    "mlp.down_proj",
];

/// Seeded N(0, std) (Box–Muller): candle's CPU randn cannot be seeded.
fn normal(rng: &mut rand::rngs::StdRng, n: usize, std: f32) -> Vec<f32> {
    (0..n)
        .map(|_| {
            let u1: f32 = rng.random_range(f32::EPSILON..1.0);
            let u2: f32 = rng.random();
            std * (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
        })
        .collect()
}

impl TrainModel {
    /// A freshly initialised model: N(0, 0.02) matrices, unit norms.
    pub fn new(shape: Shape, seed: u64, device: &Device) -> Result<Self> {
        let m = TrainModel {
            varmap: VarMap::new(),
            rope: Rope::new(shape.dim / shape.n_heads, shape.rope_theta),
            device: device.clone(),
            shape: Shape {
                n_layers: 0,
                ..shape.clone()
            },
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let (v, d) = (shape.vocab_size, shape.dim);
        m.insert(&mut rng, "model.embed_tokens.weight", &[v, d], Init::Normal)?;
        m.insert(&mut rng, "model.norm.weight", &[d], Init::Ones)?;
        m.insert(&mut rng, "lm_head.weight", &[v, d], Init::Normal)?;
        let mut m = m;
        m.add_layers(shape.n_layers, &mut rng, false)?;
        Ok(m)
    }

    fn insert(
        &self,
        rng: &mut rand::rngs::StdRng,
        name: &str,
        dims: &[usize],
        init: Init,
    ) -> Result<()> {
        let n: usize = dims.iter().product();
        let data = match init {
            Init::Normal => normal(rng, n, 0.02),
            Init::Ones => vec![1.0; n],
            Init::Zeros => vec![0.0; n],
        };
        let t = Tensor::from_vec(data, dims, &self.device)?;
        let var = Var::from_tensor(&t)?;
        self.varmap
            .data()
            .lock()
            .map_err(|_| other("varmap lock poisoned"))?
            .insert(name.to_string(), var);
        Ok(())
    }

    /// Appends `n` blocks on top. With `identity`, their output projections
    /// start at zero so each new block is the identity on the residual
    /// stream: the grown model starts exactly where the shallow one was.
    fn add_layers(&mut self, n: usize, rng: &mut rand::rngs::StdRng, identity: bool) -> Result<()> {
        let (d, f) = (self.shape.dim, self.shape.intermediate_size);
        for l in self.shape.n_layers..self.shape.n_layers + n {
            self.insert(rng, &layer_name(l, "input_layernorm"), &[d], Init::Ones)?;
            self.insert(
                rng,
                &layer_name(l, "post_attention_layernorm"),
                &[d],
                Init::Ones,
            )?;
            for m in LAYER_MATS {
                let dims = match m {
                    "mlp.gate_proj" | "mlp.up_proj" => [f, d],
                    "mlp.down_proj" => [d, f],
                    _ => [d, d],
                };
                let zero = identity && (m == "self_attn.o_proj" || m == "mlp.down_proj");
                let init = if zero { Init::Zeros } else { Init::Normal };
                self.insert(rng, &layer_name(l, m), &dims, init)?;
            }
        }
        self.shape.n_layers += n;
        Ok(())
    }

    /// Phase 2's growth: `n` identity-initialised blocks on top.
    pub fn grow(&mut self, n: usize, seed: u64) -> Result<()> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x9e37_79b9_7f4a_7c15);
        self.add_layers(n, &mut rng, true)
    }

    pub fn var(&self, name: &str) -> Result<Var> {
        self.varmap
            .data()
            .lock()
            .map_err(|_| other("varmap lock poisoned"))?
            .get(name)
            .cloned()
            .ok_or_else(|| other(format!("no parameter {name}")))
    }

    fn w(&self, name: &str) -> Result<Tensor> {
        Ok(self.var(name)?.as_tensor().clone())
    }

    /// The variables of layers `from..` (phase 2's trainable set when the
    /// shallow part is frozen), or all of them.
    pub fn vars_from_layer(&self, from: Option<usize>) -> Result<Vec<Var>> {
        let data = self
            .varmap
            .data()
            .lock()
            .map_err(|_| other("varmap lock poisoned"))?;
        let mut named: Vec<(&String, &Var)> = data
            .iter()
            .filter(|(k, _)| match from {
                None => true,
                Some(f) => layer_of(k).is_some_and(|l| l >= f),
            })
            .collect();
        // Sorted so the optimizer's state order is deterministic.
        named.sort_by(|a, b| a.0.cmp(b.0));
        Ok(named.into_iter().map(|(_, v)| v.clone()).collect())
    }

    fn rms(&self, x: &Tensor, w: &Tensor) -> Result<Tensor> {
        let ms = x.sqr()?.mean_keepdim(D::Minus1)?;
        let inv = (ms + self.shape.rms_norm_eps)?.sqrt()?.recip()?;
        Ok(x.broadcast_mul(&inv)?.broadcast_mul(w)?)
    }

    fn lin(x: &Tensor, w: &Tensor) -> Result<Tensor> {
        Ok(x.broadcast_matmul(&w.t()?)?)
    }

    /// `x` `[B, H, T, hd]` rotated to positions 0..T (HF `rotate_half`).
    fn rope(&self, x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
        let half = x.dim(D::Minus1)? / 2;
        let x1 = x.narrow(D::Minus1, 0, half)?;
        let x2 = x.narrow(D::Minus1, half, half)?;
        let rot = Tensor::cat(&[&x2.neg()?, &x1], D::Minus1)?;
        Ok((x.broadcast_mul(cos)? + rot.broadcast_mul(sin)?)?)
    }

    /// Logits `[B, T, vocab]` after the first `n_layers` blocks (then the
    /// final norm and LM head: the early-exit head) for windows `ids`.
    pub fn forward(&self, ids: &[Vec<u32>], n_layers: usize) -> Result<Tensor> {
        let h = self.hidden(ids, n_layers)?;
        let h = self.rms(&h, &self.w("model.norm.weight")?)?;
        Self::lin(&h, &self.w("lm_head.weight")?)
    }

    fn hidden(&self, ids: &[Vec<u32>], n_layers: usize) -> Result<Tensor> {
        if n_layers == 0 || n_layers > self.shape.n_layers {
            return Err(other(format!(
                "train forward: n_layers {n_layers} outside 1..={}",
                self.shape.n_layers
            )));
        }
        let (b, t) = (ids.len(), ids[0].len());
        let flat: Vec<u32> = ids.iter().flatten().copied().collect();
        let idx = Tensor::from_vec(flat, b * t, &self.device)?;
        let mut x = self
            .w("model.embed_tokens.weight")?
            .index_select(&idx, 0)?
            .reshape((b, t, self.shape.dim))?;
        let pos: Vec<i64> = (0..t as i64).collect();
        let (cos, sin) = self.rope.cos_sin(&pos, DType::F32, &self.device)?;
        let cos = Tensor::cat(&[&cos, &cos], 1)?;
        let sin = Tensor::cat(&[&sin, &sin], 1)?;
        let mask: Vec<f32> = (0..t)
            .flat_map(|i| (0..t).map(move |j| if j <= i { 0.0 } else { -1e9 }))
            .collect();
        let mask = Tensor::from_vec(mask, (t, t), &self.device)?;
        for l in 0..n_layers {
            x = self.block(&x, l, &cos, &sin, &mask)?;
        }
        Ok(x)
    }

    fn block(
        &self,
        x: &Tensor,
        l: usize,
        cos: &Tensor,
        sin: &Tensor,
        mask: &Tensor,
    ) -> Result<Tensor> {
        let (b, t, d) = x.dims3()?;
        let (nh, hd) = (self.shape.n_heads, d / self.shape.n_heads);
        let w = |s: &str| self.w(&layer_name(l, s));
        let h = self.rms(x, &w("input_layernorm")?)?;
        let heads = |m: &str| -> Result<Tensor> {
            Ok(Self::lin(&h, &w(m)?)?
                .reshape((b, t, nh, hd))?
                .transpose(1, 2)?
                .contiguous()?)
        };
        let q = self.rope(&heads("self_attn.q_proj")?, cos, sin)?;
        let k = self.rope(&heads("self_attn.k_proj")?, cos, sin)?;
        let v = heads("self_attn.v_proj")?;
        let att = (q.matmul(&k.t()?.contiguous()?)? / (hd as f64).sqrt())?;
        let att = candle_nn::ops::softmax(&att.broadcast_add(mask)?, D::Minus1)?;
        let a = att
            .matmul(&v)?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((b, t, d))?;
        let x = (x + Self::lin(&a, &w("self_attn.o_proj")?)?)?;
        let h = self.rms(&x, &w("post_attention_layernorm")?)?;
        let g = Self::lin(&h, &w("mlp.gate_proj")?)?.silu()?;
        let u = Self::lin(&h, &w("mlp.up_proj")?)?;
        Ok((&x + Self::lin(&(g * u)?, &w("mlp.down_proj")?)?)?)
    }

    /// Writes `config.json` + `model.safetensors` (the first `n_layers`
    /// blocks) in the layout `Model::load_hf_dir` reads as llama.
    pub fn save_hf(&self, dir: &Path, n_layers: usize) -> Result<()> {
        std::fs::create_dir_all(dir).ctx(dir.display())?;
        let s = &self.shape;
        let cfg = serde_json::json!({
            "model_type": "llama",
            "architectures": ["LlamaForCausalLM"],
            "vocab_size": s.vocab_size,
            "hidden_size": s.dim,
            "intermediate_size": s.intermediate_size,
            "num_hidden_layers": n_layers,
            "num_attention_heads": s.n_heads,
            "num_key_value_heads": s.n_heads,
            "head_dim": s.dim / s.n_heads,
            "rope_theta": s.rope_theta,
            "rms_norm_eps": s.rms_norm_eps,
            "max_position_embeddings": s.max_position,
            "tie_word_embeddings": false,
            "hidden_act": "silu",
            "torch_dtype": "float32",
        });
        let p = dir.join("config.json");
        std::fs::write(&p, serde_json::to_string_pretty(&cfg).map_err(other)?).ctx(p.display())?;
        let data = self
            .varmap
            .data()
            .lock()
            .map_err(|_| other("varmap lock poisoned"))?;
        let tensors: HashMap<String, Tensor> = data
            .iter()
            .filter(|(k, _)| layer_of(k).is_none_or(|l| l < n_layers))
            .map(|(k, v)| (k.clone(), v.as_tensor().detach()))
            .collect();
        let p = dir.join("model.safetensors");
        candle_core::safetensors::save(&tensors, &p)?;
        Ok(())
    }
}

#[derive(Clone, Copy)]
enum Init {
    Normal,
    Ones,
    Zeros,
}

/// The block index in `model.layers.{l}.…`, None for non-layer tensors.
fn layer_of(name: &str) -> Option<usize> {
    name.strip_prefix("model.layers.")?
        .split('.')
        .next()?
        .parse()
        .ok()
}
