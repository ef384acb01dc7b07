//! A loopback stand-in for Layercode's REST API, i.e. what the worker's `/api/authorize` calls:
//! `POST /v1/agents/web/authorize_session` (layercode-protocol.md §7).

use super::mock_server::{json_reply, MockReply, MockServer, RecordedRequest};
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
    /// Read the request, never answer.
    Hang,
}

impl LayercodeReply {
    /// Layercode's error shape: `status` with `{"error": message}`, e.g. 402 insufficient balance.
    pub fn error(status: u16, message: &str) -> LayercodeReply {
        LayercodeReply::Json {
            status,
            body: serde_json::json!({ "error": message }).to_string(),
        }
    }

    fn into_mock(self) -> MockReply {
        match self {
            LayercodeReply::Json { status, body } => json_reply(status, "application/json", &body),
            LayercodeReply::Hang => MockReply::Hang,
        }
    }
}

/// The Layercode REST mock. Unscripted requests get 200 [`DEFAULT_AUTHORIZE_BODY`].
pub struct MockLayercode {
    server: MockServer,
}

impl MockLayercode {
    /// Starts the mock on `127.0.0.1:<free port>`.
    pub fn start() -> MockLayercode {
        let default = || json_reply(200, "application/json", DEFAULT_AUTHORIZE_BODY);
        MockLayercode {
            server: MockServer::start("MockLayercode", default),
        }
    }

    /// `http://127.0.0.1:PORT`: the value for the worker's Layercode base-URL var.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// Queues the reply for the next unanswered request (FIFO).
    pub fn push(&self, reply: LayercodeReply) {
        self.server.push(reply.into_mock());
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.server.requests()
    }

    /// Waits until at least `n` requests arrived; panics on timeout (with the worker log tail).
    pub fn wait_for_requests(&self, n: usize, timeout: Duration) -> Vec<RecordedRequest> {
        self.server.wait_for_requests(n, timeout)
    }

    /// True once the worker closed the connection of request `i` before it was answered
    /// (only possible with [`LayercodeReply::Hang`]).
    pub fn client_disconnected(&self, i: usize, timeout: Duration) -> bool {
        self.server.client_disconnected(i, timeout)
    }
}
