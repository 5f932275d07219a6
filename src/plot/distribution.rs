//! Overlaid distributions: pre-binned series drawn as step outlines over a
//! pale fill, so several groups of different sizes stay comparable, in one
//! or more side-by-side panels sharing both axes, with dashed vertical
//! reference lines.

use super::colors;
use super::decor::{draw_legend, ref_font, ref_style, split_legend, RefLine, Swatch};
use super::figure::{finite_range, perr, render, tick, widen, Draw, Figure};
use crate::error::{other, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// One binned series: `heights[i]` over `[edges[i], edges[i+1])`.
#[derive(Clone, Debug, PartialEq)]
pub struct Steps {
    pub label: String,
    pub edges: Vec<f64>,
    pub heights: Vec<f64>,
}

impl Steps {
    pub fn new(label: impl Into<String>, edges: Vec<f64>, heights: Vec<f64>) -> Steps {
        Steps {
            label: label.into(),
            edges,
            heights,
        }
    }

    /// The x extent of the bins with a non-zero height.
    fn occupied(&self) -> Option<(f64, f64)> {
        let lo = self.heights.iter().position(|h| *h > 0.0)?;
        let hi = self.heights.iter().rposition(|h| *h > 0.0)?;
        Some((self.edges[lo], self.edges[hi + 1]))
    }

    /// The outline: down to 0 at both ends.
    fn outline(&self) -> Vec<(f64, f64)> {
        let n = self.heights.len();
        let mut pts = Vec::with_capacity(2 * n + 2);
        pts.push((self.edges[0], 0.0));
        for (i, h) in self.heights.iter().enumerate() {
            let h = if h.is_finite() { *h } else { 0.0 };
            pts.push((self.edges[i], h));
            pts.push((self.edges[i + 1], h));
        }
        pts.push((self.edges[n], 0.0));
        pts
    }
}

/// A titled panel of overlaid series.
#[derive(Clone, Debug, PartialEq)]
pub struct Panel {
    pub title: String,
    pub steps: Vec<Steps>,
}

/// Draw `panels` side by side into `path` (`.png` or `.svg`). The x axis
/// spans the occupied bins of all panels (one bin of margin) and the
/// reference lines; a series label keeps its colour across panels; the
/// legend lists each label once.
pub fn step_histograms(
    fig: &Figure,
    panels: &[Panel],
    refs: &[RefLine],
    path: &Path,
) -> Result<()> {
    for p in panels {
        for s in &p.steps {
            if s.heights.is_empty() || s.edges.len() != s.heights.len() + 1 {
                return Err(other(format!(
                    "{}: series {:?} needs one more edge than its {} heights, has {}",
                    path.display(),
                    s.label,
                    s.heights.len(),
                    s.edges.len()
                )));
            }
        }
    }
    render(&StepChart { panels, refs }, fig, path)
}

struct StepChart<'a> {
    panels: &'a [Panel],
    refs: &'a [RefLine],
}

impl StepChart<'_> {
    /// Labels in first-seen order; a label's index is its colour.
    fn labels(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for s in self.panels.iter().flat_map(|p| &p.steps) {
            if !out.contains(&s.label.as_str()) {
                out.push(&s.label);
            }
        }
        out
    }

    fn x_range(&self) -> (f64, f64) {
        let steps = || self.panels.iter().flat_map(|p| &p.steps);
        let occupied = steps().filter_map(|s| {
            let (lo, hi) = s.occupied()?;
            let w = (s.edges[s.edges.len() - 1] - s.edges[0]) / s.heights.len() as f64;
            Some([lo - w, hi + w])
        });
        let outer = finite_range(steps().flat_map(|s| [s.edges[0], s.edges[s.edges.len() - 1]]));
        // the occupied bins with a margin, kept inside the bins' own range
        let mut range = match (finite_range(occupied.flatten()), outer) {
            (Some((lo, hi)), Some((a, b))) => Some((lo.max(a), hi.min(b))),
            (Some(occ), None) => Some(occ),
            // nothing to show: a unit range, so reference lines sit inside
            (None, _) => Some((0.0, 1.0)),
        };
        for r in self.refs.iter().filter(|r| r.at.is_finite()) {
            range = Some(match range {
                None => (r.at, r.at),
                Some((lo, hi)) => (lo.min(r.at), hi.max(r.at)),
            });
        }
        let (lo, hi) = range.unwrap_or((0.0, 1.0));
        widen(lo, hi)
    }

    fn y_max(&self) -> f64 {
        let all = self
            .panels
            .iter()
            .flat_map(|p| &p.steps)
            .flat_map(|s| s.heights.iter().copied());
        match finite_range(all) {
            Some((_, hi)) if hi > 0.0 => hi * 1.1,
            _ => 1.0,
        }
    }
}

impl Draw for StepChart<'_> {
    fn draw<DB: DrawingBackend>(&self, fig: &Figure, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let body = root.titled(&fig.title, fig.title_font()).map_err(perr)?;
        let labels = self.labels();
        let (plot, strip) = split_legend(&body, fig, &labels)?;
        let (x0, x1) = self.x_range();
        let y1 = self.y_max();
        let areas = plot.split_evenly((1, self.panels.len().max(1)));
        for (panel, area) in self.panels.iter().zip(&areas) {
            let mut chart = ChartBuilder::on(area)
                .caption(&panel.title, fig.desc_font())
                .margin(fig.px(14))
                .x_label_area_size(fig.px(62))
                .y_label_area_size(fig.px(90))
                .build_cartesian_2d(x0..x1, 0f64..y1)
                .map_err(perr)?;
            chart
                .configure_mesh()
                .max_light_lines(0)
                .x_labels(6)
                .bold_line_style(colors::GRID)
                .x_desc(fig.x_label.as_str())
                .y_desc(fig.y_label.as_str())
                .axis_desc_style(fig.desc_font())
                .label_style(fig.tick_font())
                .x_label_formatter(&tick)
                .y_label_formatter(&tick)
                .draw()
                .map_err(perr)?;
            for s in &panel.steps {
                let i = labels.iter().position(|l| *l == s.label).unwrap_or(0);
                let color = colors::series(i);
                let outline = s.outline();
                chart
                    .draw_series(std::iter::once(Polygon::new(
                        outline.clone(),
                        color.mix(0.18).filled(),
                    )))
                    .map_err(perr)?;
                chart
                    .draw_series(LineSeries::new(outline, color.stroke_width(fig.px(2))))
                    .map_err(perr)?;
            }
            if !panel.steps.iter().any(|s| s.occupied().is_some()) {
                let font = fig.desc_font().pos(Pos::new(HPos::Center, VPos::Center));
                let text = Text::new("no data", ((x0 + x1) / 2.0, y1 / 2.0), font);
                chart.draw_series(std::iter::once(text)).map_err(perr)?;
            }
            for r in self.refs {
                chart
                    .draw_series(DashedLineSeries::new(
                        [(r.at, 0.0), (r.at, y1)],
                        fig.px(10),
                        fig.px(6),
                        ref_style(fig),
                    ))
                    .map_err(perr)?;
                let (h, dx) = if r.low_side {
                    (HPos::Right, -(fig.px(5) as i32))
                } else {
                    (HPos::Left, fig.px(5) as i32)
                };
                let font = ref_font(fig, Pos::new(h, VPos::Top));
                let text = EmptyElement::at((r.at, y1))
                    + Text::new(r.label.clone(), (dx, fig.px(4) as i32), font);
                chart.draw_series(std::iter::once(text)).map_err(perr)?;
            }
        }
        if let Some(strip) = strip {
            let entries: Vec<_> = labels
                .iter()
                .enumerate()
                .map(|(i, l)| (l.to_string(), colors::series(i), Swatch::Box))
                .collect();
            draw_legend(&strip, fig, &entries)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::testing::{assert_png, assert_svg_has, cleanup, tempdir};

    fn edges(n: usize) -> Vec<f64> {
        (0..=n).map(|i| -1.0 + 2.0 * i as f64 / n as f64).collect()
    }

    #[test]
    fn outline_and_extent() {
        let s = Steps::new("a", vec![0.0, 1.0, 2.0, 3.0], vec![0.0, 2.0, 0.5]);
        assert_eq!(s.occupied(), Some((1.0, 3.0)));
        assert_eq!(
            s.outline(),
            vec![
                (0.0, 0.0),
                (0.0, 0.0),
                (1.0, 0.0),
                (1.0, 2.0),
                (2.0, 2.0),
                (2.0, 0.5),
                (3.0, 0.5),
                (3.0, 0.0)
            ]
        );
        assert_eq!(Steps::new("z", vec![0.0, 1.0], vec![0.0]).occupied(), None);
    }

    #[test]
    fn x_range_follows_occupied_bins_and_refs() {
        let mut h = vec![0.0; 10];
        h[7] = 0.4; // [0.4, 0.6)
        h[8] = 0.6; // [0.6, 0.8)
        let panels = [Panel {
            title: "K".into(),
            steps: vec![Steps::new("a", edges(10), h)],
        }];
        let refs = [RefLine::new("caution", 0.5)];
        let c = StepChart {
            panels: &panels,
            refs: &refs,
        };
        let (lo, hi) = c.x_range();
        assert!(
            (lo - 0.2).abs() < 1e-12 && (hi - 1.0).abs() < 1e-12,
            "{lo} {hi}"
        );
        let refs = [RefLine::new("far", -0.9)];
        let c = StepChart {
            panels: &panels,
            refs: &refs,
        };
        assert!((c.x_range().0 + 0.9).abs() < 1e-12);
        assert!((c.y_max() - 0.66).abs() < 1e-12);
    }

    #[test]
    fn renders_panels() {
        let dir = tempdir("steps");
        let fig = Figure::new("KV cosine", "cosine similarity", "fraction of rows");
        let bump = |at: usize| {
            let mut h = vec![0.0; 40];
            for (d, w) in [(0usize, 0.4), (1, 0.2), (2, 0.1)] {
                h[at + d] += w;
                h[at - d] += w;
            }
            h
        };
        let panels = [
            Panel {
                title: "Keys".into(),
                steps: vec![
                    Steps::new("same_model", edges(40), bump(36)),
                    Steps::new("cross_model", edges(40), bump(26)),
                ],
            },
            Panel {
                title: "Values".into(),
                steps: vec![
                    Steps::new("same_model", edges(40), bump(33)),
                    Steps::new("cross_model", edges(40), bump(22)),
                ],
            },
        ];
        let refs = [RefLine::new("0.5", 0.5), RefLine::new("0.7", 0.7)];
        let png = dir.join("d.png");
        step_histograms(&fig, &panels, &refs, &png).unwrap();
        assert_png(&png, 1000, 600);
        let svg = dir.join("d.svg");
        step_histograms(&fig, &panels, &refs, &svg).unwrap();
        assert_svg_has(
            &svg,
            &[
                "KV cosine",
                "Keys",
                "Values",
                "same_model",
                "cross_model",
                "<polygon",
            ],
        );
        let empty = [Panel {
            title: "nothing".into(),
            steps: vec![Steps::new("a", edges(4), vec![0.0; 4])],
        }];
        let c = StepChart {
            panels: &empty,
            refs: &refs,
        };
        assert_eq!(c.x_range(), (0.0, 1.0));
        step_histograms(&fig, &empty, &refs, &dir.join("e.svg")).unwrap();
        step_histograms(&fig, &[], &[], &dir.join("none.svg")).unwrap();
        assert_svg_has(&dir.join("e.svg"), &["no data"]);
        let bad = [Panel {
            title: "x".into(),
            steps: vec![Steps::new("bad", vec![0.0, 1.0], vec![1.0, 2.0])],
        }];
        assert!(step_histograms(&fig, &bad, &[], &png).is_err());
        cleanup(&dir);
    }
}
