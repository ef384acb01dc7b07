//! The engine's [`Speaker`] over Layercode's SSE response.

use std::cell::RefCell;
use std::rc::Rc;

use crate::engine::Speaker;
use crate::layercode::event_stream::EventStream;

/// The turn's speaker: the SSE stream, keeping what was sent where the store can see it while
/// the turn runs (an interruption context is clamped to it).
pub(super) struct Recorder<'a> {
    pub(super) stream: &'a mut EventStream,
    pub(super) sent: Rc<RefCell<String>>,
}

impl Speaker for Recorder<'_> {
    async fn speak(&mut self, text: &str) -> bool {
        let delivered = self.stream.tts(text).await;
        if delivered {
            self.sent.borrow_mut().push_str(text);
        }
        delivered
    }

    async fn data(&mut self, content: &serde_json::Value) -> bool {
        self.stream.data(content).await
    }
}

/// Layercode's response as a plain speaker; a turn speaks through `Recorder`, which also keeps
/// what was sent.
impl Speaker for EventStream {
    async fn speak(&mut self, text: &str) -> bool {
        self.tts(text).await
    }
}
