//! Evaluation of heads on held-out pairs: retrieval recall@1 and @5 both ways, and
//! zero-shot accuracy when the captions come from a label set.

use std::collections::BTreeMap;

use ndarray::{Array2, Axis};

use crate::error::Result;
use crate::heads::Heads;
use crate::train::FeatureRows;

/// Label sets larger than this are not treated as one (zero-shot is not reported).
pub const MAX_LABELS: usize = 1000;

/// Retrieval and classification on held-out pairs.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// Pairs evaluated.
    pub pairs: usize,
    /// Image → text recall@1 and recall@5 among the evaluated pairs' captions: a hit
    /// when one of the top k captions equals the image's own caption.
    pub image_to_text: [f32; 2],
    /// Text → image recall@1 and recall@5 among the evaluated pairs' images: a hit when
    /// one of the top k images has this caption.
    pub text_to_image: [f32; 2],
    /// Where captions come from a label set (at most [`MAX_LABELS`] distinct captions,
    /// each used by five pairs or more on average): top-1 accuracy of each evaluated
    /// image among all distinct captions.
    pub zero_shot: Option<f32>,
    /// The size of that label set.
    pub labels: Option<usize>,
}

/// Embeds rows `indices` of `features` in chunks with `embed`.
fn embed_rows<F: FeatureRows>(
    features: &mut F,
    indices: &[usize],
    embed: impl Fn(ndarray::ArrayView2<'_, f32>) -> Array2<f32>,
    projection_dim: usize,
) -> Result<Array2<f32>> {
    const CHUNK: usize = 256;
    let mut out = Array2::<f32>::zeros((indices.len(), projection_dim));
    let mut buffer = Array2::<f32>::zeros((CHUNK.min(indices.len()).max(1), features.dim()));
    for (c, chunk) in indices.chunks(CHUNK).enumerate() {
        features.gather(chunk, &mut buffer)?;
        let embeds = embed(buffer.slice(ndarray::s![..chunk.len(), ..]));
        out.slice_mut(ndarray::s![c * CHUNK..c * CHUNK + chunk.len(), ..])
            .assign(&embeds);
    }
    Ok(out)
}

/// Recall@1 and @5 of queries against candidates (`similarity[q, c]`), a candidate
/// being right when `right(q, c)`.
fn recall(similarity: &Array2<f32>, right: impl Fn(usize, usize) -> bool) -> [f32; 2] {
    let mut hits = [0usize; 2];
    for (q, row) in similarity.axis_iter(Axis(0)).enumerate() {
        let mut order: Vec<usize> = (0..row.len()).collect();
        // Ties keep the lower index first, so results do not depend on the sort.
        order.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
        if order.first().is_some_and(|&c| right(q, c)) {
            hits[0] += 1;
        }
        if order.iter().take(5).any(|&c| right(q, c)) {
            hits[1] += 1;
        }
    }
    let n = similarity.nrows().max(1) as f32;
    [hits[0] as f32 / n, hits[1] as f32 / n]
}

/// Evaluates `heads` on pairs `eval_set` (see [`Evaluation`]); `caption_ids` covers all
/// pairs, and the label set is the distinct captions of all of them.
pub fn evaluate<I: FeatureRows, T: FeatureRows>(
    heads: &Heads,
    images: &mut I,
    texts: &mut T,
    caption_ids: &[usize],
    eval_set: &[usize],
) -> Result<Evaluation> {
    let p = heads.projection_dim();
    let image_embeds = embed_rows(images, eval_set, |x| heads.embed_images(x), p)?;
    let text_embeds = embed_rows(texts, eval_set, |x| heads.embed_texts(x), p)?;
    let ids: Vec<usize> = eval_set.iter().map(|&i| caption_ids[i]).collect();
    let image_text = image_embeds.dot(&text_embeds.t());
    let image_to_text = recall(&image_text, |q, c| ids[q] == ids[c]);
    let text_to_image = recall(&image_text.t().to_owned(), |q, c| ids[q] == ids[c]);

    let mut first_of: BTreeMap<usize, usize> = BTreeMap::new();
    for (i, &id) in caption_ids.iter().enumerate() {
        first_of.entry(id).or_insert(i);
    }
    let labelled = first_of.len() <= MAX_LABELS && first_of.len() * 5 <= caption_ids.len();
    let (zero_shot, labels) = if labelled {
        let label_ids: Vec<usize> = first_of.keys().copied().collect();
        let rows: Vec<usize> = first_of.values().copied().collect();
        let label_embeds = embed_rows(texts, &rows, |x| heads.embed_texts(x), p)?;
        let scores = image_embeds.dot(&label_embeds.t());
        let right = recall(&scores, |q, c| label_ids[c] == ids[q]);
        (Some(right[0]), Some(label_ids.len()))
    } else {
        (None, None)
    };
    Ok(Evaluation {
        pairs: eval_set.len(),
        image_to_text,
        text_to_image,
        zero_shot,
        labels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recall_counts_hits_in_top_k() {
        let similarity = ndarray::array![
            [0.9, 0.1, 0.0, 0.0, 0.0, 0.0],
            [0.0, 0.1, 0.2, 0.3, 0.4, 0.5],
        ];
        // Query 0's right candidate is 0 (top 1); query 1's is 0 (rank 6).
        assert_eq!(recall(&similarity, |_, c| c == 0), [0.5, 0.5]);
        // Query 1's right candidate 1 is rank 5.
        assert_eq!(recall(&similarity, |q, c| c == q), [0.5, 1.0]);
    }
}
