//! Writing a checkpoint's `model.safetensors`: the tensors to write (copied from a source
//! checkpoint or made here), the three head tensors, and the writer with the metadata
//! transformers saves. Shared by `compose` (fresh heads beside copied towers) and
//! `write_fitted_checkpoint` (fitted heads beside the composed checkpoint's towers).

use std::collections::BTreeMap;
use std::path::Path;

use safetensors::tensor::TensorView;
use safetensors::Dtype;

use crate::checkpoint::HEAD_WEIGHTS;
use crate::error::{Error, Result};
use crate::heads::Heads;

/// A tensor to write: dtype, shape and little-endian bytes.
pub(crate) struct OutTensor {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl OutTensor {
    /// A copy of a tensor read from a safetensors file.
    pub(crate) fn copy_of(view: &TensorView<'_>) -> Self {
        OutTensor {
            dtype: view.dtype(),
            shape: view.shape().to_vec(),
            data: view.data().to_vec(),
        }
    }

    /// An f32 tensor of `shape` holding `values` in row-major order.
    pub(crate) fn f32(shape: Vec<usize>, values: impl IntoIterator<Item = f32>) -> Self {
        OutTensor {
            dtype: Dtype::F32,
            shape,
            data: values.into_iter().flat_map(f32::to_le_bytes).collect(),
        }
    }
}

impl safetensors::View for &OutTensor {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

/// Puts the heads' three tensors ([`HEAD_WEIGHTS`]) into `tensors`, replacing any there.
pub(crate) fn insert_heads(tensors: &mut BTreeMap<String, OutTensor>, heads: &Heads) {
    let [visual, text, scale] = HEAD_WEIGHTS;
    let projection =
        |w: &ndarray::Array2<f32>| OutTensor::f32(w.shape().to_vec(), w.iter().copied());
    tensors.insert(visual.into(), projection(&heads.visual_projection));
    tensors.insert(text.into(), projection(&heads.text_projection));
    tensors.insert(scale.into(), OutTensor::f32(vec![], [heads.logit_scale]));
}

/// Writes `tensors` to `path` as transformers' `save_pretrained` does (metadata
/// `format: pt`), in name order.
pub(crate) fn write(path: &Path, tensors: &BTreeMap<String, OutTensor>) -> Result<()> {
    let metadata = Some(std::collections::HashMap::from([(
        "format".to_owned(),
        "pt".to_owned(),
    )]));
    safetensors::serialize_to_file(tensors.iter().map(|(k, v)| (k.as_str(), v)), metadata, path)
        .map_err(|e| Error::invalid(path, format!("writing failed: {e}")))
}
