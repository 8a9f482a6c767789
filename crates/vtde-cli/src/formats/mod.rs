//! The files vtde writes, and reads back for `--resume`, `vtde merge` and `vtde search`.
//! Commands import these formats, never each other.
//!
//! - [`score_file`]: a score results file, its errors file and its progress marker.
//! - [`embeddings_dir`]: an embeddings directory (`embeddings.npy`, `index.jsonl`,
//!   `errors.jsonl`, `meta.json`).
//! - The building blocks: [`records`] (CSV and JSONL records, read back whole),
//!   [`npy`] (float32 `.npy` files that load whenever a run is killed) and [`journal`]
//!   (append-only files, the atomically replaced commit marker, the run it records).

pub mod embeddings_dir;
pub mod journal;
pub mod npy;
pub mod records;
pub mod score_file;
