//! The reusable pieces every tower is built from: linear layers, layer norm,
//! activations, multi-head self-attention, the MLP, the encoder layer (pre- or
//! post-norm), embeddings, poolers and attention masks.
//!
//! Each piece has a `load` that reads and shape-checks its weights through a
//! [`WeightScope`], and a `forward` that emits its ONNX nodes. Architectures differ only
//! in parameters (norm placement, activation, epsilon, bias), never in copies of this code.
//!
//! One module per concept, each depending only on the ones below it, never back up:
//!
//! - [`weights`]: finding and shape-checking weights under either naming scheme;
//! - [`quantize`]: the int8 recipe (Hadamard rotation, input and weight quantization);
//! - [`activation`]: the element-wise functions of `hidden_act`;
//! - [`norm`]: layer norm (uses `weights`);
//! - [`linear`]: `x·Wᵀ + b`, float or int8 (uses `weights`, `quantize`);
//! - [`attention`], [`mlp`], [`pooling`]: blocks made of linear layers;
//! - [`encoder`]: one transformer layer (attention + MLP + norms);
//! - [`embeddings`]: the vision input and its patch and token embeddings.
//!
//! The unit tests share in-memory weights and graph inspection through `test_util`, a
//! leaf that imports none of the modules it serves.
//!
//! The towers import everything through the re-exports below, so moving a piece
//! between these files does not touch them.

pub mod activation;
pub mod attention;
pub mod embeddings;
pub mod encoder;
pub mod linear;
pub mod mlp;
pub mod norm;
pub mod pooling;
pub mod quantize;
pub mod weights;

pub use activation::Activation;
pub use attention::{additive_padding_mask, AttentionNames};
pub use embeddings::{patch_embedding, pixel_input, prepend_tokens};
pub use encoder::{EncoderLayer, LayerNames, LayerShape, NormPlacement};
pub use linear::Linear;
pub use norm::LayerNorm;
pub use pooling::{first_token, Pooler};
pub use weights::WeightScope;

#[cfg(test)]
mod test_util;
