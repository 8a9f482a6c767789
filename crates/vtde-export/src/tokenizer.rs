//! The checkpoint's tokenizer → the package's `tokenizer.json` and the manifest's
//! [`TextPreprocess`].
//!
//! A checkpoint's `tokenizer.json` is copied as it is. A checkpoint without one gets a
//! `tokenizer.json` built with the `tokenizers` crate from its vocabulary files, exactly
//! as transformers 5 builds its fast tokenizer from them:
//! - `vocab.txt` (WordPiece): transformers' `BertTokenizer`;
//! - `vocab.json` + `merges.txt` (BPE): `CLIPTokenizer` for a CLIP text tower,
//!   `RobertaTokenizer` for a RoBERTa one.
//!
//! The maximum length comes from the text tower (its position embeddings), never from
//! `tokenizer_config.json`'s `model_max_length`, which transformers often leaves at 1e30.

use std::path::{Path, PathBuf};

use serde_json::Value as Json;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::decoders::wordpiece::WordPiece as WordPieceDecoder;
use tokenizers::models::bpe::BPE;
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::{
    bert::BertNormalizer, replace::Replace, replace::ReplacePattern, unicode::NFC,
    utils::Lowercase, utils::Sequence,
};
use tokenizers::pre_tokenizers::{
    bert::BertPreTokenizer, byte_level::ByteLevel, sequence::Sequence as PreSequence, split::Split,
    split::SplitPattern,
};
use tokenizers::processors::{roberta::RobertaProcessing, template::TemplateProcessing};
use tokenizers::{AddedToken, SplitDelimiterBehavior, Tokenizer};
use vtde_package::manifest::TextPreprocess;

use crate::checkpoint::read_json;
use crate::error::{Error, Result};

/// The tokenizer file name inside a checkpoint and inside a package.
pub const TOKENIZER_FILE: &str = "tokenizer.json";

/// Which transformers tokenizer class to rebuild when a checkpoint has no
/// `tokenizer.json`; follows from the text tower.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenizerFamily {
    /// `BertTokenizer`: WordPiece from `vocab.txt`.
    Bert,
    /// `RobertaTokenizer` / `XLMRobertaTokenizer`: byte-level BPE from `vocab.json` +
    /// `merges.txt` (XLM-R ships a sentencepiece model, which needs `tokenizer.json`).
    Roberta,
    /// `CLIPTokenizer`: BPE with `</w>` word ends from `vocab.json` + `merges.txt`.
    Clip,
}

/// Reads or builds the checkpoint's `tokenizer.json` and works out the text
/// preprocessing. Returns the file's bytes (written verbatim into the package).
pub fn load(
    dir: &Path,
    family: TokenizerFamily,
    max_length: usize,
    config_pad_token_id: usize,
    inputs: &[&str],
) -> Result<(Vec<u8>, TextPreprocess)> {
    let path = dir.join(TOKENIZER_FILE);
    let bytes = if path.is_file() {
        std::fs::read(&path).map_err(|source| Error::Read {
            path: path.clone(),
            source,
        })?
    } else {
        build(dir, family)?.into_bytes()
    };
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

/// `tokenizer_config.json`, or an empty object when the checkpoint has none.
fn tokenizer_config(dir: &Path) -> Result<Json> {
    let path = dir.join("tokenizer_config.json");
    if path.is_file() {
        read_json(&path)
    } else {
        Ok(Json::Object(Default::default()))
    }
}

/// A special token's text from `tokenizer_config.json` (a string or an AddedToken
/// object), or `default`.
fn special(config: &Json, key: &str, default: &str) -> String {
    match config.get(key) {
        Some(Json::String(s)) => s.clone(),
        Some(obj @ Json::Object(_)) => obj
            .get("content")
            .and_then(Json::as_str)
            .unwrap_or(default)
            .to_owned(),
        _ => default.to_owned(),
    }
}

fn flag(config: &Json, key: &str, default: bool) -> bool {
    config.get(key).and_then(Json::as_bool).unwrap_or(default)
}

fn build_error(path: PathBuf, e: impl std::fmt::Display) -> Error {
    Error::Config {
        path,
        problem: format!("cannot build a tokenizer from it: {e}"),
    }
}

/// Builds `tokenizer.json` from the vocabulary files of `family`.
fn build(dir: &Path, family: TokenizerFamily) -> Result<String> {
    let config = tokenizer_config(dir)?;
    let vocab_txt = dir.join("vocab.txt");
    let vocab_json = dir.join("vocab.json");
    let merges = dir.join("merges.txt");
    let missing = |needs: &str| {
        Error::MissingFile {
        path: dir.join(TOKENIZER_FILE),
        hint: format!(
            "the checkpoint has no tokenizer.json and no {needs} to build one from; save the \
             tokenizer with transformers (`AutoTokenizer.from_pretrained(dir).save_pretrained(dir)`)"
        ),
    }
    };
    let tokenizer = match family {
        TokenizerFamily::Bert => {
            if !vocab_txt.is_file() {
                return Err(missing("vocab.txt"));
            }
            bert_wordpiece(&vocab_txt, &config)?
        }
        TokenizerFamily::Roberta | TokenizerFamily::Clip => {
            if !(vocab_json.is_file() && merges.is_file()) {
                return Err(missing("vocab.json + merges.txt"));
            }
            if family == TokenizerFamily::Clip {
                clip_bpe(&vocab_json, &merges, &config)?
            } else {
                roberta_bpe(&vocab_json, &merges, &config)?
            }
        }
    };
    tokenizer
        .to_string(false)
        .map_err(|e| build_error(dir.join(TOKENIZER_FILE), e))
}

fn path_str(path: &Path) -> Result<&str> {
    path.to_str().ok_or_else(|| Error::Config {
        path: path.to_owned(),
        problem: "the path is not valid UTF-8".to_owned(),
    })
}

/// The id of `token` in a built tokenizer, or an error naming the vocabulary file.
fn id_of(tokenizer: &Tokenizer, token: &str, vocab: &Path) -> Result<u32> {
    tokenizer.token_to_id(token).ok_or_else(|| Error::Config {
        path: vocab.to_owned(),
        problem: format!("the special token `{token}` is not in the vocabulary"),
    })
}

/// transformers 5's `BertTokenizer.__init__`.
fn bert_wordpiece(vocab: &Path, config: &Json) -> Result<Tokenizer> {
    let [unk, sep, pad, cls, mask] = [
        ("unk_token", "[UNK]"),
        ("sep_token", "[SEP]"),
        ("pad_token", "[PAD]"),
        ("cls_token", "[CLS]"),
        ("mask_token", "[MASK]"),
    ]
    .map(|(k, d)| special(config, k, d));
    let model = WordPiece::from_file(path_str(vocab)?)
        .unk_token(unk.clone())
        .build()
        .map_err(|e| build_error(vocab.to_owned(), e))?;
    let mut tokenizer = Tokenizer::new(model);
    let lowercase = flag(config, "do_lower_case", true);
    let strip_accents = config.get("strip_accents").and_then(Json::as_bool);
    tokenizer.with_normalizer(Some(BertNormalizer::new(
        true,
        flag(config, "tokenize_chinese_chars", true),
        strip_accents,
        lowercase,
    )));
    tokenizer.with_pre_tokenizer(Some(BertPreTokenizer));
    tokenizer.with_decoder(Some(WordPieceDecoder::default()));
    add_specials(&mut tokenizer, &[&pad, &unk, &cls, &sep, &mask]);
    let (cls_id, sep_id) = (
        id_of(&tokenizer, &cls, vocab)?,
        id_of(&tokenizer, &sep, vocab)?,
    );
    let template = TemplateProcessing::builder()
        .try_single(format!("{cls}:0 $A:0 {sep}:0"))
        .and_then(|b| b.try_pair(format!("{cls}:0 $A:0 {sep}:0 $B:1 {sep}:1")))
        .map_err(|e| build_error(vocab.to_owned(), e))?
        .special_tokens(vec![(cls.clone(), cls_id), (sep.clone(), sep_id)])
        .build()
        .map_err(|e| build_error(vocab.to_owned(), e))?;
    tokenizer.with_post_processor(Some(template));
    Ok(tokenizer)
}

/// transformers 5's `CLIPTokenizer.__init__`.
fn clip_bpe(vocab: &Path, merges: &Path, config: &Json) -> Result<Tokenizer> {
    let unk = special(config, "unk_token", "<|endoftext|>");
    let bos = special(config, "bos_token", "<|startoftext|>");
    let eos = special(config, "eos_token", "<|endoftext|>");
    let pad = special(config, "pad_token", "<|endoftext|>");
    let model = BPE::from_file(path_str(vocab)?, path_str(merges)?)
        .continuing_subword_prefix(String::new())
        .end_of_word_suffix("</w>".to_owned())
        .fuse_unk(false)
        .unk_token(unk.clone())
        .build()
        .map_err(|e| build_error(merges.to_owned(), e))?;
    let mut tokenizer = Tokenizer::new(model);
    let whitespace = Replace::new(ReplacePattern::Regex(r"\s+".to_owned()), " ")
        .map_err(|e| build_error(vocab.to_owned(), e))?;
    tokenizer.with_normalizer(Some(Sequence::new(vec![
        NFC.into(),
        whitespace.into(),
        Lowercase.into(),
    ])));
    let split = Split::new(
        SplitPattern::Regex(
            r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"
                .to_owned(),
        ),
        SplitDelimiterBehavior::Removed,
        true,
    )
    .map_err(|e| build_error(vocab.to_owned(), e))?;
    tokenizer.with_pre_tokenizer(Some(PreSequence::new(vec![
        split.into(),
        ByteLevel::new(false, true, true).into(),
    ])));
    tokenizer.with_decoder(Some(ByteLevelDecoder::default()));
    add_specials(&mut tokenizer, &[&unk, &bos, &eos, &pad]);
    let (eos_id, bos_id) = (
        id_of(&tokenizer, &eos, vocab)?,
        id_of(&tokenizer, &bos, vocab)?,
    );
    tokenizer.with_post_processor(Some(
        RobertaProcessing::new((eos, eos_id), (bos, bos_id))
            .trim_offsets(false)
            .add_prefix_space(false),
    ));
    Ok(tokenizer)
}

/// transformers 5's `RobertaTokenizer.__init__`.
fn roberta_bpe(vocab: &Path, merges: &Path, config: &Json) -> Result<Tokenizer> {
    let [bos, eos, sep, cls, unk, pad, mask] = [
        ("bos_token", "<s>"),
        ("eos_token", "</s>"),
        ("sep_token", "</s>"),
        ("cls_token", "<s>"),
        ("unk_token", "<unk>"),
        ("pad_token", "<pad>"),
        ("mask_token", "<mask>"),
    ]
    .map(|(k, d)| special(config, k, d));
    let add_prefix_space = flag(config, "add_prefix_space", false);
    let trim_offsets = flag(config, "trim_offsets", true);
    let model = BPE::from_file(path_str(vocab)?, path_str(merges)?)
        .continuing_subword_prefix(String::new())
        .end_of_word_suffix(String::new())
        .fuse_unk(false)
        .build()
        .map_err(|e| build_error(merges.to_owned(), e))?;
    let mut tokenizer = Tokenizer::new(model);
    tokenizer.with_pre_tokenizer(Some(ByteLevel::new(add_prefix_space, true, true)));
    tokenizer.with_decoder(Some(ByteLevelDecoder::default()));
    add_specials(&mut tokenizer, &[&bos, &eos, &sep, &cls, &unk, &pad, &mask]);
    let (sep_id, cls_id) = (
        id_of(&tokenizer, &sep, vocab)?,
        id_of(&tokenizer, &cls, vocab)?,
    );
    tokenizer.with_post_processor(Some(
        RobertaProcessing::new((sep, sep_id), (cls, cls_id))
            .trim_offsets(trim_offsets)
            .add_prefix_space(add_prefix_space),
    ));
    Ok(tokenizer)
}

/// Registers special tokens once each, in order, as transformers' backend does.
fn add_specials(tokenizer: &mut Tokenizer, tokens: &[&String]) {
    let mut seen: Vec<&String> = Vec::new();
    let mut added = Vec::new();
    for t in tokens {
        if !seen.contains(t) {
            seen.push(t);
            added.push(AddedToken::from((*t).clone(), true));
        }
    }
    tokenizer.add_special_tokens(&added);
}

/// The id the checkpoint's tokenizer pads with: `tokenizer.json`'s padding settings, else
/// the `pad_token` of `tokenizer_config.json` looked up in the vocabulary.
fn pad_token_id(dir: &Path, tokenizer: &Json) -> Result<Option<i64>> {
    if let Some(id) = tokenizer.pointer("/padding/pad_id").and_then(Json::as_i64) {
        return Ok(Some(id));
    }
    let config = tokenizer_config(dir)?;
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
    if let Some(found) = added
        .into_iter()
        .flatten()
        .find(|t| t.get("content").and_then(Json::as_str) == Some(token))
    {
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
