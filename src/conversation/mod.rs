//! The conversation: one SQLite-backed Durable Object per `conversation_id`, which runs that
//! conversation's turns next to its rows.
//!
//! The Worker verifies and parses a webhook, then hands the raw body to the object
//! ([`ConversationClient::forward`]); the object answers with the turn's SSE stream (or JSON) and
//! the Worker passes that response through. Running the turn here rather than in the Worker makes
//! the history a local, synchronous SQL read and the closing write local too: one hop per turn
//! instead of two, and no history serialised across it (BENCHMARKS.md has the measurements).
//!
//! Glue only: `client` is the Worker's side of the hop, `object` the Durable Object (its routes
//! and the retention alarm); the SQL is the store's, the turn is `turn`'s.
//!
//! May import: `turn` and every layer below it (see `tests/layers.rs`).

mod client;
mod object;

use serde::{Deserialize, Serialize};

pub use client::ConversationClient;
pub use object::Conversation;

use crate::store::Transcript;

/// The Durable Object binding in `wrangler.toml`.
const BINDING: &str = "CONVERSATIONS";

/// The events the object handles, each at its own path on the stub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// A `message`: the turn's SSE stream.
    Message,
    /// A `session.start`: the welcome's SSE stream.
    SessionStart,
    /// A `session.end`: recorded, answered with JSON.
    SessionEnd,
}

impl Route {
    fn path(self) -> &'static str {
        match self {
            Route::Message => "/message",
            Route::SessionStart => "/session.start",
            Route::SessionEnd => "/session.end",
        }
    }

    fn from_path(path: &str) -> Option<Route> {
        [Route::Message, Route::SessionStart, Route::SessionEnd]
            .into_iter()
            .find(|route| route.path() == path)
    }
}

/// Where the object serves the conversations API: `GET` reads, `DELETE` erases.
const TRANSCRIPT_PATH: &str = "/transcript";

/// Where `/authorize` asks whether a user owns the conversation (`POST`, the owner's digest as
/// the body): 204 yes, 403 no. At the claim path, a conversation without an owner becomes its.
const OWNER_CHECK_PATH: &str = "/owner/check";
const OWNER_CLAIM_PATH: &str = "/owner/claim";

/// The object's answer to a read: `None` when nothing is stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ReadReply {
    transcript: Option<Transcript>,
}

/// The object's answer to an erase: false when nothing was stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct EraseReply {
    erased: bool,
}
