//! Host-side integration-test harness: the real worker under `wrangler dev`, loopback mocks of
//! Gemini and Layercode, an HTTP/SSE client and Layercode webhook signing.
//!
//! Each integration test file says `mod common; use common::*;`.
// Each test binary uses a different subset of the harness (and of these re-exports).
#![allow(dead_code, unused_imports)]
// Test helpers fail by panicking, with the reason; the worker itself may not (Cargo.toml [lints]).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod browser;
pub mod closed_port;
pub mod dev_mock;
pub mod gzip;
pub mod http;
pub mod mock_gemini;
pub mod mock_layercode;
pub mod mock_openai;
pub mod mock_server;
pub mod mock_summary;
pub mod rng;
pub mod signing;
pub mod spoken;
pub mod webhook;
pub mod worker;

pub use closed_port::ClosedPort;
pub use dev_mock::DevMock;
pub use http::{
    get, post_dripping, post_json, request, send_then_hang_up, try_request, tts_text, HttpResponse,
    SseClient, SseEvent, SseNext, SseTranscript,
};
pub use mock_gemini::{gemini_fixtures, Framing, GeminiReply, MockGemini, DEFAULT_GEMINI_TEXT};
pub use mock_layercode::{LayercodeReply, MockLayercode, AUTHORIZE_PATH, DEFAULT_AUTHORIZE_BODY};
pub use mock_openai::{openai_fixtures, MockOpenAi, OpenAiReply, Separator, DEFAULT_OPENAI_TEXT};
pub use mock_server::{Cue, Gate, Mock, RecordedRequest, RequestTiming, StreamEnd};
pub use mock_summary::{
    folded_lines, is_summary_request, mock_summary, previous_summary, CALLER_SAID,
};
pub use rng::Rng;
pub use signing::{now_secs, sign, sign_now, signature_hex, SIGNATURE_HEADER};
pub use spoken::*;
pub use webhook::*;
pub use worker::{
    process_group_members, sqlite_json, start_default, Worker, WorkerOptions, GEMINI_BASE_URL_VAR,
    LAYERCODE_BASE_URL_VAR, TEST_GEMINI_KEY, TEST_LAYERCODE_API_KEY, TEST_WEBHOOK_SECRET,
};
