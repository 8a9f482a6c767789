//! The trainable part of a dual encoder with locked towers: the two projection matrices
//! (`visual_projection.weight`, `text_projection.weight`, bias-free, in torch's
//! `[out, in]` layout) and `logit_scale`; the model's contrastive loss on a batch of
//! tower features and its gradient with respect to those three, written out by hand.
//!
//! Forward, as transformers' `VisionTextDualEncoderModel.forward` with
//! `return_loss=True`: `u = x·Wvᵀ`, `w = y·Wtᵀ`, both L2-normalised per row,
//! `logits_per_text = exp(logit_scale)·ŵ·ûᵀ`, and `clip_loss`: the mean of the
//! cross-entropies of its rows and of its columns against the diagonal.

use ndarray::{Array1, Array2, ArrayView2, Axis, Zip};

use crate::error::{Error, Result};

/// The projection heads and temperature of a dual encoder.
#[derive(Debug, Clone, PartialEq)]
pub struct Heads {
    /// `visual_projection.weight`: `[projection_dim, vision_dim]`.
    pub visual_projection: Array2<f32>,
    /// `text_projection.weight`: `[projection_dim, text_dim]`.
    pub text_projection: Array2<f32>,
    /// `logit_scale` as stored (the logits use its exp).
    pub logit_scale: f32,
}

/// The gradient of the loss with respect to each of [`Heads`]' parameters.
#[derive(Debug, Clone)]
pub struct Gradients {
    /// With respect to `visual_projection.weight`.
    pub visual_projection: Array2<f32>,
    /// With respect to `text_projection.weight`.
    pub text_projection: Array2<f32>,
    /// With respect to `logit_scale`.
    pub logit_scale: f32,
}

impl Heads {
    /// Fresh heads initialised as transformers initialises a new
    /// `VisionTextDualEncoderModel`'s projections: each weight drawn from
    /// `N(0, std²)` (`std` is the model's `initializer_range`; see
    /// [`crate::compose`]), `logit_scale` = `logit_scale_init`.
    pub fn random(
        vision_dim: usize,
        text_dim: usize,
        projection_dim: usize,
        std: f64,
        logit_scale_init: f32,
        rng: &mut crate::SplitMix64,
    ) -> Self {
        let mut draw = |cols: usize| {
            Array2::from_shape_fn((projection_dim, cols), |_| (rng.normal() * std) as f32)
        };
        let visual_projection = draw(vision_dim);
        let text_projection = draw(text_dim);
        Heads {
            visual_projection,
            text_projection,
            logit_scale: logit_scale_init,
        }
    }

    /// `projection_dim`.
    pub fn projection_dim(&self) -> usize {
        self.visual_projection.nrows()
    }

    /// The tower feature sizes these heads take: `(vision_dim, text_dim)`.
    pub fn input_dims(&self) -> (usize, usize) {
        (self.visual_projection.ncols(), self.text_projection.ncols())
    }

    /// Checks that the heads' shapes agree with each other.
    pub fn check(&self) -> Result<()> {
        if self.visual_projection.nrows() != self.text_projection.nrows()
            || self.visual_projection.nrows() == 0
        {
            return Err(Error::Shape(format!(
                "visual_projection is {:?} and text_projection {:?}: they must have the same, non-zero number of rows (projection_dim)",
                self.visual_projection.shape(),
                self.text_projection.shape()
            )));
        }
        if !self.logit_scale.is_finite() {
            return Err(Error::Shape(format!(
                "logit_scale is {}, not a finite number",
                self.logit_scale
            )));
        }
        Ok(())
    }

    /// Image features `[n, vision_dim]` → L2-normalised image embeddings `[n, P]`.
    pub fn embed_images(&self, image_features: ArrayView2<'_, f32>) -> Array2<f32> {
        normalize_rows(image_features.dot(&self.visual_projection.t())).0
    }

    /// Text features `[n, text_dim]` → L2-normalised text embeddings `[n, P]`.
    pub fn embed_texts(&self, text_features: ArrayView2<'_, f32>) -> Array2<f32> {
        normalize_rows(text_features.dot(&self.text_projection.t())).0
    }

    /// The contrastive loss of a batch of `n` matching pairs (row `i` of both feature
    /// matrices is one pair) and its gradient. `n` must be at least 1; the feature
    /// sizes must match [`Heads::input_dims`].
    pub fn loss_and_gradients(
        &self,
        image_features: ArrayView2<'_, f32>,
        text_features: ArrayView2<'_, f32>,
    ) -> Result<(f32, Gradients)> {
        let n = image_features.nrows();
        let (dv, dt) = self.input_dims();
        if n == 0 || text_features.nrows() != n {
            return Err(Error::Shape(format!(
                "a batch needs as many image as text rows, at least one: got {} and {}",
                n,
                text_features.nrows()
            )));
        }
        if image_features.ncols() != dv || text_features.ncols() != dt {
            return Err(Error::Shape(format!(
                "features are {} (image) and {} (text) wide; the heads take {dv} and {dt}",
                image_features.ncols(),
                text_features.ncols()
            )));
        }
        let (u_hat, u_norm) = normalize_rows(image_features.dot(&self.visual_projection.t()));
        let (w_hat, w_norm) = normalize_rows(text_features.dot(&self.text_projection.t()));
        let scale = self.logit_scale.exp();
        // cosine[t, i]: text t against image i; logits_per_text = scale * cosine.
        let cosine = w_hat.dot(&u_hat.t());
        let logits = &cosine * scale;

        // Row softmax (text → image) and column softmax (image → text).
        let mut grad = Array2::<f32>::zeros((n, n));
        let mut loss_rows = 0f64;
        for (t, row) in logits.rows().into_iter().enumerate() {
            let max = row.fold(f32::NEG_INFINITY, |m, &v| m.max(v));
            let sum: f32 = row.iter().map(|&v| (v - max).exp()).sum();
            let lse = max + sum.ln();
            loss_rows += f64::from(lse - row[t]);
            for (i, &v) in row.iter().enumerate() {
                grad[[t, i]] += (v - lse).exp();
            }
        }
        let mut loss_cols = 0f64;
        for (i, col) in logits.columns().into_iter().enumerate() {
            let max = col.fold(f32::NEG_INFINITY, |m, &v| m.max(v));
            let sum: f32 = col.iter().map(|&v| (v - max).exp()).sum();
            let lse = max + sum.ln();
            loss_cols += f64::from(lse - col[i]);
            for (t, &v) in col.iter().enumerate() {
                grad[[t, i]] += (v - lse).exp();
            }
        }
        for k in 0..n {
            grad[[k, k]] -= 2.0;
        }
        // d loss / d logits: each cross-entropy is a mean over n, and the two are averaged.
        grad *= 0.5 / n as f32;
        let loss = ((loss_rows / n as f64 + loss_cols / n as f64) / 2.0) as f32;

        let grad_logit_scale = scale
            * Zip::from(&grad)
                .and(&cosine)
                .fold(0f32, |acc, &g, &c| acc + g * c);
        let grad_cosine = grad * scale;
        let grad_w_hat = grad_cosine.dot(&u_hat);
        let grad_u_hat = grad_cosine.t().dot(&w_hat);
        let grad_u = normalize_backward(&u_hat, &u_norm, grad_u_hat);
        let grad_w = normalize_backward(&w_hat, &w_norm, grad_w_hat);
        Ok((
            loss,
            Gradients {
                visual_projection: grad_u.t().dot(&image_features),
                text_projection: grad_w.t().dot(&text_features),
                logit_scale: grad_logit_scale,
            },
        ))
    }
}

/// Rows divided by their L2 norms (as `x / x.norm(dim=-1, keepdim=True)`), and the norms.
fn normalize_rows(mut x: Array2<f32>) -> (Array2<f32>, Array1<f32>) {
    let norms: Array1<f32> = x
        .rows()
        .into_iter()
        .map(|r| r.iter().map(|v| v * v).sum::<f32>().sqrt())
        .collect();
    for (mut row, &norm) in x.rows_mut().into_iter().zip(norms.iter()) {
        row /= norm;
    }
    (x, norms)
}

/// The gradient through `x̂ = x / |x|`: `(dx̂ − x̂·(x̂·dx̂)) / |x|` per row.
fn normalize_backward(
    x_hat: &Array2<f32>,
    norms: &Array1<f32>,
    mut grad: Array2<f32>,
) -> Array2<f32> {
    let along = (x_hat * &grad).sum_axis(Axis(1));
    for (((mut g, xh), &dot), &norm) in grad
        .rows_mut()
        .into_iter()
        .zip(x_hat.rows())
        .zip(along.iter())
        .zip(norms.iter())
    {
        g.zip_mut_with(&xh, |g, &x| *g = (*g - x * dot) / norm);
    }
    grad
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SplitMix64;

    fn random(rows: usize, cols: usize, rng: &mut SplitMix64) -> Array2<f32> {
        Array2::from_shape_fn((rows, cols), |_| rng.normal() as f32)
    }

    /// The hand-written gradient against central finite differences (in f64 sums, f32
    /// parameters: a step of 1e-2 keeps the rounding well under the tolerance).
    #[test]
    fn gradients_match_finite_differences() {
        let mut rng = SplitMix64::new(11);
        let (x, y) = (random(5, 4, &mut rng), random(5, 3, &mut rng));
        let heads = Heads::random(4, 3, 6, 0.5, 1.2, &mut rng);
        let (_, grads) = heads.loss_and_gradients(x.view(), y.view()).unwrap();
        let loss_at = |h: &Heads| h.loss_and_gradients(x.view(), y.view()).unwrap().0 as f64;
        let h = 1e-2f32;
        let check = |analytic: f32, plus: Heads, minus: Heads| {
            let numeric = (loss_at(&plus) - loss_at(&minus)) / (2.0 * f64::from(h));
            assert!(
                (f64::from(analytic) - numeric).abs() < 2e-3 * (1.0 + numeric.abs()),
                "analytic {analytic} numeric {numeric}"
            );
        };
        for idx in [[0, 0], [2, 3], [5, 1]] {
            let (mut p, mut m) = (heads.clone(), heads.clone());
            p.visual_projection[idx] += h;
            m.visual_projection[idx] -= h;
            check(grads.visual_projection[idx], p, m);
        }
        for idx in [[0, 2], [4, 0]] {
            let (mut p, mut m) = (heads.clone(), heads.clone());
            p.text_projection[idx] += h;
            m.text_projection[idx] -= h;
            check(grads.text_projection[idx], p, m);
        }
        let (mut p, mut m) = (heads.clone(), heads.clone());
        p.logit_scale += h;
        m.logit_scale -= h;
        check(grads.logit_scale, p, m);
    }

    #[test]
    fn mismatched_batches_are_errors() {
        let mut rng = SplitMix64::new(1);
        let heads = Heads::random(4, 3, 2, 0.1, 0.0, &mut rng);
        let (x, y) = (random(2, 4, &mut rng), random(3, 3, &mut rng));
        assert!(heads.loss_and_gradients(x.view(), y.view()).is_err());
        let y = random(2, 5, &mut rng);
        assert!(heads.loss_and_gradients(x.view(), y.view()).is_err());
    }
}
