//! Scores from embeddings, as transformers' `VisionTextDualEncoderModel.forward` makes
//! them (and `CLIPModel`, which computes the same):
//!
//! ```text
//! image_embeds = image_embeds / image_embeds.norm(dim=-1, keepdim=True)
//! text_embeds  = text_embeds / text_embeds.norm(dim=-1, keepdim=True)
//! logits_per_text  = (text_embeds @ image_embeds.T) * logit_scale.exp()
//! logits_per_image = logits_per_text.T
//! loss = (CE(logits_per_text, arange) + CE(logits_per_text.T, arange)) / 2
//! ```
//!
//! `image_text_contrastive_loss` needs a square matrix (targets `arange(len)` for both
//! directions), so the loss is only defined for as many texts as images; otherwise
//! [`Scores::loss`] is `None` ([`contrastive_loss`] returns an error). Reductions run in
//! f64 and are stored as f32, which keeps them within float rounding of torch's f32.

use ndarray::{Array1, Array2, ArrayView2, Axis};

use crate::error::{Error, Result};

/// Logits, probabilities and loss for a set of images and texts.
#[derive(Debug, Clone, PartialEq)]
pub struct Scores {
    /// `[n_images, n_texts]`: `exp(logit_scale) * image · text`.
    pub logits_per_image: Array2<f32>,
    /// `[n_texts, n_images]`: the transpose of `logits_per_image`.
    pub logits_per_text: Array2<f32>,
    /// `[n_images, n_texts]`: softmax of `logits_per_image` over the texts, for each image
    /// (`logits_per_image.softmax(dim=1)`: which label fits each image).
    pub probs_per_image: Array2<f32>,
    /// The contrastive loss, when there are as many texts as images (and at least one).
    pub loss: Option<f32>,
}

/// Divides each row by its L2 norm, as torch's `x / x.norm(dim=-1, keepdim=True)`. Like
/// torch, a zero row becomes NaN (0 / 0).
pub fn l2_normalize(x: ArrayView2<'_, f32>) -> Array2<f32> {
    let mut out = x.to_owned();
    for mut row in out.rows_mut() {
        let norm = row
            .iter()
            .map(|&v| f64::from(v) * f64::from(v))
            .sum::<f64>()
            .sqrt() as f32;
        row.mapv_inplace(|v| v / norm);
    }
    out
}

/// `logits_per_text = (text · imageᵀ) * exp(logit_scale)`, `[n_texts, n_images]`.
pub fn logits_per_text(
    image_embeds: ArrayView2<'_, f32>,
    text_embeds: ArrayView2<'_, f32>,
    logit_scale: f32,
) -> Result<Array2<f32>> {
    if image_embeds.ncols() != text_embeds.ncols() {
        return Err(Error::bad_shape(
            "text embeddings",
            format!("[m, {}] like the image embeddings", image_embeds.ncols()),
            text_embeds.shape(),
        ));
    }
    let scale = logit_scale.exp();
    let mut logits = text_embeds.dot(&image_embeds.t());
    logits.mapv_inplace(|v| v * scale);
    Ok(logits)
}

/// Softmax along each row (numerically stable: the row maximum is subtracted first).
pub fn softmax_rows(x: ArrayView2<'_, f32>) -> Array2<f32> {
    let mut out = Array2::zeros(x.raw_dim());
    for (row, mut out_row) in x.rows().into_iter().zip(out.rows_mut()) {
        let max = row
            .iter()
            .fold(f64::NEG_INFINITY, |m, &v| m.max(f64::from(v)));
        let exps: Array1<f64> = row.mapv(|v| (f64::from(v) - max).exp());
        let sum = exps.sum();
        for (o, e) in out_row.iter_mut().zip(exps.iter()) {
            *o = (e / sum) as f32;
        }
    }
    out
}

/// Mean cross-entropy of each row against the target `arange(n)` (the diagonal), as
/// `nn.functional.cross_entropy(logits, torch.arange(len(logits)))`. Needs a square,
/// non-empty matrix.
pub fn cross_entropy_diagonal(logits: ArrayView2<'_, f32>) -> Result<f64> {
    let (n, m) = logits.dim();
    if n != m || n == 0 {
        return Err(Error::bad_shape(
            "logits for the contrastive loss",
            "a square, non-empty matrix",
            logits.shape(),
        ));
    }
    let mut total = 0.0f64;
    for (i, row) in logits.axis_iter(Axis(0)).enumerate() {
        let max = row
            .iter()
            .fold(f64::NEG_INFINITY, |a, &v| a.max(f64::from(v)));
        let lse = max
            + row
                .iter()
                .map(|&v| (f64::from(v) - max).exp())
                .sum::<f64>()
                .ln();
        total += lse - f64::from(row[i]);
    }
    Ok(total / n as f64)
}

/// transformers' `image_text_contrastive_loss(similarity=logits_per_text)`: the mean of
/// the caption loss (rows) and the image loss (columns).
pub fn contrastive_loss(logits_per_text: ArrayView2<'_, f32>) -> Result<f32> {
    let caption = cross_entropy_diagonal(logits_per_text)?;
    let image = cross_entropy_diagonal(logits_per_text.t())?;
    Ok(((caption + image) / 2.0) as f32)
}

/// All scores from L2-normalized embeddings (`[n, P]` images, `[m, P]` texts).
///
/// Scores are never NaN or infinite: a logit or probability that is not finite (from a
/// zero embedding, which normalizes to NaN as in torch, an embedding that is not finite,
/// or a `logit_scale` whose exponential overflows) is an [`Error::NonFiniteScore`] naming
/// the image and text, rather than a NaN in the caller's output.
pub fn scores(
    image_embeds: ArrayView2<'_, f32>,
    text_embeds: ArrayView2<'_, f32>,
    logit_scale: f32,
) -> Result<Scores> {
    let logits_per_text = logits_per_text(image_embeds, text_embeds, logit_scale)?;
    let logits_per_image = logits_per_text.t().to_owned();
    check_finite("logit", logits_per_image.view())?;
    let probs_per_image = softmax_rows(logits_per_image.view());
    check_finite("probability", probs_per_image.view())?;
    let loss = if logits_per_text.is_square() && !logits_per_text.is_empty() {
        Some(contrastive_loss(logits_per_text.view())?)
    } else {
        None
    };
    Ok(Scores {
        logits_per_image,
        logits_per_text,
        probs_per_image,
        loss,
    })
}

/// An error for the first value of `x` (`[n_images, n_texts]`) that is not finite.
fn check_finite(what: &'static str, x: ArrayView2<'_, f32>) -> Result<()> {
    match x.indexed_iter().find(|(_, v)| !v.is_finite()) {
        Some(((image, text), &value)) => Err(Error::NonFiniteScore {
            what,
            image,
            text,
            value,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-5
    }

    #[test]
    fn normalize_rows() {
        let x = array![[3.0f32, 4.0], [0.0, -2.0]];
        let n = l2_normalize(x.view());
        assert_eq!(n, array![[0.6f32, 0.8], [0.0, -1.0]]);
        let z = l2_normalize(array![[0.0f32, 0.0]].view());
        assert!(z.iter().all(|v| v.is_nan()));
    }

    #[test]
    fn logits_are_scaled_dot_products() {
        let images = array![[1.0f32, 0.0], [0.0, 1.0], [0.6, 0.8]];
        let texts = array![[1.0f32, 0.0], [0.0, 1.0]];
        let scale = 2.0f32.ln(); // exp(scale) = 2
        let lpt = logits_per_text(images.view(), texts.view(), scale).unwrap();
        assert_eq!(lpt.shape(), &[2, 3]);
        for (got, want) in lpt.iter().zip([2.0f32, 0.0, 1.2, 0.0, 2.0, 1.6]) {
            assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        }
        let s = scores(images.view(), texts.view(), scale).unwrap();
        assert_eq!(s.logits_per_image, lpt.t());
        assert!(s.loss.is_none(), "3 images, 2 texts: no loss");
    }

    #[test]
    fn softmax_over_texts_for_each_image() {
        let logits = array![[0.0f32, 0.0], [2.0f32.ln(), 0.0]];
        let p = softmax_rows(logits.view());
        assert!(close(p[[0, 0]] as f64, 0.5));
        assert!(close(p[[1, 0]] as f64, 2.0 / 3.0));
        assert!(close(p[[1, 1]] as f64, 1.0 / 3.0));
        // Large logits do not overflow.
        let p = softmax_rows(array![[1000.0f32, 0.0]].view());
        assert!(close(p[[0, 0]] as f64, 1.0));
    }

    #[test]
    fn contrastive_loss_by_hand() {
        // L = [[a, b], [c, d]]; row CE_i = logsumexp(row_i) - L[i, i].
        let l = array![[1.0f32, 0.0], [0.5, 2.0]];
        let lse = |x: f64, y: f64| (x.exp() + y.exp()).ln();
        let rows = ((lse(1.0, 0.0) - 1.0) + (lse(0.5, 2.0) - 2.0)) / 2.0;
        let cols = ((lse(1.0, 0.5) - 1.0) + (lse(0.0, 2.0) - 2.0)) / 2.0;
        let want = (rows + cols) / 2.0;
        let got = contrastive_loss(l.view()).unwrap();
        assert!(close(got as f64, want), "{got} vs {want}");
        // Uniform logits: loss = ln(n).
        let u = Array2::<f32>::zeros((4, 4));
        assert!(close(contrastive_loss(u.view()).unwrap() as f64, 4f64.ln()));
    }

    #[test]
    fn loss_needs_a_square_matrix() {
        let l = Array2::<f32>::zeros((2, 3));
        assert!(contrastive_loss(l.view()).is_err());
        let e = Array2::<f32>::zeros((0, 0));
        assert!(contrastive_loss(e.view()).is_err());
    }

    #[test]
    fn square_scores_have_a_loss() {
        let e = array![[1.0f32, 0.0], [0.0, 1.0]];
        let s = scores(e.view(), e.view(), 0.0).unwrap();
        let want = (1.0f64.exp() + 1.0).ln() - 1.0; // each row: lse(1, 0) - 1
        assert!(close(s.loss.unwrap() as f64, want));
    }

    #[test]
    fn empty_and_mismatched_inputs() {
        let images = Array2::<f32>::zeros((0, 4));
        let texts = Array2::<f32>::ones((2, 4));
        let s = scores(images.view(), texts.view(), 1.0).unwrap();
        assert_eq!(s.logits_per_image.shape(), &[0, 2]);
        assert_eq!(s.probs_per_image.shape(), &[0, 2]);
        assert!(s.loss.is_none());
        let s = scores(texts.view(), images.view(), 1.0).unwrap();
        assert_eq!(s.probs_per_image.shape(), &[2, 0]);
        let bad = Array2::<f32>::ones((2, 3));
        assert!(scores(texts.view(), bad.view(), 1.0).is_err());
    }

    #[test]
    fn non_finite_scores_are_errors_not_numbers() {
        let images = array![[1.0f32, 0.0], [0.0, 1.0]];
        let texts = array![[1.0f32, 0.0], [0.6, 0.8]];
        // A zero embedding normalizes to NaN (as in torch): its logits are NaN.
        let zero = l2_normalize(array![[0.0f32, 0.0]].view());
        match scores(images.view(), zero.view(), 1.0).unwrap_err() {
            Error::NonFiniteScore {
                what: "logit",
                image: 0,
                text: 0,
                value,
            } => assert!(value.is_nan()),
            other => panic!("unexpected {other}"),
        }
        let bad_image = array![[1.0f32, 0.0], [f32::NAN, 0.0]];
        match scores(bad_image.view(), texts.view(), 1.0).unwrap_err() {
            Error::NonFiniteScore { image: 1, .. } => {}
            other => panic!("unexpected {other}"),
        }
        // A logit_scale whose exponential overflows f32 (88.8, 100, 1e30): exp is inf,
        // and inf * 0 is NaN.
        for scale in [88.8f32, 100.0, 1e30] {
            let err = scores(images.view(), texts.view(), scale).unwrap_err();
            assert!(
                matches!(err, Error::NonFiniteScore { what: "logit", .. }),
                "{scale}: {err}"
            );
        }
        // Finite logits give finite probabilities, however large.
        let s = scores(images.view(), texts.view(), 88.0).unwrap();
        assert!(s.probs_per_image.iter().all(|p| p.is_finite()));
    }
}
