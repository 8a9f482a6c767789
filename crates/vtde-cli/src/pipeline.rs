//! Decoding and preprocessing images on a pool of threads while the model runs.
//!
//! Only `model_ext::stream_image_files` calls [`run`]: this module is about to
//! move into the runtime library (`Model::stream_image_files`).
//!
//! Worker threads take the next input, read, decode and preprocess it
//! ([`ImagePreprocessor::preprocess_file`]: libjpeg-turbo for JPEG, size limits checked
//! from the header) into its own `[3, H, W]` array, and send it through a bounded
//! channel. The calling thread puts the items back in input order, gathers each run of
//! `batch_size` consecutive inputs into one `pixel_values` batch, and hands it to
//! `consume` (inference and writing) while the workers go on with the next images. All
//! threads work on one batch at a time if need be, so a folder that fits in one batch is
//! decoded in parallel too. Workers never run more than one batch (plus one image each)
//! ahead of the batch being consumed, so memory stays bounded however slow the model is.
//!
//! A file that cannot be read, decoded or preprocessed is a failure of that item, with
//! its reason; it never stops the run (a panic while decoding is caught too).
//!
//! Testing aid: the environment variable `VTDE_TEST_BATCH_DELAY_MS` makes the consumer
//! sleep that long before each batch, so that tests can kill a run midway reliably.

use std::collections::BTreeMap;
use std::sync::mpsc::sync_channel;
use std::sync::{Condvar, Mutex};

use anyhow::{bail, Result};
use vtde_runtime::ndarray::{s, Array3, Array4, ArrayView4, Axis};
use vtde_runtime::{ImageOptions, ImagePreprocessor};

use crate::inputs::Input;

/// Environment variable: milliseconds to sleep before each batch (tests only).
pub const DELAY_ENV: &str = "VTDE_TEST_BATCH_DELAY_MS";

/// One batch, decoded and preprocessed.
pub struct Batch {
    /// Indices (into the inputs) of the images in `pixels`, in order.
    pub items: Vec<usize>,
    /// Indices of the inputs that failed, and why, in order.
    pub failures: Vec<(usize, String)>,
    pixels: Array4<f32>,
}

impl Batch {
    /// `pixel_values` of the good images: `[items.len(), 3, H, W]`.
    pub fn pixels(&self) -> ArrayView4<'_, f32> {
        self.pixels.slice(s![..self.items.len(), .., .., ..])
    }
}

/// How the pool runs.
#[derive(Debug, Clone, Copy)]
pub struct PipelineOptions {
    pub batch_size: usize,
    pub decode_threads: usize,
}

/// The default number of decoding threads: one per core. Workers sleep while they are a
/// window ahead of the model, so extra threads cost nothing when the model is slower.
pub fn default_decode_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

struct Schedule {
    /// The next input to hand out.
    next: usize,
    /// Inputs whose batch the consumer has finished.
    consumed: usize,
    /// Set when the consumer failed: workers stop.
    abort: bool,
}

/// One input, read and preprocessed (`[3, H, W]`), or why it failed.
type Item = std::result::Result<Array3<f32>, String>;

/// Decodes `inputs` on worker threads and calls `consume` with each batch of
/// `batch_size` consecutive inputs, in input order. Stops at the first error of
/// `consume`.
pub fn run(
    inputs: &[Input],
    preprocessor: &ImagePreprocessor,
    reading: &ImageOptions,
    options: PipelineOptions,
    mut consume: impl FnMut(Batch) -> Result<()>,
) -> Result<()> {
    let batch_size = options.batch_size.max(1);
    if inputs.is_empty() {
        return Ok(());
    }
    let threads = options.decode_threads.clamp(1, inputs.len());
    // Workers may run ahead of the batch being consumed by one more batch and one item
    // per thread; the consumer always gets the whole current batch.
    let window = 2 * batch_size + threads;
    let schedule = Mutex::new(Schedule {
        next: 0,
        consumed: 0,
        abort: false,
    });
    let wake = Condvar::new();
    let delay = std::env::var(DELAY_ENV)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map(std::time::Duration::from_millis);
    let lock = || schedule.lock().unwrap_or_else(|e| e.into_inner());
    let (h, w) = preprocessor.output_size();
    let (h, w) = (h as usize, w as usize);

    std::thread::scope(|scope| {
        let (tx, rx) = sync_channel::<(usize, Item)>(window);
        for _ in 0..threads {
            let tx = tx.clone();
            let (schedule, wake) = (&schedule, &wake);
            scope.spawn(move || loop {
                let index = {
                    let mut s = schedule.lock().unwrap_or_else(|e| e.into_inner());
                    loop {
                        if s.abort || s.next >= inputs.len() {
                            return;
                        }
                        if s.next < s.consumed + window {
                            break;
                        }
                        s = wake.wait(s).unwrap_or_else(|e| e.into_inner());
                    }
                    s.next += 1;
                    s.next - 1
                };
                let item = prepare(&inputs[index], preprocessor, reading, (h, w));
                if tx.send((index, item)).is_err() {
                    return;
                }
            });
        }
        drop(tx);

        let mut pending = BTreeMap::new();
        let mut next = 0;
        let mut batch = Batch::new(batch_size.min(inputs.len()), (h, w));
        let result = (|| -> Result<()> {
            for (index, item) in rx.iter() {
                pending.insert(index, item);
                while let Some(item) = pending.remove(&next) {
                    batch.push(next, item);
                    next += 1;
                    if next % batch_size != 0 && next < inputs.len() {
                        continue;
                    }
                    if let Some(delay) = delay {
                        std::thread::sleep(delay);
                    }
                    let size = batch_size.min(inputs.len() - next);
                    consume(std::mem::replace(&mut batch, Batch::new(size, (h, w))))?;
                    lock().consumed = next;
                    wake.notify_all();
                }
            }
            if next < inputs.len() {
                bail!("an image decoding thread stopped unexpectedly");
            }
            Ok(())
        })();
        if result.is_err() {
            lock().abort = true;
            wake.notify_all();
        }
        // Dropping the receiver makes any worker's pending send fail, so it exits.
        drop(rx);
        result
    })
}

impl Batch {
    fn new(capacity: usize, (h, w): (usize, usize)) -> Self {
        Batch {
            items: Vec::with_capacity(capacity),
            failures: Vec::new(),
            pixels: Array4::zeros((capacity, 3, h, w)),
        }
    }

    fn push(&mut self, index: usize, item: Item) {
        match item {
            Ok(pixels) => {
                self.pixels
                    .index_axis_mut(Axis(0), self.items.len())
                    .assign(&pixels);
                self.items.push(index);
            }
            Err(reason) => self.failures.push((index, reason)),
        }
    }
}

/// Reads and preprocesses one input; a failure (a panic included) gives its reason.
fn prepare(
    input: &Input,
    pre: &ImagePreprocessor,
    reading: &ImageOptions,
    (h, w): (usize, usize),
) -> Item {
    if let Some(reason) = &input.unlistable {
        return Err(reason.clone());
    }
    let mut pixels = Array3::<f32>::zeros((3, h, w));
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        pre.preprocess_file(&input.path, reading, pixels.view_mut())
            .map_err(|e| reason(&e))
    }))
    .unwrap_or_else(|_| Err("the image decoder panicked on this file".into()))?;
    Ok(pixels)
}

/// The reason a file failed, without its path (outputs give it separately).
fn reason(e: &vtde_runtime::Error) -> String {
    use vtde_runtime::Error;
    match e {
        Error::ImageDecode { message, .. } => format!("cannot decode: {message}"),
        Error::ImagePreprocessFile { message, .. } => format!("cannot preprocess: {message}"),
        Error::ImageTooLarge {
            width,
            height,
            max_pixels,
            ..
        } => format!("{width}x{height} pixels is more than the limit of {max_pixels}"),
        other => other.to_string(),
    }
}
