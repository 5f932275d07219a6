//! Speculative decoding on the tiny HF fixtures: greedy output equals the
//! target's plain greedy output for every draft kind and schedule; counters;
//! stop tokens; recycling; the press hook; ReKV events.

use super::test_support::*;
use super::*;
use crate::decode::generate::{generate, GenerateOpts};

/// Repeats itself, so prompt lookup finds matches.
const REPEAT: [u32; 16] = [1, 5, 9, 13, 5, 9, 13, 5, 9, 13, 5, 9, 13, 5, 9, 13];

fn plain(m: &Model, prompt: &[u32], n: usize, stop: &[u32]) -> Vec<u32> {
    let o = GenerateOpts {
        max_new_tokens: n,
        temperature: 0.0,
        seed: 0,
        stop_ids: stop.to_vec(),
    };
    generate(m, prompt, &o).unwrap().new_ids
}

/// The per-round rules of mod.rs, checked on one generation.
fn check_counters(g: &SpecGeneration, max_new: usize) {
    assert!(g.new_ids.len() <= max_new);
    let emitted: usize = g.rounds.iter().map(|r| r.emitted).sum();
    assert_eq!(
        emitted + 1,
        g.new_ids.len(),
        "first token + emitted per round"
    );
    for (i, r) in g.rounds.iter().enumerate() {
        assert_eq!(r.round, i);
        assert_eq!(r.drafted, r.accepted + r.rejected, "{r:?}");
        assert_eq!(
            r.rejected_at,
            (r.rejected > 0).then_some(r.accepted),
            "{r:?}"
        );
        assert!(r.drafted <= r.gamma, "{r:?}");
        if i + 1 < g.rounds.len() {
            assert_eq!(r.emitted, r.accepted + 1, "{r:?}");
        } else {
            assert!(r.emitted >= 1 && r.emitted <= r.accepted + 1, "{r:?}");
        }
        assert!(r.draft_ms >= 0.0 && r.verify_ms > 0.0 && r.round_ms >= r.verify_ms);
    }
    assert_eq!(
        g.counters.target_forwards,
        g.rounds.len() + 1,
        "prefill + one per round"
    );
}

#[test]
fn greedy_equals_plain_for_every_draft_kind_and_gamma() {
    let t = target();
    let small = small_model();
    let twin = f16_twin();
    let n = 40;
    for prompt in [&PROMPT[..], &REPEAT[..]] {
        let want = plain(&t, prompt, n, &[]);
        let drafts = [
            model_draft(&small, "llama_untied"),
            model_draft(&twin, "f16 twin"),
            Draft::SelfSpec { layers: 1 },
            Draft::SelfSpec { layers: 2 },
            Draft::Lookup { ngram: 3 },
        ];
        for (di, d) in drafts.iter().enumerate() {
            for gamma in 1..=8 {
                let g = speculative_generate(
                    &t,
                    d,
                    prompt,
                    &greedy_opts(n, GammaSchedule::Fixed(gamma)),
                )
                .unwrap();
                assert_eq!(g.new_ids, want, "draft {di}, gamma {gamma}");
                check_counters(&g, n);
            }
        }
    }
}

#[test]
fn drafts_are_accepted_when_they_should_be() {
    let t = target();
    let twin = f16_twin();
    // The f16 twin agrees with the f32 target almost always.
    let d = model_draft(&twin, "twin");
    let g =
        speculative_generate(&t, &d, &PROMPT, &greedy_opts(40, GammaSchedule::Fixed(4))).unwrap();
    assert!(g.acceptance_rate() > 0.8, "{}", g.acceptance_rate());
    assert!(
        g.rounds.len() < 20,
        "{} rounds for 40 tokens",
        g.rounds.len()
    );
    // Prompt lookup on a periodic continuation accepts most of its proposals.
    let plain_out = plain(&t, &REPEAT, 40, &[]);
    let l = Draft::Lookup { ngram: 2 };
    let g =
        speculative_generate(&t, &l, &REPEAT, &greedy_opts(40, GammaSchedule::Fixed(4))).unwrap();
    assert_eq!(g.new_ids, plain_out);
    assert!(g.drafted() > 0);
}

#[test]
fn dynamic_gamma_and_cascade_equal_plain() {
    let t = target();
    let small = small_model();
    let mid = f16_twin();
    let n = 40;
    let want = plain(&t, &PROMPT, n, &[]);
    let schedules = [
        GammaSchedule::Aimd {
            start: 4,
            floor: 2,
            cap: 8,
        },
        GammaSchedule::Heuristic { start: 3, cap: 10 },
    ];
    let small_d = || model_draft(&small, "small");
    for s in schedules {
        let g = speculative_generate(&t, &small_d(), &PROMPT, &greedy_opts(n, s)).unwrap();
        assert_eq!(g.new_ids, want, "{s:?}");
        check_counters(&g, n);
        // The schedule's rule, round after round.
        for w in g.rounds.windows(2) {
            assert_eq!(w[1].gamma, s.next(w[0].gamma, w[0].drafted, w[0].accepted));
        }
        assert!(
            g.rounds.iter().any(|r| r.gamma != s.start()),
            "gamma never moved"
        );
    }
    for inner in [
        small_d(),
        Draft::Lookup { ngram: 2 },
        Draft::SelfSpec { layers: 1 },
    ] {
        let c = Draft::Cascade {
            draft: Box::new(inner),
            intermediate: &mid,
            name: "mid".into(),
        };
        for gamma in [1, 3, 6] {
            let g = speculative_generate(
                &t,
                &c,
                &PROMPT,
                &greedy_opts(n, GammaSchedule::Fixed(gamma)),
            )
            .unwrap();
            assert_eq!(g.new_ids, want, "cascade gamma {gamma}");
            check_counters(&g, n);
            assert!(g.counters.inner_drafted >= g.counters.inner_accepted);
        }
    }
}

#[test]
fn stop_token_inside_a_window_stops_where_plain_does() {
    let t = target();
    let twin = f16_twin();
    let free = plain(&t, &PROMPT, 40, &[]);
    // A token first produced mid-way: plain decoding stops right after it.
    let j = (3..30)
        .rev()
        .find(|&j| !free[..j].contains(&free[j]))
        .expect("a fresh token");
    assert!(j >= 5, "the stop token comes too early: {free:?}");
    let stop = free[j];
    let want = plain(&t, &PROMPT, 40, &[stop]);
    assert_eq!(want.len(), j + 1);
    let drafts = [
        model_draft(&twin, "twin"),
        Draft::SelfSpec { layers: 2 },
        Draft::Lookup { ngram: 2 },
    ];
    let mut inside = false;
    for d in &drafts {
        for gamma in [3, 5, 8] {
            let mut o = greedy_opts(40, GammaSchedule::Fixed(gamma));
            o.stop_ids = vec![stop];
            let g = speculative_generate(&t, d, &PROMPT, &o).unwrap();
            assert_eq!(g.new_ids, want, "gamma {gamma}");
            assert_eq!(g.stop_reason, "stop_token");
            check_counters(&g, 40);
            let last = g.rounds.last().unwrap();
            inside |= last.emitted <= last.accepted;
        }
    }
    // The twin drafts the stop token and keeps going: the cut happened
    // inside an accepted window at least once.
    assert!(inside, "the stop token never fell inside a drafted window");
}

#[test]
fn max_new_tokens_is_exact() {
    let t = target();
    let twin = f16_twin();
    let d = model_draft(&twin, "twin");
    for n in [1, 2, 3, 7, 13] {
        let g = speculative_generate(&t, &d, &PROMPT, &greedy_opts(n, GammaSchedule::Fixed(5)))
            .unwrap();
        assert_eq!(g.new_ids, plain(&t, &PROMPT, n, &[]), "n {n}");
        check_counters(&g, n);
    }
    let g =
        speculative_generate(&t, &d, &PROMPT, &greedy_opts(0, GammaSchedule::Fixed(5))).unwrap();
    assert!(g.new_ids.is_empty() && g.rounds.is_empty());
}

#[test]
fn recycling_keeps_greedy_output_and_saves_draft_steps() {
    let t = target();
    let small = small_model();
    let d = model_draft(&small, "small");
    let want = plain(&t, &PROMPT, 48, &[]);
    for gamma in [3, 6] {
        let mut o = greedy_opts(48, GammaSchedule::Fixed(gamma));
        let base = speculative_generate(&t, &d, &PROMPT, &o).unwrap();
        o.recycle = Recycle::Draft;
        let g = speculative_generate(&t, &d, &PROMPT, &o).unwrap();
        assert_eq!(g.new_ids, want, "gamma {gamma}");
        check_counters(&g, 48);
        assert!(g.counters.draft_steps_saved > 0, "nothing recycled");
        assert_eq!(base.counters.draft_steps_saved, 0);
    }
    // Recycling into a shared cache would change the target: refused.
    let mut o = greedy_opts(8, GammaSchedule::Fixed(3));
    o.recycle = Recycle::Draft;
    let e = speculative_generate(&t, &Draft::SelfSpec { layers: 1 }, &PROMPT, &o).unwrap_err();
    assert!(e.to_string().contains("recycle"), "{e}");
}

#[test]
fn press_hook_is_called_and_an_empty_press_changes_nothing() {
    let t = target();
    let small = small_model();
    let d = model_draft(&small, "small");
    let o = greedy_opts(30, GammaSchedule::Fixed(4));
    let base = speculative_generate(&t, &d, &PROMPT, &o).unwrap();
    let (mut calls, mut saw_draft) = (0usize, 0usize);
    let mut hook = |round: usize, tc: &mut KvCache, dc: Option<&mut KvCache>| -> Result<()> {
        assert_eq!(round, calls);
        calls += 1;
        // A press that keeps everything: a gather of every index, then a
        // truncate to the full length.
        let keep: Vec<usize> = (0..tc.len(0)).collect();
        tc.gather_all(&keep)?;
        let n = tc.len(0);
        tc.truncate(n);
        if let Some(dc) = dc {
            saw_draft += 1;
            let n = dc.len(0);
            dc.truncate(n);
        }
        Ok(())
    };
    let g = speculative_generate_with(&t, &d, &PROMPT, &o, &mut hook).unwrap();
    assert_eq!(g.new_ids, base.new_ids);
    assert_eq!(calls, g.rounds.len());
    assert_eq!(saw_draft, calls);
    // A press that evicts does reach the engine: dropping the target's
    // prompt changes what it generates.
    let mut evict = |_: usize, tc: &mut KvCache, _: Option<&mut KvCache>| -> Result<()> {
        let n = tc.len(0);
        tc.gather_all(&(n.saturating_sub(2)..n).collect::<Vec<_>>())
    };
    let g = speculative_generate_with(&t, &d, &PROMPT, &o, &mut evict).unwrap();
    assert_ne!(g.new_ids, base.new_ids);
}

#[test]
fn invalid_settings_are_input_errors() {
    let t = target();
    for (d, what) in [
        (Draft::SelfSpec { layers: 3 }, "self_spec_layers"),
        (Draft::SelfSpec { layers: 0 }, "self_spec_layers"),
        (Draft::Lookup { ngram: 0 }, "lookup_ngram"),
    ] {
        let e = speculative_generate(&t, &d, &PROMPT, &greedy_opts(4, GammaSchedule::Fixed(2)))
            .unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains(what), "{e}");
    }
    let e = speculative_generate(
        &t,
        &Draft::Lookup { ngram: 2 },
        &PROMPT,
        &greedy_opts(4, GammaSchedule::Fixed(0)),
    )
    .unwrap_err();
    assert!(e.to_string().contains("gamma"), "{e}");
    assert_ne!(vocab_digest(256, None), vocab_digest(255, None));
    let e = check_same_vocab(
        &vocab_digest(256, None),
        &vocab_digest(255, None),
        "d.gguf",
        "--draft",
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("d.gguf") && e.to_string().contains("--draft"),
        "{e}"
    );
}

/// The draft's proposals are what the engine's own paths predict: the
/// self-speculative draft = argmax of `ForwardOpts::n_layers` early exit on a
/// fresh cache; the model draft = the draft model's plain greedy run.
#[test]
fn proposals_equal_independent_predictions() {
    let t = target();
    let small = small_model();
    let mut seq = PROMPT.to_vec();
    seq.push(plain(&t, &PROMPT, 1, &[])[0]);
    let mut cx = Cx {
        warp: Warp::greedy(),
        rng: rand::rngs::StdRng::seed_from_u64(0),
        stop_ids: &[],
        rekv: false,
        recycle: false,
        recycle_target: None,
        counters: Counters::default(),
    };
    for layers in [1, 2] {
        let mut cache = t.new_cache();
        let pos: Vec<i64> = (0..PROMPT.len() as i64).collect();
        t.forward(&PROMPT, &pos, &mut cache, &ForwardOpts::default())
            .unwrap();
        let d = Draft::SelfSpec { layers };
        let mut p = d.proposer(&t);
        let prop = p
            .propose(&seq, 5, &mut cache, PROMPT.len(), &mut cx)
            .unwrap();
        assert_eq!(prop.tokens.len(), 5);
        let mut ctx = seq.clone();
        for &tok in &prop.tokens {
            let pos: Vec<i64> = (0..ctx.len() as i64).collect();
            let o = ForwardOpts {
                n_layers: Some(layers),
                ..Default::default()
            };
            let lg = t
                .forward(&ctx, &pos, &mut t.new_cache(), &o)
                .unwrap()
                .logits
                .unwrap();
            assert_eq!(tok, argmax(&proposer::row(&lg).unwrap()), "layers {layers}");
            ctx.push(tok);
        }
        // Shallow layers hold the pending and drafted tokens, deep ones not yet.
        assert_eq!(cache.len(0), seq.len() + 5);
        assert_eq!(cache.len(2), PROMPT.len());
    }
    let d = model_draft(&small, "small");
    let mut p = d.proposer(&t);
    let prop = p.propose(&seq, 6, &mut t.new_cache(), 0, &mut cx).unwrap();
    assert_eq!(prop.tokens, plain(&small, &seq, 6, &[]));
}
