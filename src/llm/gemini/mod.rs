//! Google Gemini over `streamGenerateContent?alt=sse`: building a request that is always valid
//! (`request`), reading the streamed events, each one `GenerateContentResponse` (`stream`),
//! classifying failures (`error`), and [`GeminiModel`], the engine's model (`model`).
//!
//! Request building, event parsing and classification are pure (tested natively); `model` is
//! the thin runtime layer, over `llm::http`.

mod error;
mod model;
mod request;
mod stream;

pub use error::{classify_error, UpstreamError};
pub use model::{GeminiModel, GeminiStream};
pub use request::{
    build_contents, follow_up_body, function_declarations, request_body, request_body_with_tools,
    stream_url, thinking_config, CALL_STARTED_BRIDGE,
};
pub use stream::{is_policy_stop, parse_event, GeminiUsage, ResponseEvent};
