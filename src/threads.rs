//! Thread policy: ONE set of compute threads, sized to the physical cores.
//!
//! candle 0.11.1 on CPU runs work on two pools: rayon's global pool (gemm,
//! softmax, norms, RoPE) and its own "barrier pool" (quantized matmuls and
//! element-wise kernels; `cores - 1` workers plus the caller). After each
//! op a barrier worker spins (25,000 `pause`s by default, ~1 ms) before
//! parking, so on a 2-core machine it steals a core from the gemm that
//! follows; a further pool of our own made it worse (decode at 1,000 tokens
//! of context fell 8–10x). The policy:
//!
//! - the rayon global pool has one thread per physical core, built here;
//! - the barrier pool's spin is cut so an idle worker parks at once
//!   (unless the user set `CANDLE_BARRIER_POOL_SPIN_LIMIT` themselves);
//! - kvlab never builds another rayon pool, and never calls rayon from inside
//!   the forward pass except through candle.
//!
//! `init` is idempotent and is called by the model loaders, so the binary is
//! fast by default without any environment variable (`KVLAB_KEEP_CANDLE_SPIN=1`
//! keeps candle's default spin, for before/after measurements). Call it before any
//! other candle work for the policy to take full effect.

use std::sync::Once;

/// Barrier-pool spins before parking (candle's default is 25,000).
const SPIN_LIMIT: &str = "100";

static INIT: Once = Once::new();

/// Physical cores (or `RAYON_NUM_THREADS` when the user set it).
pub fn n_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Installs the policy (once per process).
pub fn init() {
    INIT.call_once(|| {
        if std::env::var_os("CANDLE_BARRIER_POOL_SPIN_LIMIT").is_none()
            && std::env::var_os("KVLAB_KEEP_CANDLE_SPIN").is_none()
        {
            // Runs before candle creates its pool (first quantized/element-wise op).
            std::env::set_var("CANDLE_BARRIER_POOL_SPIN_LIMIT", SPIN_LIMIT);
        }
        // Fails only if a global pool exists already; then that one is used.
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(n_threads())
            .build_global();
    });
}
