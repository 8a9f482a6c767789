//! Label embeddings for zero-shot classification, with prompt templates: CLIP's prompt
//! ensembling, where a label's text embedding is the mean of its templated texts'
//! normalized embeddings ("a photo of a {}", "a drawing of a {}", ...), normalized again.

use ndarray::{s, Array2, Axis};

use crate::error::{Error, Result};
use crate::model::Model;
use crate::similarity::l2_normalize;

impl Model {
    /// The labels' text embeddings, `[labels, P]`, L2-normalized, ready for
    /// [`Model::score`] against image embeddings.
    ///
    /// With no templates each label is embedded as it is. With templates (each holding
    /// `{}` where the label goes), each label's embedding is the mean of its templated
    /// texts' normalized embeddings, normalized again. A template without `{}` is
    /// [`Error::BadTemplate`].
    ///
    /// ```no_run
    /// # fn main() -> vtde_runtime::Result<()> {
    /// use vtde_runtime::{Model, RuntimeOptions};
    ///
    /// let model = Model::open("package", &RuntimeOptions::default())?;
    /// let labels = model.embed_labels(&["cat", "dog"], &["a photo of a {}", "a drawing of a {}"])?;
    /// assert_eq!(labels.nrows(), 2);
    /// # Ok(())
    /// # }
    /// ```
    pub fn embed_labels<L: AsRef<str>, T: AsRef<str>>(
        &self,
        labels: &[L],
        templates: &[T],
    ) -> Result<Array2<f32>> {
        if let Some(t) = templates.iter().find(|t| !t.as_ref().contains("{}")) {
            return Err(Error::BadTemplate {
                template: t.as_ref().to_owned(),
            });
        }
        if templates.is_empty() {
            return self.embed_texts(labels);
        }
        let texts: Vec<String> = labels
            .iter()
            .flat_map(|l| {
                templates
                    .iter()
                    .map(move |t| t.as_ref().replace("{}", l.as_ref()))
            })
            .collect();
        let embeds = self.embed_texts(&texts)?;
        let t = templates.len();
        let mut means = Array2::<f32>::zeros((labels.len(), embeds.ncols()));
        for (i, mut row) in means.rows_mut().into_iter().enumerate() {
            let block = embeds.slice(s![i * t..(i + 1) * t, ..]);
            if let Some(mean) = block.mean_axis(Axis(0)) {
                row.assign(&mean);
            }
        }
        Ok(l2_normalize(means.view()))
    }
}
