//! Which SIMD kernels the attention paths may use. The entry points take the
//! best level this CPU has; tests pass lower levels to check the fallbacks
//! against the fast kernels on the same machine.

/// Ordered: a level implies the ones below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SimdLevel {
    Scalar,
    /// AVX2 + FMA + F16C (every AVX2 CPU has F16C; the kernels read f16
    /// caches with it).
    Avx2,
    /// AVX-512F and all of `Avx2`.
    Avx512,
}

impl SimdLevel {
    pub fn best() -> SimdLevel {
        #[cfg(target_arch = "x86_64")]
        {
            use std::sync::OnceLock;
            static BEST: OnceLock<SimdLevel> = OnceLock::new();
            *BEST.get_or_init(|| {
                let avx2 = is_x86_feature_detected!("avx2")
                    && is_x86_feature_detected!("fma")
                    && is_x86_feature_detected!("f16c");
                if avx2 && is_x86_feature_detected!("avx512f") {
                    SimdLevel::Avx512
                } else if avx2 {
                    SimdLevel::Avx2
                } else {
                    SimdLevel::Scalar
                }
            })
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            SimdLevel::Scalar
        }
    }

    /// The levels this CPU runs, lowest first.
    #[cfg(test)]
    pub fn available() -> Vec<SimdLevel> {
        [SimdLevel::Scalar, SimdLevel::Avx2, SimdLevel::Avx512]
            .into_iter()
            .filter(|&l| l <= SimdLevel::best())
            .collect()
    }
}
