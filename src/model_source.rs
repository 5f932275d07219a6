//! Where a model comes from — a GGUF file, a Hugging Face directory, or the
//! name of a pinned model fetched through the store — and how it is loaded.

use crate::error::{input_err, Result};
use crate::model::{Dtype, LoadOptions, Model};
use crate::store::Store;
use candle_core::Device;
use std::path::{Path, PathBuf};

/// The `dtype` values stages and commands accept.
pub const DTYPES: &[&str] = &["quant", "f32", "f16", "bf16"];

/// `quant`: projection weights kept in their GGUF blocks (Q4_1 and Q8_0 through
/// kvlab's own kernels, Q5_x re-quantized to Q8_0), f32 activations;
/// the others dequantize every weight to that float type. Off the CPU,
/// `quant` is bf16 (kvlab's quantized kernels are CPU code).
pub fn load_options(dtype: &str, device: &Device) -> Option<LoadOptions> {
    let mut o = LoadOptions::f32();
    match dtype {
        "quant" if device.is_cpu() => return Some(LoadOptions::quantized()),
        "quant" | "bf16" => o.dtype = Dtype::BF16,
        "f32" => {}
        "f16" => o.dtype = Dtype::F16,
        _ => return None,
    }
    o.device = device.clone();
    Some(o)
}

/// The `kv_dtype` values: `auto` is f16 with `dtype = quant` (llama.cpp's
/// default cache too) and the activation dtype otherwise.
pub const KV_DTYPES: &[&str] = &["auto", "f32", "f16", "bf16"];

/// The first of `dtype`, `kv_dtype` that names no known value, as (field,
/// message); stages and commands report it in their own terms.
pub fn invalid_dtype(dtype: &str, kv_dtype: &str) -> Option<(&'static str, String)> {
    [("dtype", dtype, DTYPES), ("kv_dtype", kv_dtype, KV_DTYPES)]
        .into_iter()
        .find(|(_, v, ok)| !ok.contains(v))
        .map(|(f, v, ok)| (f, format!("'{v}' is not one of {}", ok.join(", "))))
}

fn kv_dtype_of(kv_dtype: &str) -> Option<Option<Dtype>> {
    Some(match kv_dtype {
        "auto" => None,
        "f32" => Some(Dtype::F32),
        "f16" => Some(Dtype::F16),
        "bf16" => Some(Dtype::BF16),
        _ => return None,
    })
}

/// A path, or a pin name resolved by fetching it into `store`.
pub fn resolve_model(model: &str, store: &Path) -> Result<PathBuf> {
    let p = PathBuf::from(model);
    if p.exists() {
        return Ok(p);
    }
    let pins = crate::data::fetch::pins()?;
    if pins.contains_key(model) {
        let store = Store::open(store)?;
        return crate::data::fetch::fetch_pin(&store, model);
    }
    Err(input_err(
        "--model",
        model,
        "neither an existing path nor a pinned model name (see stages/pins.toml)",
    ))
}

/// The first of `dtype`, `kv_dtype`, `device` that names no known value (or
/// a device this build lacks), as (field, message).
pub fn invalid_load(dtype: &str, kv_dtype: &str, device: &str) -> Option<(&'static str, String)> {
    invalid_dtype(dtype, kv_dtype).or_else(|| {
        crate::device::DeviceSpec::parse(device)
            .err()
            .map(|m| ("device", m))
    })
}

/// Load a GGUF file or an HF directory with the given dtype, cache dtype
/// and device (`cpu`, `cuda`, `cuda:N`).
pub fn load_model(path: &Path, dtype: &str, kv_dtype: &str, device: &str) -> Result<Model> {
    let dev = match crate::device::DeviceSpec::parse(device) {
        Ok(_) => crate::device::open(device)?,
        Err(m) => return Err(input_err(path.display(), "device", m)),
    };
    let mut opts = load_options(dtype, &dev).ok_or_else(|| {
        input_err(
            path.display(),
            "dtype",
            format!("'{dtype}' is not one of {}", DTYPES.join(", ")),
        )
    })?;
    let kv = kv_dtype_of(kv_dtype).ok_or_else(|| {
        input_err(
            path.display(),
            "kv_dtype",
            format!("'{kv_dtype}' is not one of {}", KV_DTYPES.join(", ")),
        )
    })?;
    if kv.is_some() {
        opts.kv_dtype = kv;
    }
    if path.is_dir() {
        Model::load_hf_dir(path, &opts)
    } else {
        Model::load_gguf(path, &opts)
    }
}
