//! The element types a KV cache may hold (f32, f16, bf16) as the fused attention
//! kernels read them: 16 values into one f32 register, or a row as f32.
//! f16 halves the bytes decode attention streams per token, and at long
//! contexts those bytes, not the arithmetic, set its speed.

use std::borrow::Cow;

use half::f16;

pub trait KvElem: Copy + Send + Sync + 'static {
    /// The row as f32 (borrowed when it already is).
    fn to_f32s(s: &[Self]) -> Cow<'_, [f32]>;

    /// Loads 16 consecutive values as f32 lanes. Only inlined into functions
    /// compiled with AVX-512F.
    ///
    /// # Safety
    /// The CPU has AVX-512F and `p` points at 16 readable values.
    #[cfg(target_arch = "x86_64")]
    unsafe fn load16(p: *const Self) -> std::arch::x86_64::__m512;

    /// Loads 8 consecutive values as f32 lanes. Only inlined into functions
    /// compiled with AVX2 and F16C.
    ///
    /// # Safety
    /// The CPU has AVX2 and F16C and `p` points at 8 readable values.
    #[cfg(target_arch = "x86_64")]
    unsafe fn load8(p: *const Self) -> std::arch::x86_64::__m256;
}

impl KvElem for f32 {
    fn to_f32s(s: &[f32]) -> Cow<'_, [f32]> {
        Cow::Borrowed(s)
    }

    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load16(p: *const f32) -> std::arch::x86_64::__m512 {
        std::arch::x86_64::_mm512_loadu_ps(p)
    }

    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load8(p: *const f32) -> std::arch::x86_64::__m256 {
        std::arch::x86_64::_mm256_loadu_ps(p)
    }
}

impl KvElem for f16 {
    fn to_f32s(s: &[f16]) -> Cow<'_, [f32]> {
        Cow::Owned(s.iter().map(|x| x.to_f32()).collect())
    }

    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load16(p: *const f16) -> std::arch::x86_64::__m512 {
        use std::arch::x86_64::*;
        _mm512_cvtph_ps(_mm256_loadu_si256(p as *const __m256i))
    }

    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load8(p: *const f16) -> std::arch::x86_64::__m256 {
        use std::arch::x86_64::*;
        _mm256_cvtph_ps(_mm_loadu_si128(p as *const __m128i))
    }
}

impl KvElem for half::bf16 {
    fn to_f32s(s: &[half::bf16]) -> Cow<'_, [f32]> {
        Cow::Owned(s.iter().map(|x| x.to_f32()).collect())
    }

    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load16(p: *const half::bf16) -> std::arch::x86_64::__m512 {
        use std::arch::x86_64::*;
        // bf16 is the high half of an f32
        let w = _mm512_cvtepu16_epi32(_mm256_loadu_si256(p as *const __m256i));
        _mm512_castsi512_ps(_mm512_slli_epi32::<16>(w))
    }

    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load8(p: *const half::bf16) -> std::arch::x86_64::__m256 {
        use std::arch::x86_64::*;
        let w = _mm256_cvtepu16_epi32(_mm_loadu_si128(p as *const __m128i));
        _mm256_castsi256_ps(_mm256_slli_epi32::<16>(w))
    }
}
