//! A Cloudflare Worker that backs Layercode voice agents with Google Gemini.
//!
//! This file only routes, and is the one place an error becomes a response; each concern lives
//! in its layer's folder (see README "Architecture").

// No unwrap, expect or panic in the worker: a panic aborts the wasm instance and every request
// it was serving. Denied for every target by Cargo.toml's `[lints]`; unit tests may
// (`clippy.toml`), and the integration tests, the benches and `tests/common` allow them at
// their top, since a test fails by panicking.

// One folder per layer, highest first; a module imports only from layers below its own
// (README "Architecture"; enforced by tests/layers.rs).

// Worker-side HTTP endpoints.
pub mod edge;

// The Durable Object: its routes, the alarm, the Worker's client of it.
pub mod conversation;

// One turn: store -> engine -> store, one log line.
pub mod turn;

// Peers, neither imports the other: the turn's logic over small traits; the conversation's SQLite.
pub mod engine;
pub mod store;

// The model trait and the types it speaks; a folder per wire family (gemini/).
pub mod llm;

// Layercode's wire: webhook events, the SSE response writer.
pub mod layercode;

// Leaves: each imports only other leaves.
pub mod config;
pub mod deadline;
pub mod error;
pub mod history;
pub mod lossy_json;
pub mod models;
pub mod placeholders;
pub mod redact;
pub mod retention;
pub mod signature;
pub mod speech;
pub mod sse;
pub mod summary;
pub mod tools;
pub mod upstream;

#[cfg(test)]
#[path = "../tests/common/rng.rs"]
mod test_rng;

use worker::{event, Context, Env, Method, Request, Response};

use crate::error::AppError;

/// What a path names; each path is listed here once, the methods each takes are in `fetch`.
#[derive(Clone, Copy)]
enum Endpoint {
    Health,
    Agent,
    Authorize,
    Conversations,
    VoicePage,
}

impl Endpoint {
    fn of(path: &str) -> Option<Endpoint> {
        match path {
            "/health" => Some(Endpoint::Health),
            edge::voice_page::PATH => Some(Endpoint::VoicePage),
            "/agent" | "/api/agent" => Some(Endpoint::Agent),
            "/authorize" | "/api/authorize" => Some(Endpoint::Authorize),
            p if p.starts_with(edge::conversations_api::PATH_PREFIX) => {
                Some(Endpoint::Conversations)
            }
            _ => None,
        }
    }
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
    let answer = match (Endpoint::of(&req.path()), req.method()) {
        (Some(Endpoint::Health), Method::Get) => edge::health::handle(&env),
        (Some(Endpoint::VoicePage), Method::Get) => edge::voice_page::handle(&env),
        (Some(Endpoint::Agent), Method::Post) => edge::agent::handle(req, env).await,
        (Some(Endpoint::Authorize), Method::Post) => edge::authorize::handle(req, env).await,
        (Some(Endpoint::Authorize), Method::Options) => edge::authorize::preflight(&req, &env),
        // Every method: the API answers 404 while it is off, before looking at the method.
        (Some(Endpoint::Conversations), _) => edge::conversations_api::handle(req, env).await,
        (Some(_), _) => Err(AppError::MethodNotAllowed),
        (None, _) => Err(AppError::NotFound),
    };
    // The one place where an error becomes its response.
    answer.or_else(|error| error.to_response())
}
