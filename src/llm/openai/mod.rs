//! The OpenAI chat completions wire (`POST {base_url}/chat/completions`, `stream: true`), as
//! OpenAI, Groq, Cerebras, OpenRouter, Ollama, llama.cpp and Workers AI speak it
//! (openai-chat-streaming.md): building the request (`request`), reading the streamed chunks and
//! assembling tool-call fragments (`stream`), classifying failures (`error`), and
//! [`OpenAiModel`], the engine's model (`model`).
//!
//! Request building, chunk parsing, assembly and classification are pure (tested natively);
//! `model` is the thin runtime layer, over `llm::http`, mirroring `gemini/`.

mod error;
mod model;
mod request;
mod stream;

pub use error::{classify_error, ApiError};
pub use model::{OpenAiModel, OpenAiStream};
pub use request::{chat_url, follow_up_body, request_body};
pub use stream::{
    parse_arguments, parse_chunk, CallAssembler, ChatStream, Chunk, Fragment, Update,
};
