//! The decoder-only model: embedding, blocks, final norm, LM head; and the
//! forward contract shared by every caller (generation, perplexity,
//! speculative decoding, presses, RAG fusion, analysis).

use std::ops::Range;
use std::path::Path;

use candle_core::{DType, Device, Tensor};

use super::attention::Observe;
use super::block::{Block, RmsNorm};
use super::config::ModelConfig;
use super::gguf_loader::GgufSource;
use super::linear::{Embedding, Linear};
use super::role::Role;
use super::safetensors_loader::StSource;
use super::weights::{LoadOptions, Source, Weights};
use crate::error::{other, Result};
use crate::kv::{KvCache, Rope};

/// Which logits `forward` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Logits {
    /// `[1, vocab]` for the last token.
    #[default]
    Last,
    /// `[T, vocab]`.
    All,
    None,
}

#[derive(Debug, Clone, Default)]
pub struct ForwardOpts {
    pub logits: Logits,
    /// Early exit: run the first N layers, then the final norm and LM head.
    /// Deeper layers' caches are not touched.
    pub n_layers: Option<usize>,
    /// Return attention probabilities of these queries, per layer run.
    pub observe: Option<Observe>,
}

#[derive(Debug, Clone)]
pub struct ForwardOut {
    /// f32 `[T or 1, vocab]`, per `ForwardOpts::logits`.
    pub logits: Option<Tensor>,
    /// Per layer run: `[n_heads, n_keys]` (pooled) or `[n_heads, n_q, n_keys]`.
    pub attention: Vec<Tensor>,
}

/// Where `Model::forward_layers` starts.
#[derive(Debug, Clone, Copy)]
pub enum LayerInput<'a> {
    /// Token ids, embedded first (the layer range must start at 0).
    Ids(&'a [u32]),
    /// Hidden states `[T, hidden]` entering the first layer of the range.
    Hidden(&'a Tensor),
}

#[derive(Debug, Clone)]
pub struct Model {
    cfg: ModelConfig,
    embed: Embedding,
    blocks: Vec<Block>,
    norm: RmsNorm,
    lm_head: Linear,
    rope: Rope,
    dtype: DType,
    kv_dtype: DType,
    device: Device,
}

impl Model {
    fn build(src: Source, cfg: ModelConfig, opts: &LoadOptions) -> Result<Self> {
        let w = Weights {
            src: &src,
            cfg: &cfg,
            opts,
        };
        let embed = w.embedding()?;
        let blocks = (0..cfg.n_layers)
            .map(|l| Block::load(&w, l))
            .collect::<Result<Vec<_>>>()?;
        let norm = RmsNorm::load(&w, Role::OutNorm, 0)?;
        let lm_head = w.lm_head(&embed)?;
        Ok(Model {
            rope: Rope::new(cfg.head_dim, cfg.rope_theta),
            embed,
            blocks,
            norm,
            lm_head,
            dtype: opts.dtype.dtype(),
            kv_dtype: opts.kv_dtype.unwrap_or(opts.dtype).dtype(),
            device: opts.device.clone(),
            cfg,
        })
    }

    /// Loads a GGUF file (llama or qwen2 architecture).
    pub fn load_gguf(path: &Path, opts: &LoadOptions) -> Result<Self> {
        crate::threads::init();
        let (src, cfg) = GgufSource::open(path)?;
        Self::build(Source::Gguf(src), cfg, opts)
    }

    /// Loads a Hugging Face directory (`config.json` + safetensors).
    pub fn load_hf_dir(dir: &Path, opts: &LoadOptions) -> Result<Self> {
        crate::threads::init();
        let (src, cfg) = StSource::open(dir)?;
        Self::build(Source::St(src), cfg, opts)
    }

    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Activation dtype.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// KV-cache storage dtype.
    pub fn kv_dtype(&self) -> DType {
        self.kv_dtype
    }

    pub fn rope(&self) -> &Rope {
        &self.rope
    }

    /// An empty cache shaped for this model.
    pub fn new_cache(&self) -> KvCache {
        KvCache::new(
            self.cfg.n_layers,
            self.cfg.n_kv_heads,
            self.cfg.head_dim,
            self.kv_dtype,
            &self.device,
            self.rope.clone(),
        )
    }

    /// Runs `ids` at `positions` (same length), appending their K/V to
    /// `cache` before attending to everything the cache holds.
    pub fn forward(
        &self,
        ids: &[u32],
        positions: &[i64],
        cache: &mut KvCache,
        opts: &ForwardOpts,
    ) -> Result<ForwardOut> {
        crate::threads::run(|| self.forward_on_pool(ids, positions, cache, opts, None))
    }

    /// `forward`, also returning every run layer's pre-RoPE queries
    /// `[n_heads, T, head_dim]` (for presses that model future queries).
    pub fn forward_with_queries(
        &self,
        ids: &[u32],
        positions: &[i64],
        cache: &mut KvCache,
        opts: &ForwardOpts,
    ) -> Result<(ForwardOut, Vec<Tensor>)> {
        let mut queries = Vec::new();
        let out = crate::threads::run(|| {
            self.forward_on_pool(ids, positions, cache, opts, Some(&mut queries))
        })?;
        Ok((out, queries))
    }

    /// Layer `layer`'s attention output projection (see `Attention::out_proj`).
    pub fn out_proj(&self, layer: usize, x: &Tensor) -> Result<Tensor> {
        self.blocks[layer].attn().out_proj(x)
    }

    fn forward_on_pool(
        &self,
        ids: &[u32],
        positions: &[i64],
        cache: &mut KvCache,
        opts: &ForwardOpts,
        mut queries: Option<&mut Vec<Tensor>>,
    ) -> Result<ForwardOut> {
        let t = ids.len();
        if t == 0 || positions.len() != t {
            return Err(other(format!(
                "forward: {t} ids with {} positions",
                positions.len()
            )));
        }
        if let Some(&bad) = ids.iter().find(|&&i| i as usize >= self.cfg.vocab_size) {
            return Err(other(format!(
                "forward: token id {bad} >= vocab {}",
                self.cfg.vocab_size
            )));
        }
        if cache.n_layers() != self.cfg.n_layers
            || cache.kv_heads() != self.cfg.n_kv_heads
            || cache.head_dim() != self.cfg.head_dim
        {
            return Err(other("forward: cache was not made for this model"));
        }
        let n_run = opts.n_layers.unwrap_or(self.cfg.n_layers);
        if n_run == 0 || n_run > self.cfg.n_layers {
            return Err(other(format!(
                "forward: n_layers {n_run} out of 1..={}",
                self.cfg.n_layers
            )));
        }
        if let Some(o) = &opts.observe {
            if o.queries.start >= o.queries.end || o.queries.end > t {
                return Err(other(format!(
                    "forward: observe queries {:?} outside 0..{t}",
                    o.queries
                )));
            }
        }

        let ids_t = Tensor::from_vec(ids.to_vec(), t, &self.device)?;
        let mut x = self.embed.forward(&ids_t, self.dtype)?;
        let cos_sin = self.rope.cos_sin(positions, self.dtype, &self.device)?;
        let mut attention = Vec::new();
        for (l, block) in self.blocks.iter().take(n_run).enumerate() {
            if let Some(q) = queries.as_deref_mut() {
                q.push(
                    block
                        .attn()
                        .pre_rope_queries(&block.attn_norm().forward(&x)?)?,
                );
            }
            let (y, obs) = block.forward(
                &x,
                positions,
                &self.rope,
                &cos_sin,
                cache,
                l,
                opts.observe.as_ref(),
            )?;
            x = y;
            attention.extend(obs);
        }
        let logits = match opts.logits {
            Logits::None => None,
            Logits::Last => Some(self.head(&x.narrow(0, t - 1, 1)?)?),
            Logits::All => Some(self.head(&x)?),
        };
        Ok(ForwardOut { logits, attention })
    }

    /// Runs only `layers` (appending their K/V to `cache`) and returns the
    /// hidden states after the last of them with logits (final norm + LM
    /// head) per `logits`. Self-speculation drafts with `Ids` over `0..N` and
    /// verifies with `Hidden` over `N..L`, so the shallow layers' K/V the
    /// draft wrote are neither recomputed nor written twice.
    pub fn forward_layers(
        &self,
        input: LayerInput<'_>,
        positions: &[i64],
        cache: &mut KvCache,
        layers: Range<usize>,
        logits: Logits,
    ) -> Result<(Tensor, Option<Tensor>)> {
        crate::threads::run(|| {
            let t = positions.len();
            if layers.start >= layers.end || layers.end > self.cfg.n_layers {
                return Err(other(format!(
                    "forward_layers: layers {layers:?} outside 0..{}",
                    self.cfg.n_layers
                )));
            }
            if cache.n_layers() != self.cfg.n_layers {
                return Err(other("forward_layers: cache was not made for this model"));
            }
            let mut x = match input {
                LayerInput::Ids(ids) => {
                    if layers.start != 0 || ids.len() != t || t == 0 {
                        return Err(other(
                            "forward_layers: ids start at layer 0, one per position",
                        ));
                    }
                    if ids.iter().any(|&i| i as usize >= self.cfg.vocab_size) {
                        return Err(other("forward_layers: token id out of the vocabulary"));
                    }
                    let ids_t = Tensor::from_vec(ids.to_vec(), t, &self.device)?;
                    self.embed.forward(&ids_t, self.dtype)?
                }
                LayerInput::Hidden(h) => {
                    if h.dims() != [t, self.cfg.hidden_size] || t == 0 {
                        return Err(other(format!(
                            "forward_layers: hidden {:?} for {t} positions",
                            h.dims()
                        )));
                    }
                    h.to_dtype(self.dtype)?
                }
            };
            let cos_sin = self.rope.cos_sin(positions, self.dtype, &self.device)?;
            for l in layers {
                x = self.blocks[l]
                    .forward(&x, positions, &self.rope, &cos_sin, cache, l, None)?
                    .0;
            }
            let lg = match logits {
                Logits::None => None,
                Logits::Last => Some(self.head(&x.narrow(0, t - 1, 1)?)?),
                Logits::All => Some(self.head(&x)?),
            };
            Ok((x, lg))
        })
    }

    fn head(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.norm.forward(x)?;
        Ok(self.lm_head.forward(&h)?.to_dtype(DType::F32)?)
    }
}

/// Layer-range pieces of `forward` for token-level early exit
/// (`decode::early_exit`): start at layer k from given hidden states.
impl Model {
    /// Embeddings `[T, hidden]` of `ids`.
    pub fn embed_ids(&self, ids: &[u32]) -> Result<Tensor> {
        let ids_t = Tensor::from_vec(ids.to_vec(), ids.len(), &self.device)?;
        self.embed.forward(&ids_t, self.dtype)
    }

    /// Runs blocks `layers` on hidden states `x` `[T, hidden]` at
    /// `positions`, appending their K/V to those layers of `cache`.
    pub fn run_layers(
        &self,
        x: &Tensor,
        positions: &[i64],
        cache: &mut KvCache,
        layers: std::ops::Range<usize>,
    ) -> Result<Tensor> {
        if layers.end > self.cfg.n_layers || x.dim(0)? != positions.len() {
            return Err(other(format!(
                "run_layers: layers {layers:?} of {}, {} rows for {} positions",
                self.cfg.n_layers,
                x.dim(0)?,
                positions.len()
            )));
        }
        crate::threads::run(|| {
            let cos_sin = self.rope.cos_sin(positions, self.dtype, &self.device)?;
            let mut x = x.clone();
            for l in layers {
                x = self.blocks[l]
                    .forward(&x, positions, &self.rope, &cos_sin, cache, l, None)?
                    .0;
            }
            Ok(x)
        })
    }

    /// Final norm + LM head: f32 logits `[T, vocab]` of hidden states `x`.
    pub fn logits_of(&self, x: &Tensor) -> Result<Tensor> {
        crate::threads::run(|| self.head(x))
    }
}
