//! The output pointer the parallel matmuls (`qmatmul`, `matvec`) hand their
//! rayon tasks: each task writes disjoint indices, so sharing it is sound.

/// Raw pointer to the output, written at disjoint indices by the tasks.
#[derive(Clone, Copy)]
pub(crate) struct OutPtr(pub(crate) *mut f32);
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}
