//! Numeric precisions a package's graphs come in: fp32 always, fp16 and int8 as variants.

use serde::{Deserialize, Serialize};

/// Numeric precision of a graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// f32 weights and activations.
    #[default]
    Fp32,
    /// f16 weights and activations, layer norm and softmax in f32, f32 inputs and
    /// outputs: for GPU execution providers.
    Fp16,
    /// int8 weights of the linear layers (per output channel), activations quantized
    /// at run time: for the CPU.
    Int8,
}

impl Precision {
    /// The name used in manifests, file names and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Fp32 => "fp32",
            Self::Fp16 => "fp16",
            Self::Int8 => "int8",
        }
    }

    /// Parses a name as [`Precision::name`] writes it.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Fp32, Self::Fp16, Self::Int8]
            .into_iter()
            .find(|p| p.name() == name)
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
