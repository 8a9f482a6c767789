//! The streaming image pipeline: image files decoded and preprocessed on a pool of
//! threads while the model runs, handed over in ordered batches.
//!
//! Worker threads take the next input, read, decode and preprocess it
//! ([`ImagePreprocessor::preprocess_file`]: libjpeg-turbo for JPEG, size limits checked
//! from the header) into its own `[3, H, W]` array, and send it through a bounded
//! channel. The calling thread puts the items back in input order, gathers each run of
//! `batch_size` consecutive inputs into one [`ImageBatch`], and hands it to the consumer
//! (inference and writing) while the workers go on with the next images. All threads
//! work on one batch at a time if need be, so an input that fits in one batch is decoded
//! in parallel too.
//!
//! **Backpressure.** Workers never run more than one batch (plus one image each) ahead of
//! the batch being consumed; then they sleep. Memory stays bounded however slow the
//! consumer is, and decoding threads that are ahead take no cores from the model.
//!
//! **Per-file errors.** A file that cannot be read, decoded or preprocessed is a failure
//! of that item, reported in its batch with its [`Error`]; it never stops the run (a
//! decoder panic is caught too, and prints nothing: the item's error says it). An error returned by the consumer stops the run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::sync_channel;
use std::sync::{Condvar, Mutex};

use ndarray::{s, Array3, Array4, ArrayView4, Axis};

use crate::error::Error;
use crate::preprocess::image::decode::catch_quietly;
use crate::preprocess::image::{ImageOptions, ImagePreprocessor};

/// An input of the streaming pipeline: the file to read.
///
/// Implemented for paths; a caller with its own input type (which may know, before
/// reading, that an input has no file, e.g. a folder it could not list) implements it to
/// keep such inputs in order among the others.
pub trait ImageSource: Sync {
    /// The file to read (also the path errors name).
    fn path(&self) -> &Path;

    /// Why there is no file to read, when there is none: the item then fails with
    /// [`Error::ImageUnavailable`] without being read.
    fn unavailable(&self) -> Option<&str> {
        None
    }
}

impl ImageSource for Path {
    fn path(&self) -> &Path {
        self
    }
}

impl ImageSource for PathBuf {
    fn path(&self) -> &Path {
        self
    }
}

impl<T: ImageSource + ?Sized> ImageSource for &T {
    fn path(&self) -> &Path {
        (**self).path()
    }

    fn unavailable(&self) -> Option<&str> {
        (**self).unavailable()
    }
}

/// One batch of consecutive inputs, decoded and preprocessed.
#[derive(Debug)]
pub struct ImageBatch {
    /// Indices (into the inputs) of the images in [`ImageBatch::pixel_values`], in order.
    pub items: Vec<usize>,
    /// Indices of the inputs of this batch that failed, and why, in order.
    pub failures: Vec<(usize, Error)>,
    pixels: Array4<f32>,
}

impl ImageBatch {
    fn new(capacity: usize, (h, w): (usize, usize)) -> Self {
        ImageBatch {
            items: Vec::with_capacity(capacity),
            failures: Vec::new(),
            pixels: Array4::zeros((capacity, 3, h, w)),
        }
    }

    /// `pixel_values` of the good images: `[items.len(), 3, H, W]`.
    pub fn pixel_values(&self) -> ArrayView4<'_, f32> {
        self.pixels.slice(s![..self.items.len(), .., .., ..])
    }

    /// The `pixel_values` of the good images, owned.
    pub fn into_pixel_values(mut self) -> Array4<f32> {
        let n = self.items.len();
        if n < self.pixels.len_of(Axis(0)) {
            self.pixels = self.pixels.slice(s![..n, .., .., ..]).to_owned();
        }
        self.pixels
    }

    fn push(&mut self, index: usize, item: Item) {
        match item {
            Ok(pixels) => {
                self.pixels
                    .index_axis_mut(Axis(0), self.items.len())
                    .assign(&pixels);
                self.items.push(index);
            }
            Err(error) => self.failures.push((index, error)),
        }
    }
}

impl ImagePreprocessor {
    /// The streaming pipeline without a model: `consume` gets each run of `batch_size`
    /// consecutive inputs, decoded and preprocessed by this preprocessor on
    /// [`ImageOptions::threads`] threads, as one [`ImageBatch`], in input order (see the
    /// module documentation). [`Model::stream_image_files`](crate::Model::stream_image_files)
    /// is this with the model's preprocessor, options and batch size.
    pub fn stream_files<S, E>(
        &self,
        sources: &[S],
        options: &ImageOptions,
        batch_size: usize,
        consume: impl FnMut(ImageBatch) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E>
    where
        S: ImageSource,
        E: From<Error>,
    {
        run(sources, self, options, batch_size, consume)
    }
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
type Item = std::result::Result<Array3<f32>, Error>;

/// Decodes `inputs` on worker threads and calls `consume` with each batch of
/// `batch_size` consecutive inputs, in input order. Stops at the first error of
/// `consume`.
fn run<S, E>(
    inputs: &[S],
    preprocessor: &ImagePreprocessor,
    reading: &ImageOptions,
    batch_size: usize,
    mut consume: impl FnMut(ImageBatch) -> std::result::Result<(), E>,
) -> std::result::Result<(), E>
where
    S: ImageSource,
    E: From<Error>,
{
    let batch_size = batch_size.max(1);
    if inputs.is_empty() {
        return Ok(());
    }
    let threads = reading.thread_count().clamp(1, inputs.len());
    // Workers may run ahead of the batch being consumed by one more batch and one item
    // per thread; the consumer always gets the whole current batch.
    let window = 2 * batch_size + threads;
    let schedule = Mutex::new(Schedule {
        next: 0,
        consumed: 0,
        abort: false,
    });
    let wake = Condvar::new();
    let lock = || schedule.lock().unwrap_or_else(|e| e.into_inner());
    let (h, w) = preprocessor.output_size();
    let (h, w) = (h as usize, w as usize);

    std::thread::scope(|scope| {
        let (tx, rx) = sync_channel::<(usize, Item)>(window);
        for _ in 0..threads {
            let tx = tx.clone();
            let (schedule, wake) = (&schedule, &wake);
            let low_priority = reading.low_priority_decoding;
            scope.spawn(move || {
                if low_priority {
                    lower_this_threads_priority();
                }
                loop {
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
                }
            });
        }
        drop(tx);

        let mut pending = BTreeMap::new();
        let mut next = 0;
        let mut batch = ImageBatch::new(batch_size.min(inputs.len()), (h, w));
        let result = (|| -> std::result::Result<(), E> {
            for (index, item) in rx.iter() {
                pending.insert(index, item);
                while let Some(item) = pending.remove(&next) {
                    batch.push(next, item);
                    next += 1;
                    if next % batch_size != 0 && next < inputs.len() {
                        continue;
                    }
                    let size = batch_size.min(inputs.len() - next);
                    consume(std::mem::replace(&mut batch, ImageBatch::new(size, (h, w))))?;
                    lock().consumed = next;
                    wake.notify_all();
                }
            }
            if next < inputs.len() {
                return Err(E::from(Error::ImageUnavailable {
                    path: inputs[next].path().to_path_buf(),
                    message: "an image decoding thread stopped unexpectedly".into(),
                }));
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

/// Nice value of the decoding threads with [`ImageOptions::low_priority_decoding`]:
/// low enough that the model's threads win a contended core at once, not so low that
/// decoding starves while the model runs (nice 19 gets ~1.5% of a core against nice 0).
#[cfg(target_os = "linux")]
const DECODE_NICE: libc::c_int = 10;

/// Lowers the calling thread's scheduling priority to [`DECODE_NICE`] (Linux, where nice
/// values are per thread; a no-op elsewhere). Failure is harmless and ignored: decoding
/// then runs at the normal priority.
fn lower_this_threads_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid takes no argument and cannot fail; setpriority only reads its
        // three integers. On Linux, PRIO_PROCESS with a thread id sets that thread alone.
        unsafe {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            libc::setpriority(libc::PRIO_PROCESS, tid, DECODE_NICE);
        }
    }
}

/// Reads and preprocesses one input; a failure (a panic included) gives its error.
fn prepare<S: ImageSource>(
    input: &S,
    pre: &ImagePreprocessor,
    reading: &ImageOptions,
    (h, w): (usize, usize),
) -> Item {
    let path = input.path();
    if let Some(reason) = input.unavailable() {
        return Err(Error::ImageUnavailable {
            path: path.to_path_buf(),
            message: reason.to_owned(),
        });
    }
    let mut pixels = Array3::<f32>::zeros((3, h, w));
    // Quietly: the file's error says it, stderr gets no panic text.
    catch_quietly(|| pre.preprocess_file(path, reading, pixels.view_mut())).unwrap_or_else(
        |_| {
            Err(Error::DecoderPanicked {
                path: path.to_path_buf(),
            })
        },
    )?;
    Ok(pixels)
}
