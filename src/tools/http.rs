//! An HTTP tool: one signed POST per call, over the Workers fetch API (runtime glue).
//!
//! The body is [`super::call_body`]; the signature is Layercode's webhook scheme
//! (`t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`, `signature::sign`) so an endpoint can
//! verify it with code it already has. Redirects are not followed (a 3xx is a failure: a
//! signed body must not travel to a host the deployer did not name). Dropping the run's future
//! aborts the fetch, which is how the turn cancels a call on barge-in or timeout.

use futures::StreamExt;
use serde_json::Value;
use worker::wasm_bindgen::JsValue;
use worker::web_sys::{self, RequestRedirect};
use worker::{AbortController, Fetch, Headers};

use super::{call_body, http_result, HttpToolSpec, Tool, ToolCall, ToolFuture, ToolResult};
use super::{MAX_RESULT_BYTES, SIGNATURE_HEADER};
use crate::signature;

pub struct HttpTool {
    spec: HttpToolSpec,
    /// `TOOLS_SIGNING_SECRET`; without it calls go out unsigned (and `/health` warns).
    signing_secret: Option<String>,
}

impl HttpTool {
    pub fn new(spec: HttpToolSpec, signing_secret: Option<String>) -> Self {
        HttpTool {
            spec,
            signing_secret,
        }
    }
}

impl Tool for HttpTool {
    fn name(&self) -> &str {
        &self.spec.name
    }
    fn description(&self) -> &str {
        &self.spec.description
    }
    fn parameters(&self) -> &Value {
        &self.spec.parameters
    }
    fn side_effect(&self) -> bool {
        self.spec.side_effect
    }
    fn timeout_ms(&self) -> u64 {
        self.spec.timeout_ms
    }
    fn filler(&self) -> Option<&str> {
        self.spec.filler.as_deref()
    }
    fn run<'a>(&'a self, call: &'a ToolCall) -> ToolFuture<'a> {
        Box::pin(async move {
            let abort = AbortOnDrop(Some(AbortController::default()));
            let result = post(&self.spec.url, self.signing_secret.as_deref(), call, &abort).await;
            abort.finished();
            result
        })
    }
}

async fn post(url: &str, secret: Option<&str>, call: &ToolCall, abort: &AbortOnDrop) -> ToolResult {
    let unreachable = |_| "the tool could not be reached".to_string();
    let body = call_body(call);
    let headers = Headers::new();
    headers
        .set("content-type", "application/json")
        .map_err(unreachable)?;
    if let Some(secret) = secret {
        let now_secs = worker::Date::now().as_millis() / 1000;
        let header = signature::sign(secret, now_secs, body.as_bytes());
        headers
            .set(SIGNATURE_HEADER, &header)
            .map_err(unreachable)?;
    }
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_headers(&headers.0);
    init.set_redirect(RequestRedirect::Manual);
    init.set_body(&JsValue::from_str(&body));
    let request = crate::upstream::request(url, &init).map_err(unreachable)?;
    let signal = abort.signal().ok_or("the tool call was cancelled")?;
    let mut response = Fetch::Request(request)
        .send_with_signal(&signal)
        .await
        .map_err(unreachable)?;
    let status = response.status_code();
    let mut text = Vec::new();
    if let Ok(mut stream) = response.stream() {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|_| "the tool's answer was cut off".to_string())?;
            if text.len() + chunk.len() > MAX_RESULT_BYTES {
                return Err(format!(
                    "the tool's answer was larger than {MAX_RESULT_BYTES} bytes"
                ));
            }
            text.extend_from_slice(&chunk);
        }
    }
    http_result(status, &String::from_utf8_lossy(&text))
}

/// Aborts the fetch unless the run finished: dropping an unfinished run cancels its request.
struct AbortOnDrop(Option<AbortController>);

impl AbortOnDrop {
    fn signal(&self) -> Option<worker::AbortSignal> {
        self.0.as_ref().map(AbortController::signal)
    }

    fn finished(mut self) {
        self.0 = None;
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(controller) = self.0.take() {
            controller.abort();
        }
    }
}
