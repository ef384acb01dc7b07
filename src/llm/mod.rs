//! The model layer: what the engine asks of a model, and the wire families that answer it.
//!
//! `gemini/` is Google Gemini's wire (`streamGenerateContent?alt=sse`).
//!
//! May import: `layercode` and leaves (see `tests/layers.rs`); never the engine.

pub mod gemini;
