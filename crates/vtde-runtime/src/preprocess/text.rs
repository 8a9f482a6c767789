//! Texts to `input_ids`, `attention_mask` and `token_type_ids`.
//!
//! Tokenization uses the package's `tokenizer.json` with the `tokenizers` crate, as the
//! checkpoint's fast tokenizer does in transformers with
//! `tokenizer(texts, padding=True, truncation=True, max_length=max_length)`:
//! special tokens are added, each text is truncated from the right to `max_length`
//! tokens *including* the special tokens, and the batch is padded on the right to its
//! longest text with `pad_token_id` (never to `max_length`: short batches stay short and
//! fast). Padding positions have attention mask 0 and token type 0.
//!
//! Whatever padding or truncation the tokenizer file itself configures is replaced by
//! the manifest's settings, so that the file cannot make the runtime pad to a fixed
//! length or truncate differently.

use std::path::{Path, PathBuf};

use ndarray::Array2;
use tokenizers::{
    PostProcessor, Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy,
};

use crate::error::{Error, Result};
use crate::manifest::TextPreprocess;

/// A tokenized batch, `[batch, seq]` each, `seq` being the longest text's length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextBatch {
    /// Token ids; padding positions hold `pad_token_id`.
    pub input_ids: Array2<i64>,
    /// 1 for tokens, 0 for padding.
    pub attention_mask: Array2<i64>,
    /// Segment ids (0 for single texts and padding). Fed to the text graph only where the
    /// manifest's `text.inputs` lists `token_type_ids`.
    pub token_type_ids: Array2<i64>,
}

impl TextBatch {
    /// Number of texts.
    pub fn len(&self) -> usize {
        self.input_ids.nrows()
    }

    /// True for a batch of no texts.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sequence length (the longest text's token count).
    pub fn seq_len(&self) -> usize {
        self.input_ids.ncols()
    }
}

/// The package's tokenizer with the manifest's truncation and padding.
#[derive(Debug, Clone)]
pub struct TextTokenizer {
    tokenizer: Tokenizer,
    path: PathBuf,
    max_length: usize,
    pad_token_id: i64,
}

impl TextTokenizer {
    /// Loads `tokenizer.json` from `path` with the manifest's text settings.
    pub fn from_file(path: &Path, config: &TextPreprocess) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let tokenizer = Tokenizer::from_bytes(&bytes).map_err(|e| Error::Tokenizer {
            path: path.to_path_buf(),
            message: format!("not a valid tokenizer.json: {e}"),
        })?;
        Self::from_tokenizer(tokenizer, config, path)
    }

    /// Wraps an already loaded tokenizer; `path` is only used in error messages.
    fn from_tokenizer(
        mut tokenizer: Tokenizer,
        config: &TextPreprocess,
        path: &Path,
    ) -> Result<Self> {
        let err = |message: String| Error::Tokenizer {
            path: path.to_path_buf(),
            message,
        };
        // `tokenizers` subtracts the special-token count from max_length without a check.
        let added = tokenizer
            .get_post_processor()
            .map_or(0, |p| p.added_tokens(false));
        if config.max_length < added.max(1) {
            return Err(err(format!(
                "max_length {} cannot hold the {added} special tokens the tokenizer adds",
                config.max_length
            )));
        }
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                direction: TruncationDirection::Right,
                max_length: config.max_length,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
            }))
            .map_err(|e| err(format!("cannot set truncation: {e}")))?;
        Ok(TextTokenizer {
            tokenizer,
            path: path.to_path_buf(),
            max_length: config.max_length,
            pad_token_id: config.pad_token_id,
        })
    }

    /// The maximum sequence length, special tokens included.
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// The number of token ids, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.tokenizer.get_vocab_size(true)
    }

    /// Tokenizes a batch: special tokens added, truncated to `max_length`, padded to the
    /// longest text. An empty batch gives `[0, 0]` arrays. If every text tokenizes to
    /// nothing (a tokenizer without special tokens, empty strings), the batch gets one
    /// padding column so that no zero-length sequence reaches a graph.
    pub fn tokenize<S: AsRef<str>>(&self, texts: &[S]) -> Result<TextBatch> {
        if texts.is_empty() {
            return Ok(TextBatch {
                input_ids: Array2::zeros((0, 0)),
                attention_mask: Array2::zeros((0, 0)),
                token_type_ids: Array2::zeros((0, 0)),
            });
        }
        let inputs: Vec<&str> = texts.iter().map(AsRef::as_ref).collect();
        // A tokenizer bug must not take the process down with it.
        let encoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.tokenizer.encode_batch(inputs, true)
        }))
        .map_err(|_| Error::Tokenizer {
            path: self.path.clone(),
            message: "the tokenizer panicked".into(),
        })?
        .map_err(|e| Error::Tokenizer {
            path: self.path.clone(),
            message: e.to_string(),
        })?;
        let seq = encoded
            .iter()
            .map(|e| e.get_ids().len())
            .max()
            .unwrap_or(0)
            .max(1);
        let n = encoded.len();
        let mut input_ids = Array2::from_elem((n, seq), self.pad_token_id);
        let mut attention_mask = Array2::zeros((n, seq));
        let mut token_type_ids = Array2::zeros((n, seq));
        for (i, enc) in encoded.iter().enumerate() {
            let ids = enc.get_ids();
            if ids.len() > self.max_length {
                // Cannot happen with truncation set; refuse rather than feed a graph
                // positions it does not have.
                return Err(Error::Tokenizer {
                    path: self.path.clone(),
                    message: format!(
                        "text #{i} has {} tokens after truncation, more than max_length {}",
                        ids.len(),
                        self.max_length
                    ),
                });
            }
            for (j, ((&id, &mask), &ty)) in ids
                .iter()
                .zip(enc.get_attention_mask())
                .zip(enc.get_type_ids())
                .enumerate()
            {
                input_ids[[i, j]] = i64::from(id);
                attention_mask[[i, j]] = i64::from(mask);
                token_type_ids[[i, j]] = i64::from(ty);
            }
        }
        Ok(TextBatch {
            input_ids,
            attention_mask,
            token_type_ids,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A tiny WordLevel tokenizer with BERT-style `[CLS] … [SEP]` post-processing, and
    /// (deliberately) its own padding to 32 and truncation to 3 in the file, which the
    /// runtime must override.
    pub(crate) const TOKENIZER_JSON: &str = r#"{
      "version": "1.0",
      "truncation": {"direction": "Right", "max_length": 3, "strategy": "LongestFirst", "stride": 0},
      "padding": {"strategy": {"Fixed": 32}, "direction": "Right", "pad_to_multiple_of": null,
                  "pad_id": 0, "pad_type_id": 0, "pad_token": "[PAD]"},
      "added_tokens": [
        {"id": 0, "content": "[PAD]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
        {"id": 1, "content": "[UNK]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
        {"id": 2, "content": "[CLS]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
        {"id": 3, "content": "[SEP]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}
      ],
      "normalizer": {"type": "Lowercase"},
      "pre_tokenizer": {"type": "Whitespace"},
      "post_processor": {
        "type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
        "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "[SEP]", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}, {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
        "special_tokens": {
          "[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]},
          "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}
        }
      },
      "decoder": null,
      "model": {"type": "WordLevel", "vocab": {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3,
                "a": 4, "photo": 5, "of": 6, "cat": 7, "dog": 8}, "unk_token": "[UNK]"}
    }"#;

    pub(crate) fn config(max_length: usize) -> TextPreprocess {
        TextPreprocess {
            tokenizer: "tokenizer.json".into(),
            max_length,
            pad_token_id: 0,
            inputs: vec!["input_ids".into(), "attention_mask".into()],
        }
    }

    fn tokenizer(max_length: usize) -> TextTokenizer {
        let tok = Tokenizer::from_bytes(TOKENIZER_JSON.as_bytes()).unwrap();
        TextTokenizer::from_tokenizer(tok, &config(max_length), Path::new("tokenizer.json"))
            .unwrap()
    }

    #[test]
    fn pads_to_longest_not_max_length() {
        let t = tokenizer(16);
        let b = t.tokenize(&["a photo of a cat", "dog"]).unwrap();
        assert_eq!(b.seq_len(), 7);
        assert_eq!(b.input_ids.row(0).to_vec(), vec![2, 4, 5, 6, 4, 7, 3]);
        assert_eq!(b.input_ids.row(1).to_vec(), vec![2, 8, 3, 0, 0, 0, 0]);
        assert_eq!(b.attention_mask.row(1).to_vec(), vec![1, 1, 1, 0, 0, 0, 0]);
        assert!(b.token_type_ids.iter().all(|&t| t == 0));
    }

    #[test]
    fn truncates_with_special_tokens_included() {
        let t = tokenizer(4);
        let b = t.tokenize(&["a photo of a cat"]).unwrap();
        // [CLS] a photo [SEP]: 4 tokens, the special tokens kept.
        assert_eq!(b.input_ids.row(0).to_vec(), vec![2, 4, 5, 3]);
        assert_eq!(b.attention_mask.row(0).to_vec(), vec![1, 1, 1, 1]);
    }

    #[test]
    fn pad_id_comes_from_the_manifest() {
        let tok = Tokenizer::from_bytes(TOKENIZER_JSON.as_bytes()).unwrap();
        let mut cfg = config(16);
        cfg.pad_token_id = 99;
        let t = TextTokenizer::from_tokenizer(tok, &cfg, Path::new("t.json")).unwrap();
        let b = t.tokenize(&["cat dog", "cat"]).unwrap();
        assert_eq!(b.input_ids.row(1).to_vec(), vec![2, 7, 3, 99]);
    }

    #[test]
    fn empty_texts_and_batches() {
        let t = tokenizer(16);
        let b = t.tokenize::<&str>(&[]).unwrap();
        assert!(b.is_empty());
        assert_eq!(b.input_ids.shape(), &[0, 0]);
        let b = t.tokenize(&["", "cat"]).unwrap();
        assert_eq!(b.input_ids.row(0).to_vec(), vec![2, 3, 0]);
        // Unknown words and odd characters do not fail.
        let b = t.tokenize(&["zebra \u{0} \u{1F600}"]).unwrap();
        assert_eq!(b.input_ids[[0, 1]], 1);
    }

    #[test]
    fn very_long_text_is_truncated() {
        let t = tokenizer(8);
        let long = "cat ".repeat(10_000);
        let b = t.tokenize(&[long.as_str()]).unwrap();
        assert_eq!(b.seq_len(), 8);
    }

    #[test]
    fn max_length_too_small_for_special_tokens() {
        let tok = Tokenizer::from_bytes(TOKENIZER_JSON.as_bytes()).unwrap();
        let err = TextTokenizer::from_tokenizer(tok, &config(1), Path::new("t.json")).unwrap_err();
        assert!(matches!(err, Error::Tokenizer { .. }), "{err}");
    }

    #[test]
    fn invalid_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokenizer.json");
        std::fs::write(&path, b"{\"not\": \"a tokenizer\"}").unwrap();
        let err = TextTokenizer::from_file(&path, &config(8)).unwrap_err();
        assert!(err.to_string().contains("tokenizer.json"), "{err}");
    }
}
