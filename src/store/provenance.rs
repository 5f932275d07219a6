//! Unhashed facts about a computation: who, where, when, how long, how big.

use super::manifest::Provenance;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

pub struct Clock {
    start_wall: SystemTime,
    start: Instant,
}

impl Clock {
    pub fn start() -> Self {
        Clock {
            start_wall: SystemTime::now(),
            start: Instant::now(),
        }
    }

    pub fn finish(&self) -> Provenance {
        let ms = |t: SystemTime| {
            t.duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0)
        };
        Provenance {
            git_rev: git_rev(),
            host: host(),
            device: crate::device_name().to_string(),
            pid: std::process::id(),
            start_unix_ms: ms(self.start_wall),
            end_unix_ms: ms(SystemTime::now()),
            wall_s: self.start.elapsed().as_secs_f64(),
            peak_rss_kb: peak_rss_kb(),
            measurements: serde_json::Value::Null,
        }
    }
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The build's git revision, captured at compile time by build.rs.
fn git_rev() -> String {
    option_env!("KVLAB_GIT_REV")
        .unwrap_or("unknown")
        .to_string()
}

/// VmHWM: the process's peak resident set so far.
fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}
