//! The embedded DejaVu Sans, registered with plotters' ab_glyph text
//! support, so rendering needs no fontconfig and looks the same everywhere.
//! License: FONT_LICENSE.txt next to the font file.

use crate::error::{other, Result};
use plotters::style::FontStyle;
use std::sync::OnceLock;

static DEJAVU_SANS: &[u8] = include_bytes!("DejaVuSans.ttf");

/// The family name every chart asks for.
pub const FAMILY: &str = "sans-serif";

/// Register the font once per process; later calls are free.
pub fn ensure_registered() -> Result<()> {
    static DONE: OnceLock<bool> = OnceLock::new();
    let ok = *DONE.get_or_init(|| {
        plotters::style::register_font(FAMILY, FontStyle::Normal, DEJAVU_SANS).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(other("embedded font DejaVuSans.ttf could not be parsed"))
    }
}
