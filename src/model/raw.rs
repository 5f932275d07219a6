//! What a loader hands `weights`: one tensor as the file stores it, its
//! shape already checked. Its own file so `weights` and the loaders share it
//! without importing each other.

use candle_core::quantized::QTensor;
use candle_core::Tensor;

/// A checked tensor straight from the file.
pub(crate) enum Raw {
    Dense(Tensor),
    Quant(QTensor),
}
