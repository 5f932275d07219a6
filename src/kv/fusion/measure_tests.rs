//! Measured on the real SmolLM2 GGUF and essay text (`KVLAB_SMOLLM2_GGUF`,
//! `KVLAB_ESSAYS_DIR`; skipped without them): stored vs raw bytes per codec
//! and KV dtype, and loading a chunk's KV vs recomputing it. Prints one line
//! per setting (BENCHMARKS.md, "RAG KV fusion", quotes them) and checks that
//! loading is at least 5x faster than recomputing (the 0.7x-raw size goal is
//! printed: not met losslessly, see the numbers).

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::alone::compute_alone;
use crate::kv::{Codec, KvCache, DEFAULT_CODEC};

/// Tokens per measured chunk: the `chunk` stage's default.
const CHUNK_TOKENS: usize = 512;

/// Best of several runs: the least disturbed by the other jobs on the machine.
fn best(v: Vec<f64>) -> f64 {
    v.into_iter().fold(f64::INFINITY, f64::min)
}

/// The first `n` tokens of the essays (files in name order), as the model
/// tokenizes them.
fn essay_ids(gguf: &Path, dir: &Path, n: usize) -> Vec<u32> {
    let tok = crate::loaded::tokenizer(gguf).unwrap();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    let mut ids = vec![];
    for f in files {
        ids.extend(tok.encode(&std::fs::read_to_string(f).unwrap()).unwrap());
        if ids.len() >= n {
            break;
        }
    }
    ids.truncate(n);
    assert_eq!(ids.len(), n, "essays too short");
    ids
}

#[test]
fn kv_file_size_and_load_speed_on_smollm2() {
    let (Ok(gguf), Ok(essays)) = (
        std::env::var("KVLAB_SMOLLM2_GGUF"),
        std::env::var("KVLAB_ESSAYS_DIR"),
    ) else {
        eprintln!("KVLAB_SMOLLM2_GGUF or KVLAB_ESSAYS_DIR unset: skipped");
        return;
    };
    let ids = essay_ids(gguf.as_ref(), essays.as_ref(), CHUNK_TOKENS);
    let dir = std::env::temp_dir().join(format!("kvlab-kv-measure-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for kv_dtype in ["f16", "bf16", "f32"] {
        let m = crate::model_source::load_model(gguf.as_ref(), "quant", kv_dtype, "cpu").unwrap();
        let mut kv = None;
        let times: Vec<f64> = (0..2)
            .map(|_| {
                let t = Instant::now();
                kv = Some(compute_alone(&m, None, &ids).unwrap().kv);
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        let (kv, recompute_ms) = (kv.unwrap(), best(times));
        for codec in [Codec::Plain, Codec::Planes, Codec::PlanesDelta] {
            let path = dir.join(format!("{kv_dtype}-{codec:?}.kv"));
            let st = kv.save_with(&path, codec).unwrap();
            let loads: Vec<f64> = (0..3)
                .map(|_| {
                    let t = Instant::now();
                    let back = KvCache::load(&path, m.device()).unwrap();
                    assert_eq!(back.len(0), ids.len());
                    t.elapsed().as_secs_f64() * 1e3
                })
                .collect();
            let load_ms = best(loads);
            let ratio = st.stored_bytes as f64 / st.raw_bytes as f64;
            eprintln!(
                "kv-file {kv_dtype} {codec:?} ({} tokens): raw {} stored {} ratio {ratio:.3} load {load_ms:.1} ms recompute {recompute_ms:.1} ms speedup {:.1}x",
                ids.len(),
                st.raw_bytes,
                st.stored_bytes,
                recompute_ms / load_ms
            );
            if codec == DEFAULT_CODEC && kv_dtype != "f32" {
                // Goal <= 0.7x raw: not reached losslessly (f16 mantissas of
                // real keys are near-random bytes); printed, not asserted.
                eprintln!("kv-file {kv_dtype}: goal 0.7x raw met: {}", ratio <= 0.7);
                assert!(
                    recompute_ms >= 5.0 * load_ms,
                    "{kv_dtype}: load {load_ms} vs {recompute_ms}"
                );
            }
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
