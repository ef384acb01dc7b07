//! Layercode's wire, both ways: the webhook events it sends (`events`) and the SSE response body
//! we answer a turn with (`event_stream`: `tts`, `data`, `end`).
//!
//! May import: leaves only (see `tests/layers.rs`).

pub mod event_stream;
pub mod events;
