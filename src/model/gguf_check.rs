//! A walk over a GGUF header before candle reads it. candle's reader
//! allocates whatever a length field says (a flipped bit in a string length
//! asks for exabytes and aborts the process), so every length, count and
//! dimension is checked against the bytes the file actually has first.

use std::io::Read;

use crate::error::{input_err, Error, Result};

/// ggml's limit on tensor rank.
const MAX_DIMS: u32 = 4;

struct Walk<'a> {
    buf: &'a [u8],
    at: usize,
    /// The whole file's length (the header buffer may be a prefix).
    file_len: u64,
    v1: bool,
    file: &'a str,
    /// The field errors name ("header" for the model, "gguf header" for
    /// the tokenizer, as their callers report).
    field: &'a str,
    /// Where each length, count, type, dim and offset was read (the
    /// mutation tests aim absurd values there).
    /// `None` outside tests: loading records nothing.
    seen: Option<Vec<Field>>,
    /// Inside a metadata array's elements.
    in_array: bool,
}

/// A numeric header field: its byte offset, width, and whether it is a
/// per-element length inside a metadata array (there are many).
#[derive(Clone, Copy, Debug)]
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) struct Field {
    pub at: usize,
    pub width: usize,
    pub in_array: bool,
}

impl Walk<'_> {
    fn err(&self, what: &str, msg: impl std::fmt::Display) -> Error {
        input_err(
            self.file,
            self.field,
            format!("{what} at byte {}: {msg}", self.at),
        )
    }

    fn take(&mut self, n: u64, what: &str) -> Result<&[u8]> {
        let left = (self.buf.len() - self.at) as u64;
        if n > left {
            return Err(self.err(what, format!("needs {n} bytes, {left} left")));
        }
        let s = &self.buf[self.at..self.at + n as usize];
        self.at += n as usize;
        Ok(s)
    }

    fn u32(&mut self, what: &str) -> Result<u32> {
        self.note(4);
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes(b.try_into().expect("4 bytes")))
    }

    fn u64(&mut self, what: &str) -> Result<u64> {
        self.note(8);
        let b = self.take(8, what)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    fn note(&mut self, width: usize) {
        let (at, in_array) = (self.at, self.in_array);
        if let Some(seen) = &mut self.seen {
            seen.push(Field {
                at,
                width,
                in_array,
            });
        }
    }

    /// A length or count (u32 in GGUF v1), at most `left / min_size`.
    fn count(&mut self, min_size: u64, what: &str) -> Result<u64> {
        let n = if self.v1 {
            self.u32(what)? as u64
        } else {
            self.u64(what)?
        };
        let left = (self.buf.len() - self.at) as u64;
        if n.saturating_mul(min_size.max(1)) > left {
            return Err(self.err(what, format!("count {n} does not fit in {left} bytes")));
        }
        Ok(n)
    }

    /// A string; returns where its bytes are.
    fn string(&mut self, what: &str) -> Result<std::ops::Range<usize>> {
        let n = self.count(1, what)?;
        let start = self.at;
        self.take(n, what)?;
        Ok(start..self.at)
    }

    fn value(&mut self, ty: u32, depth: u32) -> Result<()> {
        let fixed = |ty: u32| match ty {
            0 | 1 | 7 => Some(1),
            2 | 3 => Some(2),
            4..=6 => Some(4),
            10..=12 => Some(8),
            _ => None,
        };
        match ty {
            8 => self.string("string value").map(|_| ()),
            9 => {
                if depth > 2 {
                    return Err(self.err("array", "nested too deeply"));
                }
                let et = self.u32("array type")?;
                let min = match et {
                    8 => 8,
                    9 => 12,
                    t => fixed(t).ok_or_else(|| self.err("array type", t))?,
                };
                let n = self.count(min, "array length")?;
                match fixed(et) {
                    Some(size) => self.take(n * size, "array").map(|_| ()),
                    None => {
                        let outer = std::mem::replace(&mut self.in_array, true);
                        (0..n).try_for_each(|_| self.value(et, depth + 1))?;
                        self.in_array = outer;
                        Ok(())
                    }
                }
            }
            t => {
                let size = fixed(t).ok_or_else(|| self.err("value type", t))?;
                self.take(size, "value").map(|_| ())
            }
        }
    }
}

/// Checks the header of the GGUF at `path`; reads at most the file's length.
pub(crate) fn check(path: &std::path::Path, file: &str, field: &str) -> Result<()> {
    let mut f = std::fs::File::open(path).map_err(|e| input_err(file, "open", e))?;
    let file_len = f.metadata().map_err(|e| input_err(file, "stat", e))?.len();
    // Headers are small next to the tensors; 64 MiB covers large vocabularies.
    let cap = file_len.min(64 << 20);
    let mut buf = Vec::with_capacity(cap as usize);
    (&mut f)
        .take(cap)
        .read_to_end(&mut buf)
        .map_err(|e| input_err(file, "read", e))?;
    check_bytes(&buf, file_len, file, field)
}

pub(crate) fn check_bytes(buf: &[u8], file_len: u64, file: &str, field: &str) -> Result<()> {
    let mut w = Walk {
        buf,
        at: 0,
        file_len,
        v1: false,
        file,
        field,
        seen: None,
        in_array: false,
    };
    walk(&mut w)
}

/// Every numeric field of a valid header (`buf`, of a file of `file_len`
/// bytes), in file order.
#[cfg(test)]
pub(crate) fn fields(buf: &[u8], file_len: u64) -> Result<Vec<Field>> {
    let mut w = Walk {
        buf,
        at: 0,
        file_len,
        v1: false,
        file: "-",
        field: "header",
        seen: Some(Vec::new()),
        in_array: false,
    };
    walk(&mut w)?;
    Ok(w.seen.unwrap_or_default())
}

fn walk(w: &mut Walk) -> Result<()> {
    if w.u32("magic")? != 0x4655_4747 {
        return Err(w.err("magic", "not a GGUF file"));
    }
    let version = w.u32("version")?;
    if !(1..=3).contains(&version) {
        return Err(w.err("version", version));
    }
    w.v1 = version == 1;
    let n_tensors = w.count(24, "tensor count")?;
    let n_kv = w.count(12, "metadata count")?;
    for _ in 0..n_kv {
        let key = w.string("key")?;
        let ty = w.u32("value type")?;
        let at = w.at;
        w.value(ty, 0)?;
        if &w.buf[key] == b"general.alignment" {
            check_alignment(w, ty, at)?;
        }
    }
    for _ in 0..n_tensors {
        w.string("tensor name")?;
        let nd = w.u32("tensor rank")?;
        if nd == 0 || nd > MAX_DIMS {
            return Err(w.err("tensor rank", nd));
        }
        let mut elems: u64 = 1;
        for _ in 0..nd {
            let d = if w.v1 {
                w.u32("dim")? as u64
            } else {
                w.u64("dim")?
            };
            // No tensor has more elements than the file has bits.
            elems = elems
                .checked_mul(d)
                .filter(|&e| e <= w.file_len.saturating_mul(8))
                .ok_or_else(|| w.err("dims", "more elements than the file can hold"))?;
        }
        w.u32("tensor type")?;
        // Offsets are checked by the loader, which names the tensor.
        w.u64("tensor offset")?;
    }
    Ok(())
}

/// candle rounds the data offset up to `general.alignment` (a division);
/// GGUF requires a power of two. Integer types only: candle ignores others.
fn check_alignment(w: &Walk, ty: u32, at: usize) -> Result<()> {
    let b = &w.buf[at..w.at];
    let v = match ty {
        0 | 1 => b[0] as i64,
        2 => u16::from_le_bytes([b[0], b[1]]) as i64,
        3 => i16::from_le_bytes([b[0], b[1]]) as i64,
        4 => u32::from_le_bytes(b[..4].try_into().expect("4 bytes")) as i64,
        5 => i32::from_le_bytes(b[..4].try_into().expect("4 bytes")) as i64,
        _ => return Ok(()),
    };
    let v = if ty == 1 { b[0] as i8 as i64 } else { v };
    if v <= 0 || (v as u64).count_ones() != 1 {
        return Err(w.err("general.alignment", format!("{v} is not a power of two")));
    }
    Ok(())
}
