//! The ReKV GO / CAUTION / NO-GO decision on a mean KV cosine.
//!
//! The seed's table reads "> 0.7 GO, 0.5 ~ 0.7 CAUTION, < 0.5 NO-GO", so both
//! boundaries belong to CAUTION: a mean of exactly `go` is CAUTION (GO needs
//! strictly more), a mean of exactly `caution` is CAUTION (NO-GO needs strictly
//! less). A missing or non-finite mean (no finite cosine in the group) is
//! NO-DATA rather than a silent NO-GO.

use crate::error::{input_err, Result};
use serde::Serialize;
use std::fmt;

/// The two cut points on mean cosine; the defaults come from a stage's TOML.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Thresholds {
    /// A mean strictly above this is GO.
    pub go: f64,
    /// A mean strictly below this is NO-GO; between the two (inclusive) is CAUTION.
    pub caution: f64,
}

impl Thresholds {
    /// Checked thresholds: both finite cosines in [-1, 1] with `caution <= go`.
    /// Errors name the parameter, as a stage would report it.
    pub fn new(go: f64, caution: f64) -> Result<Thresholds> {
        for (name, v) in [("go", go), ("caution", caution)] {
            if !v.is_finite() || !(-1.0..=1.0).contains(&v) {
                return Err(input_err(
                    "rekv thresholds",
                    name,
                    format!("{v} is not a cosine in [-1, 1]"),
                ));
            }
        }
        if caution > go {
            return Err(input_err(
                "rekv thresholds",
                "caution",
                format!("{caution} is above go = {go}"),
            ));
        }
        Ok(Thresholds { go, caution })
    }

    /// The seed's cut points: GO > 0.7, NO-GO < 0.5.
    pub fn seed() -> Thresholds {
        Thresholds {
            go: 0.7,
            caution: 0.5,
        }
    }

    /// The decision for one mean cosine.
    pub fn verdict(&self, mean: Option<f64>) -> Verdict {
        match mean {
            Some(m) if m.is_finite() => {
                if m > self.go {
                    Verdict::Go
                } else if m < self.caution {
                    Verdict::NoGo
                } else {
                    Verdict::Caution
                }
            }
            _ => Verdict::NoData,
        }
    }

    /// The rule in words, written next to the verdicts in summary.json.
    pub fn rule(&self) -> String {
        format!(
            "GO if mean cosine > {go}; CAUTION if {c} <= mean <= {go}; NO-GO if mean < {c}",
            go = self.go,
            c = self.caution
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Go,
    Caution,
    NoGo,
    NoData,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Go => "GO",
            Verdict::Caution => "CAUTION",
            Verdict::NoGo => "NO-GO",
            Verdict::NoData => "NO-DATA",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_belong_to_caution() {
        let t = Thresholds::seed();
        assert_eq!(t.verdict(Some(0.9)), Verdict::Go);
        assert_eq!(t.verdict(Some(0.700_000_1)), Verdict::Go);
        assert_eq!(t.verdict(Some(0.7)), Verdict::Caution);
        assert_eq!(t.verdict(Some(0.6)), Verdict::Caution);
        assert_eq!(t.verdict(Some(0.5)), Verdict::Caution);
        assert_eq!(t.verdict(Some(0.499_999_9)), Verdict::NoGo);
        assert_eq!(t.verdict(Some(-0.2)), Verdict::NoGo);
        assert_eq!(t.verdict(None), Verdict::NoData);
        assert_eq!(t.verdict(Some(f64::NAN)), Verdict::NoData);
        assert_eq!(Verdict::NoGo.to_string(), "NO-GO");
    }

    #[test]
    fn thresholds_are_checked() {
        assert_eq!(Thresholds::new(0.7, 0.5).unwrap(), Thresholds::seed());
        // equal cut points leave CAUTION a single point
        let t = Thresholds::new(0.6, 0.6).unwrap();
        assert_eq!(t.verdict(Some(0.6)), Verdict::Caution);
        let e = Thresholds::new(0.5, 0.7).unwrap_err().to_string();
        assert!(e.contains("caution") && e.contains("above go"), "{e}");
        let e = Thresholds::new(1.5, 0.5).unwrap_err().to_string();
        assert!(e.contains("go") && e.contains("[-1, 1]"), "{e}");
        assert!(Thresholds::new(0.7, f64::NAN).is_err());
        assert!(Thresholds::seed()
            .rule()
            .contains("CAUTION if 0.5 <= mean <= 0.7"));
    }
}
