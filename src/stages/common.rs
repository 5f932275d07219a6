//! Helpers every stage file shares (kept out of mod.rs so that stage files
//! and the registry do not import each other).

use crate::dag::params::Params;
use crate::dag::stage::StageCtx;
use crate::error::Result;

/// The `.gguf` file of the stage's `model` input.
pub fn model_file(ctx: &StageCtx) -> Result<std::path::PathBuf> {
    ctx.input_file("model", ".gguf")
}

/// `dtype` must name one of the engine's load modes, `kv_dtype` one of its
/// cache types, `device` a device this build has.
pub fn check_load(p: &Params, dtype: &str, kv_dtype: &str, device: &str) -> Result<()> {
    match crate::model_source::invalid_load(dtype, kv_dtype, device) {
        Some((field, msg)) => Err(p.err(field, msg)),
        None => Ok(()),
    }
}

/// Figure formats of a stage's `formats` parameter: a non-empty list of
/// `png` / `svg`.
pub fn figure_formats(p: &Params, formats: &[String]) -> Result<Vec<crate::plot::figure::Format>> {
    if formats.is_empty() {
        return Err(p.err("formats", "must name at least one of png, svg"));
    }
    formats
        .iter()
        .map(|f| {
            crate::plot::figure::Format::parse(f)
                .ok_or_else(|| p.err("formats", format!("{f:?} is not png or svg")))
        })
        .collect()
}

/// A JSON file of a stage's output directory.
pub fn write_json(dir: &std::path::Path, name: &str, v: &serde_json::Value) -> Result<()> {
    use crate::error::IoContext;
    let path = dir.join(name);
    let text = serde_json::to_vec_pretty(v).expect("JSON serializes");
    std::fs::write(&path, text).ctx(format!("write {}", path.display()))
}

/// Reads a JSON file into `T`.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &std::path::Path) -> Result<T> {
    use crate::error::IoContext;
    let text = std::fs::read_to_string(path).ctx(format!("read {}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| crate::error::other(format!("{}: {e}", path.display())))
}

/// Loads a GGUF (f32) or the checkpoint directory whose `config.json` this is.
pub fn load_model(path: &std::path::Path) -> Result<crate::model::Model> {
    use crate::model::weights::LoadOptions;
    use crate::model::Model;
    if path.extension().is_some_and(|e| e == "gguf") {
        Model::load_gguf(path, &LoadOptions::f32())
    } else {
        let dir = path.parent().expect("a file has a directory");
        Model::load_hf_dir(dir, &LoadOptions::f32())
    }
}
