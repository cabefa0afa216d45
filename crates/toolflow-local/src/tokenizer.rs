//! The tokenizer rebuilt from the GGUF metadata: SmolLM2 uses GPT-2 style byte-level BPE whose
//! pre-tokenizer (`tokenizer.ggml.pre = "smollm"`) first splits every digit on its own.

use std::collections::HashMap;
use std::sync::Arc;

use candle_core::quantized::gguf_file;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::{AddedToken, PreTokenizerWrapper, Tokenizer};
use toktrie::{TokEnv, TokRxInfo, TokTrie, TokenId, TokenizerEnv};

use crate::error::LocalError;

/// GGUF `tokenizer.ggml.token_type` of a control token such as `<|im_end|>`.
const CONTROL_TOKEN: i32 = 3;

/// The byte-level BPE tokenizer a GGUF file describes in its metadata.
pub struct GgufTokenizer {
    tokenizer: Tokenizer,
    trie: TokTrie,
    /// The beginning-of-sequence token (`tokenizer.ggml.bos_token_id`).
    pub bos: u32,
    /// The end-of-sequence token (`tokenizer.ggml.eos_token_id`).
    pub eos: u32,
}

impl GgufTokenizer {
    /// Reads only the metadata of the GGUF file at `path`.
    pub fn from_file(path: &std::path::Path) -> Result<Self, LocalError> {
        let mut file = std::fs::File::open(path)
            .map_err(|e| LocalError::Gguf(format!("{}: {e}", path.display())))?;
        let content = gguf_file::Content::read(&mut file)
            .map_err(|e| LocalError::Gguf(format!("{}: {e}", path.display())))?;
        Self::from_gguf(&content)
    }

    /// Builds it from the metadata of an opened GGUF file; only `gpt2` (byte-level BPE)
    /// tokenizers are supported.
    pub fn from_gguf(content: &gguf_file::Content) -> Result<Self, LocalError> {
        let model = metadata_string(content, "tokenizer.ggml.model")?;
        if model != "gpt2" {
            return Err(LocalError::Gguf(format!(
                "tokenizer.ggml.model = {model:?}; only \"gpt2\" (byte-level BPE) is supported"
            )));
        }
        let tokens = metadata_strings(content, "tokenizer.ggml.tokens")?;
        let merges = metadata_strings(content, "tokenizer.ggml.merges")?;
        let token_types: Vec<i32> = metadata_array(content, "tokenizer.ggml.token_type")?
            .iter()
            .map(|v| v.to_i32())
            .collect::<Result<_, _>>()
            .map_err(|e| LocalError::Gguf(format!("tokenizer.ggml.token_type: {e}")))?;
        if token_types.len() != tokens.len() {
            return Err(LocalError::Gguf(format!(
                "tokenizer.ggml.token_type has {} entries for {} tokens",
                token_types.len(),
                tokens.len()
            )));
        }
        let bos = metadata_u32(content, "tokenizer.ggml.bos_token_id")?;
        let eos = metadata_u32(content, "tokenizer.ggml.eos_token_id")?;

        let vocab: Vocab = tokens
            .iter()
            .enumerate()
            .map(|(id, t)| (t.clone(), id as u32))
            .collect();
        let merges = merges
            .iter()
            .enumerate()
            .map(|(i, m)| {
                m.split_once(' ')
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .ok_or_else(|| {
                        LocalError::Gguf(format!(
                            "tokenizer.ggml.merges[{i}] = {m:?} is not a pair"
                        ))
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .build()
            .map_err(|e| LocalError::Gguf(format!("tokenizer: {e}")))?;
        let mut tokenizer = Tokenizer::new(bpe);
        tokenizer.with_pre_tokenizer(Some(Sequence::new(vec![
            PreTokenizerWrapper::Digits(Digits::new(true)),
            PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, true, true)),
        ])));
        tokenizer.with_decoder(Some(ByteLevelDecoder::default()));
        let specials: Vec<AddedToken> = tokens
            .iter()
            .zip(&token_types)
            .filter(|(_, kind)| **kind == CONTROL_TOKEN)
            .map(|(t, _)| AddedToken::from(t.clone(), true))
            .collect();
        tokenizer
            .add_special_tokens(specials)
            .map_err(|e| LocalError::Gguf(format!("tokenizer: {e}")))?;

        let trie = build_trie(&tokens, &token_types, eos, bos);
        Ok(GgufTokenizer {
            tokenizer,
            trie,
            bos,
            eos,
        })
    }

    /// Token ids of `text`; control tokens written in the text (`<|im_start|>`) are recognised.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, LocalError> {
        let encoding = self
            .tokenizer
            .encode_fast(text, false)
            .map_err(|e| LocalError::Tokenizer(e.to_string()))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// The text of `ids`, control tokens left out.
    pub fn decode(&self, ids: &[u32]) -> Result<String, LocalError> {
        self.tokenizer
            .decode(ids, true)
            .map_err(|e| LocalError::Tokenizer(e.to_string()))
    }

    /// Tokens in the vocabulary.
    pub fn vocab_size(&self) -> usize {
        self.trie.vocab_size()
    }

    /// The environment llguidance needs: the trie of token bytes and this tokenizer.
    pub fn tok_env(self: &Arc<Self>) -> TokEnv {
        Arc::new(GrammarTokEnv(self.clone()))
    }
}

/// llguidance's view of the tokenizer. A separate type because `TokEnv` wants `'static`
/// ownership of the tokenizer through an `Arc`.
struct GrammarTokEnv(Arc<GgufTokenizer>);

impl TokenizerEnv for GrammarTokEnv {
    fn tok_trie(&self) -> &TokTrie {
        &self.0.trie
    }

    fn tokenize_bytes(&self, s: &[u8]) -> Vec<TokenId> {
        // The grammar hands over complete UTF-8 pieces in practice; a split character falls
        // back to the trie's greedy tokenization, as llguidance itself does.
        match std::str::from_utf8(s) {
            Ok(text) => match self.0.tokenizer.encode_fast(text, false) {
                Ok(encoding) => encoding.get_ids().to_vec(),
                Err(_) => self.0.trie.greedy_tokenize(s),
            },
            Err(_) => self.0.trie.greedy_tokenize(s),
        }
    }
}

/// The byte string of every token: byte-level BPE writes each byte as one printable char, which
/// is mapped back here; control tokens get llguidance's special-token marker in front so the
/// grammar never produces them as text.
fn build_trie(tokens: &[String], token_types: &[i32], eos: u32, bos: u32) -> TokTrie {
    let char_to_byte: HashMap<char, u8> = bytes_to_unicode()
        .into_iter()
        .map(|(b, c)| (c, b))
        .collect();
    let words: Vec<Vec<u8>> = tokens
        .iter()
        .zip(token_types)
        .map(|(token, kind)| {
            if *kind == CONTROL_TOKEN {
                let mut bytes = vec![TokTrie::SPECIAL_TOKEN_MARKER];
                bytes.extend_from_slice(token.as_bytes());
                bytes
            } else {
                // A char outside the byte alphabet would be a malformed vocabulary; keeping its
                // UTF-8 bytes is the closest meaning.
                token
                    .chars()
                    .flat_map(|c| match char_to_byte.get(&c) {
                        Some(b) => vec![*b],
                        None => c.to_string().into_bytes(),
                    })
                    .collect()
            }
        })
        .collect();
    let mut info = TokRxInfo::new(tokens.len() as u32, eos);
    info.tok_bos = Some(bos);
    TokTrie::from(&info, &words)
}

/// GPT-2's table from bytes to the printable chars its vocabulary is written in.
fn bytes_to_unicode() -> Vec<(u8, char)> {
    let printable = |b: u8| {
        (b'!'..=b'~').contains(&b) || (0xA1..=0xAC).contains(&b) || (0xAE..=0xFF).contains(&b)
    };
    let mut shifted = 0u32;
    (0..=255u8)
        .map(|b| {
            if printable(b) {
                (b, char::from(b))
            } else {
                let c = char::from_u32(256 + shifted).expect("below the surrogate range");
                shifted += 1;
                (b, c)
            }
        })
        .collect()
}

fn metadata_value<'a>(
    content: &'a gguf_file::Content,
    key: &str,
) -> Result<&'a gguf_file::Value, LocalError> {
    content
        .metadata
        .get(key)
        .ok_or_else(|| LocalError::Gguf(format!("metadata {key} is missing")))
}

pub(crate) fn metadata_string(
    content: &gguf_file::Content,
    key: &str,
) -> Result<String, LocalError> {
    metadata_value(content, key)?
        .to_string()
        .cloned()
        .map_err(|e| LocalError::Gguf(format!("metadata {key}: {e}")))
}

fn metadata_u32(content: &gguf_file::Content, key: &str) -> Result<u32, LocalError> {
    metadata_value(content, key)?
        .to_u32()
        .map_err(|e| LocalError::Gguf(format!("metadata {key}: {e}")))
}

fn metadata_array<'a>(
    content: &'a gguf_file::Content,
    key: &str,
) -> Result<&'a Vec<gguf_file::Value>, LocalError> {
    metadata_value(content, key)?
        .to_vec()
        .map_err(|e| LocalError::Gguf(format!("metadata {key}: {e}")))
}

fn metadata_strings(content: &gguf_file::Content, key: &str) -> Result<Vec<String>, LocalError> {
    metadata_array(content, key)?
        .iter()
        .enumerate()
        .map(|(i, v)| {
            v.to_string()
                .cloned()
                .map_err(|e| LocalError::Gguf(format!("metadata {key}[{i}]: {e}")))
        })
        .collect()
}
