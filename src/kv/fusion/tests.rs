//! Fusion against full prefill on the tiny fixture model (f32).

use std::path::Path;

use candle_core::{DType, Device, Tensor};

use super::alone::compute_alone;
use super::attnlink::chunk_starts;
use super::budget::{budget, per_chunk, top_k};
use super::fuse::{fuse, FuseOpts, Method, METHODS};
use super::layout::{assemble, FusionInput};
use crate::kv::{Codec, KvCache};
use crate::model::{LoadOptions, Model};

fn tiny() -> Model {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny/llama_gqa_tied");
    Model::load_hf_dir(&dir, &LoadOptions::f32()).unwrap()
}

fn ids(seed: u32, n: usize) -> Vec<u32> {
    (0..n as u32)
        .map(|i| (i.wrapping_mul(2654435761).wrapping_add(seed * 97) >> 7) % 256)
        .collect()
}

fn input(m: &Model, prefix: usize, chunks: &[usize], question: usize) -> FusionInput {
    let prefix_ids = ids(1, prefix);
    let prefix_kv = (prefix > 0).then(|| compute_alone(m, None, &prefix_ids).unwrap().kv);
    let segments = chunks
        .iter()
        .enumerate()
        .map(|(i, &n)| compute_alone(m, prefix_kv.as_ref(), &ids(10 + i as u32, n)).unwrap())
        .collect();
    FusionInput {
        prefix: prefix_ids,
        prefix_kv,
        segments,
        question: ids(99, question),
    }
}

fn opts(rate: f64, attnlink: Vec<usize>) -> FuseOpts {
    FuseOpts {
        rate,
        check_layer: 1,
        blend_use_v: true,
        attnlink,
    }
}

fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    let a = a.to_dtype(DType::F32).unwrap();
    let b = b.to_dtype(DType::F32).unwrap();
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

#[test]
fn rate_one_reproduces_vanilla_for_every_selector() {
    let m = tiny();
    let inp = input(&m, 4, &[9, 13, 6], 5);
    let n = inp.doc_len();
    let all: Vec<usize> = (0..n).collect();
    let reference = fuse(&m, &inp, Method::Vanilla, &opts(1.0, vec![])).unwrap();
    let want = reference.logits.unwrap();
    for name in ["blend", "a3", "surprisal_chunk", "attnlink"] {
        let method = Method::parse(name).unwrap();
        let f = fuse(&m, &inp, method, &opts(1.0, all.clone())).unwrap();
        assert_eq!(f.recomputed, all, "{name}");
        let d = max_diff(&f.logits.unwrap(), &want);
        assert!(d <= 1e-4, "{name}: max |logit diff| {d}");
        assert_eq!(f.cache.len(0), inp.all_ids().len(), "{name}");
    }
    // Without recomputation the logits move: the comparison can fail.
    for name in ["cat", "full"] {
        let f = fuse(&m, &inp, Method::parse(name).unwrap(), &opts(1.0, vec![])).unwrap();
        assert!(f.recomputed.is_empty());
        assert!(max_diff(&f.logits.unwrap(), &want) > 1e-4, "{name}");
    }
    assert!(METHODS.iter().all(|s| Method::parse(s).is_some()));
    assert!(Method::parse("nope").is_none());
}

#[test]
fn cat_of_one_chunk_without_question_is_the_chunks_kv() {
    let m = tiny();
    let inp = input(&m, 0, &[11], 0);
    let f = fuse(&m, &inp, Method::Cat, &opts(0.5, vec![])).unwrap();
    assert!(f.logits.is_none());
    let kv = &inp.segments[0].kv;
    for l in 0..kv.n_layers() {
        assert_eq!(f.cache.positions(l), kv.positions(l));
        assert_eq!(max_diff(&f.cache.k(l).unwrap(), &kv.k(l).unwrap()), 0.0);
        assert_eq!(max_diff(&f.cache.v(l).unwrap(), &kv.v(l).unwrap()), 0.0);
    }
}

#[test]
fn rerotated_chunk_equals_the_chunk_computed_there() {
    let m = tiny();
    let chunk = ids(5, 12);
    let at0 = compute_alone(&m, None, &chunk).unwrap().kv;
    for offset in [1i64, 7, 64, 200] {
        let mut moved = at0.clone();
        moved.rerotate(offset).unwrap();
        let mut there = m.new_cache();
        let pos: Vec<i64> = (offset..offset + chunk.len() as i64).collect();
        m.forward(&chunk, &pos, &mut there, &Default::default())
            .unwrap();
        for l in 0..there.n_layers() {
            assert_eq!(moved.positions(l), there.positions(l));
            let dk = max_diff(&moved.k(l).unwrap(), &there.k(l).unwrap());
            let dv = max_diff(&moved.v(l).unwrap(), &there.v(l).unwrap());
            assert!(
                dk <= 1e-4 && dv <= 1e-4,
                "offset {offset} layer {l}: {dk} {dv}"
            );
        }
    }
    // Assembly puts chunk i right after chunk i-1.
    let inp = input(&m, 3, &[4, 5], 0);
    let c = assemble(&m, &inp).unwrap();
    assert_eq!(c.positions(0), (0..12).collect::<Vec<i64>>());
}

#[test]
fn budgets_never_exceed_or_undershoot() {
    assert_eq!(budget(0.0001, 10), 1);
    assert_eq!(budget(1.0, 10), 10);
    assert_eq!(budget(7.0, 10), 10);
    assert_eq!(budget(0.15, 100), 15);
    assert_eq!(budget(0.5, 0), 0);
    for (k, lens) in [
        (1, vec![3, 3, 4]),
        (7, vec![1, 2, 7]),
        (10, vec![5, 5]),
        (5, vec![0, 4, 9]),
    ] {
        let b = per_chunk(k, &lens);
        assert_eq!(b.iter().sum::<usize>(), k, "{k} {lens:?}");
        assert!(b.iter().zip(&lens).all(|(b, n)| b <= n), "{b:?}");
    }
    // remainders 3, 3, 0 of 6: the tie goes to the earlier chunk.
    assert_eq!(per_chunk(3, &[1, 1, 4]), vec![1, 0, 2]);
    assert_eq!(top_k(&[0.1, 0.9, f32::NAN, 0.9], 2), vec![1, 3]);
    assert_eq!(chunk_starts(&[4, 6], 3), vec![0, 4, 5]);
    // One forward each: a 10-token document at rate 0.0001 recomputes 1.
    let m = tiny();
    let inp = input(&m, 2, &[4, 6], 3);
    for name in ["blend", "a3", "surprisal_chunk"] {
        let f = fuse(
            &m,
            &inp,
            Method::parse(name).unwrap(),
            &opts(0.0001, vec![]),
        )
        .unwrap();
        assert_eq!(f.recomputed.len(), 1, "{name}");
        assert_eq!(f.cache.len(0), 2 + 10 + 3, "{name}");
    }
    let e = fuse(&m, &inp, Method::AttnLink, &opts(0.1, vec![10])).unwrap_err();
    assert!(e.to_string().contains("outside the document"), "{e}");
}

#[test]
fn kv_files_round_trip_and_tampering_is_detected() {
    let m = tiny();
    let kv = compute_alone(&m, None, &ids(3, 40)).unwrap().kv;
    let dir = std::env::temp_dir().join(format!("kvlab-fusion-file-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for dtype in [DType::F32, DType::F16, DType::BF16] {
        let c = cast(&kv, dtype);
        for codec in [Codec::Plain, Codec::Planes, Codec::PlanesDelta] {
            let path = dir.join(format!("{dtype:?}-{codec:?}.kv"));
            c.save_with(&path, codec).unwrap();
            let d = KvCache::load(&path, &Device::Cpu).unwrap();
            assert_eq!(d.dtype(), dtype);
            for l in 0..c.n_layers() {
                assert_eq!(max_diff(&d.k(l).unwrap(), &c.k(l).unwrap()), 0.0);
                assert_eq!(d.positions(l), c.positions(l));
            }
            let good = std::fs::read(&path).unwrap();
            let mut bad = good.clone();
            let at = bad.len() - 9;
            bad[at] ^= 0x40;
            std::fs::write(&path, &bad).unwrap();
            let e = KvCache::load(&path, &Device::Cpu).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{e}");
            std::fs::write(&path, &good[..good.len() / 2]).unwrap();
            let e = KvCache::load(&path, &Device::Cpu).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{e}");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The same entries stored as `dtype`.
fn cast(c: &KvCache, dtype: DType) -> KvCache {
    let mut out = KvCache::new(
        c.n_layers(),
        c.kv_heads(),
        c.head_dim(),
        dtype,
        &Device::Cpu,
        c.rope().clone(),
    );
    for l in 0..c.n_layers() {
        out.append(l, &c.k(l).unwrap(), &c.v(l).unwrap(), c.positions(l))
            .unwrap();
    }
    out
}

#[test]
fn a_press_after_fusion_sees_the_cache_in_position_order() {
    use super::press_after::{press_fused, sort_by_position};
    use crate::kv::press::Press;
    let m = tiny();
    // Longer than snapkv's 64-query window, which it must exceed.
    let inp = input(&m, 2, &[40, 40], 4);
    let f = fuse(&m, &inp, Method::Blend, &opts(0.3, vec![])).unwrap();
    let n = f.cache.len(0);
    // Recomputed entries went to the end: out of order before sorting.
    assert!(f.cache.positions(0).windows(2).any(|w| w[0] > w[1]));
    let mut sorted = f.cache.clone();
    sort_by_position(&mut sorted).unwrap();
    assert_eq!(sorted.positions(1), (0..n as i64).collect::<Vec<_>>());
    // streaming_llm keeps the 4 sinks and the most recent positions.
    let mut c = f.cache.clone();
    let sl = Press::from_name("t", "streaming_llm").unwrap();
    let (st, rerun) = press_fused(&m, &mut c, &inp.question, &sl, 0.5).unwrap();
    assert!(rerun.is_none());
    let kept = st.kept[0] as i64;
    let want: Vec<i64> = (0..4).chain(n as i64 - (kept - 4)..n as i64).collect();
    assert_eq!(c.positions(0), want);
    // snapkv observes the question, re-run: same logits as the fusion's.
    let mut c = f.cache.clone();
    let snap = Press::from_name("t", "snapkv").unwrap();
    let (st, rerun) = press_fused(&m, &mut c, &inp.question, &snap, 0.5).unwrap();
    let d = max_diff(&rerun.unwrap(), f.logits.as_ref().unwrap());
    assert!(d <= 1e-4, "{d}");
    assert_eq!(c.len(0), st.kept[0]);
    assert!(st.kept[0] < n);
}
