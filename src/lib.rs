//! A Cloudflare Worker that backs Layercode voice agents with Google Gemini.
//!
//! This file only routes; each concern lives in its own module (see README "Architecture").

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

#[cfg(test)]
#[path = "../tests/common/rng.rs"]
mod test_rng;

use worker::{event, Context, Env, Method, Request, Response};

use crate::error::{json_response, AppError};

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
    let path = req.path();
    match (req.method(), path.as_str()) {
        (Method::Get, "/health") => health(&env),
        (Method::Post, "/agent" | "/api/agent") => {
            agent::handle(req, env).await.or_else(|e| e.to_response())
        }
        (Method::Post, "/authorize" | "/api/authorize") => authorize::handle(req, env).await,
        (Method::Options, "/authorize" | "/api/authorize") => authorize::preflight(&req, &env),
        (_, p) if p.starts_with(conversations_api::PATH_PREFIX) => {
            conversations_api::handle(req, env)
                .await
                .or_else(|e| e.to_response())
        }
        (_, "/health" | "/agent" | "/api/agent" | "/authorize" | "/api/authorize") => {
            AppError::MethodNotAllowed.to_response()
        }
        _ => AppError::NotFound.to_response(),
    }
}

/// Liveness, which settings are present (never their values), and what `TOOLS` declares.
fn health(env: &Env) -> worker::Result<Response> {
    let tools = config::Config::from_env(env).tools_report();
    let settings: serde_json::Map<String, serde_json::Value> =
        config::present_settings(|name| env.var(name).ok().map(|v| v.to_string()))
            .into_iter()
            .map(|(name, present)| (name.to_string(), present.into()))
            .collect();
    let body = serde_json::json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "settings": settings,
        "tools": tools,
    });
    json_response(200, &body.to_string())
}
