//! Answer metrics for generated text against reference answers:
//! `contains` (RULER's string match: the fraction of answers found in the
//! normalized prediction), token `f1` and `rouge_l` (LCS F-measure), each the
//! best over the answers (SQuAD / LongBench convention).

/// Lowercase, punctuation to spaces, whitespace collapsed.
pub fn normalize(s: &str) -> String {
    let t: String = s
        .chars()
        .map(|c| {
            if c.is_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                ' '
            }
        })
        .collect();
    t.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn tokens(s: &str) -> Vec<String> {
    normalize(s)
        .split(' ')
        .filter(|w| !w.is_empty())
        .map(String::from)
        .collect()
}

/// Fraction of `answers` that occur in `pred` (word-bounded, normalized).
pub fn contains(pred: &str, answers: &[String]) -> f64 {
    if answers.is_empty() {
        return 0.0;
    }
    let p = format!(" {} ", normalize(pred));
    let hit = answers
        .iter()
        .filter(|a| {
            let a = normalize(a);
            !a.is_empty() && p.contains(&format!(" {a} "))
        })
        .count();
    hit as f64 / answers.len() as f64
}

fn f1_one(pred: &[String], gold: &[String]) -> f64 {
    let mut left: Vec<&String> = gold.iter().collect();
    let mut common = 0usize;
    for w in pred {
        if let Some(i) = left.iter().position(|g| *g == w) {
            left.swap_remove(i);
            common += 1;
        }
    }
    if common == 0 {
        return 0.0;
    }
    let (p, r) = (
        common as f64 / pred.len() as f64,
        common as f64 / gold.len() as f64,
    );
    2.0 * p * r / (p + r)
}

fn lcs(a: &[String], b: &[String]) -> usize {
    let mut row = vec![0usize; b.len() + 1];
    for x in a {
        let mut prev = 0;
        for (j, y) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if x == y {
                prev + 1
            } else {
                row[j + 1].max(row[j])
            };
            prev = cur;
        }
    }
    row[b.len()]
}

fn rouge_one(pred: &[String], gold: &[String]) -> f64 {
    let l = lcs(pred, gold);
    if l == 0 {
        return 0.0;
    }
    let (p, r) = (l as f64 / pred.len() as f64, l as f64 / gold.len() as f64);
    2.0 * p * r / (p + r)
}

fn best(pred: &str, answers: &[String], f: fn(&[String], &[String]) -> f64) -> f64 {
    let p = tokens(pred);
    answers
        .iter()
        .map(|a| f(&p, &tokens(a)))
        .fold(0.0, f64::max)
}

pub fn f1(pred: &str, answers: &[String]) -> f64 {
    best(pred, answers, f1_one)
}

pub fn rouge_l(pred: &str, answers: &[String]) -> f64 {
    best(pred, answers, rouge_one)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn metrics() {
        assert_eq!(contains("The number is 4821.", &s(&["4821"])), 1.0);
        assert_eq!(contains("48210", &s(&["4821"])), 0.0);
        assert_eq!(contains("7 and 9", &s(&["7", "9", "3", "4"])), 0.5);
        assert_eq!(f1("Paris France", &s(&["paris"])), 2.0 / 3.0);
        assert_eq!(f1("", &s(&["x"])), 0.0);
        assert_eq!(rouge_l("a b c d", &s(&["a c d"])), 2.0 * 0.75 / 1.75);
    }
}
