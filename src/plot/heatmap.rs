//! Heatmaps of a row-major matrix (e.g. attention: query rows × key
//! columns), row 0 at the top, with a colour bar. Large matrices are
//! average-pooled first so PNG and SVG stay a sensible size.

use super::colors::viridis;
use super::figure::{finite_range, perr, render, tick, widen, Draw, Figure};
use crate::error::{other, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

/// Most cells drawn along either axis; bigger grids are pooled down to it.
pub const MAX_CELLS_PER_AXIS: usize = 160;

/// A row-major `rows × cols` matrix of values; NaN marks a missing cell.
#[derive(Clone, Debug, PartialEq)]
pub struct Grid {
    rows: usize,
    cols: usize,
    values: Vec<f64>,
}

impl Grid {
    pub fn new(rows: usize, cols: usize, values: Vec<f64>) -> Result<Grid> {
        if rows == 0 || cols == 0 || values.len() != rows * cols {
            return Err(other(format!(
                "heatmap grid {rows}x{cols} needs {} values, got {}",
                rows * cols,
                values.len()
            )));
        }
        Ok(Grid { rows, cols, values })
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    pub fn values(&self) -> &[f64] {
        &self.values
    }

    pub fn get(&self, r: usize, c: usize) -> f64 {
        self.values[r * self.cols + c]
    }

    /// Average-pool into at most `max_rows × max_cols` blocks of nearly equal
    /// size, ignoring NaN (a block of only NaN stays NaN).
    pub fn pooled(&self, max_rows: usize, max_cols: usize) -> Grid {
        let pr = self.rows.min(max_rows.max(1));
        let pc = self.cols.min(max_cols.max(1));
        if (pr, pc) == (self.rows, self.cols) {
            return self.clone();
        }
        let mut values = Vec::with_capacity(pr * pc);
        for i in 0..pr {
            let (r0, r1) = (block(i, self.rows, pr), block(i + 1, self.rows, pr));
            for j in 0..pc {
                let (c0, c1) = (block(j, self.cols, pc), block(j + 1, self.cols, pc));
                let (mut sum, mut n) = (0.0, 0usize);
                for r in r0..r1 {
                    for &v in &self.values[r * self.cols + c0..r * self.cols + c1] {
                        if !v.is_nan() {
                            sum += v;
                            n += 1;
                        }
                    }
                }
                values.push(if n == 0 { f64::NAN } else { sum / n as f64 });
            }
        }
        Grid {
            rows: pr,
            cols: pc,
            values,
        }
    }
}

/// Start of block `i` when `n` items are split into `parts` blocks.
fn block(i: usize, n: usize, parts: usize) -> usize {
    i * n / parts
}

/// Draw `grid` into `path` (`.png` or `.svg`); `value_label` names the
/// colour bar (with units). Axes keep the original row/column indices.
pub fn heatmap(fig: &Figure, grid: &Grid, value_label: &str, path: &Path) -> Result<()> {
    let shown = grid.pooled(MAX_CELLS_PER_AXIS, MAX_CELLS_PER_AXIS);
    let range = finite_range(shown.values.iter().copied()).unwrap_or((0.0, 1.0));
    let (lo, hi) = widen(range.0, range.1);
    render(
        &Heat {
            grid,
            shown,
            lo,
            hi,
            value_label,
        },
        fig,
        path,
    )
}

struct Heat<'a> {
    grid: &'a Grid,
    shown: Grid,
    lo: f64,
    hi: f64,
    value_label: &'a str,
}

impl Draw for Heat<'_> {
    fn draw<DB: DrawingBackend>(&self, fig: &Figure, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let body = root.margin(fig.px(10), 0, 0, 0);
        let body = body.titled(&fig.title, fig.title_font()).map_err(perr)?;
        let bar_w = fig.px(150).min(body.dim_in_pixel().0 / 3);
        let (main, bar) = body.split_horizontally(body.dim_in_pixel().0 - bar_w);
        let (rows, cols) = (self.grid.rows as f64, self.grid.cols as f64);

        let mut chart = ChartBuilder::on(&main)
            .margin(fig.px(18))
            .x_label_area_size(fig.px(62))
            .y_label_area_size(fig.px(90))
            .build_cartesian_2d(0.0..cols, rows..0.0)
            .map_err(perr)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc(fig.x_label.as_str())
            .y_desc(fig.y_label.as_str())
            .axis_desc_style(fig.desc_font())
            .label_style(fig.tick_font())
            .x_label_formatter(&tick)
            .y_label_formatter(&tick)
            .draw()
            .map_err(perr)?;
        let s = &self.shown;
        let span = self.hi - self.lo;
        let cells = (0..s.rows).flat_map(|i| {
            let y0 = block(i, self.grid.rows, s.rows) as f64;
            let y1 = block(i + 1, self.grid.rows, s.rows) as f64;
            (0..s.cols).map(move |j| {
                let x0 = block(j, self.grid.cols, s.cols) as f64;
                let x1 = block(j + 1, self.grid.cols, s.cols) as f64;
                let color = viridis((s.get(i, j) - self.lo) / span);
                Rectangle::new([(x0, y0), (x1, y1)], color.filled())
            })
        });
        chart.draw_series(cells).map_err(perr)?;

        let mut scale = ChartBuilder::on(&bar)
            .margin(fig.px(18))
            .x_label_area_size(fig.px(62))
            .right_y_label_area_size(fig.px(85))
            .build_cartesian_2d(0.0..1.0, self.lo..self.hi)
            .map_err(perr)?;
        scale
            .configure_mesh()
            .disable_mesh()
            .disable_x_axis()
            .y_desc(self.value_label)
            .axis_desc_style(fig.desc_font())
            .label_style(fig.tick_font())
            .y_label_formatter(&tick)
            .draw()
            .map_err(perr)?;
        const STEPS: usize = 100;
        let steps = (0..STEPS).map(|k| {
            let (a, b) = (k as f64 / STEPS as f64, (k + 1) as f64 / STEPS as f64);
            let color = viridis((a + b) / 2.0);
            Rectangle::new(
                [(0.0, self.lo + a * span), (1.0, self.lo + b * span)],
                color.filled(),
            )
        });
        scale.draw_series(steps).map_err(perr)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::testing::{assert_png, assert_svg_has, cleanup, tempdir};

    #[test]
    fn grid_checks_its_length() {
        assert!(Grid::new(2, 3, vec![0.0; 5]).is_err());
        assert!(Grid::new(0, 3, vec![]).is_err());
        let g = Grid::new(2, 3, (0..6).map(|v| v as f64).collect()).unwrap();
        assert_eq!(g.get(1, 2), 5.0);
    }

    #[test]
    fn pooling_averages_blocks_and_skips_nan() {
        // 4x4 of r*4+c pooled to 2x2: block means 2.5, 4.5, 10.5, 12.5
        let g = Grid::new(4, 4, (0..16).map(|v| v as f64).collect()).unwrap();
        let p = g.pooled(2, 2);
        assert_eq!((p.rows(), p.cols()), (2, 2));
        assert_eq!(p.values(), &[2.5, 4.5, 10.5, 12.5]);
        // uneven: 5 rows into 2 blocks -> rows 0..2 and 2..5
        let g = Grid::new(5, 1, vec![1.0, 3.0, 5.0, f64::NAN, 9.0]).unwrap();
        assert_eq!(g.pooled(2, 1).values(), &[2.0, 7.0]);
        let g = Grid::new(2, 1, vec![f64::NAN, f64::NAN]).unwrap();
        assert!(g.pooled(1, 1).values()[0].is_nan());
        // small grids are unchanged
        let small = Grid::new(2, 2, vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!(small.pooled(10, 10), small);
    }

    #[test]
    fn renders_heatmap_png_and_svg() {
        let dir = tempdir("heat");
        let (n, m) = (300usize, 200usize);
        // causal attention-like pattern: lower triangle, decaying with distance
        let values = (0..n * m)
            .map(|k| {
                let (r, c) = (k / m, k % m);
                if c > r {
                    f64::NAN
                } else {
                    (-((r - c) as f64) / 40.0).exp()
                }
            })
            .collect();
        let grid = Grid::new(n, m, values).unwrap();
        let fig = Figure::new(
            "Attention, layer 3",
            "key position (token)",
            "query position (token)",
        );
        let png = dir.join("a.png");
        heatmap(&fig, &grid, "attention weight (1)", &png).unwrap();
        assert_png(&png, 1000, 600);
        let svg = dir.join("a.svg");
        heatmap(&fig, &grid, "attention weight (1)", &svg).unwrap();
        assert_svg_has(
            &svg,
            &[
                "Attention, layer 3",
                "key position (token)",
                "query position (token)",
                "attention weight (1)",
            ],
        );
        let rects = std::fs::read_to_string(&svg)
            .unwrap()
            .matches("<rect")
            .count();
        assert!(
            rects <= MAX_CELLS_PER_AXIS * MAX_CELLS_PER_AXIS + 200,
            "{rects} rects: not pooled"
        );
        cleanup(&dir);
    }
}
