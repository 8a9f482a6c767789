//! The records that `vtde` writes, and reading complete ones back (for `--resume` and
//! `vtde merge`).
//!
//! Every record ends with `\n`, so a record whose end is missing (a run killed while
//! writing it) is recognised and dropped: [`scan`] returns the records that are complete
//! and well-formed, and the length of the valid prefix of the file. CSV follows RFC 4180
//! (a field with a comma, quote or line break is quoted, quotes doubled); JSONL holds one
//! JSON object per line, with a string `path` (or `text`) member that identifies the item.

use std::borrow::Cow;

use anyhow::{bail, Result};

use crate::args::Format;

/// Quotes a CSV field when it holds a comma, quote or line break.
pub fn csv_field(s: &str) -> Cow<'_, str> {
    if s.contains([',', '"', '\n', '\r']) {
        Cow::Owned(format!("\"{}\"", s.replace('"', "\"\"")))
    } else {
        Cow::Borrowed(s)
    }
}

/// A JSON string literal.
pub fn json_string(s: &str) -> String {
    // Serializing a &str cannot fail; the fallback keeps this total anyway.
    serde_json::to_string(s).unwrap_or_else(|_| String::from("\"\""))
}

/// A JSON number for an f32 (shortest round-trip form; NaN and infinities as null).
pub fn json_f32(x: f32) -> String {
    if x.is_finite() {
        serde_json::to_string(&x).unwrap_or_else(|_| String::from("null"))
    } else {
        String::from("null")
    }
}

fn csv_line<'a>(fields: impl IntoIterator<Item = Cow<'a, str>>) -> String {
    let mut line = String::new();
    for (i, f) in fields.into_iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        line.push_str(&f);
    }
    line.push('\n');
    line
}

/// How `vtde score` writes one image's probabilities.
#[derive(Debug, Clone)]
pub struct ScoreRecords {
    pub format: Format,
    pub labels: Vec<String>,
    /// Only the k most probable labels, most probable first.
    pub top_k: Option<usize>,
}

impl ScoreRecords {
    /// The CSV header line: `path,<label>...`, or `path,label_1,prob_1,...` with top-k.
    pub fn header(&self) -> Option<String> {
        match self.format {
            Format::Jsonl => None,
            Format::Csv => {
                let mut fields = vec![Cow::Borrowed("path")];
                match self.top_k {
                    None => fields.extend(self.labels.iter().map(|l| csv_field(l))),
                    Some(k) => {
                        for i in 1..=k.min(self.labels.len()) {
                            fields.push(Cow::Owned(format!("label_{i}")));
                            fields.push(Cow::Owned(format!("prob_{i}")));
                        }
                    }
                }
                Some(csv_line(fields))
            }
        }
    }

    /// One record: all probabilities in label order, or the top k.
    pub fn record(&self, path: &str, probs: &[f32]) -> String {
        let ranked = self.top_k.map(|k| top_k(probs, k));
        match (self.format, ranked) {
            (Format::Csv, None) => csv_line(
                std::iter::once(csv_field(path))
                    .chain(probs.iter().map(|p| Cow::Owned(format!("{p:.6}")))),
            ),
            (Format::Csv, Some(ranked)) => {
                let mut fields = vec![csv_field(path)];
                for i in ranked {
                    fields.push(csv_field(&self.labels[i]));
                    fields.push(Cow::Owned(format!("{:.6}", probs[i])));
                }
                csv_line(fields)
            }
            (Format::Jsonl, None) => {
                let members: Vec<String> = self
                    .labels
                    .iter()
                    .zip(probs)
                    .map(|(l, &p)| format!("{}:{}", json_string(l), json_f32(p)))
                    .collect();
                format!(
                    "{{\"path\":{},\"probs\":{{{}}}}}\n",
                    json_string(path),
                    members.join(",")
                )
            }
            (Format::Jsonl, Some(ranked)) => {
                let items: Vec<String> = ranked
                    .into_iter()
                    .map(|i| {
                        format!(
                            "{{\"label\":{},\"prob\":{}}}",
                            json_string(&self.labels[i]),
                            json_f32(probs[i])
                        )
                    })
                    .collect();
                format!(
                    "{{\"path\":{},\"top\":[{}]}}\n",
                    json_string(path),
                    items.join(",")
                )
            }
        }
    }
}

/// Indices of the `k` largest values, largest first; ties keep label order.
pub fn top_k(values: &[f32], k: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    // NaN sorts last (it never is a top label).
    let key = |i: usize| {
        if values[i].is_nan() {
            f32::NEG_INFINITY
        } else {
            values[i]
        }
    };
    order.sort_by(|&a, &b| key(b).total_cmp(&key(a)));
    order.truncate(k);
    order
}

/// The header of an errors file.
pub fn error_header(format: Format) -> Option<String> {
    match format {
        Format::Csv => Some(String::from("path,error\n")),
        Format::Jsonl => None,
    }
}

/// One line of an errors file: the path and why it failed.
pub fn error_record(format: Format, path: &str, reason: &str) -> String {
    // One line per record, whatever the reason says.
    let reason = reason.replace(['\n', '\r'], " ");
    match format {
        Format::Csv => csv_line([csv_field(path), csv_field(&reason)]),
        Format::Jsonl => format!(
            "{{\"path\":{},\"error\":{}}}\n",
            json_string(path),
            json_string(&reason)
        ),
    }
}

/// A complete record found by [`scan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Byte range of the record, its final `\n` included.
    pub start: usize,
    pub end: usize,
    /// The item it is about: the first CSV field, or the JSON member `key`.
    pub key: String,
}

/// What [`scan`] found.
#[derive(Debug, Default)]
pub struct Scan {
    /// End of the CSV header (0 when there is none, or not all of it is there).
    pub header_end: usize,
    pub records: Vec<Record>,
    /// Length of the valid prefix: header and complete records. Anything after it is an
    /// unfinished or damaged tail.
    pub valid_len: usize,
}

/// Reads the complete records of a file's bytes. For CSV, `header` is the header line
/// the file must start with; a file that holds only part of it is treated as empty, one
/// that starts with another header is an error (it was written with other settings).
/// Records must have as many fields as the header; JSONL records must be objects with a
/// string member `key`.
pub fn scan(format: Format, bytes: &[u8], header: Option<&str>, key: &str) -> Result<Scan> {
    let mut scan = Scan::default();
    let mut pos = 0;
    let mut columns = None;
    if let (Format::Csv, Some(header)) = (format, header) {
        let h = header.as_bytes();
        if bytes.len() < h.len() {
            if h.starts_with(bytes) {
                return Ok(scan);
            }
            bail!("it starts with another header than {:?}", header.trim_end());
        }
        if &bytes[..h.len()] != h {
            bail!("it starts with another header than {:?}", header.trim_end());
        }
        columns = csv_record(h, 0).map(|(fields, _)| fields.len());
        pos = h.len();
        scan.header_end = pos;
    }
    while pos < bytes.len() {
        let parsed = match format {
            Format::Csv => csv_record(bytes, pos).and_then(|(fields, end)| {
                let fits = columns.is_none_or(|n| n == fields.len());
                let first = fields.into_iter().next()?;
                fits.then_some((first, end))
            }),
            Format::Jsonl => jsonl_record(bytes, pos, key),
        };
        let Some((record_key, end)) = parsed else {
            break;
        };
        scan.records.push(Record {
            start: pos,
            end,
            key: record_key,
        });
        pos = end;
    }
    scan.valid_len = pos;
    Ok(scan)
}

/// One CSV record starting at `start`: its fields and the end (after its `\n`), or None
/// when the record is unfinished or malformed.
fn csv_record(bytes: &[u8], start: usize) -> Option<(Vec<String>, usize)> {
    let mut fields = Vec::new();
    let mut field = Vec::new();
    let mut quoted = false;
    let mut field_start = true;
    let mut i = start;
    while i < bytes.len() {
        let b = bytes[i];
        if quoted {
            if b == b'"' {
                if bytes.get(i + 1) == Some(&b'"') {
                    field.push(b'"');
                    i += 1;
                } else {
                    quoted = false;
                }
            } else {
                field.push(b);
            }
        } else {
            match b {
                b'"' if field_start => quoted = true,
                b'"' => return None,
                b',' => {
                    fields.push(String::from_utf8(std::mem::take(&mut field)).ok()?);
                    field_start = true;
                    i += 1;
                    continue;
                }
                b'\n' => {
                    if field.last() == Some(&b'\r') {
                        field.pop();
                    }
                    fields.push(String::from_utf8(field).ok()?);
                    return Some((fields, i + 1));
                }
                _ => field.push(b),
            }
        }
        field_start = false;
        i += 1;
    }
    None
}

fn jsonl_record(bytes: &[u8], start: usize, key: &str) -> Option<(String, usize)> {
    let len = bytes[start..].iter().position(|&b| b == b'\n')?;
    let line = &bytes[start..start + len];
    let value: serde_json::Value = serde_json::from_slice(line).ok()?;
    let k = value.get(key)?.as_str()?.to_owned();
    Some((k, start + len + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> ScoreRecords {
        ScoreRecords {
            format: Format::Csv,
            labels: vec!["a cat".into(), "dog, big".into(), "say \"hi\"".into()],
            top_k: None,
        }
    }

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        assert_eq!(csv_field("a cat"), "a cat");
        assert_eq!(csv_field("cat, dog"), "\"cat, dog\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }

    #[test]
    fn csv_records_read_back_and_partial_tails_are_dropped() {
        let r = labels();
        let header = r.header().expect("csv header");
        let paths = ["plain.png", "with,comma.png", "new\nline \"q\".png"];
        let mut file = header.clone();
        for p in paths {
            file.push_str(&r.record(p, &[0.5, 0.25, 0.25]));
        }
        let full = file.len();
        let scan = scan(Format::Csv, file.as_bytes(), Some(&header), "path").expect("scan");
        let keys: Vec<&str> = scan.records.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, paths);
        assert_eq!(scan.valid_len, full);
        // Every cut inside the last record drops exactly that record.
        let last_start = scan.records[2].start;
        for cut in last_start..full {
            let s = super::scan(Format::Csv, &file.as_bytes()[..cut], Some(&header), "path")
                .expect("scan");
            assert_eq!(s.records.len(), 2, "cut at {cut}");
            assert_eq!(s.valid_len, last_start);
        }
        // A cut inside the header: nothing is valid, and it is no error.
        let s = super::scan(Format::Csv, &file.as_bytes()[..3], Some(&header), "path");
        assert_eq!(s.expect("scan").valid_len, 0);
        // Another header is an error.
        assert!(super::scan(Format::Csv, b"path,x\n", Some(&header), "path").is_err());
    }

    #[test]
    fn jsonl_records_read_back_and_partial_tails_are_dropped() {
        let r = ScoreRecords {
            format: Format::Jsonl,
            top_k: Some(2),
            ..labels()
        };
        assert!(r.header().is_none());
        let a = r.record("a\n\"b\".png", &[0.1, 0.7, 0.2]);
        let v: serde_json::Value = serde_json::from_str(&a).expect("json");
        assert_eq!(v["path"], "a\n\"b\".png");
        assert_eq!(v["top"][0]["label"], "dog, big");
        assert_eq!(v["top"][1]["label"], "say \"hi\"");
        let file = format!("{a}{a}");
        for cut in a.len()..file.len() {
            let s = scan(Format::Jsonl, &file.as_bytes()[..cut], None, "path").expect("scan");
            assert_eq!(s.records.len(), 1);
            assert_eq!(s.valid_len, a.len());
        }
    }

    #[test]
    fn top_k_orders_by_value_then_label() {
        assert_eq!(top_k(&[0.2, 0.5, 0.2, f32::NAN], 3), [1, 0, 2]);
        assert_eq!(top_k(&[0.2], 5), [0]);
    }

    #[test]
    fn error_records_are_one_line() {
        let line = error_record(Format::Csv, "x,y.png", "bad\nfile");
        assert_eq!(line, "\"x,y.png\",bad file\n");
        let line = error_record(Format::Jsonl, "x.png", "bad");
        assert_eq!(line, "{\"path\":\"x.png\",\"error\":\"bad\"}\n");
    }
}
