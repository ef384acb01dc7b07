//! A loopback stand-in for Layercode's REST API, i.e. what the worker's `/api/authorize` calls:
//! `POST /v1/agents/web/authorize_session` (layercode-protocol.md §7).

use super::mock_server::{json_reply, redirect_reply, Mock, MockReply, MockServer, StreamEnd};
use std::time::Duration;

/// The body of the default (successful) authorize reply.
pub const DEFAULT_AUTHORIZE_BODY: &str = r#"{"client_session_key":"lc_sesskey_test_123","conversation_id":"lc_conv_test_456","config":{"transcription":{"trigger":"automatic","automatic":true,"can_interrupt":true},"vad":{"enabled":true}}}"#;

/// The path the worker must call.
pub const AUTHORIZE_PATH: &str = "/v1/agents/web/authorize_session";

/// One scripted answer to one Layercode request.
#[derive(Clone, Debug)]
pub enum LayercodeReply {
    /// Any status with a JSON body (`application/json`).
    Json {
        /// HTTP status.
        status: u16,
        /// The JSON body, sent as is.
        body: String,
    },
    /// Any status, content type and body (for answers that are not JSON, or mislabelled).
    Raw {
        /// HTTP status.
        status: u16,
        /// `Content-Type` header value.
        content_type: String,
        /// The body, sent as is.
        body: String,
    },
    /// `status` with a JSON content type and the first piece of a chunked body, which then
    /// stalls (never ends) until the client goes away: headers on time, body never.
    StalledBody {
        /// HTTP status.
        status: u16,
        /// The bytes sent before the stall.
        first_piece: String,
    },
    /// A redirect to `location`.
    Redirect {
        /// HTTP status, e.g. 307.
        status: u16,
        /// The `Location` header value.
        location: String,
    },
    /// Read the request, never answer.
    Hang,
    /// A JSON reply labelled `Content-Encoding: <encoding>`, whose body is `body` as is, whether
    /// or not it really is in that encoding (see [`super::gzip`]).
    Encoded {
        /// HTTP status.
        status: u16,
        /// The `Content-Encoding` header value, e.g. `gzip`.
        encoding: String,
        /// The body bytes.
        body: Vec<u8>,
    },
}

impl LayercodeReply {
    /// Layercode's error shape: `status` with `{"error": message}`, e.g. 402 insufficient balance.
    pub fn error(status: u16, message: &str) -> LayercodeReply {
        LayercodeReply::Json {
            status,
            body: serde_json::json!({ "error": message }).to_string(),
        }
    }
}

impl From<LayercodeReply> for MockReply {
    fn from(reply: LayercodeReply) -> MockReply {
        match reply {
            LayercodeReply::Json { status, body } => json_reply(status, "application/json", &body),
            LayercodeReply::Raw {
                status,
                content_type,
                body,
            } => json_reply(status, &content_type, &body),
            LayercodeReply::StalledBody {
                status,
                first_piece,
            } => MockReply::Chunked {
                status,
                content_type: "application/json".into(),
                pieces: vec![(Duration::ZERO, first_piece.into_bytes())],
                end: StreamEnd::Hang,
            },
            LayercodeReply::Redirect { status, location } => redirect_reply(status, &location),
            LayercodeReply::Hang => MockReply::Hang,
            LayercodeReply::Encoded {
                status,
                encoding,
                body,
            } => MockReply::WithHeaders {
                headers: vec![("Content-Encoding".into(), encoding)],
                reply: Box::new(MockReply::Full {
                    status,
                    content_type: "application/json".into(),
                    body,
                }),
            },
        }
    }
}

/// The Layercode REST mock. Unscripted requests get 200 [`DEFAULT_AUTHORIZE_BODY`].
pub type MockLayercode = Mock<LayercodeReply>;

impl Mock<LayercodeReply> {
    /// Starts the mock on `127.0.0.1:<free port>`.
    pub fn start() -> MockLayercode {
        let default = || json_reply(200, "application/json", DEFAULT_AUTHORIZE_BODY);
        Mock::new(MockServer::start("MockLayercode", default))
    }
}
