//! Chat models for toolflow. Every agent of the pipeline talks to a model through one
//! [`ChatRequest`] value and one [`ChatBackend`] trait.

pub mod request;

pub use request::{
    BackendError, BoxFuture, ChatBackend, ChatRequest, ChatResponse, FinishReason, Message, Role,
    ToolCallRequest, ToolSpec,
};
