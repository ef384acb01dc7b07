//! The requests we send upstream, to the APIs we call with a key (the models, Layercode): a JSON
//! `POST` that asks for an uncompressed answer and never follows a redirect.

use worker::{Headers, Method, Request, RequestInit, RequestRedirect};

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
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(body.into()))
        .with_redirect(RequestRedirect::Manual);
    Request::new_with_init(url, &init)
}
