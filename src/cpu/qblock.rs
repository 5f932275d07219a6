//! The GGUF block formats the quantized kernels read (Q4_1, Q5_0, Q8_0) and the
//! 8-bit activation block they multiply with: shared by the row kernels
//! (`qkernel`), the packed ones (`qpack`) and the matmul (`qmatmul`).

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
