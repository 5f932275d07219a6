//! Line charts: one or more (x, y) series, e.g. a metric per layer or per
//! compression ratio.

use super::colors;
use super::figure::{finite_range, perr, render, tick, widen, Draw, Figure};
use crate::error::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

/// Series with at most this many points also get a marker per point.
const MARKER_MAX_POINTS: usize = 60;

/// One named polyline; points with a non-finite coordinate break nothing,
/// they are left out.
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

impl Line {
    pub fn new(label: impl Into<String>, points: Vec<(f64, f64)>) -> Line {
        Line {
            label: label.into(),
            points,
        }
    }

    fn finite(&self) -> impl Iterator<Item = (f64, f64)> + '_ {
        self.points
            .iter()
            .copied()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
    }
}

/// Draw `lines` into `path` (`.png` or `.svg`); a legend appears when there
/// is more than one line.
pub fn line_chart(fig: &Figure, lines: &[Line], path: &Path) -> Result<()> {
    render(&Lines { lines }, fig, path)
}

struct Lines<'a> {
    lines: &'a [Line],
}

impl Draw for Lines<'_> {
    fn draw<DB: DrawingBackend>(&self, fig: &Figure, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let xs = finite_range(self.lines.iter().flat_map(|l| l.finite().map(|p| p.0)));
        let ys = finite_range(self.lines.iter().flat_map(|l| l.finite().map(|p| p.1)));
        let (x0, x1) = widen(xs.map_or(0.0, |r| r.0), xs.map_or(1.0, |r| r.1));
        let (y0, y1) = ys.map_or((0.0, 1.0), |(lo, hi)| {
            let (lo, hi) = widen(lo, hi);
            let pad = (hi - lo) * 0.06;
            (lo - pad, hi + pad)
        });

        let mut chart = ChartBuilder::on(root)
            .caption(&fig.title, fig.title_font())
            .margin(fig.px(18))
            .x_label_area_size(fig.px(62))
            .y_label_area_size(fig.px(90))
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(perr)?;
        chart
            .configure_mesh()
            .max_light_lines(0)
            .bold_line_style(colors::GRID)
            .x_desc(fig.x_label.as_str())
            .y_desc(fig.y_label.as_str())
            .axis_desc_style(fig.desc_font())
            .label_style(fig.tick_font())
            .x_label_formatter(&tick)
            .y_label_formatter(&tick)
            .draw()
            .map_err(perr)?;

        let legend = self.lines.len() > 1;
        let stroke = fig.px(2);
        for (i, line) in self.lines.iter().enumerate() {
            let color = colors::series(i);
            let style = color.stroke_width(stroke);
            let anno = chart
                .draw_series(LineSeries::new(line.finite(), style))
                .map_err(perr)?;
            if legend {
                let h = fig.px(7) as i32;
                anno.label(line.label.as_str())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 3 * h, y)], style));
            }
            if line.points.len() <= MARKER_MAX_POINTS {
                let r = fig.px(3);
                let marks = line
                    .finite()
                    .map(move |p| Circle::new(p, r, color.filled()));
                chart.draw_series(marks).map_err(perr)?;
            }
        }
        if legend {
            chart
                .configure_series_labels()
                .label_font(fig.tick_font())
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.4))
                .position(SeriesLabelPosition::UpperRight)
                .draw()
                .map_err(perr)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::testing::{assert_png, assert_svg_has, cleanup, tempdir};

    #[test]
    fn renders_lines_png_and_svg() {
        let dir = tempdir("line");
        let fig = Figure::new("Key cosine per layer", "layer", "mean cosine (1)").size(800, 500);
        let lines = [
            Line::new(
                "keys",
                (0..30).map(|l| (l as f64, 0.9 - 0.01 * l as f64)).collect(),
            ),
            Line::new(
                "values",
                (0..30)
                    .map(|l| (l as f64, 0.5 + (l as f64 * 0.3).sin() * 0.1))
                    .collect(),
            ),
            Line::new("with gaps", vec![(0.0, f64::NAN), (1.0, 0.7), (2.0, 0.75)]),
        ];
        let png = dir.join("l.png");
        line_chart(&fig, &lines, &png).unwrap();
        assert_png(&png, 800, 500);
        let svg = dir.join("l.svg");
        line_chart(&fig, &lines, &svg).unwrap();
        assert_svg_has(
            &svg,
            &[
                "Key cosine per layer",
                "layer",
                "mean cosine (1)",
                "values",
                "<polyline",
            ],
        );
        cleanup(&dir);
    }

    #[test]
    fn empty_and_flat_lines_still_render() {
        let dir = tempdir("line-empty");
        let fig = Figure::new("Nothing yet", "x (1)", "y (1)");
        line_chart(&fig, &[], &dir.join("e.svg")).unwrap();
        line_chart(
            &fig,
            &[Line::new("flat", vec![(3.0, 2.0)])],
            &dir.join("f.png"),
        )
        .unwrap();
        assert_png(&dir.join("f.png"), 1000, 600);
        cleanup(&dir);
    }
}
