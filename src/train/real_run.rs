//! The measured runs (ignored: minutes, and they need the pinned alice29
//! text / SmolLM2 GGUF): `cargo test --release --lib real_run -- --ignored
//! --nocapture` with KVLAB_ALICE_TXT and KVLAB_SMOLLM2_GGUF set. They print
//! the numbers the report quotes.

use super::*;
use crate::decode::early_exit::{full_model_nll, generate_early_exit, DeepKv, EarlyExitOpts};
use crate::decode::generate::{generate, GenerateOpts};
use crate::eval::cache_speedup::cache_speedup;
use crate::eval::two_stage::{calibrate_threshold, route_tokens, two_stage};
use crate::model::{LoadOptions, Model};

fn greedy(m: &Model, prompt: &[u32], n: usize) -> Vec<u32> {
    let o = GenerateOpts {
        max_new_tokens: n,
        temperature: 0.0,
        seed: 0,
        stop_ids: vec![],
    };
    generate(m, prompt, &o).unwrap().new_ids
}

fn sweep(m: &Model, prompt: &[u32], exit_layer: usize, n: usize, thresholds: &[f64]) {
    let t = std::time::Instant::now();
    let full = greedy(m, prompt, n);
    let full_s = t.elapsed().as_secs_f64();
    println!(
        "full greedy: {n} tokens in {full_s:.3}s = {:.1} tok/s",
        n as f64 / full_s
    );
    for mode in [DeepKv::Lazy, DeepKv::Propagate] {
        for &th in thresholds {
            let o = EarlyExitOpts {
                exit_layer,
                threshold: th,
                max_new_tokens: n,
                deep_kv: mode,
                stop_ids: vec![],
            };
            let g = generate_early_exit(m, prompt, &o).unwrap();
            let agree = g.new_ids.iter().zip(&full).filter(|(a, b)| a == b).count();
            let ppl = full_model_nll(m, prompt, &g.new_ids).unwrap().exp();
            println!(
                "{mode:?} exit@{exit_layer} th={th}: shallow {:.3}, full-model ppl of output {ppl:.3}, agreement {:.3}, {:.1} tok/s, speedup {:.2}x",
                g.shallow_ratio(),
                agree as f64 / n as f64,
                n as f64 / g.wall_s,
                full_s / g.wall_s
            );
        }
    }
}

#[test]
#[ignore]
fn lego_alice_seed001() {
    let cfg = TrainConfig::default();
    let text = data::read_text(&data::alice_path().unwrap()).unwrap();
    let corpus = Corpus::from_text(&text, &cfg).unwrap();
    let dir = std::path::PathBuf::from("target/lego-alice");
    let t = std::time::Instant::now();
    let run = run_lego(&cfg, &corpus, Some(&dir)).unwrap();
    println!(
        "trained in {:.1}s; mined {} of {} tokens, threshold {:.4} ({:?})",
        t.elapsed().as_secs_f64(),
        run.mined.n_hard,
        run.mined.hard.len(),
        run.mined.threshold,
        run.mined.score
    );
    println!("phase1 {:?}", run.phase1);
    println!("phase2 {:?}", run.phase2);
    let m = Model::load_hf_dir(&dir.join("phase2"), &LoadOptions::f32()).unwrap();
    let (ls, ld) = (cfg.phase1_layers, cfg.phase2_layers);
    let toks = route_tokens(&m, &run.val_windows, ls).unwrap();
    let th = run.mined.threshold as f64;
    println!(
        "two-stage (mined threshold) {:?}",
        two_stage(&toks, th, ls, ld).unwrap()
    );
    let confs: Vec<f32> = toks.iter().map(|t| t.shallow_conf).collect();
    let cal = calibrate_threshold(&confs, cfg.hard_example_ratio).unwrap();
    println!(
        "two-stage (val-calibrated 50% below) {:?}",
        two_stage(&toks, cal, ls, ld).unwrap()
    );
    let prompt = corpus.val[..16].to_vec();
    sweep(&m, &prompt, ls, 128, &[1.0, 0.9, 0.7, 0.5, th, 0.0]);
    for n in [32, 128, 512] {
        println!("trained cache {:?}", cache_speedup(&m, &prompt, n).unwrap());
    }
}

#[test]
#[ignore]
fn early_exit_and_cache_smollm2() {
    let path = crate::testutil::smollm2_gguf();
    let m = Model::load_gguf(&path, &LoadOptions::quantized()).unwrap();
    let tok = crate::tokenizer::Tokenizer::from_gguf_file(&path).unwrap();
    let text = data::read_text(&data::alice_path().unwrap()).unwrap();
    let ids = tok.encode(&text[2000..6000]).unwrap();
    let prompt = ids[..64].to_vec();
    for exit in [20, 26] {
        sweep(&m, &prompt, exit, 64, &[1.0, 0.9, 0.7, 0.5]);
    }
    let windows: Vec<Vec<u32>> = ids.chunks_exact(129).take(4).map(|c| c.to_vec()).collect();
    let toks = route_tokens(&m, &windows, 20).unwrap();
    for th in [1.0, 0.9, 0.7, 0.5] {
        println!(
            "smollm2 two-stage exit@20 {:?}",
            two_stage(&toks, th, 20, 30).unwrap()
        );
    }
    for n in [32, 128] {
        println!("smollm2 cache {:?}", cache_speedup(&m, &prompt, n).unwrap());
    }
}
