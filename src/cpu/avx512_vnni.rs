//! Whether this CPU runs the AVX-512 VNNI kernels: the 16-row packed matmul
//! (`qpack`) and the AVX-512 activation quantizer (`qkernel`). Its own file so
//! both ask one check without importing each other.

/// True when this CPU has AVX-512F/BW/VNNI, FMA and F16C.
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::sync::OnceLock;
        static HAS: OnceLock<bool> = OnceLock::new();
        *HAS.get_or_init(|| {
            is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx512bw")
                && is_x86_feature_detected!("avx512vnni")
                && is_x86_feature_detected!("fma")
                && is_x86_feature_detected!("f16c")
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}
