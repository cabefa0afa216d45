//! Why the embedded model failed.

/// Why the embedded model could not be found, loaded or run, or could not answer a request.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// No model file: the given path does not exist, or no source could supply it.
    #[error("embedded model: {0}")]
    Fetch(String),
    /// The model file could not be read, or its metadata or tensors are not what is expected.
    #[error("embedded model file: {0}")]
    Gguf(String),
    /// Text could not be encoded or decoded.
    #[error("embedded model tokenizer: {0}")]
    Tokenizer(String),
    /// The chat template did not compile, or failed to render a request.
    #[error("embedded model chat template: {0}")]
    Template(String),
    /// A structured request's grammar could not be built or followed.
    #[error("embedded model grammar: {0}")]
    Grammar(String),
    /// A tensor operation failed.
    #[error("embedded model: {0}")]
    Model(#[from] candle_core::Error),
    /// The request could not be served: too many in flight, a prompt empty or too long for
    /// the model's context, or a forward pass that failed while decoding it.
    #[error("embedded model request: {0}")]
    Request(String),
}
