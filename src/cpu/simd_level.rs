//! Which SIMD kernels the attention paths may use. The entry points take the
//! best level this CPU has; tests pass lower levels to check the fallbacks
//! against the fast kernels on the same machine.

/// Ordered: a level implies the ones below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SimdLevel {
    Scalar,
    /// AVX2 + FMA.
    Avx2,
    /// AVX-512F + FMA.
    Avx512,
}

impl SimdLevel {
    pub fn best() -> SimdLevel {
        #[cfg(target_arch = "x86_64")]
        {
            use std::sync::OnceLock;
            static BEST: OnceLock<SimdLevel> = OnceLock::new();
            *BEST.get_or_init(|| {
                let fma = is_x86_feature_detected!("fma");
                if fma && is_x86_feature_detected!("avx512f") {
                    SimdLevel::Avx512
                } else if fma && is_x86_feature_detected!("avx2") {
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
