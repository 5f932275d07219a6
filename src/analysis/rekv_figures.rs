//! The six ReKV figures, drawn from a [`RekvAnalysis`] alone (fig1 uses its
//! pre-binned cosine histogram, so the raw table is not needed again).
//!
//! Colours: one palette colour per mode, K in full colour and V paler.
//! Modes are ordered same_model, cross_model, then any other alphabetically.
//! Similarity figures show the GO / NO-GO thresholds as dashed lines.

use super::rekv::{conf_labels, RekvAnalysis, DIST_BINS, RANK_BUCKETS};
use crate::error::Result;
use crate::plot::bars::{bar_chart, BarOptions, Group, Mark};
use crate::plot::colors;
use crate::plot::decor::{lighten, RefLine};
use crate::plot::distribution::{step_histograms, Panel, Steps};
use crate::plot::{Figure, Format};
use plotters::style::RGBColor;
use polars::prelude::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// File stems of the six figures, in order.
pub const FIGURES: [&str; 6] = [
    "fig1_similarity_distribution",
    "fig2_similarity_per_layer",
    "fig3_confidence_vs_similarity",
    "fig4_position_vs_similarity",
    "fig5_target_rank_histogram",
    "fig6_rejection_position_histogram",
];

/// The extra figure of a gamma sweep (a table with a `gamma` column).
pub const GAMMA_FIGURE: &str = "fig7_similarity_per_gamma";

/// Size and formats of every figure (a stage fills these from its TOML).
#[derive(Clone, Debug, PartialEq)]
pub struct FigureOptions {
    pub width: u32,
    pub height: u32,
    pub formats: Vec<Format>,
}

impl Default for FigureOptions {
    fn default() -> FigureOptions {
        FigureOptions {
            width: 1000,
            height: 600,
            formats: Format::ALL.to_vec(),
        }
    }
}

/// How much paler V is than K.
const V_SHADE: f64 = 0.45;

const COS_AXIS: &str = "mean cosine similarity";

/// Draw the six figures (and, for a gamma sweep, [`GAMMA_FIGURE`]) into
/// `out_dir` (which must exist), each once per format; returns the paths
/// written, figure by figure.
pub fn rekv_figures(
    a: &RekvAnalysis,
    opts: &FigureOptions,
    out_dir: &Path,
) -> Result<Vec<PathBuf>> {
    let modes = mode_order(&a.by_mode)?;
    let fig =
        |title: &str, x: &str, y: &str| Figure::new(title, x, y).size(opts.width, opts.height);
    let mut written = Vec::new();
    let mut each_format = |stem: &str, draw: &dyn Fn(&Path) -> Result<()>| -> Result<()> {
        for f in &opts.formats {
            let path = out_dir.join(format!("{stem}.{}", f.ext()));
            draw(&path)?;
            written.push(path);
        }
        Ok(())
    };
    let thresholds_h = threshold_lines(a);
    let lines = BarOptions {
        mark: Mark::Lines,
        refs: thresholds_h.clone(),
        ..BarOptions::default()
    };
    let bars = BarOptions {
        refs: thresholds_h,
        ..BarOptions::default()
    };
    let counts = BarOptions {
        value_labels: true,
        ..BarOptions::default()
    };

    let panels = distribution_panels(a, &modes)?;
    let f1 = fig(
        "Rejected-token KV similarity to the ground-truth KV",
        "cosine similarity",
        "fraction of (layer, head) rows",
    );
    let refs = threshold_lines(a);
    each_format(FIGURES[0], &|p| step_histograms(&f1, &panels, &refs, p))?;

    let (layers, groups) = kv_groups(&a.by_layer, "layer_target", &modes)?;
    let cats: Vec<String> = layers.iter().map(|l| l.to_string()).collect();
    let f2 = fig("KV similarity per target layer", "target layer", COS_AXIS);
    each_format(FIGURES[1], &|p| bar_chart(&f2, &cats, &groups, &lines, p))?;

    let (_, groups) = kv_groups_over(&a.by_confidence, "conf_bucket", &modes, &conf_keys())?;
    let f3 = fig(
        "KV similarity by draft confidence",
        "draft-model probability of the rejected token",
        COS_AXIS,
    );
    each_format(FIGURES[2], &|p| {
        bar_chart(&f3, &conf_labels(), &groups, &bars, p)
    })?;

    let positions = window_positions(&a.by_position)?;
    let (_, groups) = kv_groups_over(&a.by_position, "window_pos", &modes, &positions)?;
    let cats: Vec<String> = positions.iter().map(|p| p.to_string()).collect();
    let f4 = fig(
        "KV similarity by position in the draft window",
        "position of the rejected token in the window (0 = first drafted)",
        COS_AXIS,
    );
    each_format(FIGURES[3], &|p| bar_chart(&f4, &cats, &groups, &lines, p))?;

    let rank_keys: Vec<i64> = (0..RANK_BUCKETS.len() as i64).collect();
    let rank_cats: Vec<String> = RANK_BUCKETS.iter().map(|b| b.2.to_string()).collect();
    let groups = count_groups(&a.by_rank, "rank_bucket", &modes, &rank_keys)?;
    let f5 = fig(
        "Target rank of rejected draft tokens",
        "rank of the drafted token under the target (0 = target's top token)",
        "rejections",
    );
    each_format(FIGURES[4], &|p| {
        bar_chart(&f5, &rank_cats, &groups, &counts, p)
    })?;

    let groups = count_groups(&a.by_position, "window_pos", &modes, &positions)?;
    let f6 = fig(
        "Where in the draft window rejections happen",
        "position of the rejected token in the window (0 = first drafted)",
        "rejections",
    );
    each_format(FIGURES[5], &|p| bar_chart(&f6, &cats, &groups, &counts, p))?;

    if let Some(g) = &a.by_gamma {
        let (gammas, groups) = kv_groups(g, "gamma", &modes)?;
        let cats: Vec<String> = gammas.iter().map(|g| g.to_string()).collect();
        let f7 = fig(
            "KV similarity per speculation length",
            "gamma (draft tokens per round)",
            COS_AXIS,
        );
        each_format(GAMMA_FIGURE, &|p| bar_chart(&f7, &cats, &groups, &lines, p))?;
    }
    Ok(written)
}

/// NO-GO below the caution threshold, GO above the go threshold.
fn threshold_lines(a: &RekvAnalysis) -> Vec<RefLine> {
    let t = a.thresholds;
    vec![
        RefLine::new(format!("NO-GO < {}", t.caution), t.caution).low_side(),
        RefLine::new(format!("GO > {}", t.go), t.go),
    ]
}

/// Modes of the per-mode table: same_model, cross_model, then the rest.
fn mode_order(by_mode: &DataFrame) -> Result<Vec<String>> {
    let mut modes: Vec<String> = by_mode
        .column("mode")?
        .str()?
        .iter()
        .flatten()
        .map(String::from)
        .collect();
    let rank = |m: &str| match m {
        "same_model" => 0,
        "cross_model" => 1,
        _ => 2,
    };
    modes.sort_by(|a, b| rank(a).cmp(&rank(b)).then(a.cmp(b)));
    Ok(modes)
}

fn mode_color(i: usize) -> RGBColor {
    colors::series(i)
}

/// `value` per (mode, integer key) of a breakdown table.
fn cells(df: &DataFrame, key: &str, value: &str) -> Result<HashMap<(String, i64), f64>> {
    let modes = df.column("mode")?.str()?.clone();
    let keys = df.column(key)?.cast(&DataType::Int64)?;
    let vals = df.column(value)?.cast(&DataType::Float64)?;
    let (keys, vals) = (keys.i64()?, vals.f64()?);
    let mut out = HashMap::new();
    for i in 0..df.height() {
        if let (Some(m), Some(k)) = (modes.get(i), keys.get(i)) {
            out.insert((m.to_string(), k), vals.get(i).unwrap_or(f64::NAN));
        }
    }
    Ok(out)
}

/// The confidence buckets drawn (out-of-range rows stay in the tables only).
fn conf_keys() -> Vec<i64> {
    (0..conf_labels().len() as i64).collect()
}

/// 0..=max window position seen, so empty positions show as gaps.
fn window_positions(by_position: &DataFrame) -> Result<Vec<i64>> {
    let max = by_position
        .column("window_pos")?
        .cast(&DataType::Int64)?
        .i64()?
        .max();
    Ok(match max {
        Some(m) if m >= 0 => (0..=m).collect(),
        _ => Vec::new(),
    })
}

/// The distinct sorted values of an integer key column.
fn distinct_keys(df: &DataFrame, key: &str) -> Result<Vec<i64>> {
    let c = df.column(key)?.cast(&DataType::Int64)?;
    let mut v: Vec<i64> = c.i64()?.iter().flatten().collect();
    v.sort_unstable();
    v.dedup();
    Ok(v)
}

/// Mean cos_k and cos_v lines per mode over every key the table has.
fn kv_groups(df: &DataFrame, key: &str, modes: &[String]) -> Result<(Vec<i64>, Vec<Group>)> {
    let keys = distinct_keys(df, key)?;
    kv_groups_over(df, key, modes, &keys)
}

/// Mean cos_k and cos_v per mode over `keys` (NaN where a mode lacks one).
fn kv_groups_over(
    df: &DataFrame,
    key: &str,
    modes: &[String],
    keys: &[i64],
) -> Result<(Vec<i64>, Vec<Group>)> {
    let k = cells(df, key, "mean_cos_k")?;
    let v = cells(df, key, "mean_cos_v")?;
    let mut groups = Vec::new();
    for (i, m) in modes.iter().enumerate() {
        let pick = |t: &HashMap<(String, i64), f64>| -> Vec<f64> {
            keys.iter()
                .map(|x| *t.get(&(m.clone(), *x)).unwrap_or(&f64::NAN))
                .collect()
        };
        let c = mode_color(i);
        groups.push(Group::new(format!("{m} K"), pick(&k)).color(c));
        groups.push(Group::new(format!("{m} V"), pick(&v)).color(lighten(c, V_SHADE)));
    }
    Ok((keys.to_vec(), groups))
}

/// Distinct rejections per mode over `keys` (0 where none); modes with the
/// same counts everywhere (both comparisons made at every rejection) are
/// drawn once, labelled "a = b".
fn count_groups(df: &DataFrame, key: &str, modes: &[String], keys: &[i64]) -> Result<Vec<Group>> {
    let n = cells(df, key, "n_rejections")?;
    let mut groups: Vec<Group> = Vec::new();
    for (i, m) in modes.iter().enumerate() {
        let values: Vec<f64> = keys
            .iter()
            .map(|x| *n.get(&(m.clone(), *x)).unwrap_or(&0.0))
            .collect();
        match groups.iter_mut().find(|g| g.values == values) {
            Some(g) => g.label = format!("{} = {m}", g.label),
            None => groups.push(Group::new(m.clone(), values).color(mode_color(i))),
        }
    }
    Ok(groups)
}

/// fig1's two panels (keys, values): per mode the fraction of its rows per
/// cosine bin, labelled with the mode's means and verdict.
fn distribution_panels(a: &RekvAnalysis, modes: &[String]) -> Result<Vec<Panel>> {
    let edges: Vec<f64> = (0..=DIST_BINS)
        .map(|i| -1.0 + 2.0 * i as f64 / DIST_BINS as f64)
        .collect();
    let d = &a.distribution;
    let (dm, dk) = (d.column("mode")?.str()?, d.column("kv")?.str()?);
    let (bins, counts) = (d.column("bin")?.i64()?, d.column("n_rows")?.i64()?);
    let mean_k = cells_by_mode(&a.by_mode, "mean_cos_k")?;
    let mean_v = cells_by_mode(&a.by_mode, "mean_cos_v")?;
    let verdict = verdict_by_mode(&a.by_mode)?;
    let label = |m: &str| {
        let f = |t: &HashMap<String, f64>| t.get(m).copied().unwrap_or(f64::NAN);
        let v = verdict.get(m).map(String::as_str).unwrap_or("NO-DATA");
        format!("{m}: K {:.2}, V {:.2} ({v})", f(&mean_k), f(&mean_v))
    };
    let mut panels = Vec::new();
    for (kv, title) in [("K", "Keys (cos_k)"), ("V", "Values (cos_v)")] {
        let mut steps = Vec::new();
        for m in modes {
            let mut h = vec![0.0; DIST_BINS as usize];
            for i in 0..d.height() {
                if dm.get(i) == Some(m.as_str()) && dk.get(i) == Some(kv) {
                    if let (Some(b), Some(c)) = (bins.get(i), counts.get(i)) {
                        h[b.clamp(0, DIST_BINS - 1) as usize] += c as f64;
                    }
                }
            }
            let total: f64 = h.iter().sum();
            if total > 0.0 {
                h.iter_mut().for_each(|x| *x /= total);
            }
            steps.push(Steps::new(label(m), edges.clone(), h));
        }
        panels.push(Panel {
            title: title.to_string(),
            steps,
        });
    }
    Ok(panels)
}

fn cells_by_mode(by_mode: &DataFrame, value: &str) -> Result<HashMap<String, f64>> {
    let modes = by_mode.column("mode")?.str()?;
    let vals = by_mode.column(value)?.f64()?;
    Ok((0..by_mode.height())
        .filter_map(|i| Some((modes.get(i)?.to_string(), vals.get(i).unwrap_or(f64::NAN))))
        .collect())
}

fn verdict_by_mode(by_mode: &DataFrame) -> Result<HashMap<String, String>> {
    let modes = by_mode.column("mode")?.str()?;
    let v = by_mode.column("verdict")?.str()?;
    Ok((0..by_mode.height())
        .filter_map(|i| Some((modes.get(i)?.to_string(), v.get(i)?.to_string())))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::rekv::rekv_summary;
    use crate::analysis::rekv_testdata::{frame, two_modes, Row};
    use crate::analysis::rekv_verdict::Thresholds;
    use crate::plot::testing::{assert_png, assert_svg_has, cleanup, tempdir};

    /// A realistic-looking table: 30 target layers, 3 heads, 40 rejections
    /// at window positions 0..4; same_model near 0.85, cross_model near 0.45.
    fn realistic() -> DataFrame {
        let mut rows = Vec::new();
        for r in 0..40i64 {
            let wp = [0, 0, 0, 1, 1, 2, 3, 4][r as usize % 8];
            let conf = ((r * 37) % 100) as f64 / 100.0;
            let rank = [1, 1, 1, 2, 2, 3, 5, 12, 40][r as usize % 9];
            for layer in 0..30i64 {
                for head in 0..3i64 {
                    let wobble = ((r * 7 + layer * 3 + head) % 11) as f64 / 100.0;
                    let depth = layer as f64 / 30.0;
                    let base = Row {
                        mode: "same_model",
                        sample: if r < 20 { "s0" } else { "s1" },
                        round: r,
                        window_pos: wp,
                        conf,
                        rank,
                        layer,
                        head,
                        cos_k: 0.95 - 0.15 * depth - wobble,
                        cos_v: 0.9 - 0.25 * depth - wobble,
                    };
                    rows.push(Row {
                        mode: "cross_model",
                        cos_k: 0.6 - 0.2 * depth + wobble - 0.02 * wp as f64,
                        cos_v: 0.45 - 0.1 * depth + conf * 0.1 - wobble,
                        ..base.clone()
                    });
                    rows.push(base);
                }
            }
        }
        frame(&rows)
    }

    #[test]
    fn mode_order_and_merged_counts() {
        let a = rekv_summary(two_modes().lazy(), Thresholds::seed()).unwrap();
        let modes = mode_order(&a.by_mode).unwrap();
        assert_eq!(modes, ["same_model", "cross_model"]);
        // both modes see the same three rejections: one bar series
        let g = count_groups(&a.by_position, "window_pos", &modes, &[0, 1, 2]).unwrap();
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].label, "same_model = cross_model");
        assert_eq!(g[0].values, [1.0, 0.0, 2.0]);
        let (keys, g) = kv_groups(&a.by_layer, "layer_target", &modes).unwrap();
        assert_eq!(keys, [0, 1]);
        assert_eq!(g.len(), 4);
        assert_eq!(g[2].label, "cross_model K");
        assert!((g[2].values[0] - 0.2).abs() < 1e-12 && (g[2].values[1] - 0.4).abs() < 1e-12);
        let panels = distribution_panels(&a, &modes).unwrap();
        assert_eq!(panels.len(), 2);
        let same_k = &panels[0].steps[0];
        assert_eq!(same_k.label, "same_model: K 0.90, V 0.90 (GO)");
        assert_eq!(same_k.heights[95], 1.0);
        let cross_k = &panels[0].steps[1];
        assert_eq!((cross_k.heights[55], cross_k.heights[65]), (0.25, 0.5));
    }

    #[test]
    fn writes_six_figures_in_both_formats() {
        let dir = tempdir("rekv-figs");
        let a = rekv_summary(realistic().lazy(), Thresholds::seed()).unwrap();
        let files = rekv_figures(&a, &FigureOptions::default(), &dir).unwrap();
        assert_eq!(files.len(), 12);
        for stem in FIGURES {
            assert_png(&dir.join(format!("{stem}.png")), 1000, 600);
        }
        let svg = |i: usize| dir.join(format!("{}.svg", FIGURES[i]));
        assert_svg_has(
            &svg(0),
            &["Keys (cos_k)", "Values (cos_v)", "GO &gt; 0.7", "(GO)"],
        );
        assert_svg_has(
            &svg(1),
            &["target layer", "same_model K", "cross_model V", "29"],
        );
        assert_svg_has(&svg(2), &["[0.8, 1.0]", "draft-model probability"]);
        assert_svg_has(&svg(3), &["position of the rejected token"]);
        assert_svg_has(&svg(4), &["10+", "3-4", "same_model = cross_model"]);
        assert_svg_has(&svg(5), &["rejections", "\n15\n</text>"]);

        assert!(!dir.join(format!("{GAMMA_FIGURE}.png")).exists());

        let mut sweep = realistic();
        // odd rounds ran with gamma 5, even ones with 3
        let rounds = sweep.column("round").unwrap().i64().unwrap().clone();
        let gamma: Vec<i64> = rounds
            .into_no_null_iter()
            .map(|r| 3 + 2 * (r % 2))
            .collect();
        sweep
            .with_column(Column::new("gamma".into(), gamma))
            .unwrap();
        let a = rekv_summary(sweep.lazy(), Thresholds::seed()).unwrap();
        let sweep_dir = dir.join("sweep");
        std::fs::create_dir(&sweep_dir).unwrap();
        let files = rekv_figures(&a, &FigureOptions::default(), &sweep_dir).unwrap();
        assert_eq!(files.len(), 14);
        assert_png(&sweep_dir.join(format!("{GAMMA_FIGURE}.png")), 1000, 600);
        let svg7 = sweep_dir.join(format!("{GAMMA_FIGURE}.svg"));
        assert_svg_has(&svg7, &["gamma (draft tokens per round)", ">\n5\n</text>"]);

        let one = FigureOptions {
            width: 800,
            height: 500,
            formats: vec![Format::Png],
        };
        let empty = rekv_summary(two_modes().head(Some(0)).lazy(), Thresholds::seed()).unwrap();
        let empty_dir = dir.join("empty");
        std::fs::create_dir(&empty_dir).unwrap();
        let files = rekv_figures(&empty, &one, &empty_dir).unwrap();
        assert_eq!(files.len(), 6);
        assert!(files.iter().all(|f| f.extension().unwrap() == "png"));
        cleanup(&dir);
    }
}
