//! The edge: the Worker's HTTP endpoints, each a request in and a response out.
//!
//! `agent` (the signed Layercode webhook, forwarded to the conversation), `authorize` (the
//! session-key proxy) with `ownership` (who may resume a conversation), `conversations_api`
//! (read or erase a transcript), `health`, `voice_page` (the page's HTML and policy), and `body`
//! (bounded body reading). No SQL and no model here: turns run in the conversation's Durable
//! Object (the conversations API names the store's record types, which the object returns).
//!
//! May import: `conversation` and every layer below it (see `tests/layers.rs`).

pub mod agent;
pub mod authorize;
pub mod body;
pub mod conversations_api;
pub mod health;
pub mod ownership;
pub mod voice_page;
