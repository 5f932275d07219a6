//! Decorations shared by the category and step-histogram charts: a legend
//! in its own strip right of the plot (so it never hides data) and dashed
//! reference lines (thresholds) with their label.

use super::figure::{perr, Figure};
use crate::error::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// A labelled reference value, drawn as a dashed grey line.
#[derive(Clone, Debug, PartialEq)]
pub struct RefLine {
    pub label: String,
    pub at: f64,
    /// The label goes on the low side: left of a vertical line, below a
    /// horizontal one (e.g. "NO-GO < 0.5"); otherwise on the high side.
    pub low_side: bool,
}

impl RefLine {
    /// A line labelled on its high side.
    pub fn new(label: impl Into<String>, at: f64) -> RefLine {
        RefLine {
            label: label.into(),
            at,
            low_side: false,
        }
    }

    /// The same line labelled on its low side.
    pub fn low_side(mut self) -> RefLine {
        self.low_side = true;
        self
    }
}

/// Colour of reference lines and their labels: clearly not a data series.
pub const REF_COLOR: RGBColor = RGBColor(0x55, 0x55, 0x55);

/// How a legend entry's swatch looks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Swatch {
    Box,
    Line,
    /// A reference line.
    Dashed,
}

/// A drawing area in pixel coordinates.
type Area<DB> = DrawingArea<DB, Shift>;

/// Split `area` into the plot and, when there are entries, a legend strip
/// wide enough for the longest label (at most 40% of the width).
pub(crate) fn split_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    fig: &Figure,
    labels: &[&str],
) -> Result<(Area<DB>, Option<Area<DB>>)> {
    if labels.is_empty() {
        return Ok((area.clone(), None));
    }
    let font = fig.tick_font();
    let mut widest = 0u32;
    for l in labels {
        widest = widest.max(area.estimate_text_size(l, &font).map_err(perr)?.0);
    }
    let (w, _) = area.dim_in_pixel();
    let strip = (widest + fig.px(56)).min(w * 2 / 5);
    let (plot, legend) = area.split_horizontally(w.saturating_sub(strip));
    Ok((plot, Some(legend)))
}

/// Draw `entries` (label, colour, swatch) top-down in the legend strip,
/// level with the top of the plot area.
pub(crate) fn draw_legend<DB: DrawingBackend>(
    strip: &DrawingArea<DB, Shift>,
    fig: &Figure,
    entries: &[(String, RGBColor, Swatch)],
) -> Result<()> {
    let row = fig.px(28) as i32;
    let h = fig.px(7) as i32;
    let x = fig.px(6) as i32;
    let font = fig.tick_font().pos(Pos::new(HPos::Left, VPos::Center));
    for (i, (label, color, swatch)) in entries.iter().enumerate() {
        let y = fig.px(30) as i32 + i as i32 * row;
        match swatch {
            Swatch::Box => strip
                .draw(&Rectangle::new(
                    [(x, y - h), (x + 3 * h, y + h)],
                    color.filled(),
                ))
                .map_err(perr)?,
            Swatch::Line => {
                let style = color.stroke_width(fig.px(3));
                strip
                    .draw(&PathElement::new(vec![(x, y), (x + 3 * h, y)], style))
                    .map_err(perr)?;
                strip
                    .draw(&Circle::new((x + 3 * h / 2, y), fig.px(3), color.filled()))
                    .map_err(perr)?
            }
            Swatch::Dashed => {
                let style = color.stroke_width(fig.px(2));
                for (a, b) in [(0, h), (2 * h, 3 * h)] {
                    strip
                        .draw(&PathElement::new(vec![(x + a, y), (x + b, y)], style))
                        .map_err(perr)?;
                }
            }
        }
        strip
            .draw(&Text::new(label.as_str(), (x + 4 * h, y), font.clone()))
            .map_err(perr)?;
    }
    Ok(())
}

/// The dashed style of a reference line.
pub(crate) fn ref_style(fig: &Figure) -> ShapeStyle {
    REF_COLOR.stroke_width(fig.px(2))
}

/// The font of a reference line's label.
pub(crate) fn ref_font(fig: &Figure, anchor: Pos) -> TextStyle<'static> {
    fig.tick_font().color(&REF_COLOR).pos(anchor)
}

/// `c` mixed towards white by `t` in [0, 1]: a paler shade of a series.
pub fn lighten(c: RGBColor, t: f64) -> RGBColor {
    let t = t.clamp(0.0, 1.0);
    let mix = |v: u8| (v as f64 + (255.0 - v as f64) * t).round() as u8;
    RGBColor(mix(c.0), mix(c.1), mix(c.2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lighten_mixes_towards_white() {
        assert_eq!(lighten(RGBColor(0, 100, 255), 0.0), RGBColor(0, 100, 255));
        assert_eq!(lighten(RGBColor(0, 100, 255), 1.0), RGBColor(255, 255, 255));
        assert_eq!(lighten(RGBColor(0, 100, 255), 0.5), RGBColor(128, 178, 255));
        assert_eq!(lighten(RGBColor(10, 10, 10), 7.0), RGBColor(255, 255, 255));
    }
}
