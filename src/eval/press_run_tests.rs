use std::path::Path;

use super::press_run::{prefill_compressed, reconstruction, PressInputs};
use crate::error::Error;
use crate::kv::press::{Budget, Press};
use crate::model::{ForwardOpts, LoadOptions, Logits, Model, Observe, Pool};

fn model() -> Model {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny/llama_gqa_tied");
    Model::load_hf_dir(&dir, &LoadOptions::f32()).unwrap()
}

#[test]
fn kvzip_scores_are_the_max_reconstruction_attention() {
    let m = model();
    let ids: Vec<u32> = (0..40).map(|i| (i * 29 + 7) % 250 + 3).collect();
    let prompt = vec![10u32, 11, 12, 13];
    let mut cache = m.new_cache();
    let pos: Vec<i64> = (0..40).collect();
    m.forward(&ids, &pos, &mut cache, &ForwardOpts::default())
        .unwrap();
    let got = reconstruction(&m, &cache, &ids, &prompt).unwrap();
    // The same from the full attention matrix: max over queries and the group.
    let q: Vec<u32> = prompt.iter().chain(&ids).copied().collect();
    let qpos: Vec<i64> = (40..40 + q.len() as i64).collect();
    let full = ForwardOpts {
        logits: Logits::None,
        observe: Some(Observe {
            queries: 0..q.len(),
            pool: Pool::Full,
        }),
        ..Default::default()
    };
    let out = m.forward(&q, &qpos, &mut cache.clone(), &full).unwrap();
    for (l, a) in out.attention.iter().enumerate() {
        let a = a.to_vec3::<f32>().unwrap(); // [nh, nq, L]
        for g in 0..2 {
            for j in [0usize, 5, 39] {
                let want = a[2 * g..2 * g + 2]
                    .iter()
                    .flatten()
                    .map(|row| row[j])
                    .fold(f32::NEG_INFINITY, f32::max);
                assert_eq!(got[l][g][j], want, "layer {l} group {g} entry {j}");
            }
        }
    }
    let inputs = PressInputs {
        repeat_prompt: Some(prompt),
        ..Default::default()
    };
    let press = Press::from_name("t", "kvzip").unwrap();
    let (p, st) = prefill_compressed("t", &m, &ids, &press, &Budget::ratio(0.5), &inputs).unwrap();
    assert_eq!(st.kept, vec![20, 20, 20]);
    assert!(
        p.cache.head_positions(2, 1)[..4] == [0, 1, 2, 3],
        "sinks kept"
    );
    let e = prefill_compressed(
        "t",
        &m,
        &ids,
        &press,
        &Budget::ratio(0.5),
        &Default::default(),
    );
    match e.err().unwrap() {
        Error::Input { field, .. } => assert_eq!(field, "repeat_prompt"),
        e => panic!("{e}"),
    }
}

#[test]
fn adakv_budget_frees_what_the_longest_head_allows() {
    let m = model();
    let ids: Vec<u32> = (0..64).map(|i| (i * 13 + 5) % 250 + 3).collect();
    let mut b = Budget::ratio(0.5);
    b.per_head = Some(0.2);
    let press = Press::SnapKv {
        window: 8,
        kernel: 5,
    };
    let (p, st) = prefill_compressed("t", &m, &ids, &press, &b, &Default::default()).unwrap();
    for (l, heads) in st.kept_per_head.iter().enumerate() {
        assert_eq!(
            heads.iter().sum::<usize>(),
            32 * 2,
            "layer {l} pools 2 heads x 32"
        );
        assert_eq!(st.kept[l], *heads.iter().max().unwrap());
        assert_eq!(p.cache.len(l), st.kept[l]);
    }
    let per_entry = st.bytes_before / (64 * 3);
    assert_eq!(st.bytes_after, per_entry * st.kept.iter().sum::<usize>());
    // The compressed cache still decodes.
    let mut c = p.cache.clone();
    m.forward(&[5], &[64], &mut c, &ForwardOpts::default())
        .unwrap();
}
