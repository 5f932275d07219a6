//! Stage `precompute`: each chunk's KV computed alone plus its surprisal ->
//! one item per chunk (`kv.bin`, `surprisal.json`) and `index.parquet`
//! (doc_id, chunk_id, ids_blake3, n_tok, token_ids, item, raw/stored bytes).
//! An item is keyed by the chunk's token ids, model, dtypes, prefix and
//! codec, so a chunk shared by samples or pipelines is computed once.

use crate::dag::item::{ItemCtx, StoreFile};
use crate::dag::params::Params;
use crate::dag::stage::{StageCtx, StageKind};
use crate::error::{other, IoContext, Result};
use crate::kv::fusion::alone::compute_alone;
use crate::kv::{Codec, FileStats};
use crate::store::hashing::ids_blake3;
use crate::table::{read_parquet, write_parquet};
use polars::prelude::*;
use serde::{Deserialize, Serialize};

pub const KIND: StageKind = StageKind {
    kind: "precompute",
    version: 1,
    inputs: &["model", "chunks"],
    all_upstream: false,
    optional_inputs: &[],
    unhashed: &[],
    defaults: include_str!("../../stages/precompute.toml"),
    resolve,
    run,
    compute_item: Some(compute_item),
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PrecomputeParams {
    dtype: String,
    kv_dtype: String,
    device: String,
    prefix: String,
    codec: String,
    max_chunks: i64,
}

fn resolve(p: &mut Params) -> Result<()> {
    let x: PrecomputeParams = p.parse()?;
    if Codec::parse(&x.codec).is_none() {
        return Err(p.err(
            "codec",
            format!("'{}' is not one of {}", x.codec, Codec::NAMES.join(", ")),
        ));
    }
    if x.max_chunks < 0 {
        return Err(p.err("max_chunks", "must be >= 0"));
    }
    super::common::check_load(p, &x.dtype, &x.kv_dtype, &x.device)
}

/// One chunk to precompute (the item's work).
#[derive(Serialize, Deserialize)]
struct ChunkWork {
    gguf: StoreFile,
    prefix: Vec<u32>,
    ids: Vec<u32>,
    dtype: String,
    kv_dtype: String,
    device: String,
    codec: String,
}

/// What `fusion_eval` needs to read the items: shared by every chunk.
#[derive(Serialize, Deserialize)]
pub struct PrecomputeMeta {
    pub prefix: Vec<u32>,
    pub dtype: String,
    pub kv_dtype: String,
    /// Absent for the CPU, so a CPU run's meta (and key) is as before devices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
}

fn run(ctx: &StageCtx) -> Result<()> {
    let x: PrecomputeParams = ctx.params.parse()?;
    let gguf = super::common::model_file(ctx)?;
    let model = ctx.input("model")?;
    let df = read_parquet(&ctx.input("chunks")?.path("chunks.parquet"))?;
    let mut n = df.height();
    if x.max_chunks > 0 {
        n = n.min(x.max_chunks as usize);
    }
    if n == 0 {
        return Err(ctx.params.err("inputs.chunks", "empty dataset: no chunks"));
    }
    let tok = crate::loaded::tokenizer(&gguf)?;
    let prefix = if x.prefix.is_empty() {
        vec![]
    } else {
        tok.encode_for_model(&x.prefix)?
    };
    let doc = df.column("doc_id")?.str()?.clone();
    let cid = df.column("chunk_id")?.i64()?.clone();
    let lists = df.column("token_ids")?.list()?.clone();
    let digest = model.manifest.content_digest();
    let mut chunk_ids = Vec::with_capacity(n);
    let mut specs = Vec::with_capacity(n);
    for i in 0..n {
        let s = lists
            .get_as_series(i)
            .ok_or_else(|| other(format!("chunks.parquet: row {i} has no token_ids")))?;
        let ids: Vec<u32> = s.u32()?.into_no_null_iter().collect();
        let mut preimage = serde_json::json!({
            "model": digest,
            "ids": ids_blake3(&ids),
            "prefix": ids_blake3(&prefix),
            "dtype": x.dtype,
            "kv_dtype": x.kv_dtype,
            "codec": x.codec,
        });
        crate::device::add_to_preimage(&mut preimage, &x.device);
        let work = ChunkWork {
            gguf: StoreFile::of(model, &gguf),
            prefix: prefix.clone(),
            ids: ids.clone(),
            dtype: x.dtype.clone(),
            kv_dtype: x.kv_dtype.clone(),
            device: x.device.clone(),
            codec: x.codec.clone(),
        };
        specs.push(ctx.item_spec(
            preimage,
            serde_json::to_value(work).expect("work serializes"),
        ));
        chunk_ids.push(ids);
    }
    let mut progress = ctx.progress(n as u64, "chunks");
    let items = ctx.items(&specs, &mut progress)?;
    let (mut keys, mut raw, mut stored, mut ms, mut blakes, mut id_lists) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for (item, ids) in items.iter().zip(&chunk_ids) {
        let m: Measured = serde_json::from_value(item.manifest.provenance.measurements.clone())
            .map_err(|e| other(format!("item {}: measurements: {e}", item.key())))?;
        keys.push(item.key().to_string());
        raw.push(m.file.raw_bytes as i64);
        stored.push(m.file.stored_bytes as i64);
        ms.push(m.compute_ms);
        blakes.push(ids_blake3(ids));
        id_lists.push(Series::new("".into(), ids.clone()));
    }
    let mut out = DataFrame::new_infer_height(vec![
        Column::new("doc_id".into(), doc.head(Some(n)).into_series()),
        Column::new("chunk_id".into(), cid.head(Some(n)).into_series()),
        Column::new("ids_blake3".into(), blakes),
        Column::new(
            "n_tok".into(),
            chunk_ids.iter().map(|v| v.len() as i64).collect::<Vec<_>>(),
        ),
        Column::new("token_ids".into(), id_lists),
        Column::new("item".into(), keys),
        Column::new("raw_bytes".into(), raw),
        Column::new("stored_bytes".into(), stored),
        Column::new("compute_ms".into(), ms),
    ])?;
    write_parquet(&mut out, &ctx.out.join("index.parquet"))?;
    let meta = PrecomputeMeta {
        prefix,
        dtype: x.dtype,
        kv_dtype: x.kv_dtype,
        device: (x.device != "cpu").then_some(x.device),
    };
    let path = ctx.out.join("meta.json");
    std::fs::write(&path, serde_json::to_vec(&meta).expect("meta serializes")).ctx(path.display())
}

#[derive(Serialize, Deserialize)]
struct Measured {
    compute_ms: f64,
    file: FileStats,
}

/// One chunk's KV and surprisal, from its spec alone.
fn compute_item(item: &ItemCtx) -> Result<serde_json::Value> {
    let w: ChunkWork = item.work()?;
    let model = crate::loaded::model(&item.file(&w.gguf)?, &w.dtype, &w.kv_dtype, &w.device)?;
    let codec = Codec::parse(&w.codec).ok_or_else(|| other(format!("codec '{}'", w.codec)))?;
    let t = std::time::Instant::now();
    let prefix_kv = if w.prefix.is_empty() {
        None
    } else {
        Some(compute_alone(&model, None, &w.prefix)?.kv)
    };
    let seg = compute_alone(&model, prefix_kv.as_ref(), &w.ids)?;
    let compute_ms = t.elapsed().as_secs_f64() * 1e3;
    let file = seg.kv.save_with(&item.out.join("kv.bin"), codec)?;
    let path = item.out.join("surprisal.json");
    std::fs::write(
        &path,
        serde_json::to_vec(&seg.surprisal).expect("floats serialize"),
    )
    .ctx(path.display())?;
    Ok(serde_json::to_value(Measured { compute_ms, file }).expect("measurements serialize"))
}
