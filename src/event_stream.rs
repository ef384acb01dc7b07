//! The `text/event-stream` body of a turn: a `TransformStream` whose readable side is the
//! response and whose writable side receives our events as they are produced.
//!
//! `EventStream` has Layercode's three verbs: `tts`, `data` and `end`. `end` consumes it, so
//! nothing can follow `response.end`, and `Drop` is not relied on: every path calls `end`.

use serde_json::Value;
use worker::js_sys::Uint8Array;
use worker::wasm_bindgen_futures::JsFuture;
use worker::web_sys::{TransformStream, WritableStreamDefaultWriter};
use worker::{Response, ResponseBuilder};

use crate::sse;

/// The writing half of a turn's SSE response.
pub struct EventStream {
    writer: WritableStreamDefaultWriter,
    turn_id: Option<String>,
    /// False once a write failed: Layercode dropped the request (barge-in) or went away.
    connected: bool,
}

impl EventStream {
    /// Creates the stream and the response that carries its readable side.
    pub fn open(turn_id: Option<String>) -> worker::Result<(EventStream, Response)> {
        let transform = TransformStream::new()?;
        let writer = transform.writable().get_writer()?;
        let response = ResponseBuilder::new()
            .with_header("content-type", "text/event-stream")?
            .with_header("cache-control", "no-cache, no-transform")?
            .with_header("x-accel-buffering", "no")?
            .stream(transform.readable());
        let stream = EventStream {
            writer,
            turn_id,
            connected: true,
        };
        Ok((stream, response))
    }

    /// Whether the client is still reading.
    pub fn connected(&self) -> bool {
        self.connected
    }

    /// Sends text to speak. Returns false if the client is gone.
    pub async fn tts(&mut self, text: &str) -> bool {
        if text.is_empty() {
            return self.connected;
        }
        let frame = sse::encode_tts(text, self.turn_id.as_deref());
        self.write(&frame).await
    }

    /// Sends JSON to the client app (`response.data`). Returns false if the client is gone.
    pub async fn data(&mut self, content: &Value) -> bool {
        let frame = sse::encode_data(content, self.turn_id.as_deref());
        self.write(&frame).await
    }

    /// Sends `response.end` and closes the body. Exactly once, last, by construction.
    pub async fn end(mut self) {
        let frame = sse::encode_end(self.turn_id.as_deref());
        if self.write(&frame).await {
            let _ = JsFuture::from(self.writer.close()).await;
        }
    }

    async fn write(&mut self, frame: &[u8]) -> bool {
        if !self.connected {
            return false;
        }
        let chunk = Uint8Array::from(frame);
        // The promise settles when the reader has taken the chunk; it rejects once the
        // readable side was cancelled, which is how a dropped request shows up here.
        if JsFuture::from(self.writer.write_with_chunk(&chunk))
            .await
            .is_err()
        {
            self.connected = false;
        }
        self.connected
    }
}
