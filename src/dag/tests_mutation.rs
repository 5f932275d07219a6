//! Hostile TOML: the shipped pipeline (pipelines/default.toml, read by
//! `Plan::load` and the Slurm settings as `kvlab run` reads it) and the pins
//! file (stages/pins.toml, checked as `kvlab fetch` resolves each pin),
//! mutated by truncations, bit flips, absurd numbers, huge strings, deep
//! nesting and shuffled lines. Every case ends in Ok or Err, never a panic,
//! a stack overflow or a hang. Seeded; a few seconds each.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::dag::plan::Plan;
use crate::mutation::{mutate, Outcome, Rng, Tally};

fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

const NUMBERS: &[&str] = &[
    "18446744073709551615",
    "18446744073709551616",
    "9223372036854775807",
    "-9223372036854775808",
    "1e400",
    "-1",
    "0",
    "nan",
    "-inf",
    "0x7fffffffffffffff",
];

/// Text-level mutations a byte flip rarely makes: values replaced by absurd
/// numbers or huge strings, deep nesting, lines deleted, doubled or swapped.
fn mutate_toml(rng: &mut Rng, good: &str) -> String {
    let mut lines: Vec<String> = good.lines().map(str::to_string).collect();
    let i = rng.below(lines.len());
    match rng.below(6) {
        0 | 1 => {
            if let Some(eq) = lines[i].find('=') {
                let v = match rng.below(4) {
                    0 => format!("\"{}\"", "x".repeat(1 << (10 + rng.below(7)))),
                    1 => format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000)),
                    2 => format!("{}{}", "{ a = ".repeat(5_000), "}".repeat(5_000)),
                    _ => NUMBERS[rng.below(NUMBERS.len())].to_string(),
                };
                lines[i] = format!("{} {v}", &lines[i][..=eq]);
            }
        }
        2 => {
            lines.remove(i);
        }
        3 => {
            let l = lines[i].clone();
            lines.insert(rng.below(lines.len()), l);
        }
        4 => {
            let j = rng.below(lines.len());
            lines.swap(i, j);
        }
        _ => lines[i] = format!("[{}]", "a.".repeat(1 << (4 + rng.below(12))) + "b"),
    }
    lines.join("\n")
}

/// Runs byte and text mutations of `good` through `check`, then reports.
fn run(target: &str, good: &str, seed: u64, min: usize, check: fn(String) -> bool) {
    let mut t = Tally::new(target, Duration::from_secs(8));
    let mut rng = Rng(seed);
    while t.more(4000) {
        let text = if rng.below(2) == 0 {
            let b = mutate(&mut rng, good.as_bytes(), good.len());
            // Invalid UTF-8 is the file reader's error; keep the rest of the text.
            String::from_utf8_lossy(&b).into_owned()
        } else {
            mutate_toml(&mut rng, good)
        };
        let n = t.cases;
        t.case(
            || format!("case {n}"),
            move || {
                if check(text) {
                    Outcome::Load
                } else {
                    Outcome::Error
                }
            },
        );
    }
    t.finish(min);
}

/// The runner's reading of a pipeline file: the plan (with and without the
/// preset) and the Slurm settings it may carry.
fn load_pipeline(text: String) -> bool {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("kvlab-toml-mutate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("p{n}.toml"));
    std::fs::write(&path, text).unwrap();
    let registry = crate::stages::registry;
    let plan = Plan::load(&path, None, registry());
    let quick = Plan::load(&path, Some("quick"), registry());
    let slurm = plan
        .as_ref()
        .is_ok_and(|p| crate::dag::slurm_config::resolve(Some((&p.doc, &p.file)), &[]).is_ok());
    let _ = std::fs::remove_file(&path);
    plan.is_ok() && quick.is_ok() && slurm
}

fn load_pins(text: String) -> bool {
    crate::data::fetch::check_pins(&text, Path::new("pins.toml")).is_ok()
}

#[test]
fn mutated_pipeline_toml_is_an_error_not_a_panic() {
    let good = std::fs::read_to_string(repo_file("pipelines/default.toml")).unwrap();
    assert!(load_pipeline(good.clone()), "the shipped pipeline loads");
    run(
        "pipelines/default.toml",
        &good,
        0x005e_ed70_0001,
        500,
        load_pipeline,
    );
}

#[test]
fn mutated_pins_are_an_error_not_a_panic() {
    let good = std::fs::read_to_string(repo_file("stages/pins.toml")).unwrap();
    let n = crate::data::fetch::check_pins(&good, Path::new("stages/pins.toml")).unwrap();
    assert!(n >= 10, "{n} pins");
    run("stages/pins.toml", &good, 0x005e_ed70_0002, 500, load_pins);
}
