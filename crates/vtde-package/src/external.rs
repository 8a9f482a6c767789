//! The external-data files an ONNX graph references, read from the graph itself.
//!
//! ONNX Runtime loads a tensor whose `data_location` is `EXTERNAL` from the file its
//! `external_data` entry `location` names, relative to the graph's directory, whatever
//! the manifest says. The manifest's sha256 of the graph fixes these references, but not
//! the files they name: a graph whose weights file the manifest leaves out (`"weights":
//! null`) would run on whatever bytes that file holds. So the runtime reads the
//! references from the graph ([`external_data_locations`]) and requires each to be the
//! graph's declared, hashed weights file ([`check_external_data`]).
//!
//! Why read the graph rather than require every format ≥ 2 graph to declare `weights`:
//! a declaration does not say which files the graph reads. A graph can reference a
//! second file, or another name than the one declared; only the graph knows. Reading it
//! covers these and format 1 packages alike, and a graph with all its weights inside
//! needs no empty weights file.
//!
//! The scan walks the protobuf wire format with the ONNX schema's field numbers and
//! descends only into messages that can hold tensors: the graph, its nodes' attributes
//! (`Constant` values, subgraphs of `If`, `Loop` and `Scan`), sparse initializers,
//! functions and training graphs. Everything else, tensor bytes included, is skipped
//! by seeking, so a graph with its weights inside (format 1) is scanned without reading
//! them, in bounded memory.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};
use crate::manifest::GraphFiles;

/// `TensorProto.DataLocation.EXTERNAL`.
const DATA_LOCATION_EXTERNAL: u64 = 1;

/// protobuf's own default recursion limit: deeper nesting is refused, not followed.
const MAX_DEPTH: usize = 100;

/// Longest `external_data` key or value read (a file name, an offset): 64 KiB.
const MAX_ENTRY_BYTES: u64 = 64 * 1024;

/// The ONNX messages the scan descends into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Msg {
    Model,
    Graph,
    Node,
    Attribute,
    Function,
    TrainingInfo,
    Tensor,
    SparseTensor,
    Entry,
}

/// The message held by `field` of `msg`, for the fields that can lead to a tensor
/// (field numbers from `onnx.proto`).
fn child(msg: Msg, field: u64) -> Option<Msg> {
    use Msg::*;
    Some(match (msg, field) {
        (Model, 7) => Graph,         // ModelProto.graph
        (Model, 20) => TrainingInfo, // ModelProto.training_info
        (Model, 25) => Function,     // ModelProto.functions
        (TrainingInfo, 1 | 2) => Graph,
        (Graph, 1) => Node,            // GraphProto.node
        (Graph, 5) => Tensor,          // GraphProto.initializer
        (Graph, 15) => SparseTensor,   // GraphProto.sparse_initializer
        (Node, 5) => Attribute,        // NodeProto.attribute
        (Function, 7) => Node,         // FunctionProto.node
        (Function, 11) => Attribute,   // FunctionProto.attribute_proto
        (Attribute, 5 | 10) => Tensor, // AttributeProto.t, .tensors
        (Attribute, 6 | 11) => Graph,  // AttributeProto.g, .graphs
        (Attribute, 22 | 23) => SparseTensor,
        (SparseTensor, 1 | 2) => Tensor, // SparseTensorProto.values, .indices
        (Tensor, 13) => Entry,           // TensorProto.external_data
        _ => return None,
    })
}

/// What a message told its parent.
#[derive(Debug, Default)]
struct Found {
    /// An `external_data` entry's key and value.
    key: Option<String>,
    value: Option<String>,
}

struct Scanner<R> {
    reader: BufReader<R>,
    pos: u64,
    locations: BTreeSet<String>,
}

impl<R: Read + Seek> Scanner<R> {
    fn byte(&mut self) -> std::result::Result<u8, String> {
        let mut b = [0u8; 1];
        self.reader
            .read_exact(&mut b)
            .map_err(|e| format!("at byte {}: {e}", self.pos))?;
        self.pos += 1;
        Ok(b[0])
    }

    fn varint(&mut self) -> std::result::Result<u64, String> {
        let mut value = 0u64;
        for i in 0..10 {
            let b = self.byte()?;
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(format!(
            "a varint longer than 10 bytes at byte {}",
            self.pos
        ))
    }

    fn skip(&mut self, n: u64, end: u64) -> std::result::Result<(), String> {
        let to = self
            .pos
            .checked_add(n)
            .filter(|&to| to <= end)
            .ok_or_else(|| {
                format!(
                    "a field at byte {} runs past the end of its message",
                    self.pos
                )
            })?;
        let offset = i64::try_from(n).map_err(|_| "a field longer than 2^63 bytes".to_owned())?;
        self.reader
            .seek_relative(offset)
            .map_err(|e| format!("at byte {}: {e}", self.pos))?;
        self.pos = to;
        Ok(())
    }

    fn string(&mut self, len: u64) -> std::result::Result<String, String> {
        if len > MAX_ENTRY_BYTES {
            return Err(format!(
                "an external_data entry of {len} bytes at byte {}",
                self.pos
            ));
        }
        let mut bytes = vec![0u8; len as usize];
        self.reader
            .read_exact(&mut bytes)
            .map_err(|e| format!("at byte {}: {e}", self.pos))?;
        self.pos += len;
        String::from_utf8(bytes).map_err(|_| {
            format!(
                "an external_data entry that is not UTF-8 before byte {}",
                self.pos
            )
        })
    }

    /// Skips a group (wire type 3) up to its end tag; ONNX has none, but a protobuf
    /// parser accepts and skips them, so the scan must too.
    fn skip_group(
        &mut self,
        field: u64,
        end: u64,
        depth: usize,
    ) -> std::result::Result<(), String> {
        if depth > MAX_DEPTH {
            return Err("groups nested too deeply".into());
        }
        while self.pos < end {
            let tag = self.varint()?;
            let (f, wire) = (tag >> 3, tag & 7);
            match wire {
                0 => {
                    self.varint()?;
                }
                1 => self.skip(8, end)?,
                2 => {
                    let len = self.varint()?;
                    self.skip(len, end)?;
                }
                3 => self.skip_group(f, end, depth + 1)?,
                4 if f == field => return Ok(()),
                5 => self.skip(4, end)?,
                _ => return Err(format!("a malformed group before byte {}", self.pos)),
            }
        }
        Err("a group without its end".into())
    }

    /// Scans one message of type `msg` that ends at byte `end`.
    fn message(&mut self, msg: Msg, end: u64, depth: usize) -> std::result::Result<Found, String> {
        if depth > MAX_DEPTH {
            return Err(format!("messages nested more than {MAX_DEPTH} deep"));
        }
        let mut found = Found::default();
        let mut data_location = 0;
        let mut locations = Vec::new();
        while self.pos < end {
            let tag = self.varint()?;
            let (field, wire) = (tag >> 3, tag & 7);
            if field == 0 {
                return Err(format!("field number 0 before byte {}", self.pos));
            }
            match wire {
                0 => {
                    let v = self.varint()?;
                    if msg == Msg::Tensor && field == 14 {
                        data_location = v;
                    }
                }
                1 => self.skip(8, end)?,
                5 => self.skip(4, end)?,
                2 => {
                    let len = self.varint()?;
                    let child_end =
                        self.pos
                            .checked_add(len)
                            .filter(|&e| e <= end)
                            .ok_or_else(|| {
                                format!(
                                    "a field at byte {} runs past the end of its message",
                                    self.pos
                                )
                            })?;
                    match (msg, field) {
                        (Msg::Entry, 1) => found.key = Some(self.string(len)?),
                        (Msg::Entry, 2) => found.value = Some(self.string(len)?),
                        _ => match child(msg, field) {
                            Some(c) => {
                                let sub = self.message(c, child_end, depth + 1)?;
                                if c == Msg::Entry && sub.key.as_deref() == Some("location") {
                                    locations.push(sub.value.unwrap_or_default());
                                }
                            }
                            None => self.skip(len, end)?,
                        },
                    }
                    if self.pos != child_end {
                        return Err(format!("a malformed field ending at byte {child_end}"));
                    }
                }
                3 => self.skip_group(field, end, depth + 1)?,
                _ => {
                    return Err(format!(
                        "wire type {wire} of field {field} before byte {}",
                        self.pos
                    ))
                }
            }
        }
        if self.pos != end {
            return Err(format!("a message overruns its end at byte {end}"));
        }
        if msg == Msg::Tensor {
            if data_location == DATA_LOCATION_EXTERNAL && locations.is_empty() {
                return Err("a tensor stored externally names no `location`".into());
            }
            // A `location` counts even when `data_location` is not EXTERNAL: the scan
            // errs on the side of the files that might be read.
            self.locations.extend(locations);
        }
        Ok(found)
    }
}

/// The external-data files (`location`s, as written, relative to the graph's directory)
/// that the ONNX graph read from `reader` (`len` bytes) references; empty for a graph
/// with its weights inside. An error says why the bytes are not a readable graph.
fn scan<R: Read + Seek>(reader: R, len: u64) -> std::result::Result<BTreeSet<String>, String> {
    let mut scanner = Scanner {
        reader: BufReader::new(reader),
        pos: 0,
        locations: BTreeSet::new(),
    };
    scanner.message(Msg::Model, len, 0)?;
    Ok(scanner.locations)
}

/// The external-data files the ONNX graph at `path` references (each `location`, as
/// written in the graph, relative to its directory), sorted and without repeats; empty
/// when all its weights are inside. Reads the graph's structure only (see the module
/// documentation).
pub fn external_data_locations(path: &Path) -> Result<Vec<String>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    scan(file, len)
        .map(|set| set.into_iter().collect())
        .map_err(|message| Error::InvalidGraph {
            path: path.to_path_buf(),
            message,
        })
}

/// The path, relative to the package directory, that `location` in the graph `graph_file`
/// (relative to the package directory) names; `None` when it leaves the package or is
/// not a plain relative path.
fn resolve(graph_file: &str, location: &str) -> Option<PathBuf> {
    let mut path = Path::new(graph_file)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let mut any = false;
    for c in Path::new(location).components() {
        match c {
            Component::Normal(part) => {
                path.push(part);
                any = true;
            }
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    any.then_some(path)
}

/// Checks that the graph `files.file` of the package in `dir` reads external data from
/// its declared weights file only (`files.weights`, which the manifest hashes), and from
/// no other file: see the module documentation.
pub fn check_external_data(dir: &Path, files: GraphFiles<'_>) -> Result<()> {
    let graph = dir.join(files.file);
    let declared = files.weights.map(|w| Path::new(&w.file));
    for location in external_data_locations(&graph)? {
        let resolved = resolve(files.file, &location);
        let ok = match (&resolved, declared) {
            (Some(resolved), Some(declared)) => resolved.components().eq(declared.components()),
            _ => false,
        };
        if !ok {
            return Err(Error::UndeclaredExternalData {
                graph,
                location,
                declared: files.weights.map(|w| w.file.clone()),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// Protobuf encoding, by hand, of the few ONNX messages the tests need.
    fn varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }

    fn field_bytes(field: u64, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        varint(field << 3 | 2, &mut out);
        varint(bytes.len() as u64, &mut out);
        out.extend_from_slice(bytes);
        out
    }

    fn field_varint(field: u64, v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        varint(field << 3, &mut out);
        varint(v, &mut out);
        out
    }

    fn entry(key: &str, value: &str) -> Vec<u8> {
        [
            field_bytes(1, key.as_bytes()),
            field_bytes(2, value.as_bytes()),
        ]
        .concat()
    }

    /// A TensorProto named `name`: external at `location`, or with `raw` bytes inside.
    fn tensor(name: &str, location: Option<&str>, raw: &[u8]) -> Vec<u8> {
        let mut t = [
            field_varint(1, 4),
            field_varint(2, 1),
            field_bytes(8, name.as_bytes()),
        ]
        .concat();
        match location {
            Some(loc) => {
                t.extend(field_bytes(13, &entry("location", loc)));
                t.extend(field_bytes(13, &entry("offset", "0")));
                t.extend(field_varint(14, DATA_LOCATION_EXTERNAL));
            }
            None => t.extend(field_bytes(9, raw)),
        }
        t
    }

    fn model(graph: &[u8]) -> Vec<u8> {
        [
            field_varint(1, 8),
            field_bytes(2, b"test"),
            field_bytes(7, graph),
            field_bytes(8, &[field_bytes(1, b""), field_varint(2, 17)].concat()),
        ]
        .concat()
    }

    fn locations(bytes: &[u8]) -> std::result::Result<Vec<String>, String> {
        scan(Cursor::new(bytes.to_vec()), bytes.len() as u64).map(|s| s.into_iter().collect())
    }

    #[test]
    fn initializers_inside_the_graph_reference_nothing() {
        let graph = [
            field_bytes(2, b"g"),
            field_bytes(5, &tensor("w", None, &[7u8; 5000])),
        ]
        .concat();
        assert_eq!(locations(&model(&graph)).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn external_initializers_are_found_sorted_and_once() {
        let graph = [
            field_bytes(5, &tensor("a", Some("x.data"), &[])),
            field_bytes(5, &tensor("b", Some("a.data"), &[])),
            field_bytes(5, &tensor("c", Some("x.data"), &[])),
        ]
        .concat();
        assert_eq!(locations(&model(&graph)).unwrap(), ["a.data", "x.data"]);
    }

    #[test]
    fn references_in_constants_subgraphs_sparse_tensors_and_functions_are_found() {
        // Node { attribute: Attribute { t: Tensor(external) } }: a Constant.
        let constant = field_bytes(
            5,
            &[
                field_bytes(1, b"value"),
                field_bytes(5, &tensor("k", Some("const.bin"), &[])),
            ]
            .concat(),
        );
        let node = [field_bytes(4, b"Constant"), constant].concat();
        // Node { attribute: Attribute { g: Graph { initializer: external } } }: an If.
        let sub = field_bytes(5, &tensor("s", Some("sub.bin"), &[]));
        let if_node = field_bytes(
            5,
            &[field_bytes(1, b"then_branch"), field_bytes(6, &sub)].concat(),
        );
        // Graph.sparse_initializer { values: external }.
        let sparse = field_bytes(1, &tensor("v", Some("sparse.bin"), &[]));
        let graph = [
            field_bytes(1, &node),
            field_bytes(1, &if_node),
            field_bytes(15, &sparse),
        ]
        .concat();
        // ModelProto.functions { node { attribute { t: external } } }.
        let f_node = field_bytes(
            5,
            &[
                field_bytes(1, b"value"),
                field_bytes(5, &tensor("f", Some("func.bin"), &[])),
            ]
            .concat(),
        );
        let function = [field_bytes(1, b"fn"), field_bytes(7, &f_node)].concat();
        let bytes = [model(&graph), field_bytes(25, &function)].concat();
        assert_eq!(
            locations(&bytes).unwrap(),
            ["const.bin", "func.bin", "sparse.bin", "sub.bin"]
        );
    }

    #[test]
    fn an_external_tensor_without_location_is_an_error() {
        let t = [
            field_bytes(8, b"w"),
            field_varint(14, DATA_LOCATION_EXTERNAL),
        ]
        .concat();
        let err = locations(&model(&field_bytes(5, &t))).unwrap_err();
        assert!(err.contains("location"), "{err}");
    }

    #[test]
    fn truncated_and_overlong_fields_are_errors_not_panics() {
        let full = model(&field_bytes(5, &tensor("a", Some("x.data"), &[])));
        for cut in 1..full.len() {
            // Every prefix either scans (it ends on a field boundary) or errs.
            let _ = locations(&full[..cut]);
        }
        // A length far past the end.
        let mut bad = Vec::new();
        varint(7 << 3 | 2, &mut bad);
        varint(u64::MAX >> 1, &mut bad);
        assert!(locations(&bad).is_err());
        // An unterminated varint.
        assert!(locations(&[0x80; 11]).is_err());
        // Nesting past the limit.
        // Graph { node { attribute { g: Graph { ... } } } }, 3 levels per round.
        let nested = |rounds: usize| {
            let mut graph = field_bytes(5, &tensor("d", Some("deep.bin"), &[]));
            for _ in 0..rounds {
                let attribute = field_bytes(6, &graph);
                let node = field_bytes(5, &attribute);
                graph = field_bytes(1, &node);
            }
            model(&graph)
        };
        assert_eq!(locations(&nested(30)).unwrap(), ["deep.bin"]);
        let err = locations(&nested(40)).unwrap_err();
        assert!(err.contains("nested"), "{err}");
    }

    #[test]
    fn locations_resolve_relative_to_the_graph() {
        assert_eq!(
            resolve("vision.onnx", "vision.onnx.data"),
            Some("vision.onnx.data".into())
        );
        assert_eq!(
            resolve("sub/vision.onnx", "./w.data"),
            Some("sub/w.data".into())
        );
        assert_eq!(resolve("vision.onnx", "../w.data"), None);
        assert_eq!(resolve("vision.onnx", "/etc/passwd"), None);
        assert_eq!(resolve("vision.onnx", ""), None);
    }
}
