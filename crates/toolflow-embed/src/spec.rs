//! What the model is: its id, the files of its directory, its input limit.

/// The model every embedding comes from; part of every cache key.
pub const MODEL_ID: &str = "sentence-transformers/all-MiniLM-L6-v2";

/// The cache and graph identity of embeddings whose matrix products ran in bf16: they
/// differ from the `f32` ones (by a cosine of at most about 5e-5), so they are never mixed.
pub const MODEL_ID_BF16: &str = "sentence-transformers/all-MiniLM-L6-v2+bf16";

/// sentence-transformers' `max_seq_length` for this model; longer inputs are truncated.
pub const MAX_TOKENS: usize = 256;

/// The files a model directory must hold.
pub const MODEL_FILES: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];
