//! The requests we send upstream, to the APIs we call with a key (the models, Layercode): a JSON
//! `POST` that asks for an uncompressed answer and never follows a redirect.

use worker::wasm_bindgen::JsValue;
use worker::web_sys::{self, RequestRedirect};
use worker::{Headers, Request};

/// A `POST` of the JSON `body` to `url`, with the `credential` header (name, value) if any (a
/// local model server may take none).
///
/// Redirects are not followed: following one would send the key (and the body) wherever it
/// points; the 3xx comes back as the answer. The answer is asked for uncompressed: these
/// answers are small, and a body that merely claims to be gzip is one more way to fail. An
/// invalid credential value fails with an error that names the header, never its value.
pub fn json_post(
    url: &str,
    credential: Option<(&str, &str)>,
    body: &str,
) -> worker::Result<Request> {
    let headers = Headers::new();
    headers.set("content-type", "application/json")?;
    if let Some((name, value)) = credential {
        if headers.set(name, value).is_err() {
            return Err(worker::Error::RustError(format!(
                "the {name} header value is not valid"
            )));
        }
    }
    headers.set("accept-encoding", "identity")?;
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_headers(&headers.0);
    init.set_body(&JsValue::from_str(body));
    init.set_redirect(RequestRedirect::Manual);
    request(url, &init)
}

/// `Request::new_with_init`, with the same errors, for a `web_sys::RequestInit`. Building from a
/// `worker::RequestInit` links the code that converts every Cloudflare `cf` request property
/// (cache rules, image resizing, …), about 6 KB of the gzipped wasm, though we set none.
/// The request's headers are then read-only (`headers_mut` fails), which nothing here needs.
pub fn request(url: &str, init: &web_sys::RequestInit) -> worker::Result<Request> {
    web_sys::Request::new_with_str_and_init(url, init)
        .map(Request::from)
        .map_err(|e| {
            worker::Error::JsError(
                e.as_string()
                    .unwrap_or_else(|| "invalid URL or options for Request".to_string()),
            )
        })
}
