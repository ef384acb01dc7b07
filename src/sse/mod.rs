//! Server-Sent Events (SSE), in both directions of a voice turn.
//!
//! * **Out, to Layercode.** [`encode_tts`], [`encode_data`] and [`encode_end`] build the frames of
//!   our webhook response. Layercode expects each event as `data: ` + one line of JSON + `\n\n`
//!   (layercode-protocol.md §5). serde writes the JSON, so quotes, newlines and emoji in the
//!   spoken text are escaped and can never break the framing; U+2028, U+2029 and U+0085, which
//!   some line readers take for line breaks, are escaped too.
//! * **In, from Gemini.** [`SseDecoder`] turns the raw body of `streamGenerateContent?alt=sse`
//!   into the data payload of each event (gemini-streaming.md §4). Network chunks can split
//!   anywhere, even inside a UTF-8 character or between the CR and LF of a CRLF, so the decoder
//!   buffers bytes and follows the WHATWG event-stream rules for lines. That one rule set covers
//!   the separators Google's own JS client accepts: `\n\n` (Google AI), `\r\n\r\n` (Vertex AI)
//!   and `\r\r`.
//!
//! Words, one meaning each: a *chunk* is a piece of a body as the network delivers it (any
//! length, cut anywhere); an *event* is one SSE event, ended by a blank line; its *payload* is
//! its `data` lines joined; a *frame* is the bytes of one event we send.
//!
//! The module does no I/O: the Worker glue hands it bytes, so it is tested natively. A leaf:
//! imports only other leaves (see `tests/layers.rs`).

mod decode;
mod encode;

pub use decode::{SseDecoder, MAX_EVENT_BYTES};
pub use encode::{encode_data, encode_end, encode_tts};
