//! Small seeded runs (seconds): config errors, exact mining, checkpoint
//! round trip through the ordinary loader, early exit at threshold 1, and
//! phase 2 lowering the hard-token loss.

use super::*;
use crate::decode::early_exit::{generate_early_exit, DeepKv, EarlyExitOpts};
use crate::decode::generate::{generate, GenerateOpts};
use crate::error::Error;
use crate::model::{ForwardOpts, LoadOptions, Logits, Model};
use crate::testutil::max_diff;

fn field_of(e: Error) -> String {
    match e {
        Error::Input { field, .. } => field,
        other => panic!("expected an input error, got {other}"),
    }
}

fn tiny() -> TrainConfig {
    TrainConfig {
        seq_len: 16,
        dim: 32,
        n_heads: 2,
        intermediate_size: 64,
        phase1_layers: 1,
        phase2_layers: 2,
        phase1_samples: 256,
        batch_size: 16,
        phase1_epochs: 2,
        phase2_epochs: 3,
        max_val_windows: 16,
        ..Default::default()
    }
}

/// A deterministic text with easy (repeated) and hard (pseudo-random) parts.
fn text() -> String {
    let mut s = String::new();
    let mut x = 12345u64;
    for i in 0..400 {
        s.push_str("the cat sat on the mat. ");
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        s.push((b'a' + (x >> 59) as u8 % 26) as char);
        s.push_str(&format!("{} ", i % 7));
    }
    s
}

#[test]
fn bad_settings_are_input_errors_naming_the_field() {
    for r in [0.0, 1.0, 1.5, -0.1] {
        let c = TrainConfig {
            hard_example_ratio: r,
            ..tiny()
        };
        assert_eq!(field_of(c.validate().unwrap_err()), "hard_example_ratio");
    }
    let c = TrainConfig {
        phase2_layers: 1,
        ..tiny()
    };
    assert_eq!(field_of(c.validate().unwrap_err()), "phase2_layers");
    for t in [-0.01, 1.01] {
        assert_eq!(
            field_of(config::check_threshold("threshold", t).unwrap_err()),
            "threshold"
        );
    }
    let e = Corpus::from_ids(vec![1, 2, 3], data::BYTE_VOCAB, &tiny()).unwrap_err();
    assert_eq!(field_of(e), "training set");
    let e = select_hardest(&[0.5], 0.5, MiningScore::MaxProb).unwrap_err();
    assert_eq!(field_of(e), "training set");
}

#[test]
fn mining_selects_exactly_the_fraction_with_ties() {
    // 1000 scores with heavy ties (10 distinct values).
    let scores: Vec<f32> = (0..1000).map(|i| ((i * 7) % 10) as f32 / 10.0).collect();
    for ratio in [0.05, 0.25, 0.333, 0.5, 0.95] {
        let m = select_hardest(&scores, ratio, MiningScore::MaxProb).unwrap();
        let want = (ratio * 1000.0f64).round() as usize;
        assert_eq!(m.n_hard, want);
        assert_eq!(m.hard.iter().filter(|&&h| h).count(), want);
        for (s, h) in scores.iter().zip(&m.hard) {
            if *h {
                assert!(*s <= m.threshold);
            } else {
                assert!(*s >= m.threshold);
            }
        }
    }
}

#[test]
fn checkpoint_loads_through_the_ordinary_loader_and_cache_matches() {
    let cfg = tiny();
    let corpus = Corpus::from_text(&text(), &cfg).unwrap();
    let shape = model::Shape {
        vocab_size: corpus.vocab_size,
        dim: 32,
        n_heads: 2,
        intermediate_size: 64,
        n_layers: 2,
        rms_norm_eps: 1e-5,
        rope_theta: 10_000.0,
        max_position: 256,
    };
    let tm = TrainModel::new(shape, 7, &candle_core::Device::Cpu).unwrap();
    let dir = std::env::temp_dir().join(format!("kvlab-train-ckpt-{}", std::process::id()));
    tm.save_hf(&dir, 2).unwrap();
    let m = Model::load_hf_dir(&dir, &LoadOptions::f32()).unwrap();
    assert_eq!(m.config().n_layers, 2);
    let ids: Vec<u32> = corpus.train[..12].to_vec();
    let pos: Vec<i64> = (0..12).collect();
    let all = ForwardOpts {
        logits: Logits::All,
        ..Default::default()
    };
    let full = m
        .forward(&ids, &pos, &mut m.new_cache(), &all)
        .unwrap()
        .logits
        .unwrap();
    let mine = tm
        .forward(std::slice::from_ref(&ids), 2)
        .unwrap()
        .squeeze(0)
        .unwrap();
    assert!(
        max_diff(&full, &mine) < 1e-4,
        "loader vs trainer {}",
        max_diff(&full, &mine)
    );
    // Token by token with the cache == one pass without it.
    let mut cache = m.new_cache();
    for t in 0..12 {
        let step = m
            .forward(
                &ids[t..t + 1],
                &pos[t..t + 1],
                &mut cache,
                &ForwardOpts::default(),
            )
            .unwrap()
            .logits
            .unwrap();
        let d = max_diff(&step, &full.narrow(0, t, 1).unwrap());
        assert!(d < 1e-4, "cache vs no cache at {t}: {d}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn lego_phase2_lowers_hard_loss_and_early_exit_at_one_is_greedy() {
    let cfg = tiny();
    let corpus = Corpus::from_text(&text(), &cfg).unwrap();
    let dir = std::env::temp_dir().join(format!("kvlab-train-lego-{}", std::process::id()));
    let run = run_lego(&cfg, &corpus, Some(&dir)).unwrap();
    assert_eq!(run.mined.n_hard, (0.5 * (256.0 * 16.0f64)).round() as usize);
    assert!(
        run.phase2.hard_train_nll < run.phase1.hard_train_nll - 0.01,
        "phase 2 hard nll {} vs phase 1 {}",
        run.phase2.hard_train_nll,
        run.phase1.hard_train_nll
    );
    assert!(dir.join("loss_curves.parquet").exists());
    let m = Model::load_hf_dir(&dir.join("phase2"), &LoadOptions::f32()).unwrap();
    let prompt = corpus.val[..8].to_vec();
    let plain = generate(
        &m,
        &prompt,
        &GenerateOpts {
            max_new_tokens: 24,
            temperature: 0.0,
            seed: 0,
            stop_ids: vec![],
        },
    )
    .unwrap();
    for deep_kv in [DeepKv::Lazy, DeepKv::Propagate] {
        let o = EarlyExitOpts {
            exit_layer: 1,
            threshold: 1.0,
            max_new_tokens: 24,
            deep_kv,
            stop_ids: vec![],
        };
        let g = generate_early_exit(&m, &prompt, &o).unwrap();
        assert_eq!(g.new_ids, plain.new_ids, "{deep_kv:?}");
        assert_eq!(g.shallow_ratio(), 0.0);
        // Threshold 0 exits every token and still runs.
        let g0 = generate_early_exit(
            &m,
            &prompt,
            &EarlyExitOpts {
                threshold: 0.0,
                ..o
            },
        )
        .unwrap();
        assert_eq!(g0.shallow_ratio(), 1.0);
        assert_eq!(g0.new_ids.len(), 24);
    }
    std::fs::remove_dir_all(&dir).ok();
}
