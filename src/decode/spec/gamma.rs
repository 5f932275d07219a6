//! How many tokens the draft proposes per round.
//!
//! - `Fixed(g)`: always g.
//! - `Aimd`: seed 004's dynamic gamma, after TCP's congestion control: +1
//!   when every drafted token was accepted, `max(floor, ⌊γ/2⌋)` on a
//!   rejection; kept in `floor..=cap`.
//! - `Heuristic`: Hugging Face assisted generation's `heuristic` schedule:
//!   +2 when all were accepted, −1 otherwise, at least 1 (and at most `cap`).
//!
//! A round that drafted nothing (prompt lookup found no match, or the token
//! budget allowed none) carries no evidence and leaves gamma unchanged.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GammaSchedule {
    Fixed(usize),
    Aimd {
        start: usize,
        floor: usize,
        cap: usize,
    },
    Heuristic {
        start: usize,
        cap: usize,
    },
}

impl GammaSchedule {
    /// The problem with this schedule, if any (gamma 0, floor > cap, ...).
    pub fn check(&self) -> Result<(), String> {
        match *self {
            GammaSchedule::Fixed(0) => Err("gamma must be >= 1".into()),
            GammaSchedule::Fixed(_) => Ok(()),
            GammaSchedule::Aimd { start, floor, cap } => {
                if floor == 0 || floor > cap || !(floor..=cap).contains(&start) {
                    Err(format!(
                        "aimd needs 1 <= floor <= start <= cap, got floor {floor}, start {start}, cap {cap}"
                    ))
                } else {
                    Ok(())
                }
            }
            GammaSchedule::Heuristic { start, cap } => {
                if start == 0 || start > cap {
                    Err(format!(
                        "heuristic needs 1 <= start <= cap, got start {start}, cap {cap}"
                    ))
                } else {
                    Ok(())
                }
            }
        }
    }

    pub fn start(&self) -> usize {
        match *self {
            GammaSchedule::Fixed(g) => g,
            GammaSchedule::Aimd { start, .. } | GammaSchedule::Heuristic { start, .. } => start,
        }
    }

    /// Gamma for the next round after one that drafted `drafted` tokens with
    /// `gamma` = `current`, of which `accepted` were accepted.
    pub fn next(&self, current: usize, drafted: usize, accepted: usize) -> usize {
        if drafted == 0 {
            return current;
        }
        let all = accepted == drafted;
        match *self {
            GammaSchedule::Fixed(g) => g,
            GammaSchedule::Aimd { floor, cap, .. } => {
                if all {
                    (current + 1).min(cap)
                } else {
                    (current / 2).max(floor)
                }
            }
            GammaSchedule::Heuristic { cap, .. } => {
                if all {
                    (current + 2).min(cap)
                } else {
                    current.saturating_sub(1).max(1)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aimd_grows_by_one_and_halves_to_the_floor() {
        let s = GammaSchedule::Aimd {
            start: 4,
            floor: 2,
            cap: 6,
        };
        assert_eq!(s.next(4, 4, 4), 5);
        assert_eq!(s.next(6, 6, 6), 6, "capped");
        assert_eq!(s.next(6, 6, 1), 3);
        assert_eq!(s.next(3, 3, 0), 2, "floor");
        assert_eq!(s.next(5, 0, 0), 5, "nothing drafted");
        // Seed 004's rule: max(4, floor(g/2)).
        let seed = GammaSchedule::Aimd {
            start: 4,
            floor: 4,
            cap: 16,
        };
        assert_eq!(seed.next(10, 10, 3), 5);
        assert_eq!(seed.next(7, 7, 3), 4);
    }

    #[test]
    fn heuristic_is_plus_two_minus_one() {
        let s = GammaSchedule::Heuristic { start: 5, cap: 8 };
        assert_eq!(s.next(5, 5, 5), 7);
        assert_eq!(s.next(7, 7, 7), 8);
        assert_eq!(s.next(5, 5, 2), 4);
        assert_eq!(s.next(1, 1, 0), 1);
        assert!(GammaSchedule::Fixed(0).check().is_err());
        assert!(GammaSchedule::Aimd {
            start: 1,
            floor: 2,
            cap: 4
        }
        .check()
        .is_err());
    }
}
