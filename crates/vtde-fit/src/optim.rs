//! AdamW with torch's semantics (`torch.optim.AdamW`, single-tensor path, no AMSGrad)
//! and transformers' linear warm-up + cosine decay schedule
//! (`get_cosine_schedule_with_warmup`), so that a fit here follows the same parameter
//! trajectory as the PyTorch recipe (checked step by step against a recorded torch run
//! in `tests/torch_exactness.rs`).

/// AdamW's hyper-parameters, as `torch.optim.AdamW` takes them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWConfig {
    /// `betas[0]`.
    pub beta1: f64,
    /// `betas[1]`.
    pub beta2: f64,
    /// Added to `sqrt(v̂)`.
    pub eps: f64,
}

impl Default for AdamWConfig {
    /// torch's defaults: betas (0.9, 0.999), eps 1e-8.
    fn default() -> Self {
        AdamWConfig {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }
}

/// The moment estimates of one parameter tensor.
#[derive(Debug, Clone)]
pub struct AdamWState {
    exp_avg: Vec<f32>,
    exp_avg_sq: Vec<f32>,
}

impl AdamWState {
    /// Zeroed moments for a tensor of `len` values.
    pub fn new(len: usize) -> Self {
        AdamWState {
            exp_avg: vec![0.0; len],
            exp_avg_sq: vec![0.0; len],
        }
    }

    /// One AdamW step on `param` with gradient `grad` at optimizer step `step` (1 for
    /// the first), exactly in the order torch's `_single_tensor_adamw` does it, with
    /// the scalars computed in f64 and applied in f32 as torch does:
    /// `p *= 1 − lr·wd`; `m = m + (1−β1)(g − m)`; `v = β2·v + (1−β2)·g²`;
    /// `p −= lr/(1−β1ᵗ) · m / (sqrt(v)/sqrt(1−β2ᵗ) + eps)`.
    pub fn step(
        &mut self,
        param: &mut [f32],
        grad: &[f32],
        step: u64,
        lr: f64,
        weight_decay: f64,
        config: &AdamWConfig,
    ) {
        let decay = (1.0 - lr * weight_decay) as f32;
        let one_minus_beta1 = (1.0 - config.beta1) as f32;
        let beta2 = config.beta2 as f32;
        let one_minus_beta2 = (1.0 - config.beta2) as f32;
        let bias_correction1 = 1.0 - config.beta1.powf(step as f64);
        let bias_correction2 = 1.0 - config.beta2.powf(step as f64);
        let step_size = (lr / bias_correction1) as f32;
        let bias_correction2_sqrt = bias_correction2.sqrt() as f32;
        let eps = config.eps as f32;
        for (((p, &g), m), v) in param
            .iter_mut()
            .zip(grad)
            .zip(self.exp_avg.iter_mut())
            .zip(self.exp_avg_sq.iter_mut())
        {
            if weight_decay != 0.0 {
                *p *= decay;
            }
            *m += one_minus_beta1 * (g - *m);
            *v = *v * beta2 + one_minus_beta2 * (g * g);
            let denom = v.sqrt() / bias_correction2_sqrt + eps;
            *p += -step_size * (*m / denom);
        }
    }
}

/// transformers' `get_cosine_schedule_with_warmup` (one half cosine): the factor of the
/// peak learning rate for the optimizer step that follows `completed` steps — 0 at the
/// very first step when there is a warm-up, as in transformers' `Trainer`.
pub fn warmup_cosine_factor(completed: u64, warmup_steps: u64, total_steps: u64) -> f64 {
    if completed < warmup_steps {
        return completed as f64 / warmup_steps.max(1) as f64;
    }
    let progress =
        (completed - warmup_steps) as f64 / total_steps.saturating_sub(warmup_steps).max(1) as f64;
    (0.5 * (1.0 + (std::f64::consts::PI * progress).cos())).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_warms_up_then_decays_to_zero() {
        assert_eq!(warmup_cosine_factor(0, 10, 100), 0.0);
        assert_eq!(warmup_cosine_factor(5, 10, 100), 0.5);
        assert_eq!(warmup_cosine_factor(10, 10, 100), 1.0);
        assert!((warmup_cosine_factor(55, 10, 100) - 0.5).abs() < 1e-12);
        assert!(warmup_cosine_factor(100, 10, 100).abs() < 1e-12);
        assert_eq!(warmup_cosine_factor(0, 0, 100), 1.0);
    }

    /// The first step of Adam moves every parameter by lr against its gradient's sign
    /// (m̂/sqrt(v̂) = g/|g|), after the decoupled decay.
    #[test]
    fn first_step_is_sign_of_gradient() {
        let mut param = vec![1.0f32, -2.0];
        let mut state = AdamWState::new(2);
        state.step(
            &mut param,
            &[0.3, -5.0],
            1,
            0.1,
            0.5,
            &AdamWConfig::default(),
        );
        assert!((param[0] - (0.95 - 0.1)).abs() < 1e-6, "{param:?}");
        assert!((param[1] - (-1.9 + 0.1)).abs() < 1e-6, "{param:?}");
    }
}
