//! Engine tests on tiny random checkpoints written here: cache operations
//! against recomputation, masks, observation, early exit, bad files.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

use super::*;
use crate::kv::KvCache;
use crate::testutil::max_diff;

pub(crate) struct TempDir(pub PathBuf);
impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("kvlab-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const V: usize = 64;

/// Writes a pseudo-random 2-layer checkpoint (4 heads / 2 KV heads, head_dim 8).
pub(crate) fn write_tiny(dir: &Path, model_type: &str, window: Option<usize>, bad: Option<&str>) {
    let (h, ff, nh, nkv, hd, layers) = (32, 48, 4, 2, 8, 2);
    let cfg = serde_json::json!({
        "model_type": model_type, "vocab_size": V, "hidden_size": h,
        "intermediate_size": ff, "num_hidden_layers": layers, "num_attention_heads": nh,
        "num_key_value_heads": nkv, "rope_theta": 10000.0, "rms_norm_eps": 1e-5,
        "max_position_embeddings": 128, "sliding_window": window, "tie_word_embeddings": false
    });
    std::fs::write(dir.join("config.json"), cfg.to_string()).unwrap();
    let dev = Device::Cpu;
    // Seeded, so every run tests the same checkpoint (uniform, std 0.3).
    let seed = std::cell::Cell::new(1000);
    let r = |s: &[usize]| {
        seed.set(seed.get() + 1);
        let n = s.iter().product();
        let x = crate::cpu::test_data::uniform(seed.get(), n, 0.3 * 3f32.sqrt());
        Tensor::from_vec(x, s, &dev).unwrap()
    };
    let ones = |n: usize| (Tensor::ones(n, DType::F32, &dev).unwrap() + r(&[n])).unwrap();
    let mut t: HashMap<String, Tensor> = HashMap::new();
    t.insert("model.embed_tokens.weight".into(), r(&[V, h]));
    t.insert("lm_head.weight".into(), r(&[V, h]));
    t.insert("model.norm.weight".into(), ones(h));
    for l in 0..layers {
        let p = |s: &str| format!("model.layers.{l}.{s}");
        t.insert(p("input_layernorm.weight"), ones(h));
        t.insert(p("post_attention_layernorm.weight"), ones(h));
        t.insert(p("self_attn.q_proj.weight"), r(&[nh * hd, h]));
        t.insert(p("self_attn.k_proj.weight"), r(&[nkv * hd, h]));
        t.insert(p("self_attn.v_proj.weight"), r(&[nkv * hd, h]));
        t.insert(p("self_attn.o_proj.weight"), r(&[h, nh * hd]));
        if model_type == "qwen2" {
            t.insert(p("self_attn.q_proj.bias"), r(&[nh * hd]));
            t.insert(p("self_attn.k_proj.bias"), r(&[nkv * hd]));
            t.insert(p("self_attn.v_proj.bias"), r(&[nkv * hd]));
        }
        t.insert(p("mlp.gate_proj.weight"), r(&[ff, h]));
        t.insert(p("mlp.up_proj.weight"), r(&[ff, h]));
        t.insert(p("mlp.down_proj.weight"), r(&[h, ff]));
    }
    if let Some(name) = bad {
        t.insert(name.to_string(), r(&[3, 5]));
    }
    candle_core::safetensors::save(&t, dir.join("model.safetensors")).unwrap();
}

fn tiny(model_type: &str, window: Option<usize>) -> (TempDir, Model) {
    let d = TempDir::new("tiny");
    write_tiny(&d.0, model_type, window, None);
    let m = Model::load_hf_dir(&d.0, &LoadOptions::f32()).unwrap();
    (d, m)
}

fn pos(r: std::ops::Range<i64>) -> Vec<i64> {
    r.collect()
}

fn run(m: &Model, ids: &[u32], p: &[i64], c: &mut KvCache, logits: Logits) -> Tensor {
    let o = ForwardOpts {
        logits,
        ..Default::default()
    };
    m.forward(ids, p, c, &o).unwrap().logits.unwrap()
}

const IDS: [u32; 10] = [3, 7, 1, 9, 12, 5, 8, 2, 40, 33];

#[test]
fn decode_with_cache_equals_full_recompute() {
    for arch in ["llama", "qwen2", "mistral"] {
        let (_d, m) = tiny(arch, None);
        let full = run(&m, &IDS, &pos(0..10), &mut m.new_cache(), Logits::All);
        let mut c = m.new_cache();
        let pre = run(&m, &IDS[..7], &pos(0..7), &mut c, Logits::Last);
        assert!(max_diff(&pre, &full.narrow(0, 6, 1).unwrap()) < 1e-4);
        for i in 7..10 {
            let l = run(&m, &IDS[i..i + 1], &[i as i64], &mut c, Logits::Last);
            let d = max_diff(&l, &full.narrow(0, i, 1).unwrap());
            assert!(d < 1e-4, "{arch} step {i}: {d}");
        }
        // multi-token verification step == the same rows of the full pass
        let mut c2 = m.new_cache();
        run(&m, &IDS[..6], &pos(0..6), &mut c2, Logits::Last);
        let ver = run(&m, &IDS[6..], &pos(6..10), &mut c2, Logits::All);
        assert!(max_diff(&ver, &full.narrow(0, 6, 4).unwrap()) < 1e-4);
    }
}

#[test]
fn f16_cache_decodes_like_the_f32_cache() {
    let d = TempDir::new("tiny16");
    write_tiny(&d.0, "llama", None, None);
    let m32 = Model::load_hf_dir(&d.0, &LoadOptions::f32()).unwrap();
    let o16 = LoadOptions {
        kv_dtype: Some(Dtype::F16),
        ..LoadOptions::f32()
    };
    let m16 = Model::load_hf_dir(&d.0, &o16).unwrap();
    let (mut c32, mut c16) = (m32.new_cache(), m16.new_cache());
    assert_eq!(c16.dtype(), DType::F16);
    let a = run(&m32, &IDS[..7], &pos(0..7), &mut c32, Logits::All);
    let b = run(&m16, &IDS[..7], &pos(0..7), &mut c16, Logits::All);
    assert!(max_diff(&a, &b) < 5e-2, "prefill: {}", max_diff(&a, &b));
    for i in 7..10 {
        let a = run(&m32, &IDS[i..i + 1], &[i as i64], &mut c32, Logits::Last);
        let b = run(&m16, &IDS[i..i + 1], &[i as i64], &mut c16, Logits::Last);
        let d = max_diff(&a, &b);
        // K/V rounded to 11 significant bits: ~1e-3 relative, not more
        assert!(d < 5e-2 && d > 0.0, "step {i}: {d}");
    }
}

#[test]
fn f16_and_bf16_models_track_f32() {
    let d = TempDir::new("tinyhalf");
    write_tiny(&d.0, "qwen2", None, None);
    let m32 = Model::load_hf_dir(&d.0, &LoadOptions::f32()).unwrap();
    let want = run(&m32, &IDS, &pos(0..10), &mut m32.new_cache(), Logits::All);
    // ‖a − b‖ / ‖b‖ over all logits: max errors of a random tiny model have
    // heavy tails in bf16, the relative RMS does not
    let rel = |a: &Tensor, b: &Tensor| {
        let n = |t: Tensor| {
            t.sqr()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
                .sqrt()
        };
        n((a - b).unwrap()) / n(b.clone())
    };
    // f16 keeps 11 significant bits, bf16 8; a wrong path is off by O(1)
    for (dt, bound) in [(Dtype::F16, 1e-2), (Dtype::BF16, 5e-2)] {
        let o = LoadOptions {
            dtype: dt,
            ..LoadOptions::f32()
        };
        let m = Model::load_hf_dir(&d.0, &o).unwrap();
        let mut c = m.new_cache();
        assert_eq!(c.dtype(), dt.dtype());
        let full = run(&m, &IDS, &pos(0..10), &mut m.new_cache(), Logits::All);
        let e = rel(&full, &want);
        eprintln!("{dt:?}: relative RMS logit error {e}");
        assert!(e < bound, "{dt:?}: {e}");
        run(&m, &IDS[..7], &pos(0..7), &mut c, Logits::Last);
        for i in 7..10 {
            let l = run(&m, &IDS[i..i + 1], &[i as i64], &mut c, Logits::Last);
            let e = rel(&l, &want.narrow(0, i, 1).unwrap());
            eprintln!("{dt:?} decode step {i}: {e}");
            assert!(e < bound, "{dt:?} decode step {i}: {e}");
        }
    }
}

#[test]
fn truncate_then_redecode_equals_never_decoded() {
    let (_d, m) = tiny("llama", None);
    let mut a = m.new_cache();
    run(&m, &IDS[..6], &pos(0..6), &mut a, Logits::Last);
    run(&m, &[20, 21], &[6, 7], &mut a, Logits::Last); // rejected draft
    a.truncate(6);
    let la = run(&m, &[22], &[6], &mut a, Logits::Last);
    let mut b = m.new_cache();
    run(&m, &IDS[..6], &pos(0..6), &mut b, Logits::Last);
    let lb = run(&m, &[22], &[6], &mut b, Logits::Last);
    assert!(max_diff(&la, &lb) < 1e-6);
    for l in 0..2 {
        assert_eq!(a.positions(l), b.positions(l));
        assert!(max_diff(&a.k(l).unwrap(), &b.k(l).unwrap()) < 1e-6);
    }
}

const CHUNK: [u32; 4] = [5, 6, 7, 8];

/// `CHUNK` computed at positions 0..4 and re-rotated by 13, and the same
/// chunk computed at 13..17.
fn moved_and_there(m: &Model) -> (KvCache, KvCache) {
    let mut moved = m.new_cache();
    run(m, &CHUNK, &pos(0..4), &mut moved, Logits::Last);
    moved.rerotate(13).unwrap();
    let mut there = m.new_cache();
    run(m, &CHUNK, &pos(13..17), &mut there, Logits::Last);
    assert_eq!(moved.positions(0), there.positions(0));
    (moved, there)
}

#[test]
fn rerotated_chunk_matches_chunk_computed_at_new_position() {
    let (_d, m) = tiny("llama", None);
    let (moved, there) = moved_and_there(&m);
    assert!(max_diff(&moved.k(0).unwrap(), &there.k(0).unwrap()) < 1e-5);
    assert!(max_diff(&moved.v(0).unwrap(), &there.v(0).unwrap()) < 1e-6);
    // splice behind a prefix: layer-0 keys equal a full pass over prefix+chunk
    let prefix: Vec<u32> = (0..13u32).map(|i| (i * 7 + 3) % V as u32).collect();
    let mut cat = m.new_cache();
    run(&m, &prefix, &pos(0..13), &mut cat, Logits::Last);
    cat.extend(&moved).unwrap();
    let mut full = m.new_cache();
    let mut all = prefix.clone();
    all.extend(CHUNK);
    run(&m, &all, &pos(0..17), &mut full, Logits::Last);
    assert_eq!(cat.positions(0), full.positions(0));
    assert!(max_diff(&cat.k(0).unwrap(), &full.k(0).unwrap()) < 1e-5);
}

#[test]
fn rerotated_f16_chunk_matches_chunk_computed_at_new_position() {
    let d = TempDir::new("rot16");
    write_tiny(&d.0, "llama", None, None);
    let o = LoadOptions {
        kv_dtype: Some(Dtype::F16),
        ..LoadOptions::f32()
    };
    let m = Model::load_hf_dir(&d.0, &o).unwrap();
    let (moved, there) = moved_and_there(&m);
    assert_eq!(moved.k(0).unwrap().dtype(), DType::F16);
    // both sides are rounded to f16 once: at most an ulp or two apart
    let k = there.k(0).unwrap();
    let ulp = max_diff(&k, &k.zeros_like().unwrap()) / 1024.0;
    let e = max_diff(&moved.k(0).unwrap(), &k);
    assert!(e <= 2.0 * ulp, "{e} vs ulp {ulp}");
    assert_eq!(max_diff(&moved.v(0).unwrap(), &there.v(0).unwrap()), 0.0);
}

/// Masks entries of a copy by moving them to an unreachable position.
fn masked(c: &KvCache, keep: &[Vec<usize>]) -> KvCache {
    let mut m = c.clone();
    for l in 0..m.n_layers() {
        let lk = &mut m.layers[l];
        for (h, p) in lk.pos.iter_mut().enumerate() {
            for (i, x) in p.iter_mut().enumerate() {
                if !keep[h].contains(&i) {
                    *x = i64::MAX / 2;
                }
            }
        }
        lk.per_head = lk.pos.iter().any(|p| p != &lk.pos[0]);
    }
    m
}

#[test]
fn gathered_cache_attends_only_to_kept_keys() {
    let (_d, m) = tiny("llama", None);
    let mut c = m.new_cache();
    run(&m, &IDS[..8], &pos(0..8), &mut c, Logits::Last);
    let keep = vec![0usize, 1, 4, 6, 7];
    let mut g = c.clone();
    g.gather_all(&keep).unwrap();
    let mut reference = masked(&c, &[keep.clone(), keep.clone()]);
    let lg = run(&m, &[9], &[8], &mut g, Logits::Last);
    let lr = run(&m, &[9], &[8], &mut reference, Logits::Last);
    assert!(max_diff(&lg, &lr) < 1e-5);
    let lfull = run(&m, &[9], &[8], &mut c.clone(), Logits::Last);
    assert!(max_diff(&lg, &lfull) > 1e-4, "eviction had no effect");

    let heads = vec![vec![0usize, 2, 5, 7], vec![1, 3, 6, 7]];
    let mut gh = c.clone();
    for l in 0..2 {
        gh.gather_heads(l, &heads).unwrap();
    }
    let mut rh = masked(&c, &heads);
    let a = run(&m, &[9], &[8], &mut gh, Logits::Last);
    let b = run(&m, &[9], &[8], &mut rh, Logits::Last);
    assert!(max_diff(&a, &b) < 1e-5);
}

#[test]
fn sliding_window_equals_evicting_outside_the_window() {
    let (_d, m) = tiny("mistral", Some(3));
    let mut c = m.new_cache();
    run(&m, &IDS[..8], &pos(0..8), &mut c, Logits::Last);
    let mut w = c.clone();
    w.gather_all(&[6, 7]).unwrap(); // q=8 sees 6, 7 and itself when q - k < 3
    let a = run(&m, &[9], &[8], &mut c, Logits::Last);
    let b = run(&m, &[9], &[8], &mut w, Logits::Last);
    assert!(max_diff(&a, &b) < 1e-5);
}

#[test]
fn observe_pools_and_early_exit() {
    let (_d, m) = tiny("qwen2", None);
    let obs = |pool| ForwardOpts {
        logits: Logits::None,
        n_layers: None,
        observe: Some(Observe {
            queries: 1..4,
            pool,
        }),
    };
    let full = m
        .forward(&IDS[..5], &pos(0..5), &mut m.new_cache(), &obs(Pool::Full))
        .unwrap();
    let sum = m
        .forward(&IDS[..5], &pos(0..5), &mut m.new_cache(), &obs(Pool::Sum))
        .unwrap();
    let mean = m
        .forward(&IDS[..5], &pos(0..5), &mut m.new_cache(), &obs(Pool::Mean))
        .unwrap();
    assert!(full.logits.is_none());
    assert_eq!(full.attention.len(), 2);
    let f = &full.attention[1];
    assert_eq!(f.dims(), &[4, 3, 5]);
    assert!(max_diff(&f.sum(1).unwrap(), &sum.attention[1]) < 1e-6);
    assert!(max_diff(&(&sum.attention[0] / 3.0).unwrap(), &mean.attention[0]) < 1e-6);
    let rows = f.sum(2).unwrap().to_vec2::<f32>().unwrap();
    assert!(rows.iter().flatten().all(|s| (s - 1.0).abs() < 1e-5));
    let p = f.to_vec3::<f32>().unwrap();
    assert_eq!(p[0][0][3], 0.0, "query 1 must not see key 3");

    let mut c = m.new_cache();
    let early = ForwardOpts {
        n_layers: Some(1),
        ..Default::default()
    };
    let o = m.forward(&IDS[..4], &pos(0..4), &mut c, &early).unwrap();
    assert_eq!(o.logits.unwrap().dims(), &[1, V]);
    assert_eq!((c.len(0), c.len(1)), (4, 0));
}

#[test]
fn bad_safetensors_are_input_errors_naming_file_and_tensor() {
    let d = TempDir::new("bad");
    write_tiny(
        &d.0,
        "llama",
        None,
        Some("model.layers.1.self_attn.q_proj.weight"),
    );
    let e = Model::load_hf_dir(&d.0, &LoadOptions::f32()).unwrap_err();
    let s = e.to_string();
    assert_eq!(e.exit_code(), 2, "{s}");
    assert!(
        s.contains("model.safetensors") && s.contains("model.layers.1.self_attn.q_proj.weight"),
        "{s}"
    );
    assert!(s.contains("expected shape [32, 32], found [3, 5]"), "{s}");

    let f = d.0.join("model.safetensors");
    let bytes = std::fs::read(&f).unwrap();
    std::fs::write(&f, &bytes[..bytes.len() / 2]).unwrap();
    let e = Model::load_hf_dir(&d.0, &LoadOptions::f32()).unwrap_err();
    assert_eq!(e.exit_code(), 2, "{e}");
    assert!(e.to_string().contains("model.safetensors"), "{e}");

    std::fs::write(d.0.join("config.json"), r#"{"model_type": "gpt2"}"#).unwrap();
    let e = Model::load_hf_dir(&d.0, &LoadOptions::f32()).unwrap_err();
    assert!(e.to_string().contains("model_type"), "{e}");
}

#[test]
fn quantized_linear_is_close_to_dense() {
    use super::linear::{requant_q8, Linear, Weight};
    use candle_core::quantized::{GgmlDType, QTensor};
    use std::sync::Arc;
    let dev = Device::Cpu;
    let w = Tensor::randn(0f32, 1.0, (96, 64), &dev).unwrap();
    let x = Tensor::randn(0f32, 1.0, (5, 64), &dev).unwrap();
    let dense = Linear::new(Weight::Dense(w.clone()), None)
        .unwrap()
        .forward(&x)
        .unwrap();
    let q41 = QTensor::quantize(&w, GgmlDType::Q4_1).unwrap();
    let q8 = requant_q8(&q41).unwrap();
    assert_eq!(q8.dtype(), GgmlDType::Q8_0);
    let scale = dense
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    for q in [q41, q8] {
        let y = Linear::new(Weight::Quant(Arc::new(q)), None)
            .unwrap()
            .forward(&x)
            .unwrap();
        let d = max_diff(&y, &dense);
        // Q4_1 weights: ~1/32 of the range per element, averaged over 64 terms
        assert!(d > 0.0 && d < 0.15 * scale, "diff {d} vs max {scale}");
    }
}
