//! Thread policy: ONE set of compute threads, sized to the cores, and the
//! forward pass runs on it.
//!
//! candle 0.11.1 on CPU has two pools: rayon's global pool (gemm, softmax,
//! norms, RoPE) and its own "barrier pool" (quantized matmuls, element-wise
//! kernels). The barrier pool splits an op statically and the caller spins
//! until every worker is done, so on 2 cores a worker that is descheduled or
//! parked stalls every op (profiled: 36% of a decode in `BarrierGuard::drop`),
//! and its idle spinning steals the core gemm needs. The policy:
//!
//! - candle's barrier pool gets no workers (`CANDLE_NUM_THREADS=1`, unless the
//!   user set it): its ops run inline on the calling thread;
//! - rayon's global pool has one thread per core (`RAYON_NUM_THREADS` wins);
//!   gemm and kvlab's own kernels (`cpu::qmatmul`, attention) split work on
//!   it by work stealing, so a stalled thread's share is taken over;
//! - `run` moves a whole forward pass onto a pool thread, so each parallel op
//!   is a cheap fork-join inside the pool instead of a cross-thread hand-off
//!   with the caller asleep;
//! - `RAYON_NUM_THREADS` is set to that count when unset (candle otherwise
//!   parses /proc/cpuinfo on every matmul to find it);
//! - kvlab never builds another pool;
//! - glibc's malloc keeps freed large buffers (`keep_freed_memory`).
//!
//! `init` is idempotent and is called by the model loaders, so the binary is
//! fast by default without any environment variable (`KVLAB_KEEP_CANDLE_POOL=1`
//! keeps candle's pool, for before/after measurements). Call it before any
//! other candle work for the policy to take full effect.

use std::sync::Once;

static INIT: Once = Once::new();

/// Cores (or `RAYON_NUM_THREADS` when the user set it).
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
        if std::env::var_os("CANDLE_NUM_THREADS").is_none()
            && std::env::var_os("KVLAB_KEEP_CANDLE_POOL").is_none()
        {
            // Read when candle creates its pool (first quantized/element-wise op).
            std::env::set_var("CANDLE_NUM_THREADS", "1");
        }
        // candle's matmul asks for the thread count on every call and, unless
        // this is set, re-reads /proc/cpuinfo each time (~2% of decode).
        if std::env::var_os("RAYON_NUM_THREADS").is_none() {
            std::env::set_var("RAYON_NUM_THREADS", n_threads().to_string());
        }
        keep_freed_memory();
        // Fails only if a global pool exists already; then that one is used.
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(n_threads())
            .build_global();
    });
}

/// glibc returns every freed block over 32 MiB to the kernel (and starts
/// with a 128 KiB mmap threshold), so each op's output buffer — MiBs in a
/// prefill — is fresh pages: page faults and zeroing were ~8% of a prefill.
/// Raising both thresholds keeps freed buffers in the heap for reuse.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn mallopt(param: i32, value: i32) -> i32;
        }
        const M_TRIM_THRESHOLD: i32 = -1;
        const M_MMAP_THRESHOLD: i32 = -3;
        // SAFETY: plain glibc tuning calls, before the heavy allocations.
        unsafe {
            mallopt(M_MMAP_THRESHOLD, 512 << 20);
            mallopt(M_TRIM_THRESHOLD, 1 << 30);
        }
    }
}

/// Runs `f` on a thread of the global pool (inline when already on one).
pub fn run<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() {
        f()
    } else {
        rayon::scope(|_| f())
    }
}
