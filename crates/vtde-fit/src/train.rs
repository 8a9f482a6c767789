//! Fitting the heads over feature matrices: the optimizer loop ([`Trainer`], one step at
//! a time on batches the caller chooses) and the whole recipe ([`fit`]: a seeded
//! held-out split, shuffled batches per epoch, warm-up + cosine schedule, evaluation
//! after each epoch). Features are read a batch at a time through [`FeatureRows`], so
//! memory stays bounded by the batch and the evaluation set whatever the data's size.

use ndarray::{Array2, ArrayView2};

use crate::error::{Error, Result};
use crate::heads::Heads;
use crate::metrics::{evaluate, Evaluation};
use crate::optim::{warmup_cosine_factor, AdamWConfig, AdamWState};
use crate::rng::SplitMix64;

/// A matrix of feature rows that can be read a few rows at a time (in memory, or a file
/// such as [`crate::NpyFeatures`]).
pub trait FeatureRows {
    /// The number of rows.
    fn row_count(&self) -> usize;
    /// The width of a row.
    fn dim(&self) -> usize;
    /// Copies rows `indices` into the first `indices.len()` rows of `out`
    /// (`out` is at least that tall and [`FeatureRows::dim`] wide).
    fn gather(&mut self, indices: &[usize], out: &mut Array2<f32>) -> Result<()>;
}

impl FeatureRows for ArrayView2<'_, f32> {
    fn row_count(&self) -> usize {
        self.nrows()
    }

    fn dim(&self) -> usize {
        self.ncols()
    }

    fn gather(&mut self, indices: &[usize], out: &mut Array2<f32>) -> Result<()> {
        for (k, &i) in indices.iter().enumerate() {
            if i >= self.nrows() {
                return Err(Error::Shape(format!(
                    "row {i} asked of {} rows",
                    self.nrows()
                )));
            }
            out.row_mut(k).assign(&self.row(i));
        }
        Ok(())
    }
}

/// Rows of another matrix picked through a table: row `i` is `inner`'s row `map[i]`
/// (pairs that share a caption share its text features, stored once).
pub struct IndexedRows<F: FeatureRows> {
    /// The stored rows.
    pub inner: F,
    /// For each row of this view, the row of `inner`.
    pub map: Vec<usize>,
    scratch: Vec<usize>,
}

impl<F: FeatureRows> IndexedRows<F> {
    /// A view of `inner` through `map`; every entry must be below `inner`'s row count.
    pub fn new(inner: F, map: Vec<usize>) -> Result<Self> {
        if let Some(&bad) = map.iter().find(|&&i| i >= inner.row_count()) {
            return Err(Error::Shape(format!(
                "row {bad} mapped of {} rows",
                inner.row_count()
            )));
        }
        Ok(IndexedRows {
            inner,
            map,
            scratch: Vec::new(),
        })
    }
}

impl<F: FeatureRows> FeatureRows for IndexedRows<F> {
    fn row_count(&self) -> usize {
        self.map.len()
    }

    fn dim(&self) -> usize {
        self.inner.dim()
    }

    fn gather(&mut self, indices: &[usize], out: &mut Array2<f32>) -> Result<()> {
        self.scratch.clear();
        for &i in indices {
            let row =
                self.map.get(i).copied().ok_or_else(|| {
                    Error::Shape(format!("row {i} asked of {} rows", self.map.len()))
                })?;
            self.scratch.push(row);
        }
        self.inner.gather(&self.scratch, out)
    }
}

/// The fitting recipe's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct FitOptions {
    /// Passes over the training pairs.
    pub epochs: usize,
    /// Pairs per batch (the contrastive loss sees each batch's pairs as each other's
    /// negatives). A last partial batch of one pair is skipped (its loss is 0).
    pub batch_size: usize,
    /// The peak learning rate.
    pub learning_rate: f64,
    /// The share of all steps spent warming up linearly from 0.
    pub warmup: f64,
    /// AdamW's decoupled weight decay of the two projections. `logit_scale` is not
    /// decayed (as in open_clip and the CLIP recipe: decay would pull the temperature
    /// towards 1 rather than towards small weights).
    pub weight_decay: f64,
    /// AdamW's betas and eps.
    pub adamw: AdamWConfig,
    /// `logit_scale` is clamped to at most this after each step (ln 100, as CLIP does),
    /// so that the logits cannot grow without bound on small data.
    pub max_logit_scale: f32,
    /// The share of pairs held out for evaluation (0 for none).
    pub validation: f64,
    /// Evaluation uses at most this many held-out pairs (retrieval is quadratic in it).
    pub max_eval_pairs: usize,
    /// Seeds the held-out split and the batch order.
    pub seed: u64,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            epochs: 10,
            batch_size: 128,
            learning_rate: 1e-3,
            warmup: 0.1,
            weight_decay: 0.1,
            adamw: AdamWConfig::default(),
            max_logit_scale: 100f32.ln(),
            validation: 0.1,
            max_eval_pairs: 2000,
            seed: 0,
        }
    }
}

impl FitOptions {
    /// Checks the settings.
    pub fn check(&self) -> Result<()> {
        let bad = |what: String| Err(Error::Settings(what));
        if self.batch_size < 2 {
            return bad(format!(
                "batch size {}: the contrastive loss needs at least 2 pairs per batch",
                self.batch_size
            ));
        }
        if self.epochs == 0 {
            return bad("epochs must be at least 1".into());
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return bad(format!(
                "learning rate {} must be a positive number",
                self.learning_rate
            ));
        }
        if !(0.0..1.0).contains(&self.warmup) {
            return bad(format!("warm-up share {} must be in [0, 1)", self.warmup));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad(format!(
                "weight decay {} must be 0 or more",
                self.weight_decay
            ));
        }
        if !(0.0..1.0).contains(&self.validation) {
            return bad(format!(
                "validation share {} must be in [0, 1)",
                self.validation
            ));
        }
        Ok(())
    }
}

/// What one optimizer step did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepReport {
    /// The optimizer step (1 for the first).
    pub step: u64,
    /// The batch's loss before the step.
    pub loss: f32,
    /// The learning rate the step used.
    pub learning_rate: f64,
}

/// The optimizer loop over the heads: AdamW (torch semantics) with the warm-up + cosine
/// schedule, one step per [`Trainer::step`].
#[derive(Debug, Clone)]
pub struct Trainer {
    heads: Heads,
    states: [AdamWState; 3],
    completed: u64,
    total_steps: u64,
    warmup_steps: u64,
    options: FitOptions,
}

impl Trainer {
    /// A trainer that will run `total_steps` steps (the schedule's length) from `heads`.
    pub fn new(heads: Heads, options: &FitOptions, total_steps: u64) -> Result<Self> {
        heads.check()?;
        options.check()?;
        let warmup_steps = (total_steps as f64 * options.warmup).round() as u64;
        Ok(Trainer {
            states: [
                AdamWState::new(heads.visual_projection.len()),
                AdamWState::new(heads.text_projection.len()),
                AdamWState::new(1),
            ],
            heads,
            completed: 0,
            total_steps,
            warmup_steps,
            options: options.clone(),
        })
    }

    /// The heads as they are now.
    pub fn heads(&self) -> &Heads {
        &self.heads
    }

    /// The heads, ending training.
    pub fn into_heads(self) -> Heads {
        self.heads
    }

    /// The number of warm-up steps of the schedule.
    pub fn warmup_steps(&self) -> u64 {
        self.warmup_steps
    }

    /// One optimizer step on a batch of matching pairs (row `i` of both is one pair).
    pub fn step(
        &mut self,
        image_features: ArrayView2<'_, f32>,
        text_features: ArrayView2<'_, f32>,
    ) -> Result<StepReport> {
        let (loss, grads) = self
            .heads
            .loss_and_gradients(image_features, text_features)?;
        let step = self.completed + 1;
        if !loss.is_finite() {
            return Err(Error::Diverged { step, loss });
        }
        let lr = self.options.learning_rate
            * warmup_cosine_factor(self.completed, self.warmup_steps, self.total_steps);
        let (wd, cfg) = (self.options.weight_decay, self.options.adamw);
        let [visual, text, scale] = &mut self.states;
        let slice = contiguous;
        let grad_slice = |a: &Array2<f32>| -> Result<Vec<f32>> { Ok(a.iter().copied().collect()) };
        visual.step(
            slice(&mut self.heads.visual_projection)?,
            &grad_slice(&grads.visual_projection)?,
            step,
            lr,
            wd,
            &cfg,
        );
        text.step(
            slice(&mut self.heads.text_projection)?,
            &grad_slice(&grads.text_projection)?,
            step,
            lr,
            wd,
            &cfg,
        );
        let mut logit_scale = [self.heads.logit_scale];
        scale.step(&mut logit_scale, &[grads.logit_scale], step, lr, 0.0, &cfg);
        self.heads.logit_scale = logit_scale[0].min(self.options.max_logit_scale);
        self.completed = step;
        Ok(StepReport {
            step,
            loss,
            learning_rate: lr,
        })
    }
}

/// A matrix's values as one slice, in row-major order.
fn contiguous(a: &mut Array2<f32>) -> Result<&mut [f32]> {
    a.as_slice_mut()
        .ok_or_else(|| Error::Shape("a projection matrix is not contiguous".into()))
}

/// Mixed into the seed for the held-out split's stream.
const SPLIT_STREAM: u64 = 0x5EED_0000_0000_0001;
/// Mixed into the seed for the batch order's stream.
const BATCH_STREAM: u64 = 0x5EED_0000_0000_0002;

/// What [`fit`] tells its observer as it goes.
#[derive(Debug, Clone, Copy)]
pub enum FitEvent<'a> {
    /// Training is about to start.
    Start {
        /// Optimizer steps in all.
        total_steps: u64,
        /// Pairs trained on.
        train_pairs: usize,
        /// Pairs held out.
        validation_pairs: usize,
    },
    /// An optimizer step was taken.
    Step {
        /// The epoch (1 for the first).
        epoch: usize,
        /// The step.
        report: StepReport,
    },
    /// An epoch ended.
    Epoch(&'a EpochReport),
}

/// One epoch's summary.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochReport {
    /// The epoch (1 for the first).
    pub epoch: usize,
    /// The mean training loss over its steps.
    pub train_loss: f32,
    /// The evaluation on the held-out pairs, if any.
    pub validation: Option<Evaluation>,
}

/// What [`fit`] returns.
#[derive(Debug, Clone)]
pub struct FitReport {
    /// The fitted heads.
    pub heads: Heads,
    /// One entry per epoch.
    pub epochs: Vec<EpochReport>,
    /// The loss of every step, in order.
    pub losses: Vec<f32>,
    /// Pairs trained on.
    pub train_pairs: usize,
    /// Pairs held out.
    pub validation_pairs: usize,
    /// The evaluation of the initial heads on the held-out pairs, if any.
    pub initial_validation: Option<Evaluation>,
}

/// The training and held-out pair indices of `pairs` pairs: a seeded shuffle, the first
/// `round(pairs · validation)` held out (at least one when `validation > 0` and there
/// are two pairs or more), each part in ascending order.
pub fn split_pairs(pairs: usize, validation: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut order: Vec<usize> = (0..pairs).collect();
    // The split has a stream of its own, so that changing the epochs does not move it.
    SplitMix64::new(seed ^ SPLIT_STREAM).shuffle(&mut order);
    let mut held = (pairs as f64 * validation).round() as usize;
    if validation > 0.0 && held == 0 && pairs >= 2 {
        held = 1;
    }
    let held = held.min(pairs.saturating_sub(1));
    let mut validation_set = order[..held].to_vec();
    let mut train = order[held..].to_vec();
    validation_set.sort_unstable();
    train.sort_unstable();
    (train, validation_set)
}

/// The training data of [`fit`]: tower features of `n` pairs (row `i` of both is one
/// pair) and, per pair, an id of its caption text (pairs with equal captions share an
/// id), which evaluation uses: a retrieved caption or image counts as right when its
/// caption equals the query's, and captions that repeat form the label set of the
/// zero-shot accuracy.
pub struct PairFeatures<'a, I: FeatureRows, T: FeatureRows> {
    /// Image tower features, `[n, vision_dim]`.
    pub images: &'a mut I,
    /// Text tower features, `[n, text_dim]`.
    pub texts: &'a mut T,
    /// The caption id of each pair, `n` of them.
    pub caption_ids: &'a [usize],
}

/// Fits `heads` on the pairs: holds out `options.validation` of them (seeded), then
/// `options.epochs` passes over the rest in a seeded shuffled order, batches of
/// `options.batch_size`, one [`Trainer`] step each; evaluates the held-out pairs before
/// training and after every epoch. `observer` sees every step and epoch; an error it
/// returns stops the fit and is returned. Deterministic for a seed.
pub fn fit<I: FeatureRows, T: FeatureRows>(
    heads: Heads,
    data: PairFeatures<'_, I, T>,
    options: &FitOptions,
    mut observer: impl FnMut(FitEvent<'_>) -> Result<()>,
) -> Result<FitReport> {
    options.check()?;
    heads.check()?;
    let PairFeatures {
        images,
        texts,
        caption_ids,
    } = data;
    let n = images.row_count();
    let (dv, dt) = heads.input_dims();
    if texts.row_count() != n || caption_ids.len() != n {
        return Err(Error::Shape(format!(
            "{n} image rows, {} text rows and {} caption ids: one of each per pair",
            texts.row_count(),
            caption_ids.len()
        )));
    }
    if images.dim() != dv || texts.dim() != dt {
        return Err(Error::Shape(format!(
            "features are {} (image) and {} (text) wide; the heads take {dv} and {dt}",
            images.dim(),
            texts.dim()
        )));
    }
    let (mut train, validation) = split_pairs(n, options.validation, options.seed);
    if train.len() < 2 {
        return Err(Error::Settings(format!(
            "{} training pairs: at least 2 are needed",
            train.len()
        )));
    }
    let batch = options.batch_size.min(train.len());
    let full = train.len() / batch;
    let per_epoch = full + usize::from(train.len() % batch >= 2);
    let total_steps = (per_epoch * options.epochs) as u64;
    let eval_set: Vec<usize> = validation
        .iter()
        .copied()
        .take(options.max_eval_pairs)
        .collect();
    let evaluate_now =
        |heads: &Heads, images: &mut I, texts: &mut T| -> Result<Option<Evaluation>> {
            if eval_set.is_empty() {
                return Ok(None);
            }
            evaluate(heads, images, texts, caption_ids, &eval_set).map(Some)
        };
    let initial_validation = evaluate_now(&heads, images, texts)?;
    observer(FitEvent::Start {
        total_steps,
        train_pairs: train.len(),
        validation_pairs: validation.len(),
    })?;

    let mut trainer = Trainer::new(heads, options, total_steps)?;
    let mut rng = SplitMix64::new(options.seed ^ BATCH_STREAM);
    let mut image_batch = Array2::<f32>::zeros((batch, dv));
    let mut text_batch = Array2::<f32>::zeros((batch, dt));
    let mut losses = Vec::with_capacity(total_steps as usize);
    let mut epochs = Vec::with_capacity(options.epochs);
    for epoch in 1..=options.epochs {
        rng.shuffle(&mut train);
        let mut sum = 0f64;
        let mut steps = 0usize;
        for chunk in train.chunks(batch) {
            if chunk.len() < 2 {
                continue;
            }
            images.gather(chunk, &mut image_batch)?;
            texts.gather(chunk, &mut text_batch)?;
            let m = chunk.len();
            let report = trainer.step(
                image_batch.slice(ndarray::s![..m, ..]),
                text_batch.slice(ndarray::s![..m, ..]),
            )?;
            sum += f64::from(report.loss);
            steps += 1;
            losses.push(report.loss);
            observer(FitEvent::Step { epoch, report })?;
        }
        let summary = EpochReport {
            epoch,
            train_loss: (sum / steps.max(1) as f64) as f32,
            validation: evaluate_now(trainer.heads(), images, texts)?,
        };
        observer(FitEvent::Epoch(&summary))?;
        epochs.push(summary);
    }
    Ok(FitReport {
        heads: trainer.into_heads(),
        epochs,
        losses,
        train_pairs: train.len(),
        validation_pairs: validation.len(),
        initial_validation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_seeded_disjoint_and_complete() {
        let (train, val) = split_pairs(100, 0.1, 5);
        assert_eq!((train.len(), val.len()), (90, 10));
        assert_eq!(split_pairs(100, 0.1, 5), (train.clone(), val.clone()));
        assert_ne!(split_pairs(100, 0.1, 6).1, val);
        let mut all = [train, val].concat();
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        assert_eq!(split_pairs(3, 0.01, 0).1.len(), 1);
        assert_eq!(split_pairs(5, 0.0, 0).1.len(), 0);
    }

    /// Pairs whose image and text features are two random linear maps of one latent
    /// class: a fit must separate the classes, and do it the same way twice.
    #[test]
    fn fit_learns_a_linear_pairing_deterministically() {
        let mut rng = SplitMix64::new(9);
        let classes = 8;
        let latent: Vec<Vec<f64>> = (0..classes)
            .map(|_| (0..6).map(|_| rng.normal()).collect())
            .collect();
        let map_i = Array2::from_shape_fn((10, 6), |_| rng.normal());
        let map_t = Array2::from_shape_fn((7, 6), |_| rng.normal());
        let n = 400;
        let ids: Vec<usize> = (0..n).map(|i| i % classes).collect();
        let feats = |map: &Array2<f64>, noise: f64, rng: &mut SplitMix64| {
            Array2::from_shape_fn((n, map.nrows()), |(r, c)| {
                let z = &latent[ids[r]];
                ((0..6).map(|k| map[[c, k]] * z[k]).sum::<f64>() + noise * rng.normal()) as f32
            })
        };
        let images = feats(&map_i, 0.3, &mut rng);
        let texts = feats(&map_t, 0.0, &mut rng);
        let options = FitOptions {
            epochs: 8,
            batch_size: 32,
            learning_rate: 1e-2,
            ..FitOptions::default()
        };
        let run = || {
            let heads = Heads::random(10, 7, 16, 0.02, 2.6592, &mut SplitMix64::new(1));
            let (mut iv, mut tv) = (images.view(), texts.view());
            let data = PairFeatures {
                images: &mut iv,
                texts: &mut tv,
                caption_ids: &ids,
            };
            fit(heads, data, &options, |_| Ok(())).unwrap()
        };
        let report = run();
        let before = report.initial_validation.clone().unwrap();
        let after = report.epochs.last().unwrap().validation.clone().unwrap();
        assert!(before.zero_shot.unwrap() < 0.5, "{before:?}");
        assert!(after.zero_shot.unwrap() > 0.95, "{after:?}");
        assert!(report.losses.last().unwrap() < &report.losses[0]);
        assert_eq!(run().heads, report.heads);
    }
}
