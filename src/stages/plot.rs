//! Stage `plot` (under construction).

use super::{StageCtx, StageKind};
use crate::dag::params::Params;
use crate::error::Result;

pub const KIND: StageKind = StageKind {
    kind: "plot",
    version: 1,
    inputs: &[],
    optional_inputs: &[],
    unhashed: &[],
    defaults: "",
    resolve,
    run,
};

fn resolve(_p: &mut Params) -> Result<()> {
    Ok(())
}

fn run(_ctx: &StageCtx) -> Result<()> {
    Ok(())
}
