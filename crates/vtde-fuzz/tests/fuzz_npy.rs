//! Fuzz target `npy`: the CLI's `.npy` reader (`crates/vtde-cli/src/formats/npy.rs`,
//! included here by path since it lives in the binary crate): `read_header` on mutated
//! `.npy` files (from memory and from a file: both must agree), then `read_rows` as
//! `vtde search` and `vtde merge` use it, on the rows the file holds (which must come back
//! as the bytes say) and past its end (which must be an error). Seeds: headers written by
//! `npy::header` and as numpy writes them (versions 1 to 3), with rows.
#![allow(clippy::unwrap_used)]

use std::fs::File;

use vtde_fuzz::{workspace_root, Fuzzer, Mutator};

#[path = "../../vtde-cli/src/formats/npy.rs"]
#[allow(dead_code)]
mod npy;

/// Stands in for the CLI's `formats::exclusive` (file locks), which `npy.rs` names as
/// `super::exclusive`; the reader fuzzed here does not lock.
mod exclusive {
    pub fn lock_exclusive(_file: &std::fs::File, _path: &std::path::Path) -> anyhow::Result<()> {
        Ok(())
    }
}

/// A numpy-style file: version `major`, the header dict padded to 64 bytes, then `data`.
fn numpy_file(major: u8, dict: &str, data: &[u8]) -> Vec<u8> {
    let mut out = b"\x93NUMPY".to_vec();
    out.extend_from_slice(&[major, 0]);
    let prefix = if major == 1 { 10 } else { 12 };
    let mut text = dict.as_bytes().to_vec();
    while !(prefix + text.len() + 1).is_multiple_of(64) {
        text.push(b' ');
    }
    text.push(b'\n');
    if major == 1 {
        out.extend_from_slice(&(text.len() as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&(text.len() as u32).to_le_bytes());
    }
    out.extend_from_slice(&text);
    out.extend_from_slice(data);
    out
}

fn rows_bytes(n: usize) -> Vec<u8> {
    (0..n)
        .flat_map(|i| (i as f32 * 0.25 - 3.0).to_le_bytes())
        .collect()
}

#[test]
fn fuzz_npy() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("embeddings.npy");

    let mut seeds = Vec::new();
    for (rows, cols) in [(0u64, 512usize), (1, 1), (2, 3), (3, 8), (4, 16)] {
        let mut file = npy::header(rows, cols);
        file.extend_from_slice(&rows_bytes(rows as usize * cols));
        seeds.push(file);
    }
    let mut torn = npy::header(2, 3);
    torn.extend_from_slice(&rows_bytes(9)); // rows not yet counted
    seeds.push(torn);
    let dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    for major in [1, 2, 3] {
        seeds.push(numpy_file(major, dict, &rows_bytes(6)));
    }
    seeds.push(numpy_file(
        1,
        "{'descr': 'float32', 'fortran_order': False, 'shape': (2L, 3L), }",
        &rows_bytes(6),
    ));
    for path in vtde_fuzz::files_under(&workspace_root().join("crates/vtde-fuzz/seeds/npy")) {
        seeds.push(std::fs::read(path).unwrap());
    }

    let target = |data: &[u8]| -> Result<(), String> {
        let info = npy::read_header(&mut &data[..]).map_err(|e| format!("{e:#}"))?;
        std::fs::write(&path, data).unwrap();
        let mut file = File::open(&path).unwrap();
        let from_file = npy::read_header(&mut file).unwrap();
        assert_eq!(info, from_file, "the header reads differently from a file");
        assert!(
            info.data_offset <= data.len() as u64,
            "data offset {} past the end of a {}-byte file",
            info.data_offset,
            data.len()
        );
        // As `vtde search` does (embeddings_dir::read_committed): rows the file holds.
        let Some(row_bytes) = (info.cols as u64).checked_mul(4) else {
            return Err(format!(
                "accepted header with {} columns: a row's byte count overflows u64",
                info.cols
            ));
        };
        let data_rows = (data.len() as u64 - info.data_offset) / row_bytes.max(1);
        let n = info.rows.min(data_rows).min(64);
        for start in [0, data_rows - n] {
            let values = npy::read_rows(&mut file, &info, start, n as usize)
                .map_err(|e| format!("{e:#}"))
                .unwrap();
            assert_eq!(values.len() as u64, n * info.cols as u64);
            let first = (info.data_offset + start * row_bytes) as usize;
            for (k, v) in values.iter().enumerate() {
                let at = first + 4 * k;
                let expected = f32::from_le_bytes(data[at..at + 4].try_into().unwrap());
                assert_eq!(v.to_bits(), expected.to_bits(), "value {k} of row {start}");
            }
        }
        // One row past the data: an error, not a short read or a panic.
        if info.cols > 0 && info.cols <= 1 << 20 {
            assert!(
                npy::read_rows(&mut file, &info, data_rows, 1).is_err(),
                "read a row past the end of the file"
            );
        }
        Ok(())
    };

    let mutate = |m: &mut Mutator<'_>, input: &mut Vec<u8>| {
        // Mostly the header; the rows hold no structure.
        if m.rng.below(10) < 8 {
            let end = input.len().min(140);
            m.bytes_in(input, 0, end);
        } else {
            m.bytes(input);
        }
    };

    let mut fuzzer = Fuzzer::new("npy")
        .dictionary(&[
            b"\x93NUMPY",
            b"\x01\x00",
            b"\x02\x00",
            b"\x03\x00",
            b"'descr'",
            b"'fortran_order'",
            b"'shape'",
            b"'<f4'",
            b"'float32'",
            b"'<f8'",
            b"'>f4'",
            b"False",
            b"True",
            b"()",
            b"(3,)",
            b"(1, 2, 3)",
            b"18446744073709551615",
            b"18446744073709551616",
            b"4611686018427387904",
            b"9223372036854775807",
            b"4294967296",
            b"-1",
            b"0L",
            b", ",
            b": ",
            b"{}",
        ])
        .mutate_with(mutate)
        .max_len(64 << 10);
    for seed in seeds {
        fuzzer = fuzzer.seed(seed);
    }
    let report = fuzzer.run(&target);
    assert!(report.accepted > 0, "no seed was accepted");
    report.assert_clean();
}
