//! The files vtde writes, and reads back for `--resume`, `vtde merge` and `vtde search`.
//! Commands import these formats, never each other.
//!
//! - [`score_file`]: a score results file, its errors file and its progress marker.
//! - [`embeddings_dir`]: an embeddings directory (`embeddings.npy`, `index.jsonl`,
//!   `errors.jsonl`, `meta.json`).
//! - The building blocks: [`records`] (CSV and JSONL records, read back whole),
//!   [`npy`] (float32 `.npy` files that load whenever a run is killed) and [`journal`]
//!   (append-only files, the atomically replaced commit marker, the run it records).
//! - What keeps outputs safe: [`exclusive`] (each output locked for its run, and never
//!   an input) and [`paths`] (paths written losslessly, whatever bytes they hold).

pub mod embeddings_dir;
pub mod exclusive;
pub mod journal;
pub mod npy;
pub mod paths;
pub mod records;
pub mod score_file;
