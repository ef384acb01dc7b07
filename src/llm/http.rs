//! What every HTTP model wire shares, over the Workers fetch API: sending the JSON request, and
//! reading a streamed `text/event-stream` body event by event. ("Chunk" keeps its meaning from
//! the Streams API and the SSE decoder: a piece of the body's bytes, cut wherever the network
//! cut it.)

use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::task::Poll;

use futures::StreamExt;
use worker::{AbortSignal, ByteStream, Fetch, Response};

use crate::sse::SseDecoder;
use crate::upstream::json_post;

/// Sends a streaming JSON request (`upstream::json_post`: redirects never followed) with the
/// `credential` header (name, value), if any. Returns the response whatever its status.
pub async fn send(
    url: &str,
    credential: Option<(&str, &str)>,
    body: &str,
    signal: &AbortSignal,
) -> worker::Result<Response> {
    let request = json_post(url, credential, body)?;
    Fetch::Request(request).send_with_signal(signal).await
}

/// [`send`], calling `on_sent` (if any) as soon as the runtime has taken the request, before its
/// answer: the engine counts the time to the first word from the model being asked.
pub async fn send_announced(
    url: &str,
    credential: Option<(&str, &str)>,
    body: &str,
    signal: &AbortSignal,
    on_sent: Option<Box<dyn FnOnce()>>,
) -> worker::Result<Response> {
    let mut sending = pin!(send(url, credential, body, signal));
    // The first poll hands the request to the runtime; the hook runs right after.
    let first = poll_fn(|cx| Poll::Ready(sending.as_mut().poll(cx))).await;
    if let Some(hook) = on_sent {
        hook();
    }
    match first {
        Poll::Ready(result) => result,
        Poll::Pending => sending.await,
    }
}

/// Reads a streaming response event by event.
pub struct EventReader {
    bytes: ByteStream,
    decoder: SseDecoder,
    ready: VecDeque<String>,
    ended: bool,
}

/// One step of the stream.
pub enum StreamItem {
    /// The JSON text of one event.
    Event(String),
    /// The body ended; carries leftover bytes of an unfinished event, if any.
    End(Option<String>),
    /// An event was larger than any real one (`sse::MAX_EVENT_BYTES`): the stream is refused.
    Oversized,
}

impl EventReader {
    pub fn new(response: &mut Response) -> worker::Result<Self> {
        Ok(EventReader {
            bytes: response.stream()?,
            decoder: SseDecoder::new(),
            ready: VecDeque::new(),
            ended: false,
        })
    }

    /// The next event, or the end of the body. Network errors surface as `Err`.
    pub async fn next(&mut self) -> worker::Result<StreamItem> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Ok(StreamItem::Event(event));
            }
            if self.ended {
                return Ok(StreamItem::End(None));
            }
            match self.bytes.next().await {
                Some(bytes) => {
                    self.ready.extend(self.decoder.push(&bytes?));
                    if self.decoder.overflowed() {
                        return Ok(StreamItem::Oversized);
                    }
                }
                None => {
                    self.ended = true;
                    return Ok(StreamItem::End(self.decoder.finish()));
                }
            }
        }
    }
}
