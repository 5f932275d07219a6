//! Stage `tasks`: needle, RULER-style and multi-document QA samples over the
//! chunks of the `chunk` stage -> `tasks.parquet`.

use super::{StageCtx, StageKind};
use crate::dag::params::Params;
use crate::data::haystack::ChunkRef;
use crate::data::sample::{samples_frame, Sample};
use crate::data::{multidoc_qa, needle, ruler};
use crate::error::Result;
use crate::table::{read_parquet, write_parquet};
use crate::tokenizer::Tokenizer;
use rand::SeedableRng;
use serde::Deserialize;

pub const KIND: StageKind = StageKind {
    kind: "tasks",
    version: 1,
    inputs: &["chunks", "model"],
    all_upstream: false,
    optional_inputs: &[],
    unhashed: &[],
    defaults: include_str!("../../stages/tasks.toml"),
    resolve,
    run,
    compute_item: None,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TasksParams {
    seed: i64,
    needle_context_tokens: Vec<i64>,
    needle_depths: Vec<f64>,
    ruler_tasks: Vec<String>,
    ruler_context_tokens: Vec<i64>,
    ruler_samples: i64,
    qa_samples: i64,
    qa_docs: i64,
}

fn resolve(p: &mut Params) -> Result<()> {
    let t: TasksParams = p.parse()?;
    if let Some(d) = t.needle_depths.iter().find(|d| !(0.0..=1.0).contains(*d)) {
        return Err(p.err("needle_depths", format!("depth {d} is outside [0, 1]")));
    }
    for (name, lens) in [
        ("needle_context_tokens", &t.needle_context_tokens),
        ("ruler_context_tokens", &t.ruler_context_tokens),
    ] {
        if let Some(l) = lens.iter().find(|l| **l < 64) {
            return Err(p.err(name, format!("context length {l} is below 64 tokens")));
        }
    }
    if let Some(bad) = t
        .ruler_tasks
        .iter()
        .find(|x| !ruler::TASKS.contains(&x.as_str()))
    {
        return Err(p.err(
            "ruler_tasks",
            format!("unknown task '{bad}' (known: {})", ruler::TASKS.join(", ")),
        ));
    }
    if t.ruler_samples < 0 || t.qa_samples < 0 {
        return Err(p.err("ruler_samples", "sample counts must be >= 0"));
    }
    if t.qa_docs < 2 {
        return Err(p.err(
            "qa_docs",
            "must be >= 2 (facts are planted across documents)",
        ));
    }
    Ok(())
}

fn run(ctx: &StageCtx) -> Result<()> {
    let t: TasksParams = ctx.params.parse()?;
    let chunks = load_chunks(&ctx.input("chunks")?.path("chunks.parquet"))?;
    if chunks.is_empty() {
        return Err(ctx.params.err("inputs.chunks", "empty dataset: no chunks"));
    }
    let tok = Tokenizer::from_gguf_file(&super::model_file(ctx)?)?;
    let count = |s: &str| -> Result<usize> { Ok(tok.encode(s)?.len()) };
    let mut rng = rand::rngs::StdRng::seed_from_u64(t.seed as u64);
    let mut samples: Vec<Sample> = needle::needle_samples(
        &chunks,
        &t.needle_context_tokens,
        &t.needle_depths,
        &count,
        &mut rng,
    )?;
    for task in &t.ruler_tasks {
        for &len in &t.ruler_context_tokens {
            for i in 0..t.ruler_samples as usize {
                samples.push(ruler::ruler_sample(
                    task, i, &chunks, len, &count, &mut rng,
                )?);
            }
        }
    }
    for i in 0..t.qa_samples as usize {
        samples.push(multidoc_qa::qa_sample(
            i,
            &chunks,
            t.qa_docs as usize,
            &count,
            &mut rng,
        )?);
    }
    let mut df = samples_frame(&samples)?;
    write_parquet(&mut df, &ctx.out.join("tasks.parquet"))
}

fn load_chunks(path: &std::path::Path) -> Result<Vec<ChunkRef>> {
    let df = read_parquet(path)?;
    let doc = df.column("doc_id")?.str()?.clone();
    let cid = df.column("chunk_id")?.i64()?.clone();
    let text = df.column("text")?.str()?.clone();
    let ntok = df.column("n_tok")?.i64()?.clone();
    let mut out = Vec::with_capacity(df.height());
    for i in 0..df.height() {
        out.push(ChunkRef {
            id: format!("{}#{}", doc.get(i).unwrap_or(""), cid.get(i).unwrap_or(0)),
            text: text.get(i).unwrap_or("").to_string(),
            n_tok: ntok.get(i).unwrap_or(0) as usize,
        });
    }
    Ok(out)
}
