//! The arithmetic of the encoder's matrix products, and the model identity it gives.

use crate::bf16;
use crate::error::EmbedError;
use crate::spec::{MODEL_ID, MODEL_ID_BF16};

/// How the encoder's matrix products are computed. Everything else (embeddings, layer
/// norm, attention, GELU, pooling) is `f32` in every case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// bf16 where the CPU has AVX512-BF16, else `f32`.
    #[default]
    Auto,
    /// `f32` throughout: the closest match to sentence-transformers, on every CPU.
    F32,
    /// Weights and activations rounded to bf16, products summed in `f32`: twice the
    /// multiply-adds per instruction. Needs AVX512-BF16.
    Bf16,
}

impl Precision {
    /// What runs on this CPU: `Auto` decided, `Bf16` refused where it cannot run.
    pub fn effective(self) -> Result<Self, EmbedError> {
        match self {
            Self::Auto if bf16::supported() => Ok(Self::Bf16),
            Self::Auto | Self::F32 => Ok(Self::F32),
            Self::Bf16 if bf16::supported() => Ok(Self::Bf16),
            Self::Bf16 => Err(EmbedError::PrecisionUnsupported),
        }
    }

    /// The model identity of embeddings computed at this (effective) precision.
    pub fn model_id(self) -> &'static str {
        match self {
            Self::Bf16 => MODEL_ID_BF16,
            Self::Auto | Self::F32 => MODEL_ID,
        }
    }
}

impl std::str::FromStr for Precision {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "auto" => Ok(Self::Auto),
            "f32" => Ok(Self::F32),
            "bf16" => Ok(Self::Bf16),
            _ => Err(format!("{text:?} is not a precision (auto, f32 or bf16)")),
        }
    }
}
