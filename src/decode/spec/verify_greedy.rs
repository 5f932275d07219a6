//! Greedy verification: accept drafted tokens while each equals the target's
//! argmax at its position; the token after them is the target's argmax there
//! (the correction after a mismatch, the bonus when all matched). The output
//! is therefore plain greedy decoding of the target, token for token.

use super::Verdict;
use crate::decode::sampling::argmax;

/// `rows[i]`: the target's logits for the token at window position i
/// (`drafted.len() + 1` rows: one per drafted token and one after them).
pub fn verify_greedy(drafted: &[u32], rows: &[Vec<f32>]) -> Verdict {
    debug_assert_eq!(rows.len(), drafted.len() + 1);
    let mut accepted = 0;
    while accepted < drafted.len() && argmax(&rows[accepted]) == drafted[accepted] {
        accepted += 1;
    }
    Verdict {
        accepted,
        next: argmax(&rows[accepted]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_matching_prefix_then_corrects() {
        let rows = vec![
            vec![0.0, 1.0, 0.0],
            vec![2.0, 0.0, 0.0],
            vec![0.0, 0.0, 3.0],
        ];
        assert_eq!(
            verify_greedy(&[1, 2], &rows),
            Verdict {
                accepted: 1,
                next: 0
            }
        );
        assert_eq!(
            verify_greedy(&[1, 0], &rows),
            Verdict {
                accepted: 2,
                next: 2
            }
        );
        assert_eq!(
            verify_greedy(&[2, 0], &rows),
            Verdict {
                accepted: 0,
                next: 1
            }
        );
    }
}
