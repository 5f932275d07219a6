//! Charts over named categories (buckets, window positions, layers): grouped
//! bars or one line per group, with dashed reference lines and the legend
//! in a strip beside the plot.

use super::colors;
use super::decor::{draw_legend, ref_font, ref_style, split_legend, RefLine, Swatch, REF_COLOR};
use super::figure::{finite_range, perr, render, tick, widen, Draw, Figure};
use crate::error::{other, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// At most this many category labels are written; beyond it every k-th.
const MAX_LABELS: usize = 16;

/// One value per category; NaN leaves the bar (or point) out.
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    pub label: String,
    pub values: Vec<f64>,
    /// None: the palette colour of the group's index.
    pub color: Option<RGBColor>,
}

impl Group {
    pub fn new(label: impl Into<String>, values: Vec<f64>) -> Group {
        Group {
            label: label.into(),
            values,
            color: None,
        }
    }

    pub fn color(mut self, c: RGBColor) -> Group {
        self.color = Some(c);
        self
    }
}

/// Bars side by side per category, one bar per category with the groups
/// stacked (parts of a whole, e.g. a time breakdown), or a polyline per group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    Bars,
    Stacked,
    Lines,
}

/// What else a category chart shows.
#[derive(Clone, Debug, PartialEq)]
pub struct BarOptions {
    pub mark: Mark,
    /// None: from the data (bars always include 0) and the reference lines.
    pub y_range: Option<(f64, f64)>,
    pub refs: Vec<RefLine>,
    /// Write each bar's value above it (counts).
    pub value_labels: bool,
}

impl Default for BarOptions {
    fn default() -> BarOptions {
        BarOptions {
            mark: Mark::Bars,
            y_range: None,
            refs: Vec::new(),
            value_labels: false,
        }
    }
}

/// Draw `groups` over `categories` into `path` (`.png` or `.svg`); every
/// group needs one value per category. The legend names every group.
pub fn bar_chart(
    fig: &Figure,
    categories: &[String],
    groups: &[Group],
    opts: &BarOptions,
    path: &Path,
) -> Result<()> {
    for g in groups {
        if g.values.len() != categories.len() {
            return Err(other(format!(
                "{}: group {:?} has {} values for {} categories",
                path.display(),
                g.label,
                g.values.len(),
                categories.len()
            )));
        }
    }
    render(
        &Cats {
            categories,
            groups,
            opts,
        },
        fig,
        path,
    )
}

struct Cats<'a> {
    categories: &'a [String],
    groups: &'a [Group],
    opts: &'a BarOptions,
}

impl Cats<'_> {
    fn color(&self, i: usize) -> RGBColor {
        self.groups[i].color.unwrap_or_else(|| colors::series(i))
    }

    fn y_range(&self) -> (f64, f64) {
        if let Some((lo, hi)) = self.opts.y_range {
            return widen(lo, hi);
        }
        // a stack's height is its parts' sum
        let values: Vec<f64> = if self.opts.mark == Mark::Stacked {
            self.stack_tops()
        } else {
            self.groups.iter().flat_map(|g| g.values.clone()).collect()
        };
        let values = values.iter().copied();
        let refs = self.opts.refs.iter().map(|r| r.at);
        let bars = self.opts.mark != Mark::Lines;
        if bars && finite_range(values.clone()).is_none() {
            return (0.0, 1.0);
        }
        let zero = bars.then_some(0.0);
        match finite_range(values.chain(refs).chain(zero)) {
            None => (0.0, 1.0),
            Some((lo, hi)) => {
                let (lo, hi) = widen(lo, hi);
                let pad = (hi - lo) * if bars { 0.1 } else { 0.06 };
                let lo = if bars && lo >= 0.0 { 0.0 } else { lo - pad };
                (lo, hi + pad)
            }
        }
    }

    /// Per category, the top of its stack (non-finite parts count 0).
    fn stack_tops(&self) -> Vec<f64> {
        (0..self.categories.len())
            .map(|c| {
                let parts = self.groups.iter().map(|g| g.values[c]);
                parts.filter(|v| v.is_finite()).sum()
            })
            .collect()
    }

    /// The label at `v` when it is a category centre (and not thinned out).
    fn label_at(&self, v: f64) -> String {
        let n = self.categories.len();
        let step = n.div_ceil(MAX_LABELS).max(1);
        let i = v.round();
        if (v - i).abs() > 1e-6 || i < 0.0 || i as usize >= n || !(i as usize).is_multiple_of(step)
        {
            return String::new();
        }
        self.categories[i as usize].clone()
    }
}

/// A value written above a bar: integers plainly, others to 2 decimals.
fn value_text(v: f64) -> String {
    if v == v.round() && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:.2}")
    }
}

impl Draw for Cats<'_> {
    fn draw<DB: DrawingBackend>(&self, fig: &Figure, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let body = root.titled(&fig.title, fig.title_font()).map_err(perr)?;
        // even one group is named: it may stand for several merged ones
        let mut labels: Vec<&str> = self.groups.iter().map(|g| g.label.as_str()).collect();
        if self.opts.mark != Mark::Lines {
            labels.extend(self.opts.refs.iter().map(|r| r.label.as_str()));
        }
        let (plot, strip) = split_legend(&body, fig, &labels)?;

        let n = self.categories.len().max(1);
        let (x0, x1) = (-0.5, n as f64 - 0.5);
        let (y0, y1) = self.y_range();
        let mut chart = ChartBuilder::on(&plot)
            .margin(fig.px(18))
            .x_label_area_size(fig.px(62))
            .y_label_area_size(fig.px(90))
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(perr)?;
        let label_at = |v: &f64| self.label_at(*v);
        chart
            .configure_mesh()
            .disable_x_mesh()
            // integer key points: range -0.5..n-0.5 holds exactly n of them
            .x_labels(n)
            .max_light_lines(0)
            .bold_line_style(colors::GRID)
            .x_desc(fig.x_label.as_str())
            .y_desc(fig.y_label.as_str())
            .axis_desc_style(fig.desc_font())
            .label_style(fig.tick_font())
            .x_label_formatter(&label_at)
            .y_label_formatter(&tick)
            .draw()
            .map_err(perr)?;

        let k = self.groups.len().max(1) as f64;
        let width = 0.8 / k;
        let mut base = vec![0.0; self.categories.len()];
        for (j, g) in self.groups.iter().enumerate() {
            let color = self.color(j);
            let finite = || {
                g.values
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| v.is_finite())
                    .map(|(c, v)| (c as f64, *v))
            };
            match self.opts.mark {
                Mark::Bars => {
                    let left = |c: f64| c - 0.4 + j as f64 * width;
                    let bars = finite().map(|(c, v)| {
                        let x = left(c);
                        Rectangle::new([(x, 0.0), (x + width * 0.9, v)], color.filled())
                    });
                    chart.draw_series(bars).map_err(perr)?;
                    if self.opts.value_labels {
                        let font = fig.tick_font().pos(Pos::new(HPos::Center, VPos::Bottom));
                        let texts = finite().map(|(c, v)| {
                            let at = (left(c) + width * 0.45, v);
                            EmptyElement::at(at)
                                + Text::new(value_text(v), (0, -(fig.px(3) as i32)), font.clone())
                        });
                        chart.draw_series(texts).map_err(perr)?;
                    }
                }
                Mark::Stacked => {
                    let bars = finite().map(|(c, v)| {
                        let b = base[c as usize];
                        base[c as usize] += v;
                        Rectangle::new([(c - 0.4, b), (c + 0.4, b + v)], color.filled())
                    });
                    let bars: Vec<_> = bars.collect();
                    chart.draw_series(bars).map_err(perr)?;
                }
                Mark::Lines => {
                    let style = color.stroke_width(fig.px(3));
                    chart
                        .draw_series(LineSeries::new(finite(), style))
                        .map_err(perr)?;
                    let r = fig.px(4);
                    chart
                        .draw_series(finite().map(|p| Circle::new(p, r, color.filled())))
                        .map_err(perr)?;
                }
            }
        }

        if self.opts.mark == Mark::Stacked && self.opts.value_labels {
            let font = fig.tick_font().pos(Pos::new(HPos::Center, VPos::Bottom));
            let tops = self.stack_tops().into_iter().enumerate();
            let texts = tops.filter(|(_, v)| *v > 0.0).map(|(c, v)| {
                EmptyElement::at((c as f64, v))
                    + Text::new(value_text(v), (0, -(fig.px(3) as i32)), font.clone())
            });
            chart.draw_series(texts).map_err(perr)?;
        }

        // thresholds over the data; bars would hide a label in the plot, so
        // a bar chart names them in the legend instead
        let in_legend = self.opts.mark != Mark::Lines;
        for r in &self.opts.refs {
            chart
                .draw_series(DashedLineSeries::new(
                    [(x0, r.at), (x1, r.at)],
                    fig.px(10),
                    fig.px(6),
                    ref_style(fig),
                ))
                .map_err(perr)?;
            if in_legend {
                continue;
            }
            let (v, dy) = if r.low_side {
                (VPos::Top, fig.px(3) as i32)
            } else {
                (VPos::Bottom, -(fig.px(3) as i32))
            };
            let font = ref_font(fig, Pos::new(HPos::Left, v));
            let text = EmptyElement::at((x0, r.at))
                + Text::new(r.label.clone(), (fig.px(6) as i32, dy), font);
            chart.draw_series(std::iter::once(text)).map_err(perr)?;
        }

        let values = self.groups.iter().flat_map(|g| g.values.iter().copied());
        if finite_range(values).is_none() {
            let font = fig.desc_font().pos(Pos::new(HPos::Center, VPos::Center));
            let (w, h) = plot.dim_in_pixel();
            let at = (w as i32 / 2, h as i32 / 2);
            plot.draw(&Text::new("no data", at, font)).map_err(perr)?;
        }

        if let Some(strip) = strip {
            let swatch = match self.opts.mark {
                Mark::Bars | Mark::Stacked => Swatch::Box,
                Mark::Lines => Swatch::Line,
            };
            let mut entries: Vec<_> = (0..self.groups.len())
                .map(|i| (self.groups[i].label.clone(), self.color(i), swatch))
                .collect();
            if in_legend {
                let refs = self.opts.refs.iter();
                entries.extend(refs.map(|r| (r.label.clone(), REF_COLOR, Swatch::Dashed)));
            }
            draw_legend(&strip, fig, &entries)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::testing::{assert_png, assert_svg_has, cleanup, tempdir};

    fn cats(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("c{i}")).collect()
    }

    #[test]
    fn labels_sit_on_category_centres_and_thin_out() {
        let groups = [];
        let opts = BarOptions::default();
        let five = cats(5);
        let c = Cats {
            categories: &five,
            groups: &groups,
            opts: &opts,
        };
        assert_eq!(c.label_at(2.0), "c2");
        assert_eq!(c.label_at(2.000_000_000_1), "c2");
        assert_eq!(c.label_at(2.5), "");
        assert_eq!(c.label_at(-1.0), "");
        assert_eq!(c.label_at(5.0), "");
        let forty = cats(40);
        let c = Cats {
            categories: &forty,
            groups: &groups,
            opts: &opts,
        };
        // 40 categories, at most 16 labels: every 3rd
        assert_eq!(c.label_at(3.0), "c3");
        assert_eq!(c.label_at(4.0), "");
        assert_eq!(value_text(12.0), "12");
        assert_eq!(value_text(0.456), "0.46");
    }

    #[test]
    fn y_range_includes_zero_and_refs() {
        let groups = [Group::new("a", vec![0.6, f64::NAN, 0.9])];
        let three = cats(3);
        let mut opts = BarOptions {
            refs: vec![RefLine::new("go", 0.7), RefLine::new("caution", 0.2)],
            ..BarOptions::default()
        };
        let c = Cats {
            categories: &three,
            groups: &groups,
            opts: &opts,
        };
        let (lo, hi) = c.y_range();
        assert_eq!(lo, 0.0);
        assert!(hi > 0.9 && hi < 1.0, "{hi}");
        opts.mark = Mark::Lines;
        let c = Cats {
            categories: &three,
            groups: &groups,
            opts: &opts,
        };
        let (lo, hi) = c.y_range();
        assert!(lo < 0.2 && lo > 0.1 && hi > 0.9, "{lo} {hi}");
        // stacked: the axis reaches the tallest stack, a NaN part adds nothing
        let parts = [
            Group::new("a", vec![0.5, f64::NAN, 0.75]),
            Group::new("b", vec![1.0, 0.5, 0.25]),
        ];
        let opts = BarOptions {
            mark: Mark::Stacked,
            ..BarOptions::default()
        };
        let c = Cats {
            categories: &three,
            groups: &parts,
            opts: &opts,
        };
        assert_eq!(c.stack_tops(), vec![1.5, 0.5, 1.0]);
        let (lo, hi) = c.y_range();
        assert!(lo == 0.0 && hi > 1.5, "{lo} {hi}");
    }

    #[test]
    fn renders_bars_and_lines() {
        let dir = tempdir("bars");
        let fig = Figure::new("Rejections per bucket", "draft confidence", "rejections");
        let groups = [
            Group::new("same_model", vec![3.0, 0.0, 7.0, 12.0]),
            Group::new("cross_model", vec![2.0, f64::NAN, 5.0, 1.0]),
        ];
        let c = cats(4);
        let opts = BarOptions {
            value_labels: true,
            refs: vec![RefLine::new("GO > 0.7", 7.0)],
            ..BarOptions::default()
        };
        let png = dir.join("b.png");
        bar_chart(&fig, &c, &groups, &opts, &png).unwrap();
        assert_png(&png, 1000, 600);
        let svg = dir.join("b.svg");
        bar_chart(&fig, &c, &groups, &opts, &svg).unwrap();
        assert_svg_has(
            &svg,
            &[
                "Rejections per bucket",
                "draft confidence",
                "same_model",
                "cross_model",
                "c3",
                "GO &gt; 0.7",
                "\n7\n</text>", // a value label, not a tick (ticks are even)
            ],
        );
        let lines = BarOptions {
            mark: Mark::Lines,
            ..BarOptions::default()
        };
        let png = dir.join("l.png");
        bar_chart(&fig, &c, &groups, &lines, &png).unwrap();
        assert_png(&png, 1000, 600);
        bar_chart(&fig, &[], &[], &lines, &dir.join("empty.svg")).unwrap();
        assert_svg_has(&dir.join("empty.svg"), &["no data"]);
        let bad = [Group::new("short", vec![1.0])];
        let e = bar_chart(&fig, &c, &bad, &opts, &png).unwrap_err();
        assert!(e.to_string().contains("short"), "{e}");
        cleanup(&dir);
    }
}
