//! Progress on long stages: a bar on a terminal, plain lines otherwise.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;

pub struct Progress {
    bar: Option<ProgressBar>,
    stage: String,
    unit: String,
    len: u64,
    done: u64,
    next_line: u64,
}

impl Progress {
    pub fn new(stage: &str, len: u64, unit: &str) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = ProgressBar::new(len);
            b.set_style(
                ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ({eta})")
                    .expect("static template")
                    .progress_chars("=> "),
            );
            b.set_prefix(stage.to_string());
            b.set_message(unit.to_string());
            b
        });
        Progress {
            bar,
            stage: stage.into(),
            unit: unit.into(),
            len,
            done: 0,
            next_line: 0,
        }
    }

    pub fn inc(&mut self, n: u64) {
        self.done += n;
        match &self.bar {
            Some(b) => b.inc(n),
            None => {
                // About ten plain lines per stage when not on a terminal.
                if self.done >= self.next_line || self.done == self.len {
                    eprintln!("{}: {}/{} {}", self.stage, self.done, self.len, self.unit);
                    self.next_line = self.done + (self.len / 10).max(1);
                }
            }
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
