//! Figures as PNG and SVG through plotters, drawn with an embedded font.
//!
//! Each chart function takes plain data, a [`Figure`] (title, axis labels,
//! size) and an output path whose extension (`.png` or `.svg`) picks the
//! format. Stages are thin glue over these functions.

pub mod bars;
pub mod colors;
pub mod decor;
pub mod distribution;
pub mod figure;
pub mod font;
pub mod heatmap;
pub mod histogram;
pub mod line;

pub use figure::{Figure, Format};
pub use heatmap::{heatmap, Grid};
pub use histogram::{histogram, Series};
pub use line::{line_chart, Line};

#[cfg(test)]
pub(crate) mod testing;
