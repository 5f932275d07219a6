//! Figures of a fusion summary: per task the score-vs-TTFT frontier (one
//! line per method through its rates; vanilla, cat and full are points), and
//! the pooled TTFT breakdown (KV load, selection, recompute, press, first
//! token)
//! stacked per method and rate.

use super::fusion_summary::{Cell, ALL};
use super::press_figures::stem;
use crate::error::Result;
use crate::plot::bars::{bar_chart, BarOptions, Group, Mark};
use crate::plot::line::{line_chart, Line};
use crate::plot::{Figure, Format};
use std::collections::BTreeMap;
use std::path::Path;

/// The TTFT parts, as (metric, legend label).
pub const PARTS: [(&str, &str); 5] = [
    ("load_ms", "KV load"),
    ("select_ms", "selection"),
    ("recompute_ms", "recompute"),
    ("press_ms", "press"),
    ("first_token_ms", "first token"),
];

/// Writes `frontier_<task>.<ext>` per task and `ttft_breakdown.<ext>` per
/// format into `out`; returns the file names.
pub fn fusion_figures(cells: &[Cell], formats: &[Format], out: &Path) -> Result<Vec<String>> {
    let mut written = vec![];
    let mut tasks: Vec<&str> = vec![];
    for c in cells {
        if !tasks.contains(&c.task.as_str()) {
            tasks.push(&c.task);
        }
    }
    for t in tasks {
        let lines = frontier(cells, t);
        let fig = Figure::new(
            format!("{t}: F1 vs time to first token"),
            "mean TTFT (ms)",
            "mean F1",
        );
        for f in formats {
            let name = format!("frontier_{}.{}", stem(t), f.ext());
            line_chart(&fig, &lines, &out.join(&name))?;
            written.push(name);
        }
    }
    let pooled: Vec<&Cell> = cells.iter().filter(|c| c.task == ALL).collect();
    let cats: Vec<String> = pooled.iter().map(|c| c.label()).collect();
    let groups: Vec<Group> = PARTS
        .iter()
        .map(|(m, label)| Group::new(*label, pooled.iter().map(|c| c.mean(m)).collect()))
        .collect();
    let opts = BarOptions {
        mark: Mark::Stacked,
        value_labels: true,
        ..BarOptions::default()
    };
    let fig = Figure::new(
        "TTFT breakdown (all tasks)",
        "method (@ recompute rate)",
        "mean time (ms)",
    )
    .size(1200, 600);
    for f in formats {
        let name = format!("ttft_breakdown.{}", f.ext());
        bar_chart(&fig, &cats, &groups, &opts, &out.join(&name))?;
        written.push(name);
    }
    Ok(written)
}

/// One line per method (and press) of `task`: (TTFT, F1) through its rates,
/// in rate order.
/// (rate, TTFT, F1) points of one method.
type Points = Vec<(f64, f64, f64)>;

fn frontier(cells: &[Cell], task: &str) -> Vec<Line> {
    let mut by: BTreeMap<(usize, String), Points> = BTreeMap::new();
    let mut order: Vec<String> = vec![];
    for c in cells.iter().filter(|c| c.task == task) {
        let name = if c.press == "no_press" {
            c.method.clone()
        } else {
            format!("{}+{}", c.method, c.press)
        };
        if !order.contains(&name) {
            order.push(name.clone());
        }
        let i = order.iter().position(|o| *o == name).expect("just pushed");
        let pts = by.entry((i, name)).or_default();
        pts.push((c.rate, c.mean("ttft_ms"), c.mean("f1")));
    }
    by.into_iter()
        .map(|((_, name), mut pts)| {
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            Line::new(name, pts.into_iter().map(|p| (p.1, p.2)).collect())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::fusion_summary::MEANS;
    use super::*;
    use crate::plot::testing::{assert_png, assert_svg_has, cleanup, tempdir};

    fn cell(task: &str, method: &str, rate: f64, ttft: f64, f1: f64) -> Cell {
        let means = MEANS
            .iter()
            .map(|m| match *m {
                "ttft_ms" => ttft,
                "f1" => f1,
                "load_ms" => ttft * 0.1,
                "recompute_ms" => ttft * 0.8,
                "first_token_ms" => ttft * 0.1,
                _ => 0.0,
            })
            .collect();
        Cell {
            task: task.into(),
            method: method.into(),
            press: "no_press".into(),
            rate,
            n_samples: 1,
            means,
            f1_delta_points: 0.0,
            ttft_speedup: 1.0,
        }
    }

    #[test]
    fn frontier_lines_follow_rates_and_every_figure_is_written() {
        let cells = vec![
            cell(ALL, "vanilla", 1.0, 400.0, 0.8),
            cell(ALL, "blend", 0.3, 200.0, 0.7),
            cell(ALL, "blend", 0.05, 100.0, 0.5),
            cell("needle", "vanilla", 1.0, 400.0, 0.8),
            cell("needle", "blend", 0.05, 100.0, 0.5),
        ];
        let lines = frontier(&cells, ALL);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].label, "vanilla");
        assert_eq!(lines[1].points, vec![(100.0, 0.5), (200.0, 0.7)]);
        let dir = tempdir("fusionfig");
        let names = fusion_figures(&cells, &[Format::Svg, Format::Png], &dir).unwrap();
        assert_eq!(
            names,
            [
                "frontier_all.svg",
                "frontier_all.png",
                "frontier_needle.svg",
                "frontier_needle.png",
                "ttft_breakdown.svg",
                "ttft_breakdown.png"
            ]
        );
        assert_svg_has(
            &dir.join("ttft_breakdown.svg"),
            &["KV load", "recompute", "blend@0.05", "vanilla"],
        );
        assert_png(&dir.join("ttft_breakdown.png"), 1200, 600);
        cleanup(&dir);
    }
}
