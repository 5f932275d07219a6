//! The GGUF block formats the quantized kernels read (Q4_1, Q5_0, Q8_0) and the
//! 8-bit activation blocks they multiply with: 32 values (`BlockQ8`, for the
//! row kernels `qkernel`, the packed ones `qpack` and the matmul `qmatmul`)
//! or a 256-value super-block (`ActK`, for the K-quant kernels `q4k`, `q6k`).

/// Elements per block (both formats).
pub const QK: usize = 32;
/// Bytes per Q4_1 block: f16 d, f16 m, 16 bytes of nibbles (low nibble of
/// byte j is element j, high nibble element j + 16).
pub const Q4_1_BYTES: usize = 20;
/// Bytes per Q5_0 block: f16 d, 4 bytes of fifth bits (bit j of the
/// little-endian u32 is element j's), 16 bytes of low nibbles laid out as
/// Q4_1's; element = d * (q - 16).
pub const Q5_0_BYTES: usize = 22;
/// Bytes per Q8_0 block: f16 d, 32 i8.
pub const Q8_0_BYTES: usize = 34;

/// An activation block: `x ≈ d * qs`, `s = d * Σ qs`.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct BlockQ8 {
    pub d: f32,
    pub s: f32,
    pub qs: [i8; QK],
}

impl Default for BlockQ8 {
    fn default() -> Self {
        BlockQ8 {
            d: 0.0,
            s: 0.0,
            qs: [0; QK],
        }
    }
}

/// Weight block formats with a kernel here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WFormat {
    Q4_1,
    Q5_0,
    Q8_0,
}

impl WFormat {
    pub fn block_bytes(self) -> usize {
        match self {
            WFormat::Q4_1 => Q4_1_BYTES,
            WFormat::Q5_0 => Q5_0_BYTES,
            WFormat::Q8_0 => Q8_0_BYTES,
        }
    }
}

/// Elements per K-quant super-block.
pub const QK_K: usize = 256;

/// An activation super-block: `x ≈ d * qs`; `sums[i]` = Σ qs over values
/// `16i..16i+16` (the K-quants' offsets multiply these).
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct ActK {
    pub qs: [i8; QK_K],
    pub d: f32,
    pub sums: [i16; 16],
}

impl Default for ActK {
    fn default() -> Self {
        ActK {
            qs: [0; QK_K],
            d: 0.0,
            sums: [0; 16],
        }
    }
}

impl ActK {
    /// Σ qs over values `32s..32s+32`.
    #[inline(always)]
    pub fn sum32(&self, s: usize) -> i32 {
        self.sums[2 * s] as i32 + self.sums[2 * s + 1] as i32
    }
}

/// Quantizes one row (`x.len()` a multiple of 256) into `out`.
pub fn quantize_row_k(x: &[f32], out: &mut [ActK]) {
    debug_assert_eq!(x.len(), out.len() * QK_K);
    for (xb, ob) in x.chunks_exact(QK_K).zip(out.iter_mut()) {
        let amax = xb.iter().fold(0f32, |a, &v| a.max(v.abs()));
        let d = amax / 127.0;
        let id = if d > 0.0 { 1.0 / d } else { 0.0 };
        for (q, &v) in ob.qs.iter_mut().zip(xb) {
            *q = (v * id).round_ties_even() as i8;
        }
        for (i, sum) in ob.sums.iter_mut().enumerate() {
            *sum = ob.qs[16 * i..16 * i + 16].iter().map(|&q| q as i16).sum();
        }
        ob.d = d;
    }
}
