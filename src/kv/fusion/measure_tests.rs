//! Measured on the real SmolLM2 GGUF (`KVLAB_SMOLLM2_GGUF`; skipped without
//! it): stored vs raw bytes per codec and KV dtype, and loading a chunk's KV
//! vs recomputing it. Prints one line per setting for the report, and
//! checks load >= 5x faster than recompute (the 0.7x-raw size goal is
//! printed: not met losslessly, see the numbers).

use std::time::Instant;

use super::alone::compute_alone;
use crate::kv::{Codec, KvCache, DEFAULT_CODEC};

#[test]
fn kv_file_size_and_load_speed_on_smollm2() {
    let Ok(gguf) = std::env::var("KVLAB_SMOLLM2_GGUF") else {
        eprintln!("KVLAB_SMOLLM2_GGUF unset: skipped");
        return;
    };
    let ids: Vec<u32> = (0..256u32).map(|i| 200 + (i * 7919) % 20000).collect();
    let dir = std::env::temp_dir().join(format!("kvlab-kv-measure-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for kv_dtype in ["f16", "bf16", "f32"] {
        let m = crate::model_source::load_model(gguf.as_ref(), "quant", kv_dtype, "cpu").unwrap();
        let t = Instant::now();
        let kv = compute_alone(&m, None, &ids).unwrap().kv;
        let recompute_ms = t.elapsed().as_secs_f64() * 1e3;
        for codec in [Codec::Plain, Codec::Planes, Codec::PlanesDelta] {
            let path = dir.join(format!("{kv_dtype}-{codec:?}.kv"));
            let st = kv.save_with(&path, codec).unwrap();
            let t = Instant::now();
            let back = KvCache::load(&path, m.device()).unwrap();
            let load_ms = t.elapsed().as_secs_f64() * 1e3;
            assert_eq!(back.len(0), ids.len());
            let ratio = st.stored_bytes as f64 / st.raw_bytes as f64;
            eprintln!(
                "kv-file {kv_dtype} {codec:?}: raw {} stored {} ratio {ratio:.3} load {load_ms:.1} ms recompute {recompute_ms:.1} ms speedup {:.1}x",
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
