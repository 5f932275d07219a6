//! Seeded byte mutations and a case runner for the hostile-file tests
//! (model headers, pipeline TOML, pins). Each case runs on its own thread
//! so a panic is caught and a hang is reported instead of stalling CI.

use std::io::Write;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// xorshift64*: reproducible cases without a dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// Values a length, count, dim or offset field must survive: near 2^64,
/// 2^63, beyond any file, and u32 limits for fields read as u32.
pub fn absurd(file_len: usize) -> [u64; 8] {
    [
        u64::MAX,
        u64::MAX - 7,
        1 << 63,
        1 << 62,
        1 << 40,
        0xFFFF_FFFF,
        0x7FFF_FFFF,
        file_len as u64 + 1,
    ]
}

/// One mutation of `good`: a truncation, 1-4 bit flips, or an absurd u32/u64
/// written over a field. Three positions in four fall in the first
/// `header` bytes, where the parser's lengths and counts live.
pub fn mutate(rng: &mut Rng, good: &[u8], header: usize) -> Vec<u8> {
    let mut b = good.to_vec();
    let len = b.len();
    let header = header.clamp(1, len.max(1));
    let pos = |rng: &mut Rng| {
        if rng.below(4) == 0 {
            rng.below(len)
        } else {
            rng.below(header)
        }
    };
    match rng.below(3) {
        0 => b.truncate(pos(rng)),
        1 => {
            for _ in 0..1 + rng.below(4) {
                let at = pos(rng);
                b[at] ^= 1 << rng.below(8);
            }
        }
        _ => {
            let values = absurd(len);
            let x = values[rng.below(values.len())].to_le_bytes();
            let at = pos(rng).min(len.saturating_sub(8));
            let w = (4 + 4 * rng.below(2)).min(len - at);
            b[at..at + w].copy_from_slice(&x[..w]);
        }
    }
    b
}

/// What a case ended in; `Load` and `Error` both pass.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Outcome {
    Load,
    Error,
}

impl<T, E> From<std::result::Result<T, E>> for Outcome {
    fn from(r: std::result::Result<T, E>) -> Self {
        if r.is_ok() {
            Outcome::Load
        } else {
            Outcome::Error
        }
    }
}

/// Cases run against one target, with a wall-clock budget.
pub struct Tally {
    target: String,
    budget: Duration,
    start: Instant,
    /// A single case longer than this is a hang.
    per_case: Duration,
    pub cases: usize,
    loads: usize,
    errors: usize,
    failures: Vec<String>,
}

impl Tally {
    pub fn new(target: &str, budget: Duration) -> Tally {
        Tally {
            target: target.to_string(),
            budget,
            start: Instant::now(),
            per_case: Duration::from_secs(30),
            cases: 0,
            loads: 0,
            errors: 0,
            failures: Vec::new(),
        }
    }

    /// Whether the budget (time and `max` cases) allows another case; stops
    /// after a hang, whose thread still holds the target's files.
    pub fn more(&self, max: usize) -> bool {
        self.cases < max && self.start.elapsed() < self.budget && !self.hung()
    }

    fn hung(&self) -> bool {
        self.failures.iter().any(|f| f.contains("no result after"))
    }

    /// Runs one case on a fresh thread: a panic is caught by the join, a
    /// hang by the timeout.
    pub fn case<F>(&mut self, label: impl FnOnce() -> String, f: F)
    where
        F: FnOnce() -> Outcome + Send + 'static,
    {
        self.cases += 1;
        let (tx, rx) = mpsc::channel();
        let handle = std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        match rx.recv_timeout(self.per_case) {
            Ok(Outcome::Load) => self.loads += 1,
            Ok(Outcome::Error) => self.errors += 1,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                self.failures
                    .push(format!("{}: no result after {:?}", label(), self.per_case));
                return;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                self.failures.push(format!("{}: panicked", label()));
            }
        }
        let _ = handle.join();
    }

    /// Prints the counts straight to stderr (libtest captures the print
    /// macros, not `io::stderr()`), so they show in CI without --nocapture;
    /// then asserts at least `min` cases ran and none failed.
    pub fn finish(self, min: usize) {
        let line = format!(
            "mutation {}: {} cases in {:.1} s ({} loaded, {} clean errors, {} panics/hangs)\n",
            self.target,
            self.cases,
            self.start.elapsed().as_secs_f64(),
            self.loads,
            self.errors,
            self.failures.len()
        );
        let _ = std::io::stderr().write_all(line.as_bytes());
        assert!(
            self.failures.is_empty(),
            "{}: {:?}",
            self.target,
            self.failures
        );
        assert!(
            self.cases >= min,
            "{}: only {} cases ran (minimum {min})",
            self.target,
            self.cases
        );
    }
}
