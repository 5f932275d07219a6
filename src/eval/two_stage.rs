//! Two-stage inference by confidence (seed 001): each token's prediction
//! comes from the shallow head (first `ls` layers + final norm + LM head)
//! when its max probability >= threshold, else from the full model. Both
//! are computed here (teacher-forced windows), so this measures routing
//! quality and the compute a real early exit would spend:
//! cost = (shallow·Ls + deep·Ld) / (total·Ld).

use candle_core::{Tensor, D};

use crate::error::{input_err, Result};
use crate::model::{ForwardOpts, Logits, Model};

/// One predicted token under both heads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RoutedToken {
    pub shallow_conf: f32,
    pub shallow_nll: f32,
    pub deep_nll: f32,
    pub shallow_top1: u32,
    pub deep_top1: u32,
    pub target: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TwoStageReport {
    pub threshold: f64,
    pub tokens: usize,
    pub shallow_ratio: f64,
    pub compute_cost: f64,
    pub ppl_two_stage: f64,
    pub ppl_deep: f64,
    pub ppl_shallow: f64,
    pub acc_two_stage: f64,
    pub acc_deep: f64,
    /// Fraction of tokens whose routed top-1 equals the deep model's.
    pub top1_agreement: f64,
}

fn rows(logits: &Tensor) -> Result<(Tensor, Vec<f32>, Vec<u32>)> {
    let logp = candle_nn::ops::log_softmax(logits, D::Minus1)?;
    let maxp = logp.max(D::Minus1)?.exp()?.to_vec1::<f32>()?;
    let arg = logp.argmax(D::Minus1)?.to_vec1::<u32>()?;
    Ok((logp, maxp, arg))
}

/// Both heads on every predicted token of each window (each window is
/// scored from its own start with a fresh cache).
pub fn route_tokens(model: &Model, windows: &[Vec<u32>], ls: usize) -> Result<Vec<RoutedToken>> {
    let n = model.config().n_layers;
    if ls == 0 || ls >= n {
        return Err(input_err(
            "two-stage",
            "shallow_layers",
            format!("{ls} outside 1..{n}"),
        ));
    }
    let mut out = Vec::new();
    for w in windows.iter().filter(|w| w.len() >= 2) {
        let ids = &w[..w.len() - 1];
        let pos: Vec<i64> = (0..ids.len() as i64).collect();
        let run = |n_layers| -> Result<Tensor> {
            let o = ForwardOpts {
                logits: Logits::All,
                n_layers: Some(n_layers),
                ..Default::default()
            };
            Ok(model
                .forward(ids, &pos, &mut model.new_cache(), &o)?
                .logits
                .expect("all"))
        };
        let (slp, sconf, sarg) = rows(&run(ls)?)?;
        let (dlp, _, darg) = rows(&run(n)?)?;
        for (i, &t) in w[1..].iter().enumerate() {
            out.push(RoutedToken {
                shallow_conf: sconf[i],
                shallow_nll: -slp.get(i)?.get(t as usize)?.to_scalar::<f32>()?,
                deep_nll: -dlp.get(i)?.get(t as usize)?.to_scalar::<f32>()?,
                shallow_top1: sarg[i],
                deep_top1: darg[i],
                target: t,
            });
        }
    }
    Ok(out)
}

/// The threshold below which `below` of `confs` fall (the value at rank
/// round(below·n) of the sorted confidences).
pub fn calibrate_threshold(confs: &[f32], below: f64) -> Result<f64> {
    crate::train::config::check_fraction("target_deep_fraction", below)?;
    if confs.is_empty() {
        return Err(input_err(
            "two-stage",
            "tokens",
            "no tokens to calibrate on",
        ));
    }
    let mut c = confs.to_vec();
    c.sort_by(|a, b| a.total_cmp(b));
    let k = ((below * c.len() as f64).round() as usize).min(c.len() - 1);
    Ok(c[k] as f64)
}

pub fn two_stage(
    toks: &[RoutedToken],
    threshold: f64,
    ls: usize,
    ld: usize,
) -> Result<TwoStageReport> {
    crate::train::config::check_threshold("threshold", threshold)?;
    let n = toks.len().max(1) as f64;
    let (mut sh, mut nll2, mut nlld, mut nlls) = (0usize, 0f64, 0f64, 0f64);
    let (mut ok2, mut okd, mut agree) = (0usize, 0usize, 0usize);
    for t in toks {
        let exit = threshold < 1.0 && t.shallow_conf as f64 >= threshold;
        sh += exit as usize;
        let (nll, top) = if exit {
            (t.shallow_nll, t.shallow_top1)
        } else {
            (t.deep_nll, t.deep_top1)
        };
        nll2 += nll as f64;
        nlld += t.deep_nll as f64;
        nlls += t.shallow_nll as f64;
        ok2 += (top == t.target) as usize;
        okd += (t.deep_top1 == t.target) as usize;
        agree += (top == t.deep_top1) as usize;
    }
    let deep = toks.len() - sh;
    Ok(TwoStageReport {
        threshold,
        tokens: toks.len(),
        shallow_ratio: sh as f64 / n,
        compute_cost: (sh * ls + deep * ld) as f64 / (n * ld as f64),
        ppl_two_stage: (nll2 / n).exp(),
        ppl_deep: (nlld / n).exp(),
        ppl_shallow: (nlls / n).exp(),
        acc_two_stage: ok2 as f64 / n,
        acc_deep: okd as f64 / n,
        top1_agreement: agree as f64 / n,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(conf: f32) -> RoutedToken {
        RoutedToken {
            shallow_conf: conf,
            shallow_nll: 1.0,
            deep_nll: 0.5,
            shallow_top1: 1,
            deep_top1: 2,
            target: 2,
        }
    }

    #[test]
    fn calibrated_threshold_sends_the_requested_fraction_deep() {
        // Distinct confidences in a scrambled order.
        let confs: Vec<f32> = (0..200).map(|i| ((i * 37) % 200) as f32 / 200.0).collect();
        let toks: Vec<RoutedToken> = confs.iter().map(|&c| token(c)).collect();
        for below in [0.1, 0.3, 0.5, 0.8] {
            let t = calibrate_threshold(&confs, below).unwrap();
            let rep = two_stage(&toks, t, 2, 4).unwrap();
            assert!(
                (rep.shallow_ratio - (1.0 - below)).abs() < 1e-9,
                "below {below}: threshold {t} left {} shallow",
                rep.shallow_ratio
            );
            assert!((rep.compute_cost - (1.0 - rep.shallow_ratio * 0.5)).abs() < 1e-9);
        }
        assert!(calibrate_threshold(&confs, 1.0).is_err());
        assert!(calibrate_threshold(&[], 0.5).is_err());
    }
}
