//! What every chart shares: the figure's text and size, the output format,
//! fonts at a size that scales with the figure, and the backend dispatch.

use super::font;
use crate::error::{other, Error, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::fmt::Display;
use std::path::Path;

/// Output format, chosen by the path's extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Png,
    Svg,
}

impl Format {
    pub const ALL: [Format; 2] = [Format::Png, Format::Svg];

    pub fn ext(self) -> &'static str {
        match self {
            Format::Png => "png",
            Format::Svg => "svg",
        }
    }

    /// `"png"` or `"svg"` (case-insensitive).
    pub fn parse(s: &str) -> Option<Format> {
        Format::ALL
            .into_iter()
            .find(|f| f.ext().eq_ignore_ascii_case(s))
    }

    pub fn from_path(path: &Path) -> Result<Format> {
        path.extension()
            .and_then(|e| e.to_str())
            .and_then(Format::parse)
            .ok_or_else(|| {
                other(format!(
                    "{}: figure path must end in .png or .svg",
                    path.display()
                ))
            })
    }
}

/// A figure's title, axis labels (with units) and size in pixels.
#[derive(Clone, Debug, PartialEq)]
pub struct Figure {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub width: u32,
    pub height: u32,
}

impl Figure {
    /// A 1000×600 figure.
    pub fn new(
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
    ) -> Figure {
        Figure {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            width: 1000,
            height: 600,
        }
    }

    pub fn size(mut self, width: u32, height: u32) -> Figure {
        self.width = width;
        self.height = height;
        self
    }

    /// Font scale: 1 at 600 px on the shorter side.
    pub(crate) fn scale(&self) -> f64 {
        (self.width.min(self.height) as f64 / 600.0).clamp(0.5, 3.0)
    }

    pub(crate) fn px(&self, base: u32) -> u32 {
        (base as f64 * self.scale()).round().max(1.0) as u32
    }

    pub(crate) fn title_font(&self) -> TextStyle<'static> {
        (font::FAMILY, 26.0 * self.scale()).into_font().into()
    }

    pub(crate) fn desc_font(&self) -> TextStyle<'static> {
        (font::FAMILY, 19.0 * self.scale()).into_font().into()
    }

    pub(crate) fn tick_font(&self) -> TextStyle<'static> {
        (font::FAMILY, 15.0 * self.scale()).into_font().into()
    }
}

/// A chart that can draw itself on any plotters backend.
pub(crate) trait Draw {
    fn draw<DB: DrawingBackend>(&self, fig: &Figure, root: &DrawingArea<DB, Shift>) -> Result<()>;
}

/// Draw `chart` into `path` (PNG or SVG by extension).
pub(crate) fn render(chart: &impl Draw, fig: &Figure, path: &Path) -> Result<()> {
    font::ensure_registered()?;
    if fig.width < 100 || fig.height < 100 {
        return Err(other(format!(
            "{}: figure size {}x{} is too small (at least 100x100)",
            path.display(),
            fig.width,
            fig.height
        )));
    }
    let size = (fig.width, fig.height);
    let wrap = |e: Error| other(format!("plot {}: {e}", path.display()));
    match Format::from_path(path)? {
        Format::Png => {
            let root = BitMapBackend::new(path, size).into_drawing_area();
            root.fill(&WHITE).map_err(perr).map_err(wrap)?;
            chart.draw(fig, &root).map_err(wrap)?;
            root.present().map_err(perr).map_err(wrap)
        }
        Format::Svg => {
            let root = SVGBackend::new(path, size).into_drawing_area();
            root.fill(&WHITE).map_err(perr).map_err(wrap)?;
            chart.draw(fig, &root).map_err(wrap)?;
            root.present().map_err(perr).map_err(wrap)
        }
    }
}

/// A plotters error as ours.
pub(crate) fn perr<E: Display>(e: E) -> Error {
    other(e)
}

/// Tick label: integers without a fraction, others with up to 3 decimals.
pub(crate) fn tick(v: &f64) -> String {
    let v = *v;
    if v == v.round() && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// Finite (min, max) over `values`, or None when there is none.
pub(crate) fn finite_range(values: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
    values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
}

/// Widen a degenerate range so plotters gets a non-empty axis.
pub(crate) fn widen(lo: f64, hi: f64) -> (f64, f64) {
    if hi > lo {
        (lo, hi)
    } else {
        let pad = if lo == 0.0 { 0.5 } else { lo.abs() * 0.05 };
        (lo - pad, hi + pad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_by_extension() {
        assert_eq!(
            Format::from_path(Path::new("a/b.png")).unwrap(),
            Format::Png
        );
        assert_eq!(Format::from_path(Path::new("b.SVG")).unwrap(), Format::Svg);
        assert!(Format::from_path(Path::new("b.pdf")).is_err());
        assert!(Format::from_path(Path::new("b")).is_err());
        assert_eq!(Format::parse("svg"), Some(Format::Svg));
        assert_eq!(Format::parse("jpg"), None);
    }

    #[test]
    fn tick_labels() {
        assert_eq!(tick(&512.0), "512");
        assert_eq!(tick(&-3.0), "-3");
        assert_eq!(tick(&0.25), "0.25");
        assert_eq!(tick(&(1.0 / 3.0)), "0.333");
    }

    #[test]
    fn ranges() {
        assert_eq!(
            finite_range([3.0, f64::NAN, -1.0, f64::INFINITY]),
            Some((-1.0, 3.0))
        );
        assert_eq!(finite_range([f64::NAN]), None);
        assert_eq!(widen(2.0, 5.0), (2.0, 5.0));
        assert_eq!(widen(0.0, 0.0), (-0.5, 0.5));
        let (a, b) = widen(100.0, 100.0);
        assert!(a < 100.0 && b > 100.0);
    }
}
