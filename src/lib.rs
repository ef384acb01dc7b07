//! A Cloudflare Worker that backs Layercode voice agents with Google Gemini.
//!
//! This file only routes; each concern lives in its own module (see README "Architecture").

// No unwrap, expect or panic in the worker: a panic aborts the wasm instance and every request
// it was serving. Denied for every target by Cargo.toml's `[lints]`; unit tests may
// (`clippy.toml`), and the integration tests, the benches and `tests/common` allow them at
// their top, since a test fails by panicking.

pub mod agent;
pub mod authorize;
pub mod body;
pub mod config;
pub mod conversation;
pub mod conversations_api;
pub mod deadline;
pub mod engine;
pub mod error;
pub mod event_stream;
pub mod events;
pub mod gemini;
pub mod history;
pub mod lossy_json;
pub mod redact;
pub mod retention;
pub mod signature;
pub mod speech;
pub mod sse;
pub mod tools;
pub mod turn;
pub mod upstream;

#[cfg(test)]
#[path = "../tests/common/rng.rs"]
mod test_rng;

use worker::{event, Context, Env, Method, Request, Response};

use crate::error::{json_response, AppError};

/// What a path names; each path is listed here once, the methods each takes are in `fetch`.
#[derive(Clone, Copy)]
enum Endpoint {
    Health,
    Agent,
    Authorize,
    Conversations,
}

impl Endpoint {
    fn of(path: &str) -> Option<Endpoint> {
        match path {
            "/health" => Some(Endpoint::Health),
            "/agent" | "/api/agent" => Some(Endpoint::Agent),
            "/authorize" | "/api/authorize" => Some(Endpoint::Authorize),
            p if p.starts_with(conversations_api::PATH_PREFIX) => Some(Endpoint::Conversations),
            _ => None,
        }
    }
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
    let answer = match (Endpoint::of(&req.path()), req.method()) {
        (Some(Endpoint::Health), Method::Get) => health(&env),
        (Some(Endpoint::Agent), Method::Post) => agent::handle(req, env).await,
        (Some(Endpoint::Authorize), Method::Post) => authorize::handle(req, env).await,
        (Some(Endpoint::Authorize), Method::Options) => authorize::preflight(&req, &env),
        // Every method: the API answers 404 while it is off, before looking at the method.
        (Some(Endpoint::Conversations), _) => conversations_api::handle(req, env).await,
        (Some(_), _) => Err(AppError::MethodNotAllowed),
        (None, _) => Err(AppError::NotFound),
    };
    // The one place where an error becomes its response.
    answer.or_else(|error| error.to_response())
}

/// Liveness, which settings are present (never their values), and what `TOOLS` declares.
fn health(env: &Env) -> Result<Response, AppError> {
    let tools = config::Config::from_env(env).tools_report();
    let mut settings = serde_json::Map::new();
    for (name, present) in config::present_settings(config::env_lookup(env)) {
        settings.insert(name.to_string(), present.into());
    }
    let body = serde_json::json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "settings": settings,
        "tools": tools,
    });
    Ok(json_response(200, &body.to_string())?)
}
