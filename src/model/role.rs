//! The logical weight tensors of a transformer, named once for both loaders
//! (each maps a role to its own tensor names). Its own file so `weights` and
//! the loaders share it without importing each other.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Embed,
    OutNorm,
    LmHead,
    AttnNorm,
    Q,
    K,
    V,
    O,
    FfnNorm,
    /// Per-head norms of q and k (QK-norm).
    QNorm,
    KNorm,
    /// Gemma's norms of the attention and MLP outputs.
    PostAttnNorm,
    PostFfnNorm,
    Gate,
    Up,
    Down,
}
