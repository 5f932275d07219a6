//! Pearson's χ² goodness of fit with a closed-form survival function: the
//! regularized upper incomplete gamma Q(k/2, x/2) (series below a + 1, Lentz
//! continued fraction above; Numerical Recipes §6.2), lnΓ by Lanczos (g = 7).

fn ln_gamma(x: f64) -> f64 {
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + 7.5;
    for (i, &c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// Q(a, x) = Γ(a, x) / Γ(a).
pub fn gamma_q(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    let lead = -x + a * x.ln() - ln_gamma(a);
    if x < a + 1.0 {
        let (mut sum, mut term, mut ap) = (1.0 / a, 1.0 / a, a);
        for _ in 0..1000 {
            ap += 1.0;
            term *= x / ap;
            sum += term;
            if term.abs() < sum.abs() * 1e-15 {
                break;
            }
        }
        1.0 - sum * lead.exp()
    } else {
        let tiny = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / tiny;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..1000 {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < tiny {
                d = tiny;
            }
            c = b + an / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            let del = d * c;
            h *= del;
            if (del - 1.0).abs() < 1e-15 {
                break;
            }
        }
        lead.exp() * h
    }
}

/// P(χ²_k > x).
pub fn chi2_sf(x: f64, k: usize) -> f64 {
    gamma_q(k as f64 / 2.0, x / 2.0)
}

/// Pearson's test of `counts` against `probs` (same index space): cells are
/// merged, smallest expected first, until every expected count is >= 5; an
/// observation in a cell of probability 0 gives p = 0. Returns (χ², df, p).
pub fn goodness_of_fit(counts: &[usize], probs: &[f64]) -> (f64, usize, f64) {
    let n: usize = counts.iter().sum();
    let mut cells: Vec<(f64, f64)> = vec![];
    for (&c, &p) in counts.iter().zip(probs) {
        if p <= 0.0 {
            if c > 0 {
                return (f64::INFINITY, 0, 0.0);
            }
            continue;
        }
        cells.push((p * n as f64, c as f64));
    }
    cells.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut merged: Vec<(f64, f64)> = vec![];
    let mut acc = (0.0, 0.0);
    for (e, o) in cells {
        acc = (acc.0 + e, acc.1 + o);
        if acc.0 >= 5.0 {
            merged.push(acc);
            acc = (0.0, 0.0);
        }
    }
    if acc.0 > 0.0 {
        match merged.last_mut() {
            Some(m) => *m = (m.0 + acc.0, m.1 + acc.1),
            None => merged.push(acc),
        }
    }
    let x2: f64 = merged.iter().map(|(e, o)| (o - e) * (o - e) / e).sum();
    let df = merged.len().saturating_sub(1).max(1);
    (x2, df, chi2_sf(x2, df))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survival_function_matches_tables() {
        // Critical values: P(χ²_1 > 3.841) = 0.05, P(χ²_10 > 23.209) = 0.01,
        // P(χ²_30 > 59.703) = 0.001; exact: P(χ²_2 > x) = exp(-x/2).
        assert!((chi2_sf(3.841, 1) - 0.05).abs() < 1e-4);
        assert!((chi2_sf(23.209, 10) - 0.01).abs() < 1e-5);
        assert!((chi2_sf(59.703, 30) - 0.001).abs() < 1e-5);
        assert!((chi2_sf(3.0, 2) - (-1.5f64).exp()).abs() < 1e-12);
        assert!((chi2_sf(0.5, 4) - 0.973_500_7).abs() < 1e-6);
        let (_, _, p) = goodness_of_fit(&[25, 25, 25, 25], &[0.25; 4]);
        assert!(p > 0.99);
        let (_, _, p) = goodness_of_fit(&[70, 10, 10, 10], &[0.25; 4]);
        assert!(p < 1e-6);
    }
}
