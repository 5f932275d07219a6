//! Histograms of one or more series; several series are stacked so the bar
//! height stays the total count per bin.

use super::colors;
use super::figure::{finite_range, perr, render, tick, widen, Draw, Figure};
use crate::error::{other, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

/// One named set of values; non-finite values are skipped.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub label: String,
    pub values: Vec<f64>,
}

impl Series {
    pub fn new(label: impl Into<String>, values: Vec<f64>) -> Series {
        Series {
            label: label.into(),
            values,
        }
    }
}

/// Bin edges shared by all series: `bins` equal-width bins over the finite
/// range; when every value is an integer (token counts) the bins are
/// integer-aligned so each holds the same number of possible values.
pub fn bin_edges(series: &[Series], bins: usize) -> Vec<f64> {
    let bins = bins.max(1);
    let all = series.iter().flat_map(|s| s.values.iter().copied());
    let Some((lo, hi)) = finite_range(all.clone()) else {
        return (0..=bins).map(|k| k as f64 / bins as f64).collect();
    };
    let integral = all.filter(|v| v.is_finite()).all(|v| v == v.round());
    if integral {
        let span = hi - lo + 1.0;
        let width = (span / bins as f64).ceil().max(1.0);
        let n = (span / width).ceil() as usize;
        (0..=n).map(|k| lo - 0.5 + k as f64 * width).collect()
    } else {
        let (lo, hi) = widen(lo, hi);
        let width = (hi - lo) / bins as f64;
        let mut e: Vec<f64> = (0..bins).map(|k| lo + k as f64 * width).collect();
        e.push(hi);
        e
    }
}

/// Counts of `values` per bin `[edges[i], edges[i+1])`, the last bin closed;
/// values outside the edges and non-finite values are not counted.
pub fn bin_counts(values: &[f64], edges: &[f64]) -> Vec<u64> {
    let n = edges.len().saturating_sub(1);
    let mut counts = vec![0u64; n];
    if n == 0 {
        return counts;
    }
    for &v in values {
        if !v.is_finite() || v < edges[0] || v > edges[n] {
            continue;
        }
        let i = edges
            .partition_point(|&e| e <= v)
            .saturating_sub(1)
            .min(n - 1);
        counts[i] += 1;
    }
    counts
}

/// Draw a histogram of `series` with about `bins` bins into `path`
/// (`.png` or `.svg`); y counts values per bin.
pub fn histogram(fig: &Figure, series: &[Series], bins: usize, path: &Path) -> Result<()> {
    if bins == 0 {
        return Err(other(format!(
            "{}: histogram needs at least one bin",
            path.display()
        )));
    }
    let edges = bin_edges(series, bins);
    let counts = series
        .iter()
        .map(|s| bin_counts(&s.values, &edges))
        .collect();
    render(
        &Hist {
            series,
            edges,
            counts,
        },
        fig,
        path,
    )
}

struct Hist<'a> {
    series: &'a [Series],
    edges: Vec<f64>,
    counts: Vec<Vec<u64>>,
}

impl Draw for Hist<'_> {
    fn draw<DB: DrawingBackend>(&self, fig: &Figure, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let nbins = self.edges.len() - 1;
        let totals: Vec<u64> = (0..nbins)
            .map(|b| self.counts.iter().map(|c| c[b]).sum())
            .collect();
        let top = totals.iter().copied().max().unwrap_or(0).max(1);
        let ymax = top as f64 * 1.12;
        let (x0, x1) = (self.edges[0], self.edges[nbins]);

        let mut chart = ChartBuilder::on(root)
            .caption(&fig.title, fig.title_font())
            .margin(fig.px(18))
            .x_label_area_size(fig.px(62))
            .y_label_area_size(fig.px(90))
            .build_cartesian_2d(x0..x1, 0f64..ymax)
            .map_err(perr)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            // counts are whole: at most top+1 labels keeps the steps integral
            .y_labels((top as usize + 1).min(10))
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

        let legend = self.series.len() > 1;
        let mut base = vec![0u64; nbins];
        for (i, (s, counts)) in self.series.iter().zip(&self.counts).enumerate() {
            let color = colors::series(i);
            let mut bars = Vec::new();
            for b in 0..nbins {
                if counts[b] > 0 {
                    let (lo, hi) = (base[b] as f64, (base[b] + counts[b]) as f64);
                    bars.push(Rectangle::new(
                        [(self.edges[b], lo), (self.edges[b + 1], hi)],
                        color.filled(),
                    ));
                    base[b] += counts[b];
                }
            }
            let anno = chart.draw_series(bars).map_err(perr)?;
            if legend {
                let h = fig.px(7) as i32;
                anno.label(s.label.as_str()).legend(move |(x, y)| {
                    Rectangle::new([(x, y - h), (x + 2 * h, y + h)], color.filled())
                });
            }
        }
        // Thin white outlines separate neighbouring bars.
        let outlines = (0..nbins).filter(|&b| totals[b] > 0).map(|b| {
            Rectangle::new(
                [(self.edges[b], 0.0), (self.edges[b + 1], totals[b] as f64)],
                WHITE.stroke_width(1),
            )
        });
        chart.draw_series(outlines).map_err(perr)?;

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
    fn integer_edges_are_aligned() {
        let s = [Series::new("a", vec![1.0, 2.0, 3.0, 10.0])];
        let e = bin_edges(&s, 5);
        // span 10 values over 5 bins -> width 2, from 0.5
        assert_eq!(e, vec![0.5, 2.5, 4.5, 6.5, 8.5, 10.5]);
        assert_eq!(bin_counts(&s[0].values, &e), vec![2, 1, 0, 0, 1]);
    }

    #[test]
    fn float_edges_close_the_last_bin() {
        let s = [Series::new("a", vec![0.0, 0.5, 1.0, f64::NAN])];
        let e = bin_edges(&s, 2);
        assert_eq!(e, vec![0.0, 0.5, 1.0]);
        assert_eq!(bin_counts(&s[0].values, &e), vec![1, 2]);
        assert_eq!(bin_counts(&[-1.0, 2.0], &e), vec![0, 0]);
    }

    #[test]
    fn degenerate_and_empty_inputs() {
        let one = [Series::new("a", vec![512.0; 4])];
        let e = bin_edges(&one, 30);
        assert_eq!(e, vec![511.5, 512.5]);
        assert_eq!(bin_counts(&one[0].values, &e), vec![4]);
        let none = [Series::new("a", vec![])];
        assert_eq!(bin_edges(&none, 4).len(), 5);
    }

    #[test]
    fn renders_png_and_svg() {
        let dir = tempdir("hist");
        let fig = Figure::new("Chunk length", "tokens per chunk", "chunks");
        let series = [
            Series::new("needle", (0..200).map(|i| (1000 + i * 7) as f64).collect()),
            Series::new(
                "common_words",
                (0..120).map(|i| (1500 + i * 3) as f64).collect(),
            ),
        ];
        let png = dir.join("h.png");
        histogram(&fig, &series, 30, &png).unwrap();
        assert_png(&png, 1000, 600);
        let svg = dir.join("h.svg");
        histogram(&fig, &series, 30, &svg).unwrap();
        assert_svg_has(
            &svg,
            &[
                "Chunk length",
                "tokens per chunk",
                "chunks",
                "needle",
                "common_words",
            ],
        );
        assert!(histogram(&fig, &series, 0, &png).is_err());
        assert!(histogram(&fig, &series, 10, &dir.join("h.pdf")).is_err());
        cleanup(&dir);
    }
}
