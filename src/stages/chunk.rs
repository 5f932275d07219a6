//! Stage `chunk`: documents -> `chunks.parquet`, cached per document so a new
//! document costs one item and a document shared by pipelines is chunked once.

use super::{StageCtx, StageKind};
use crate::dag::item::{ItemCtx, ItemSpec, StoreFile};
use crate::dag::params::Params;
use crate::data::chunking::{pack_paragraphs, paragraphs, split_fixed, Chunk};
use crate::error::{IoContext, Result};
use crate::table::{read_parquet, write_parquet};
use crate::tokenizer::Tokenizer;
use polars::prelude::*;
use serde::{Deserialize, Serialize};

pub const KIND: StageKind = StageKind {
    kind: "chunk",
    version: 1,
    inputs: &["model", "docs"],
    all_upstream: false,
    optional_inputs: &[],
    unhashed: &[],
    defaults: include_str!("../../stages/chunk.toml"),
    resolve,
    run,
    compute_item: Some(compute_item),
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChunkParams {
    chunk_tokens: i64,
    paragraphs: bool,
    doc_suffix: String,
    max_docs: i64,
}

fn resolve(p: &mut Params) -> Result<()> {
    let c: ChunkParams = p.parse()?;
    if c.chunk_tokens <= 0 {
        return Err(p.err(
            "chunk_tokens",
            format!("must be > 0, got {}", c.chunk_tokens),
        ));
    }
    if c.max_docs < 0 {
        return Err(p.err("max_docs", "must be >= 0"));
    }
    Ok(())
}

/// How to compute one document's chunks (the item's work; see `dag::item`).
#[derive(Serialize, Deserialize)]
struct ChunkWork {
    gguf: StoreFile,
    document: StoreFile,
    chunk_tokens: usize,
    paragraphs: bool,
}

fn run(ctx: &StageCtx) -> Result<()> {
    let c: ChunkParams = ctx.params.parse()?;
    let model = ctx.input("model")?;
    let docs = ctx.input("docs")?;
    let gguf = super::model_file(ctx)?;
    let mut doc_files: Vec<_> = docs
        .manifest
        .outputs
        .iter()
        .filter(|o| o.path.ends_with(&c.doc_suffix))
        .cloned()
        .collect();
    doc_files.sort_by(|a, b| a.path.cmp(&b.path));
    if c.max_docs > 0 {
        doc_files.truncate(c.max_docs as usize);
    }
    if doc_files.is_empty() {
        return Err(ctx.params.err(
            "inputs.docs",
            format!("empty dataset: no document ending in '{}'", c.doc_suffix),
        ));
    }
    let tokenizer_digest = model.manifest.content_digest();
    let specs: Vec<ItemSpec> = doc_files
        .iter()
        .map(|doc| {
            let preimage = serde_json::json!({
                "tokenizer": tokenizer_digest,
                "document": doc.blake3,
                "chunk_tokens": c.chunk_tokens,
                "paragraphs": c.paragraphs,
            });
            let work = ChunkWork {
                gguf: StoreFile::of(model, &gguf),
                document: StoreFile {
                    object: docs.key().to_string(),
                    path: doc.path.clone(),
                },
                chunk_tokens: c.chunk_tokens as usize,
                paragraphs: c.paragraphs,
            };
            ctx.item_spec(
                preimage,
                serde_json::to_value(work).expect("work serializes"),
            )
        })
        .collect();
    let mut progress = ctx.progress(specs.len() as u64, "documents");
    let items = ctx.items(&specs, &mut progress)?;
    let mut frames = Vec::new();
    for (doc, item) in doc_files.iter().zip(&items) {
        let mut df = read_parquet(&item.path("chunks.parquet"))?;
        let doc_id = std::path::Path::new(&doc.path)
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_else(|| doc.path.clone());
        let n = df.height();
        df.insert_column(0, Column::new("doc_id".into(), vec![doc_id; n]))?;
        frames.push(df);
    }
    let mut all = frames.remove(0);
    for f in frames {
        all.vstack_mut(&f)?;
    }
    if all.height() == 0 {
        return Err(ctx
            .params
            .err("inputs.docs", "empty dataset: every document is empty"));
    }
    all.rechunk_mut();
    write_parquet(&mut all, &ctx.out.join("chunks.parquet"))
}

/// One document -> its `chunks.parquet`.
fn compute_item(item: &ItemCtx) -> Result<serde_json::Value> {
    let w: ChunkWork = item.work()?;
    let tokenizer = crate::loaded::tokenizer(&item.file(&w.gguf)?)?;
    let path = item.file(&w.document)?;
    let text = std::fs::read_to_string(&path).ctx(format!("read {}", path.display()))?;
    let chunks = chunk_document(&tokenizer, &text, w.chunk_tokens, w.paragraphs)?;
    let mut df = chunk_frame(&tokenizer, &chunks)?;
    write_parquet(&mut df, &item.out.join("chunks.parquet"))?;
    Ok(serde_json::Value::Null)
}

pub fn chunk_document(
    tok: &Tokenizer,
    text: &str,
    chunk_tokens: usize,
    by_paragraph: bool,
) -> Result<Vec<Chunk>> {
    if by_paragraph {
        let ids: Vec<Vec<u32>> = paragraphs(text)
            .into_iter()
            .map(|p| tok.encode(p))
            .collect::<Result<_>>()?;
        Ok(pack_paragraphs(&ids, chunk_tokens))
    } else {
        Ok(split_fixed(&tok.encode(text)?, chunk_tokens))
    }
}

fn chunk_frame(tok: &Tokenizer, chunks: &[Chunk]) -> Result<DataFrame> {
    let mut texts = Vec::with_capacity(chunks.len());
    let mut id_lists = Vec::with_capacity(chunks.len());
    let mut hashes = Vec::with_capacity(chunks.len());
    for c in chunks {
        texts.push(tok.decode(&c.ids)?);
        hashes.push(crate::store::hashing::ids_blake3(&c.ids));
        id_lists.push(Series::new("".into(), c.ids.clone()));
    }
    let df = DataFrame::new_infer_height(vec![
        Column::new(
            "chunk_id".into(),
            (0..chunks.len() as i64).collect::<Vec<_>>(),
        ),
        Column::new(
            "start_tok".into(),
            chunks
                .iter()
                .map(|c| c.start_tok as i64)
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "n_tok".into(),
            chunks
                .iter()
                .map(|c| c.ids.len() as i64)
                .collect::<Vec<_>>(),
        ),
        Column::new("text".into(), texts),
        Column::new("token_ids".into(), id_lists),
        Column::new("ids_blake3".into(), hashes),
    ])?;
    Ok(df)
}
