//! Finding a module's weights in a checkpoint: [`WeightScope`] resolves a layer's local
//! weight names (`query.weight`) under its module prefix, tries the other naming schemes
//! the same weight is saved under, and checks its shape, so that every layer reports a
//! missing or misshapen weight the same way, by its full name.
//!
//! A leaf of the layer modules: it knows the checkpoint and the graph builder, nothing of
//! the layers built on it.

use crate::checkpoint::{Tensor, Weights};
use crate::error::{Error, Result};
use crate::onnx::{GraphBuilder, Value};

/// Weight names under one module prefix, with renaming rules that give the other naming
/// scheme of the same weight (transformers 5 renamed some modules, e.g. ViT's
/// `encoder.layer.N.attention.attention.query` became `layers.N.attention.q_proj`; both
/// kinds of checkpoint exist).
#[derive(Debug, Clone)]
pub struct WeightScope<'w> {
    weights: &'w Weights,
    prefix: String,
    /// Other prefixes the same module is saved under (e.g. `vision_model.vision_model.`
    /// for a CLIP vision tower saved by transformers 4).
    alt_prefixes: Vec<String>,
    renames: &'static [(&'static str, &'static str)],
}

impl<'w> WeightScope<'w> {
    /// A scope at `prefix` (e.g. `vision_model.`) with `renames` as `(old, new)` pairs.
    pub fn new(
        weights: &'w Weights,
        prefix: &str,
        renames: &'static [(&'static str, &'static str)],
    ) -> Self {
        Self {
            weights,
            prefix: prefix.to_owned(),
            alt_prefixes: Vec::new(),
            renames,
        }
    }

    /// Also looks for every weight under `prefix` instead of the main one.
    pub fn with_alt_prefix(mut self, prefix: &str) -> Self {
        self.alt_prefixes.push(prefix.to_owned());
        self
    }

    /// The scope of a sub-module, e.g. `encoder.layer.3.`.
    pub fn child(&self, name: &str) -> Self {
        Self {
            weights: self.weights,
            prefix: format!("{}{name}.", self.prefix),
            alt_prefixes: self
                .alt_prefixes
                .iter()
                .map(|p| format!("{p}{name}."))
                .collect(),
            renames: self.renames,
        }
    }

    /// The full name of a weight in this scope, as the tower code spells it.
    pub fn name(&self, local: &str) -> String {
        format!("{}{local}", self.prefix)
    }

    /// Whether this scope has a weight called `local`, under either naming scheme.
    #[cfg(test)]
    pub fn contains(&self, local: &str) -> bool {
        let name = self.name(local);
        self.weights.contains(&name) || self.aliases(local).iter().any(|a| self.weights.contains(a))
    }

    /// Every other name the weight `local` may be saved under.
    fn aliases(&self, local: &str) -> Vec<String> {
        let name = self.name(local);
        let mut out = Vec::new();
        let candidates = std::iter::once(name.clone())
            .chain(self.alt_prefixes.iter().map(|p| format!("{p}{local}")));
        for candidate in candidates {
            let renamed = self.renamed(&candidate);
            for n in [candidate, renamed] {
                if n != name && !out.contains(&n) {
                    out.push(n);
                }
            }
        }
        out
    }

    fn renamed(&self, name: &str) -> String {
        self.renames
            .iter()
            .fold(name.to_owned(), |n, (old, new)| n.replace(old, new))
    }

    /// The weight called `local`, checked to have `shape`.
    pub fn tensor(&self, local: &str, shape: &[usize]) -> Result<&'w Tensor> {
        let name = self.name(local);
        let tensor = self.weights.get(&name, &self.aliases(local))?;
        // A leading 1 is squeezed away: ViT stores cls_token as [1, 1, D].
        let squeezed: Vec<usize> = {
            let mut s = tensor.shape.as_slice();
            while s.len() > shape.len() && s.first() == Some(&1) {
                s = &s[1..];
            }
            s.to_vec()
        };
        if squeezed != shape {
            return Err(Error::WeightShape {
                name,
                expected: shape.to_vec(),
                found: tensor.shape.clone(),
            });
        }
        Ok(tensor)
    }

    /// Adds the weight `local` to the graph as an initializer named after it, in the
    /// graph's activation type.
    pub fn initializer(&self, g: &mut GraphBuilder, local: &str, shape: &[usize]) -> Result<Value> {
        let tensor = self.tensor(local, shape)?;
        Ok(g.weight(&self.name(local), shape, &tensor.data))
    }

    /// Like [`Self::initializer`], but always f32.
    pub fn initializer_f32(
        &self,
        g: &mut GraphBuilder,
        local: &str,
        shape: &[usize],
    ) -> Result<Value> {
        let tensor = self.tensor(local, shape)?;
        Ok(g.weight_f32(&self.name(local), shape, &tensor.data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::test_util::{graph, initializer, weights};
    use crate::onnx::builder::Precision;
    use crate::onnx::proto::DataType;

    const RENAMES: &[(&str, &str)] = &[("attention.attention.query", "attention.q_proj")];

    #[test]
    fn finds_a_weight_under_its_full_name_and_checks_its_shape() {
        let w = weights(&[("enc.0.dense.weight", &[3, 2])]);
        let scope = WeightScope::new(&w, "enc.", &[]).child("0");
        assert_eq!(scope.name("dense.weight"), "enc.0.dense.weight");
        assert!(scope.contains("dense.weight"));
        assert!(!scope.contains("dense.bias"));
        let t = scope.tensor("dense.weight", &[3, 2]).unwrap();
        assert_eq!(t.shape, [3, 2]);
        assert_eq!(t.data.len(), 6);
    }

    #[test]
    fn a_missing_weight_is_reported_by_its_full_name() {
        let w = weights(&[("enc.dense.weight", &[3, 2])]);
        let scope = WeightScope::new(&w, "enc.", RENAMES);
        match scope.tensor("dense.bias", &[3]) {
            Err(Error::MissingWeight { name, tried }) => {
                assert_eq!(name, "enc.dense.bias");
                assert!(tried.contains("enc.dense.bias"), "{tried}");
            }
            other => panic!("expected MissingWeight, got {other:?}"),
        }
    }

    #[test]
    fn a_missing_weight_lists_the_renamed_and_alternative_names_tried() {
        let w = weights(&[]);
        let scope = WeightScope::new(&w, "vision.", RENAMES).with_alt_prefix("vision.vision.");
        let err = scope
            .tensor("attention.attention.query.weight", &[4, 4])
            .unwrap_err();
        let Error::MissingWeight { name, tried } = err else {
            panic!("expected MissingWeight, got {err:?}");
        };
        assert_eq!(name, "vision.attention.attention.query.weight");
        for alias in [
            "vision.attention.q_proj.weight",
            "vision.vision.attention.attention.query.weight",
            "vision.vision.attention.q_proj.weight",
        ] {
            assert!(tried.contains(alias), "{alias} not in {tried}");
        }
    }

    #[test]
    fn a_wrongly_shaped_weight_is_reported_with_both_shapes() {
        let w = weights(&[("enc.dense.weight", &[3, 2])]);
        let scope = WeightScope::new(&w, "enc.", &[]);
        match scope.tensor("dense.weight", &[2, 3]) {
            Err(Error::WeightShape {
                name,
                expected,
                found,
            }) => {
                assert_eq!(name, "enc.dense.weight");
                assert_eq!(expected, [2, 3]);
                assert_eq!(found, [3, 2]);
            }
            other => panic!("expected WeightShape, got {other:?}"),
        }
        // The message names the tensor, for the user.
        let message = scope.tensor("dense.weight", &[6]).unwrap_err().to_string();
        assert!(message.contains("enc.dense.weight"), "{message}");
    }

    #[test]
    fn leading_ones_are_squeezed_but_other_sizes_are_not() {
        // ViT's cls_token is stored as [1, 1, D].
        let w = weights(&[("cls_token", &[1, 1, 4]), ("pos", &[2, 4])]);
        let scope = WeightScope::new(&w, "", &[]);
        assert_eq!(scope.tensor("cls_token", &[4]).unwrap().shape, [1, 1, 4]);
        assert_eq!(scope.tensor("cls_token", &[1, 4]).unwrap().shape, [1, 1, 4]);
        assert!(matches!(
            scope.tensor("pos", &[8]),
            Err(Error::WeightShape { .. })
        ));
    }

    #[test]
    fn finds_a_weight_saved_under_the_renamed_or_alternative_prefix() {
        let w = weights(&[
            ("layers.0.attention.q_proj.weight", &[2, 2]),
            ("vision.vision.post.weight", &[2]),
        ]);
        let scope = WeightScope::new(&w, "layers.", RENAMES).child("0");
        assert!(scope.contains("attention.attention.query.weight"));
        scope
            .tensor("attention.attention.query.weight", &[2, 2])
            .unwrap();

        let scope = WeightScope::new(&w, "vision.", &[]).with_alt_prefix("vision.vision.");
        assert!(scope.contains("post.weight"));
        scope.tensor("post.weight", &[2]).unwrap();
    }

    #[test]
    fn initializers_are_named_after_the_weight_in_the_requested_type() {
        let w = weights(&[("m.w", &[2])]);
        let scope = WeightScope::new(&w, "m.", &[]);
        let mut g = GraphBuilder::with_precision("t", Precision::Fp16);
        let half = scope.initializer(&mut g, "w", &[2]).unwrap();
        assert_eq!(half.name(), "m.w");
        let g = graph(g);
        let t = initializer(&g, "m.w");
        assert_eq!(t.data_type, DataType::Float16 as i32);
        assert_eq!(t.dims, [2]);

        let mut g = GraphBuilder::with_precision("t", Precision::Fp16);
        scope.initializer_f32(&mut g, "w", &[2]).unwrap();
        let g = graph(g);
        let t = initializer(&g, "m.w");
        assert_eq!(t.data_type, DataType::Float as i32);
        // 0.0 and 0.01 as little-endian f32.
        let bytes: Vec<u8> = [0.0f32, 0.01]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        assert_eq!(t.raw_data, bytes);
    }
}
