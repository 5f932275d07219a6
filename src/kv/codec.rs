//! Lossless transforms applied to a KV file's payload before zstd.
//!
//! `planes`: the bytes of each element are stored apart (all high bytes,
//! then all low bytes, ...): the high byte of f16/bf16 (sign, exponent) is
//! far more repetitive than the mantissa, and zstd sees it in one run.
//! `planes_delta`: each element XOR the element one row (`head_dim`
//! elements) earlier first, so neighbouring positions' equal exponent bits
//! become zeros. Bytes past the last whole element are kept as they are.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Codec {
    Plain,
    Planes,
    PlanesDelta,
}

impl Codec {
    pub const NAMES: &'static [&'static str] = &["plain", "planes", "planes_delta"];

    pub fn parse(s: &str) -> Option<Codec> {
        Some(match s {
            "plain" => Codec::Plain,
            "planes" => Codec::Planes,
            "planes_delta" => Codec::PlanesDelta,
            _ => return None,
        })
    }
}

pub fn encode(codec: Codec, b: &[u8], elem: usize, row: usize) -> Vec<u8> {
    match codec {
        Codec::Plain => b.to_vec(),
        Codec::Planes => split(b, elem),
        Codec::PlanesDelta => {
            let mut x = b.to_vec();
            xor_rows(&mut x, elem, row, false);
            split(&x, elem)
        }
    }
}

pub fn decode(codec: Codec, b: &[u8], elem: usize, row: usize) -> Vec<u8> {
    match codec {
        Codec::Plain => b.to_vec(),
        Codec::Planes => join(b, elem),
        Codec::PlanesDelta => {
            let mut x = join(b, elem);
            xor_rows(&mut x, elem, row, true);
            x
        }
    }
}

fn split(b: &[u8], e: usize) -> Vec<u8> {
    let m = b.len() / e;
    let mut out = vec![0u8; b.len()];
    for j in 0..e {
        let plane = &mut out[j * m..(j + 1) * m];
        for (i, o) in plane.iter_mut().enumerate() {
            *o = b[i * e + j];
        }
    }
    out[m * e..].copy_from_slice(&b[m * e..]);
    out
}

fn join(b: &[u8], e: usize) -> Vec<u8> {
    let m = b.len() / e;
    let mut out = vec![0u8; b.len()];
    for j in 0..e {
        for (i, &v) in b[j * m..(j + 1) * m].iter().enumerate() {
            out[i * e + j] = v;
        }
    }
    out[m * e..].copy_from_slice(&b[m * e..]);
    out
}

/// XOR each byte with the one `row` elements earlier; encoding walks back
/// to front (reads originals), decoding front to back (reads decoded ones).
fn xor_rows(x: &mut [u8], e: usize, row: usize, forward: bool) {
    let d = e * row;
    let n = (x.len() / e) * e;
    if n <= d {
        return;
    }
    if forward {
        for i in d..n {
            x[i] ^= x[i - d];
        }
    } else {
        for i in (d..n).rev() {
            x[i] ^= x[i - d];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_codec_round_trips_odd_lengths() {
        let b: Vec<u8> = (0..1001u32).map(|i| (i * 37 % 251) as u8).collect();
        for c in [Codec::Plain, Codec::Planes, Codec::PlanesDelta] {
            for (e, r) in [(2, 8), (4, 3), (2, 1000)] {
                let enc = encode(c, &b, e, r);
                assert_eq!(decode(c, &enc, e, r), b, "{c:?} e={e} r={r}");
            }
        }
        assert_ne!(encode(Codec::Planes, &b, 2, 8), b);
    }
}
