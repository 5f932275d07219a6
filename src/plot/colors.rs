//! Series colours and the heatmap colour scale.

use plotters::style::RGBColor;

/// Tableau 10: distinguishable series colours.
pub const PALETTE: [RGBColor; 10] = [
    RGBColor(0x4e, 0x79, 0xa7),
    RGBColor(0xf2, 0x8e, 0x2b),
    RGBColor(0xe1, 0x57, 0x59),
    RGBColor(0x76, 0xb7, 0xb2),
    RGBColor(0x59, 0xa1, 0x4f),
    RGBColor(0xed, 0xc9, 0x48),
    RGBColor(0xb0, 0x7a, 0xa1),
    RGBColor(0xff, 0x9d, 0xa7),
    RGBColor(0x9c, 0x75, 0x5f),
    RGBColor(0xba, 0xb0, 0xac),
];

/// Colour of the `i`-th series (cycling).
pub fn series(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// Grid lines: visible but quieter than the data.
pub const GRID: RGBColor = RGBColor(0xe0, 0xe0, 0xe0);

/// Anchor points of the viridis scale at t = 0, 1/4, 1/2, 3/4, 1.
const VIRIDIS: [(f64, f64, f64); 5] = [
    (68.0, 1.0, 84.0),
    (59.0, 82.0, 139.0),
    (33.0, 145.0, 140.0),
    (94.0, 201.0, 98.0),
    (253.0, 231.0, 37.0),
];

/// A viridis-like colour for `t` in [0, 1] (clamped; NaN maps to grey).
pub fn viridis(t: f64) -> RGBColor {
    if t.is_nan() {
        return RGBColor(0xa0, 0xa0, 0xa0);
    }
    let x = t.clamp(0.0, 1.0) * (VIRIDIS.len() - 1) as f64;
    let i = (x.floor() as usize).min(VIRIDIS.len() - 2);
    let f = x - i as f64;
    let (a, b) = (VIRIDIS[i], VIRIDIS[i + 1]);
    let mix = |p: f64, q: f64| (p + (q - p) * f).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viridis_ends_and_clamps() {
        assert_eq!(viridis(0.0), RGBColor(68, 1, 84));
        assert_eq!(viridis(1.0), RGBColor(253, 231, 37));
        assert_eq!(viridis(-3.0), viridis(0.0));
        assert_eq!(viridis(7.0), viridis(1.0));
        assert_eq!(viridis(0.5), RGBColor(33, 145, 140));
        assert_eq!(viridis(f64::NAN), RGBColor(0xa0, 0xa0, 0xa0));
    }

    #[test]
    fn series_colours_cycle() {
        assert_eq!(series(0), series(PALETTE.len()));
        assert_ne!(series(0), series(1));
    }
}
