//! Fuzz target `safetensors`: the weights file of a checkpoint, mutated mostly in its
//! header (the 8-byte length and the JSON that follows it, which is what is parsed before
//! the tensor data), read by `safetensors::SafeTensors::read_metadata` and
//! `deserialize` directly (fast), then exported with `vtde_export::export` from a
//! checkpoint directory holding the `vit-bert-tiny` fixture's other files. Besides byte
//! and JSON mutations, structural ones rebuild a consistent file with a tensor reshaped,
//! retyped, dropped, renamed, duplicated, swapped or filled with extreme values, so that
//! the exporter's own checks of the weights are reached.
//!
//! A package the exporter writes is then read back with `vtde_package::read_manifest`;
//! a package the contract refuses is listed as notable (the exporter should have refused).
#![allow(clippy::unwrap_used)]

use serde_json::{Map, Value};
use vtde_fuzz::{workspace_root, Fuzzer, Mutator, Rng};

/// A tensor of a safetensors file.
struct Tensor {
    name: String,
    dtype: String,
    shape: Vec<u64>,
    bytes: Vec<u8>,
}

fn bits(dtype: &str) -> Option<u64> {
    Some(match dtype {
        "F64" | "I64" | "U64" | "C64" => 64,
        "F32" | "I32" | "U32" => 32,
        "F16" | "BF16" | "I16" | "U16" => 16,
        "U8" | "I8" | "BOOL" | "F8_E4M3" | "F8_E5M2" | "F8_E8M0" => 8,
        _ => return None,
    })
}

/// Splits a file into its header text and data (when the length prefix fits).
fn split(input: &[u8]) -> Option<(&[u8], &[u8])> {
    let n = u64::from_le_bytes(input.get(..8)?.try_into().ok()?);
    let end = 8usize.checked_add(usize::try_from(n).ok()?)?;
    Some((input.get(8..end)?, input.get(end..)?))
}

fn join(header: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header);
    out.extend_from_slice(data);
    out
}

fn parse(input: &[u8]) -> Option<(Option<Value>, Vec<Tensor>)> {
    let (header, data) = split(input)?;
    let header: Map<String, Value> = serde_json::from_slice(header).ok()?;
    let mut metadata = None;
    let mut tensors = Vec::new();
    for (name, v) in header {
        if name == "__metadata__" {
            metadata = Some(v);
            continue;
        }
        let dtype = v.get("dtype")?.as_str()?.to_owned();
        let shape = v
            .get("shape")?
            .as_array()?
            .iter()
            .map(Value::as_u64)
            .collect::<Option<Vec<u64>>>()?;
        let offsets = v.get("data_offsets")?.as_array()?;
        let (a, b) = (
            usize::try_from(offsets.first()?.as_u64()?).ok()?,
            usize::try_from(offsets.get(1)?.as_u64()?).ok()?,
        );
        tensors.push((
            a,
            Tensor {
                name,
                dtype,
                shape,
                bytes: data.get(a..b)?.to_vec(),
            },
        ));
    }
    tensors.sort_by_key(|(a, _)| *a);
    Some((metadata, tensors.into_iter().map(|(_, t)| t).collect()))
}

fn build(metadata: Option<Value>, tensors: &[Tensor]) -> Vec<u8> {
    let mut header = Map::new();
    if let Some(m) = metadata {
        header.insert("__metadata__".into(), m);
    }
    let mut data = Vec::new();
    for t in tensors {
        let start = data.len();
        data.extend_from_slice(&t.bytes);
        header.insert(
            t.name.clone(),
            serde_json::json!({
                "dtype": t.dtype,
                "shape": t.shape,
                "data_offsets": [start, data.len()],
            }),
        );
    }
    join(&serde_json::to_vec(&header).unwrap(), &data)
}

/// Resizes `t.bytes` to what its dtype and shape need (`false` when too big).
fn fit(t: &mut Tensor, rng: &mut Rng) -> bool {
    let Some(bits) = bits(&t.dtype) else {
        return false;
    };
    let elements = t.shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d));
    let Some(total) = elements.and_then(|e| e.checked_mul(bits)) else {
        return false;
    };
    if !total.is_multiple_of(8) || total / 8 > 4 << 20 {
        return false;
    }
    let len = (total / 8) as usize;
    let old = t.bytes.len();
    if len > old {
        let fill = rng.next_u64() as u8;
        for i in old..len {
            let b = if old > 0 && rng.one_in(2) {
                t.bytes[i % old]
            } else {
                fill
            };
            t.bytes.push(b);
        }
    }
    t.bytes.truncate(len);
    true
}

const DTYPES: [&str; 12] = [
    "F32", "F16", "BF16", "F64", "I64", "I32", "U8", "BOOL", "F8_E4M3", "I8", "U64", "C64",
];

fn rename(name: &str, rng: &mut Rng) -> String {
    let swaps = [
        ("weight", "bias"),
        ("bias", "weight"),
        ("vision_model", "text_model"),
        ("text_model", "vision_model"),
        ("layer.0", "layer.7"),
        ("layer.1", "layer.0"),
        ("query", "key"),
        ("embeddings", "encoder"),
    ];
    let (from, to) = swaps[rng.below(swaps.len())];
    if name.contains(from) && !rng.one_in(4) {
        name.replacen(from, to, 1)
    } else {
        format!("{name}.{}", rng.below(3))
    }
}

/// One structural change, the file rebuilt consistently; `None` when the input does
/// not parse as a safetensors file.
fn structured(rng: &mut Rng, input: &[u8]) -> Option<Vec<u8>> {
    let (metadata, mut tensors) = parse(input)?;
    if tensors.is_empty() {
        return None;
    }
    let i = rng.below(tensors.len());
    match rng.below(8) {
        0 | 1 => {
            let t = &mut tensors[i];
            let n = t.shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d))?;
            let shape = match rng.below(8) {
                0 => vec![],
                1 => vec![0],
                2 => vec![n],
                3 => t.shape.iter().rev().copied().collect(),
                4 => std::iter::once(1).chain(t.shape.iter().copied()).collect(),
                5 => t.shape.iter().skip(1).copied().collect(),
                6 => t
                    .shape
                    .iter()
                    .map(|&d| {
                        if rng.one_in(2) {
                            d.saturating_add(1)
                        } else {
                            d.saturating_sub(1)
                        }
                    })
                    .collect(),
                _ => t.shape.iter().map(|&d| d.saturating_mul(2)).collect(),
            };
            t.shape = shape;
            fit(t, rng).then_some(())?;
        }
        2 => {
            let t = &mut tensors[i];
            t.dtype = DTYPES[rng.below(DTYPES.len())].to_owned();
            fit(t, rng).then_some(())?;
        }
        3 => {
            tensors.remove(i);
        }
        4 => {
            let new = rename(&tensors[i].name, rng);
            if tensors.iter().any(|t| t.name == new) {
                return None;
            }
            tensors[i].name = new;
        }
        5 => {
            let t = &tensors[i];
            let copy = Tensor {
                name: rename(&t.name, rng),
                dtype: t.dtype.clone(),
                shape: t.shape.clone(),
                bytes: t.bytes.clone(),
            };
            if tensors.iter().any(|t| t.name == copy.name) {
                return None;
            }
            tensors.push(copy);
        }
        6 => {
            // Extreme values (f32 bit patterns for F32 tensors).
            let t = &mut tensors[i];
            let pattern: [u8; 4] = match rng.below(6) {
                0 => f32::NAN.to_le_bytes(),
                1 => f32::INFINITY.to_le_bytes(),
                2 => f32::NEG_INFINITY.to_le_bytes(),
                3 => 1e38f32.to_le_bytes(),
                4 => (-0.0f32).to_le_bytes(),
                _ => 1e-45f32.to_le_bytes(),
            };
            let all = rng.one_in(2);
            let at = rng.below(t.bytes.len() / 4 + 1) * 4;
            for (k, b) in t.bytes.iter_mut().enumerate() {
                if all || (k >= at && k < at + 4) {
                    *b = pattern[k % 4];
                }
            }
        }
        _ => {
            // Two tensors swap names.
            let j = rng.below(tensors.len());
            let (a, b) = (tensors[i].name.clone(), tensors[j].name.clone());
            tensors[i].name = b;
            tensors[j].name = a;
        }
    }
    Some(build(metadata, &tensors))
}

#[test]
fn fuzz_safetensors() {
    let root = workspace_root();
    let fixture = root.join("tests/fixtures/vit-bert-tiny/checkpoint");
    let tmp = tempfile::tempdir().unwrap();
    let checkpoint = tmp.path().join("checkpoint");
    std::fs::create_dir(&checkpoint).unwrap();
    for entry in std::fs::read_dir(&fixture).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap() != "model.safetensors" {
            std::fs::copy(&path, checkpoint.join(path.file_name().unwrap())).unwrap();
        }
    }
    let weights = checkpoint.join("model.safetensors");
    let out = tmp.path().join("package");
    let seed = std::fs::read(fixture.join("model.safetensors")).unwrap();
    let exports = std::cell::Cell::new(0u64);

    let target = |data: &[u8]| -> Result<(), String> {
        let parsed = safetensors::SafeTensors::read_metadata(data);
        let file = safetensors::SafeTensors::deserialize(data);
        assert_eq!(parsed.is_ok(), file.is_ok());
        let deserialized = match &file {
            Ok(file) => {
                for (name, view) in file.tensors() {
                    let bits = view
                        .shape()
                        .iter()
                        .try_fold(view.dtype().bitsize(), |a, &d| a.checked_mul(d));
                    assert_eq!(view.data().len().checked_mul(8), bits, "tensor {name}");
                }
                true
            }
            Err(_) => false,
        };
        // The exporter on every file that parses, and now and then on one that does not
        // (its error path); the export is the slow part.
        let n = exports.get();
        exports.set(n + 1);
        if !deserialized && !n.is_multiple_of(32) {
            return Err(format!(
                "safetensors: {}",
                file.err().map(|e| e.to_string()).unwrap_or_default()
            ));
        }
        std::fs::write(&weights, data).unwrap();
        let _ = std::fs::remove_dir_all(&out);
        let exported =
            vtde_export::export(&checkpoint, &out, &mut |_| {}).map_err(|e| e.to_string())?;
        let _ = exported.manifest;
        vtde_package::read_manifest(&out.join("vtde.json"))
            .map_err(|e| format!("exported package refused by the contract: {e}"))?;
        Ok(())
    };

    let mutate = |m: &mut Mutator<'_>, input: &mut Vec<u8>| {
        let choice = m.rng.below(20);
        if choice < 9 {
            if let Some(rebuilt) = structured(m.rng, input) {
                *input = rebuilt;
                return;
            }
        }
        match split(input).map(|(h, d)| (h.to_vec(), d.to_vec())) {
            Some((mut header, data)) if choice < 18 => {
                if choice < 14 {
                    if !m.json(&mut header) {
                        m.bytes(&mut header);
                    }
                } else {
                    m.bytes(&mut header);
                }
                *input = join(&header, &data);
                if m.rng.one_in(10) {
                    // A wrong length prefix.
                    let end = input.len().min(8);
                    m.bytes_in(input, 0, end);
                }
            }
            _ => {
                if m.rng.one_in(2) {
                    let end = input.len().min(64);
                    m.bytes_in(input, 0, end);
                } else {
                    m.bytes(input);
                }
            }
        }
    };

    let mut fuzzer = Fuzzer::new("safetensors")
        .seed(seed)
        .seed_files(&root.join("crates/vtde-fuzz/seeds/safetensors"))
        .dictionary(&[
            b"\"dtype\"",
            b"\"shape\"",
            b"\"data_offsets\"",
            b"\"__metadata__\"",
            b"\"F32\"",
            b"\"F16\"",
            b"\"BF16\"",
            b"\"F64\"",
            b"\"I64\"",
            b"\"F4\"",
            b"\"F6_E2M3\"",
            b"\"BOOL\"",
            b"\"logit_scale\"",
            b"\"visual_projection.weight\"",
            b"\"text_projection.weight\"",
        ])
        .mutate_with(mutate)
        .keep_if(|input| parse(input).is_some())
        .max_len(4 << 20)
        .notable(|message| message.starts_with("exported package refused"));
    for path in vtde_fuzz::files_under(&root.join("tests/fixtures")) {
        // Other checkpoints' weights splice in other tensor names and shapes.
        if path.extension().is_some_and(|e| e == "safetensors")
            && path.to_string_lossy().contains("checkpoint")
            && !path.starts_with(&fixture)
        {
            fuzzer = fuzzer.seed(std::fs::read(path).unwrap());
        }
    }
    let report = fuzzer.run(&target);
    assert!(
        report.accepted > 0,
        "the fixture's own weights did not export"
    );
    report.assert_clean();
}
