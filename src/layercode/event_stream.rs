//! The `text/event-stream` body of a turn: a `TransformStream` whose readable side is the
//! response and whose writable side receives our events as they are produced.
//!
//! `EventStream` has Layercode's three verbs: `tts`, `data` and `end`. `end` consumes it, so
//! nothing can follow `response.end`, and `Drop` is not relied on: every path calls `end`.

use std::time::Duration;

use serde_json::Value;
use worker::js_sys::{Function, Promise, Uint8Array};
use worker::wasm_bindgen::JsValue;
use worker::wasm_bindgen_futures::{self, JsFuture};
use worker::web_sys::{AbortSignal, TransformStream, WritableStreamDefaultWriter};
use worker::{Response, ResponseBuilder};

use crate::deadline::within;
use crate::sse;

/// A write the reader has not taken after this long means the reader is gone. After a client
/// disconnect workerd can leave a write pending forever instead of rejecting it; without this
/// bound the turn would wait until the runtime cancels it as hung, losing its bookkeeping.
const STALLED_WRITE: Duration = Duration::from_secs(2);

/// The writing half of a turn's SSE response.
pub struct EventStream {
    writer: WritableStreamDefaultWriter,
    /// The signal of the request this stream answers: it aborts when the client disconnects.
    request_signal: AbortSignal,
    turn_id: Option<String>,
    /// False once a write failed: Layercode dropped the request (barge-in) or went away.
    connected: bool,
    /// Frames the response's reader has taken so far (which is not proof they reached the
    /// client: see [`EventStream::frames_taken`]).
    taken: usize,
}

impl EventStream {
    /// Creates the stream and the response that carries its readable side. `request_signal`
    /// is the answered request's signal, which tells when the client is gone.
    pub fn open(
        turn_id: Option<String>,
        request_signal: AbortSignal,
    ) -> worker::Result<(EventStream, Response)> {
        let transform = TransformStream::new()?;
        let writer = transform.writable().get_writer()?;
        // `closed` rejects when the client drops the request; observing it keeps that expected
        // event from being logged as an uncaught error on every barge-in.
        let closed = JsFuture::from(writer.closed());
        wasm_bindgen_futures::spawn_local(async move {
            let _ = closed.await;
        });
        let response = ResponseBuilder::new()
            .with_header("content-type", "text/event-stream")?
            .with_header("cache-control", "no-cache, no-transform")?
            .with_header("x-accel-buffering", "no")?
            .stream(transform.readable());
        let stream = EventStream {
            writer,
            request_signal,
            turn_id,
            connected: true,
            taken: 0,
        };
        Ok((stream, response))
    }

    /// Completes when the client goes away, even while nothing is being written: the request
    /// is aborted (workerd signals a disconnect since compatibility date 2026-11-17) or the
    /// response body is cancelled.
    pub fn hangup(&self) -> impl std::future::Future<Output = ()> + 'static {
        let signal = self.request_signal.clone();
        let aborted = JsFuture::from(Promise::new(&mut |resolve: Function, _| {
            if signal.aborted() {
                let _ = resolve.call0(&JsValue::UNDEFINED);
            } else {
                signal.set_onabort(Some(&resolve));
            }
        }));
        let closed = JsFuture::from(self.writer.closed());
        async move {
            // `closed` also settles when we close the stream ourselves, after the turn.
            let _ = futures::future::select(aborted, closed).await;
        }
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

    /// How many `tts`/`data` frames the response's reader took. A taken frame did not
    /// necessarily reach the client: under `wrangler dev` a client that hung up is reported
    /// (a refused write, the request's abort signal) only after the next frame was taken, so
    /// that frame was lost (RELIABILITY.md, issue 22 item 4).
    pub fn frames_taken(&self) -> usize {
        self.taken
    }

    /// Sends `response.end` and closes the body. Exactly once, last, by construction. True when
    /// the client was still there for all of it: the end frame taken, the body closed and the
    /// request not aborted.
    pub async fn end(mut self) -> bool {
        let frame = sse::encode_end(self.turn_id.as_deref());
        self.write(&frame).await
            && settles_ok(self.writer.close()).await
            && !self.request_signal.aborted()
    }

    async fn write(&mut self, frame: &[u8]) -> bool {
        if !self.connected {
            return false;
        }
        let chunk = Uint8Array::from(frame);
        // The promise settles when the reader has taken the chunk; it rejects once the
        // readable side was cancelled, which is how a dropped request shows up here.
        self.connected = settles_ok(self.writer.write_with_chunk(&chunk)).await;
        self.taken += usize::from(self.connected);
        self.connected
    }
}

/// Whether `promise` resolves (rather than rejects or stalls past `STALLED_WRITE`). "Settle"
/// keeps its JavaScript meaning throughout: a promise or future completes, either way.
async fn settles_ok(promise: Promise) -> bool {
    within(STALLED_WRITE, JsFuture::from(promise))
        .await
        .is_some_and(|result| result.is_ok())
}
