//! Inputs to the arrays the graphs take, as transformers makes them: images to
//! `pixel_values` ([`image`]) and texts to token arrays ([`text`]), both driven by the
//! package manifest.

pub(crate) mod image;
pub(crate) mod text;
