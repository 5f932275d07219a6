//! Fixtures and options shared by the speculative-decoding tests.

use super::{Draft, GammaSchedule, Recycle, SpecOpts};
use crate::decode::warp::Warp;
use crate::model::{Dtype, LoadOptions, Model};
use std::path::PathBuf;

pub(crate) fn fixture(name: &str, opts: &LoadOptions) -> Model {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tiny")
        .join(name);
    Model::load_hf_dir(&dir, opts).unwrap()
}

pub(crate) fn target() -> Model {
    fixture("llama_gqa_tied", &LoadOptions::f32()) // 3 layers, 2 KV heads
}

pub(crate) fn f16_twin() -> Model {
    let o = LoadOptions {
        dtype: Dtype::F16,
        ..LoadOptions::f32()
    };
    fixture("llama_gqa_tied", &o)
}

/// The small draft model (its own weights, the target's vocabulary).
pub(crate) fn small_model() -> Model {
    fixture("llama_untied", &LoadOptions::f32())
}

pub(crate) fn model_draft<'m>(model: &'m Model, name: &str) -> Draft<'m> {
    Draft::Model {
        model,
        name: name.into(),
    }
}

pub(crate) const PROMPT: [u32; 12] = [1, 17, 45, 200, 3, 99, 17, 45, 7, 12, 250, 31];

pub(crate) fn greedy_opts(n: usize, gamma: GammaSchedule) -> SpecOpts {
    SpecOpts {
        max_new_tokens: n,
        warp: Warp::greedy(),
        seed: 0,
        stop_ids: vec![],
        gamma,
        rekv: false,
        recycle: Recycle::Off,
    }
}
