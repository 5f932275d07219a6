//! Stage `report`: one self-contained HTML page of the pipeline run. Every
//! other stage of the pipeline is an input (role = stage name); the run's
//! stage table comes from `ctx.run`, which is not part of the key, so a cached
//! page shows the run that made it.

use crate::dag::params::Params;
use crate::dag::stage::{StageCtx, StageKind};
use crate::error::Result;
use crate::report::{page, BuildInfo, PageInput, PageOptions, StageRow};
use crate::store::publish::Outcome;
use serde::Deserialize;

pub const KIND: StageKind = StageKind {
    kind: "report",
    version: 1,
    inputs: &[],
    optional_inputs: &[],
    all_upstream: true,
    unhashed: &[],
    defaults: include_str!("../../stages/report.toml"),
    resolve,
    run,
    compute_item: None,
};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportParams {
    table_rows: i64,
    cell_chars: i64,
}

fn resolve(p: &mut Params) -> Result<()> {
    let r: ReportParams = p.parse()?;
    if !(1..=10_000).contains(&r.table_rows) {
        return Err(p.err(
            "table_rows",
            format!("{} is outside 1..=10000", r.table_rows),
        ));
    }
    if !(8..=100_000).contains(&r.cell_chars) {
        return Err(p.err(
            "cell_chars",
            format!("{} is outside 8..=100000", r.cell_chars),
        ));
    }
    Ok(())
}

fn run(ctx: &StageCtx) -> Result<()> {
    let r: ReportParams = ctx.params.parse()?;
    let info = ctx.run;
    let position = |name: &str| info.stages.iter().position(|s| s.stage == name);
    // Inputs in the order the run processed them; any it did not, after, by name.
    let mut inputs: Vec<_> = ctx
        .inputs
        .iter()
        .map(|(role, a)| (role.clone(), a.clone()))
        .collect();
    inputs.sort_by_key(|(role, _)| (position(role).unwrap_or(usize::MAX), role.clone()));
    let stages = info
        .stages
        .iter()
        .map(|s| StageRow {
            stage: s.stage.clone(),
            kind: s.kind.clone(),
            key: s.key.clone(),
            status: match s.outcome {
                Outcome::Computed => "computed",
                Outcome::Cached => "cached",
            }
            .into(),
            wall_s: Some(s.wall_s),
        })
        .collect();
    let mut p = PageInput {
        pipeline: info.pipeline.clone(),
        description: info.description.clone(),
        file: info.file.display().to_string(),
        stages,
        inputs,
        options: PageOptions {
            table_rows: r.table_rows as usize,
            cell_chars: r.cell_chars as usize,
        },
        build: BuildInfo::this_binary(),
    };
    p.add_unlisted_inputs();
    page::write(&p, ctx.out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_params_are_checked() {
        let mut p = Params {
            table: KIND.defaults().unwrap(),
            file: "p.toml".into(),
            stage: "rep".into(),
        };
        resolve(&mut p).unwrap();
        p.table.insert("table_rows".into(), toml::Value::Integer(0));
        let e = resolve(&mut p).unwrap_err();
        assert!(e.to_string().contains("stages.rep.table_rows"), "{e}");
        assert_eq!(e.exit_code(), 2);
        p.table.insert("table_rows".into(), toml::Value::Integer(5));
        p.table.insert("cell_chars".into(), toml::Value::Integer(4));
        let e = resolve(&mut p).unwrap_err();
        assert!(e.to_string().contains("stages.rep.cell_chars"), "{e}");
    }
}
