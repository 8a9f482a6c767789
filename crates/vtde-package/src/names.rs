//! Graph input and output names, fixed by the package contract (`docs/design.md`): the
//! exporter names the graphs' inputs and outputs so, and the runtime feeds and reads them
//! by these names.

/// Vision graph input: `[batch, 3, H, W]` f32.
pub const PIXEL_VALUES: &str = "pixel_values";
/// Vision graph output and projection input: the pooled image features `[batch, Dv]`.
pub const IMAGE_FEATURES: &str = "image_features";
/// Text graph input: token ids `[batch, seq]` i64.
pub const INPUT_IDS: &str = "input_ids";
/// Text graph input: 1 for tokens, 0 for padding, `[batch, seq]` i64.
pub const ATTENTION_MASK: &str = "attention_mask";
/// Text graph input of BERT-style towers only: segment ids `[batch, seq]` i64.
pub const TOKEN_TYPE_IDS: &str = "token_type_ids";
/// Text graph output and projection input: the pooled text features `[batch, Dt]`.
pub const TEXT_FEATURES: &str = "text_features";
/// Projection output: image embeddings `[n, P]`, not normalized.
pub const IMAGE_EMBEDS: &str = "image_embeds";
/// Projection output: text embeddings `[m, P]`, not normalized.
pub const TEXT_EMBEDS: &str = "text_embeds";
