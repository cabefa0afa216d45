//! What a checkpoint is: the default one, the files it holds, the label EnR counts.

/// The checkpoint used when none is named: the smallest of the cross-encoder NLI family
/// (a 22M-parameter DeBERTa-v3 backbone trained on SNLI and MultiNLI; 91.6% on SNLI's test
/// set, 87.8% on MultiNLI mismatched, by its model card), and DeBERTa-v2 is a candle model.
pub const DEFAULT_MODEL: &str = "cross-encoder/nli-deberta-v3-xsmall";

/// The files a checkpoint directory must hold.
pub const MODEL_FILES: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];

/// The label EnR counts, compared without regard to case.
pub const ENTAILMENT: &str = "entailment";
