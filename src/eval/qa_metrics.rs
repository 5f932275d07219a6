//! Answer metrics of generated answers: exact match, token F1 and ROUGE-L F1,
//! after SQuAD's normalization (lowercase, no punctuation, no articles,
//! single spaces), each the best over the reference answers; and `contains`
//! (RULER's string match: the fraction of answers found in the prediction).

fn normalize(s: &str) -> Vec<String> {
    let lower: String = s
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c.is_whitespace() {
                c
            } else {
                ' '
            }
        })
        .collect();
    lower
        .split_whitespace()
        .filter(|w| !matches!(*w, "a" | "an" | "the"))
        .map(str::to_string)
        .collect()
}

fn best(pred: &str, answers: &[String], f: fn(&[String], &[String]) -> f64) -> f64 {
    let p = normalize(pred);
    answers
        .iter()
        .map(|a| f(&p, &normalize(a)))
        .fold(0.0, f64::max)
}

/// Fraction of `answers` that occur in `pred`, word-bounded, after normalization.
pub fn contains(pred: &str, answers: &[String]) -> f64 {
    if answers.is_empty() {
        return 0.0;
    }
    let p = format!(" {} ", normalize(pred).join(" "));
    let hit = answers
        .iter()
        .filter(|a| {
            let a = normalize(a).join(" ");
            !a.is_empty() && p.contains(&format!(" {a} "))
        })
        .count();
    hit as f64 / answers.len() as f64
}

pub fn exact_match(pred: &str, answers: &[String]) -> f64 {
    best(pred, answers, |p, a| f64::from(u8::from(p == a)))
}

pub fn f1(pred: &str, answers: &[String]) -> f64 {
    best(pred, answers, token_f1)
}

pub fn rouge_l(pred: &str, answers: &[String]) -> f64 {
    best(pred, answers, lcs_f1)
}

fn harmonic(common: usize, np: usize, na: usize) -> f64 {
    if common == 0 || np == 0 || na == 0 {
        return 0.0;
    }
    let (p, r) = (common as f64 / np as f64, common as f64 / na as f64);
    2.0 * p * r / (p + r)
}

fn token_f1(p: &[String], a: &[String]) -> f64 {
    let mut left: Vec<&String> = a.iter().collect();
    let mut common = 0;
    for w in p {
        if let Some(i) = left.iter().position(|x| *x == w) {
            left.swap_remove(i);
            common += 1;
        }
    }
    harmonic(common, p.len(), a.len())
}

fn lcs_f1(p: &[String], a: &[String]) -> f64 {
    let mut prev = vec![0usize; a.len() + 1];
    for x in p {
        let mut cur = vec![0usize; a.len() + 1];
        for (j, y) in a.iter().enumerate() {
            cur[j + 1] = if x == y {
                prev[j] + 1
            } else {
                cur[j].max(prev[j + 1])
            };
        }
        prev = cur;
    }
    harmonic(prev[a.len()], p.len(), a.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(xs: &[&str]) -> Vec<String> {
        xs.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn metrics_match_hand_computed_values() {
        assert_eq!(
            exact_match("The Eiffel tower!", &a(&["eiffel  tower"])),
            1.0
        );
        assert_eq!(exact_match("eiffel", &a(&["eiffel tower"])), 0.0);
        // p = 1/2, r = 1/1
        assert!((f1("paris france", &a(&["paris"])) - 2.0 / 3.0).abs() < 1e-12);
        // LCS of "a b c d" / "b d" is 2: p = 2/4, r = 1
        assert!((rouge_l("w x y z", &a(&["x z"])) - 2.0 / 3.0).abs() < 1e-12);
        assert!((rouge_l("z y x", &a(&["x y z"])) - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(f1("", &a(&["x"])), 0.0);
        assert_eq!(f1("x", &a(&["y", "x"])), 1.0);
    }
}
