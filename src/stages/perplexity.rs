//! Stage `perplexity`: windowed perplexity of a text -> `scores.parquet`
//! (task, sample, method, press, ratio, metric, value).

use super::{StageCtx, StageKind};
use crate::dag::params::Params;
use crate::error::{IoContext, Result};
use crate::eval::perplexity::perplexity;
use crate::model_source::load_model;
use crate::table::write_parquet;
use crate::tokenizer::Tokenizer;
use polars::prelude::*;
use serde::Deserialize;

pub const KIND: StageKind = StageKind {
    kind: "perplexity",
    version: 1,
    inputs: &["model", "text"],
    optional_inputs: &[],
    unhashed: &[],
    defaults: include_str!("../../stages/perplexity.toml"),
    resolve,
    run,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PerplexityParams {
    window: i64,
    stride: i64,
    max_windows: i64,
    dtype: String,
    kv_dtype: String,
    text_name: String,
}

fn resolve(p: &mut Params) -> Result<()> {
    let x: PerplexityParams = p.parse()?;
    if x.window < 2 {
        return Err(p.err("window", "must be >= 2"));
    }
    if x.stride <= 0 || x.stride > x.window {
        return Err(p.err("stride", format!("must be in 1..={}", x.window)));
    }
    if x.max_windows < 0 {
        return Err(p.err("max_windows", "must be >= 0"));
    }
    super::check_dtype(p, &x.dtype, &x.kv_dtype)
}

fn run(ctx: &StageCtx) -> Result<()> {
    let x: PerplexityParams = ctx.params.parse()?;
    let gguf = super::model_file(ctx)?;
    let text_file = ctx.input_file("text", ".txt")?;
    let text = std::fs::read_to_string(&text_file).ctx(format!("read {}", text_file.display()))?;
    let tok = Tokenizer::from_gguf_file(&gguf)?;
    let ids = tok.encode(&text)?;
    if ids.len() < x.window as usize {
        return Err(ctx.params.err(
            "window",
            format!("the text has {} tokens, fewer than one window", ids.len()),
        ));
    }
    let model = load_model(&gguf, &x.dtype, &x.kv_dtype)?;
    let r = perplexity(
        &model,
        &ids,
        x.window as usize,
        x.stride as usize,
        x.max_windows as usize,
    )?;
    let n = r.nll_per_window.len();
    let mut samples: Vec<String> = (0..n).map(|i| format!("window{i:04}")).collect();
    let mut metrics = vec!["nll".to_string(); n];
    let mut values = r.nll_per_window.clone();
    samples.extend(["all".to_string(), "all".to_string(), "all".to_string()]);
    metrics.extend(["ppl".to_string(), "nll".to_string(), "tokens".to_string()]);
    values.extend([r.ppl, r.ppl.ln(), r.tokens as f64]);
    let rows = samples.len();
    let mut df = DataFrame::new_infer_height(vec![
        Column::new(
            "task".into(),
            vec![format!("perplexity:{}", x.text_name); rows],
        ),
        Column::new("sample".into(), samples),
        Column::new(
            "method".into(),
            vec![format!("window{}/stride{}", x.window, x.stride); rows],
        ),
        Column::new("press".into(), vec!["no_press".to_string(); rows]),
        Column::new("ratio".into(), vec![0.0f64; rows]),
        Column::new("metric".into(), metrics),
        Column::new("value".into(), values),
    ])?;
    write_parquet(&mut df, &ctx.out.join("scores.parquet"))
}
