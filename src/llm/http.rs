//! What every HTTP model wire shares, over the Workers fetch API: opening a streamed reply, and
//! reading a streamed `text/event-stream` body event by event. ("Chunk" keeps its meaning from
//! the Streams API and the SSE decoder: a piece of the body's bytes, cut wherever the network
//! cut it.)

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::task::Poll;

use futures::StreamExt;
use worker::{AbortSignal, ByteStream, Fetch, Response};

use crate::llm::{CallReport, Failure, OpenError};
use crate::sse::SseDecoder;
use crate::upstream::json_post;

/// Sends a streaming JSON request (`upstream::json_post`: redirects never followed) with the
/// `credential` header (name, value), if any. Returns the response whatever its status.
async fn send(
    url: &str,
    credential: Option<(&str, &str)>,
    body: &str,
    signal: &AbortSignal,
) -> worker::Result<Response> {
    let request = json_post(url, credential, body)?;
    Fetch::Request(request).send_with_signal(signal).await
}

/// Opens a streamed reply, the way every wire does: sends the request, calls `on_sent` (if
/// any) as soon as the runtime has taken it (the engine counts the time to the first word from
/// the model being asked), records the answer's status in `report`, and reads a 200 answer's body
/// event by event. Any other status is read whole and classified by the wire's `classify`
/// (status, error body) into its log form (codes only) and its retry verdict.
pub async fn open_events(
    url: &str,
    credential: Option<(&str, &str)>,
    body: &str,
    signal: &AbortSignal,
    on_sent: Option<Box<dyn FnOnce()>>,
    report: &RefCell<CallReport>,
    classify: &dyn Fn(u16, &str) -> (String, bool),
) -> Result<EventReader, OpenError> {
    report.borrow_mut().requests += 1;
    let mut sending = pin!(send(url, credential, body, signal));
    // The first poll hands the request to the runtime; the hook runs right after.
    let first = poll_fn(|cx| Poll::Ready(sending.as_mut().poll(cx))).await;
    if let Some(hook) = on_sent {
        hook();
    }
    let sent = match first {
        Poll::Ready(result) => result,
        Poll::Pending => sending.await,
    };
    // Nothing reached the endpoint: trying again is harmless.
    let mut response = sent.map_err(|_| OpenError {
        failure: Failure::Unreachable,
        retryable: true,
    })?;
    let status = response.status_code();
    report.borrow_mut().status = Some(status);
    if status != 200 {
        let error_body = response.text().await.unwrap_or_default();
        let (for_log, retryable) = classify(status, &error_body);
        report.borrow_mut().error = Some(for_log);
        return Err(OpenError {
            failure: Failure::Http(status),
            retryable,
        });
    }
    EventReader::new(&mut response).map_err(|_| OpenError {
        failure: Failure::NoBody,
        retryable: false,
    })
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
