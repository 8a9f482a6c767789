//! Reading a Hugging Face checkpoint directory: `config.json` and the safetensors
//! weights (single file or sharded), upcast to f32.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use crate::error::{Error, Result};

/// A weight tensor, upcast to f32, in row-major order.
#[derive(Debug, Clone)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl Tensor {
    /// The transpose of a 2-D tensor (`[out, in]` torch Linear → `[in, out]` for MatMul).
    pub fn transposed(&self) -> Tensor {
        let (rows, cols) = (self.shape[0], self.shape[1]);
        let mut data = vec![0.0; self.data.len()];
        for r in 0..rows {
            for c in 0..cols {
                data[c * rows + r] = self.data[r * cols + c];
            }
        }
        Tensor {
            shape: vec![cols, rows],
            data,
        }
    }
}

/// Reads a JSON file, with errors that name it.
pub fn read_json(path: &Path) -> Result<Json> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| Error::Json {
        path: path.to_owned(),
        source,
    })
}

/// Typed access to one JSON object of a config file (the whole `config.json`, or its
/// `vision_config` / `text_config`), with errors that name the file and the key.
#[derive(Debug, Clone)]
pub struct ConfigView<'a> {
    pub path: &'a Path,
    /// Where this object sits in the file, e.g. `vision_config.`, for messages.
    pub prefix: String,
    pub json: &'a Json,
}

impl<'a> ConfigView<'a> {
    pub fn new(path: &'a Path, json: &'a Json) -> Self {
        Self {
            path,
            prefix: String::new(),
            json,
        }
    }

    /// The sub-object under `key`.
    pub fn child(&self, key: &str) -> Result<ConfigView<'a>> {
        match self.json.get(key) {
            Some(json) if json.is_object() => Ok(ConfigView {
                path: self.path,
                prefix: format!("{}{key}.", self.prefix),
                json,
            }),
            _ => Err(self.problem(key, "is missing or not an object")),
        }
    }

    pub fn problem(&self, key: &str, what: &str) -> Error {
        Error::Config {
            path: self.path.to_owned(),
            problem: format!("`{}{key}` {what}", self.prefix),
        }
    }

    fn get(&self, key: &str) -> Option<&'a Json> {
        self.json.get(key).filter(|v| !v.is_null())
    }

    pub fn str_or(&self, key: &str, default: &str) -> Result<String> {
        match self.get(key) {
            None => Ok(default.to_owned()),
            Some(v) => v
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| self.problem(key, "should be a string")),
        }
    }

    pub fn usize_or(&self, key: &str, default: usize) -> Result<usize> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_u64()
                .map(|n| n as usize)
                .ok_or_else(|| self.problem(key, "should be a non-negative integer")),
        }
    }

    pub fn opt_usize(&self, key: &str) -> Result<Option<usize>> {
        match self.get(key) {
            None => Ok(None),
            Some(_) => self.usize_or(key, 0).map(Some),
        }
    }

    /// A number, which must be finite as an f32 (1e39 is not).
    pub fn f32_or(&self, key: &str, default: f32) -> Result<f32> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => {
                let x = v
                    .as_f64()
                    .map(|x| x as f32)
                    .ok_or_else(|| self.problem(key, "should be a number"))?;
                if x.is_finite() {
                    Ok(x)
                } else {
                    Err(self.problem(key, &format!("is {v}, beyond the range of f32")))
                }
            }
        }
    }

    /// A layer norm's epsilon: a finite number, not negative (a negative one can make
    /// the variance plus epsilon negative, and its square root NaN).
    pub fn eps_or(&self, key: &str, default: f32) -> Result<f32> {
        let eps = self.f32_or(key, default)?;
        if eps < 0.0 {
            return Err(self.problem(key, &format!("is {eps}; it must not be negative")));
        }
        Ok(eps)
    }

    pub fn bool_or(&self, key: &str, default: bool) -> Result<bool> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_bool()
                .ok_or_else(|| self.problem(key, "should be true or false")),
        }
    }

    /// An integer that may also be given as `[n, n]` (image and patch sizes).
    pub fn square_or(&self, key: &str, default: usize) -> Result<usize> {
        match self.get(key) {
            Some(Json::Array(items)) => {
                let sizes: Vec<u64> = items.iter().filter_map(Json::as_u64).collect();
                match sizes.as_slice() {
                    [a, b] if a == b => Ok(*a as usize),
                    _ => Err(self.problem(key, "should be one size or two equal sizes")),
                }
            }
            _ => self.usize_or(key, default),
        }
    }
}

/// A weight holding a NaN or infinite value.
#[derive(Debug, Clone)]
struct NonFinite {
    /// The safetensors file.
    file: PathBuf,
    /// The first such value and its index in the flattened tensor.
    value: f32,
    index: usize,
}

/// All weights of a checkpoint, by their names in the safetensors files.
#[derive(Debug)]
pub struct Weights {
    tensors: HashMap<String, Tensor>,
    /// The weights holding a NaN or infinity: an error when the export reads them (a
    /// checkpoint may carry unused buffers the export never reads).
    non_finite: HashMap<String, NonFinite>,
    /// The safetensors file of each weight.
    files: HashMap<String, PathBuf>,
}

impl Weights {
    /// Loads `model.safetensors`, or the shards listed in `model.safetensors.index.json`.
    pub fn load(dir: &Path) -> Result<Self> {
        let single = dir.join("model.safetensors");
        let index = dir.join("model.safetensors.index.json");
        let files: Vec<PathBuf> = if single.is_file() {
            vec![single]
        } else if index.is_file() {
            shard_files(dir, &index)?
        } else if dir.join("pytorch_model.bin").is_file() {
            return Err(Error::MissingFile {
                path: single,
                hint: "this checkpoint has only pytorch_model.bin; convert it once with \
                       transformers: `AutoModel.from_pretrained(dir).save_pretrained(dir, \
                       safe_serialization=True)`"
                    .to_owned(),
            });
        } else {
            return Err(Error::MissingFile {
                path: single,
                hint: "a checkpoint needs model.safetensors or model.safetensors.index.json"
                    .to_owned(),
            });
        };
        let mut tensors = HashMap::new();
        let mut non_finite = HashMap::new();
        let mut weight_files = HashMap::new();
        for file in files {
            let mut loaded = HashMap::new();
            load_safetensors(&file, &mut loaded)?;
            for (name, tensor) in loaded {
                if let Some((index, &value)) =
                    tensor.data.iter().enumerate().find(|(_, v)| !v.is_finite())
                {
                    non_finite.insert(
                        name.clone(),
                        NonFinite {
                            file: file.clone(),
                            value,
                            index,
                        },
                    );
                }
                weight_files.insert(name.clone(), file.clone());
                tensors.insert(name, tensor);
            }
        }
        Ok(Self {
            tensors,
            non_finite,
            files: weight_files,
        })
    }

    /// The safetensors file holding the weight `name`.
    pub fn file_of(&self, name: &str) -> Option<&Path> {
        self.files.get(name).map(PathBuf::as_path)
    }

    /// The names of the weights, for checks across them.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    /// The weight called `name`, or under the first of `aliases` that exists (older
    /// and newer transformers versions name some modules differently).
    ///
    /// A weight holding a NaN or infinity is an error naming it and its file: the graphs
    /// would compute NaN scores from it.
    pub fn get(&self, name: &str, aliases: &[String]) -> Result<&Tensor> {
        for key in std::iter::once(name).chain(aliases.iter().map(String::as_str)) {
            if let Some(t) = self.tensors.get(key) {
                if let Some(bad) = self.non_finite.get(key) {
                    return Err(Error::NonFiniteWeight {
                        path: bad.file.clone(),
                        name: key.to_owned(),
                        value: bad.value,
                        index: bad.index,
                    });
                }
                return Ok(t);
            }
        }
        let mut tried = vec![name.to_owned()];
        tried.extend(aliases.iter().cloned());
        Err(Error::MissingWeight {
            name: name.to_owned(),
            tried: tried.join(", "),
        })
    }

    /// Whether a weight called `name` exists.
    #[cfg(test)]
    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// In-memory weights, for unit tests of the code that reads them.
    #[cfg(test)]
    pub(crate) fn from_tensors(tensors: impl IntoIterator<Item = (String, Tensor)>) -> Self {
        Self {
            tensors: tensors.into_iter().collect(),
            non_finite: HashMap::new(),
            files: HashMap::new(),
        }
    }
}

fn shard_files(dir: &Path, index: &Path) -> Result<Vec<PathBuf>> {
    let json = read_json(index)?;
    let map = json
        .get("weight_map")
        .and_then(Json::as_object)
        .ok_or_else(|| Error::Config {
            path: index.to_owned(),
            problem: "`weight_map` is missing or not an object".to_owned(),
        })?;
    let mut names: Vec<&str> = map.values().filter_map(Json::as_str).collect();
    names.sort_unstable();
    names.dedup();
    let mut files = Vec::with_capacity(names.len());
    for name in names {
        // Shard names come from the file: refuse anything that would leave the directory.
        if name.contains('/') || name.contains('\\') || name == ".." {
            return Err(Error::Config {
                path: index.to_owned(),
                problem: format!("shard name `{name}` is not a plain file name"),
            });
        }
        files.push(dir.join(name));
    }
    Ok(files)
}

fn load_safetensors(path: &Path, into: &mut HashMap<String, Tensor>) -> Result<()> {
    let bytes = std::fs::read(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })?;
    let file = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| Error::Safetensors {
        path: path.to_owned(),
        problem: e.to_string(),
    })?;
    for (name, view) in file.tensors() {
        let raw = view.data();
        let data: Vec<f32> = match view.dtype() {
            safetensors::Dtype::F32 => raw
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            safetensors::Dtype::F16 => raw
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            safetensors::Dtype::BF16 => raw
                .chunks_exact(2)
                .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            // Integer buffers (e.g. position_ids) are not weights the graphs need.
            safetensors::Dtype::I64 | safetensors::Dtype::I32 => continue,
            other => {
                return Err(Error::WeightDtype {
                    name,
                    dtype: format!("{other:?}"),
                })
            }
        };
        into.insert(
            name,
            Tensor {
                shape: view.shape().to_vec(),
                data,
            },
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_beyond_f32_and_negative_epsilons_are_refused_naming_the_key() {
        let json = serde_json::json!({
            "big": 1e39,
            "fine": 1e-12,
            "negative": -1e-5,
            "zero": 0.0
        });
        let path = Path::new("ckpt/config.json");
        let cfg = ConfigView::new(path, &json);
        let err = cfg.f32_or("big", 1.0).unwrap_err().to_string();
        assert!(
            err.contains("config.json") && err.contains("`big`"),
            "{err}"
        );
        assert_eq!(cfg.eps_or("fine", 1.0).unwrap(), 1e-12);
        assert_eq!(cfg.eps_or("zero", 1.0).unwrap(), 0.0);
        assert_eq!(cfg.eps_or("missing", 1e-5).unwrap(), 1e-5);
        let err = cfg.eps_or("negative", 1.0).unwrap_err().to_string();
        assert!(
            err.contains("`negative`") && err.contains("negative"),
            "{err}"
        );
    }

    #[test]
    fn reading_a_non_finite_weight_is_an_error_naming_it_and_its_file() {
        let mut w = Weights::from_tensors([(
            "w".to_owned(),
            Tensor {
                shape: vec![2],
                data: vec![1.0, f32::NAN],
            },
        )]);
        w.non_finite.insert(
            "w".to_owned(),
            NonFinite {
                file: PathBuf::from("ckpt/model.safetensors"),
                value: f32::NAN,
                index: 1,
            },
        );
        let err = w.get("alias", &["w".to_owned()]).unwrap_err();
        assert!(
            matches!(&err, Error::NonFiniteWeight { name, index: 1, .. } if name == "w"),
            "{err}"
        );
        assert!(err.to_string().contains("model.safetensors"), "{err}");
    }
}
