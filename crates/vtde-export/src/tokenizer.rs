//! The checkpoint's tokenizer → the package's `tokenizer.json` and the manifest's
//! [`TextPreprocess`].
//!
//! The maximum length comes from the text tower (its position embeddings), never from
//! `tokenizer_config.json`'s `model_max_length`, which transformers often leaves at 1e30.

use std::path::Path;

use serde_json::Value as Json;
use vtde_runtime::manifest::TextPreprocess;

use crate::checkpoint::read_json;
use crate::error::{Error, Result};

/// The tokenizer file name inside a checkpoint and inside a package.
pub const TOKENIZER_FILE: &str = "tokenizer.json";

/// Reads the checkpoint's `tokenizer.json` and works out the text preprocessing.
/// Returns the file's bytes (copied verbatim into the package) and the manifest part.
pub fn load(
    dir: &Path,
    max_length: usize,
    config_pad_token_id: usize,
    inputs: &[&str],
) -> Result<(Vec<u8>, TextPreprocess)> {
    let path = dir.join(TOKENIZER_FILE);
    if !path.is_file() {
        return Err(Error::MissingFile {
            path,
            hint: "the checkpoint needs a fast tokenizer file; save the tokenizer with \
                   transformers (`AutoTokenizer.from_pretrained(dir).save_pretrained(dir)`)"
                .to_owned(),
        });
    }
    let bytes = std::fs::read(&path).map_err(|source| Error::Read {
        path: path.clone(),
        source,
    })?;
    let tokenizer: Json = serde_json::from_slice(&bytes).map_err(|source| Error::Json {
        path: path.clone(),
        source,
    })?;
    let pad_token_id = pad_token_id(dir, &tokenizer)?.unwrap_or(config_pad_token_id as i64);
    Ok((
        bytes,
        TextPreprocess {
            tokenizer: TOKENIZER_FILE.to_owned(),
            max_length,
            pad_token_id,
            inputs: inputs.iter().map(|s| (*s).to_owned()).collect(),
        },
    ))
}

/// The id the checkpoint's tokenizer pads with: `tokenizer.json`'s padding settings, else
/// the `pad_token` of `tokenizer_config.json` looked up in the vocabulary.
fn pad_token_id(dir: &Path, tokenizer: &Json) -> Result<Option<i64>> {
    if let Some(id) = tokenizer.pointer("/padding/pad_id").and_then(Json::as_i64) {
        return Ok(Some(id));
    }
    let config_path = dir.join("tokenizer_config.json");
    if !config_path.is_file() {
        return Ok(None);
    }
    let config = read_json(&config_path)?;
    let pad = match config.get("pad_token") {
        Some(Json::String(s)) => s.clone(),
        Some(obj @ Json::Object(_)) => match obj.get("content").and_then(Json::as_str) {
            Some(s) => s.to_owned(),
            None => return Ok(None),
        },
        _ => return Ok(None),
    };
    Ok(token_id(tokenizer, &pad))
}

/// Looks a token up in a `tokenizer.json`: added tokens first, then the model vocabulary.
fn token_id(tokenizer: &Json, token: &str) -> Option<i64> {
    let added = tokenizer.get("added_tokens").and_then(Json::as_array);
    if let Some(found) = added.into_iter().flatten().find(|t| {
        t.get("content").and_then(Json::as_str) == Some(token)
    }) {
        return found.get("id").and_then(Json::as_i64);
    }
    match tokenizer.pointer("/model/vocab") {
        Some(Json::Object(vocab)) => vocab.get(token).and_then(Json::as_i64),
        // Unigram: a list of [piece, score]; the id is the index.
        Some(Json::Array(pieces)) => pieces
            .iter()
            .position(|p| p.get(0).and_then(Json::as_str) == Some(token))
            .map(|i| i as i64),
        _ => None,
    }
}
