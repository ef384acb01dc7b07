//! `layercode-sim serve`: a stand-in for Layercode's cloud on this machine, so the voice page
//! (`/` with `VOICE_PAGE=local`) gives a working conversation with no account and no network.
//!
//! Towards the worker it acts as Layercode does: it answers `POST
//! /v1/agents/web/authorize_session` (the worker's real `/authorize` calls it through
//! `LAYERCODE_API_BASE_URL`), and sends signed webhooks (`session.start`, `message`, `data`,
//! `session.end`), reading our SSE replies. Towards the browser it speaks the SDK's socket
//! protocol at `/v1/agents/web/websocket` (checking the session key). Typed turns stand in for
//! speech recognition; the agent's words are spoken with espeak-ng when it is installed.
//!
//! Blocking `std::net` with a thread per connection: a developer's page makes one or two.

mod http;
mod keys;
mod protocol;
mod socket;
mod speech;
#[cfg(test)]
mod tests;

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

pub use http::Target;
pub use speech::available as speech_available;

/// Layercode's REST path for a browser session key.
pub const AUTHORIZE_PATH: &str = "/v1/agents/web/authorize_session";
/// Layercode's browser socket path (the SDK adds `?client_session_key=…`).
pub const SOCKET_PATH: &str = "/v1/agents/web/websocket";
/// `/v1/agents/{agent_id}`: the agent's settings (here, only its webhook URL).
const AGENTS_PATH: &str = "/v1/agents/";

/// How the stand-in behaves.
pub struct Options {
    /// The one agent it knows; authorize requests for another get 400 `invalid agent_id`.
    pub agent_id: String,
    /// The bearer key the worker must send (its `LAYERCODE_API_KEY`); `None` accepts any.
    pub api_key: Option<String>,
    /// Signs every webhook (the worker's `LAYERCODE_WEBHOOK_SECRET`).
    pub webhook_secret: String,
    /// Where webhooks go (`http://host:port`, `/agent` added); `None` until set through
    /// `POST /v1/agents/{agent_id}`.
    pub webhook_url: Option<Target>,
    /// Speak the agent's words with espeak-ng.
    pub speech: bool,
    /// Receives one line per notable event (printed by the CLI).
    pub log: Box<dyn Fn(&str) + Send + Sync>,
}

/// State shared by the accept loop and every connection.
struct Shared {
    options: Options,
    target: Mutex<Option<Target>>,
    keys: Mutex<keys::Keys>,
    /// Every webhook body sent, in order.
    webhooks: Mutex<Vec<Value>>,
    /// Open browser sockets, shut down when the server stops.
    sockets: Mutex<Vec<(u64, TcpStream)>>,
    stopping: AtomicBool,
    ids: AtomicU64,
}

impl Shared {
    fn log(&self, line: &str) {
        (self.options.log)(line);
    }

    fn target(&self) -> Option<Target> {
        lock(&self.target).clone()
    }

    /// `prefix_<16 hex digits>`, random.
    fn mint(&self, prefix: &str) -> String {
        let mut bytes = [0u8; 8];
        let random = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
        if random.is_err() {
            // No /dev/urandom: the time and a counter are unique enough for ids.
            let n = self.ids.fetch_add(1, Ordering::Relaxed);
            bytes =
                (unix_ms().rotate_left(17) ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15)).to_le_bytes();
        }
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        format!("{prefix}_{hex}")
    }

    fn record(&self, webhook: &Value) {
        lock(&self.webhooks).push(webhook.clone());
    }
}

/// A running stand-in. Dropping it stops it: the listener closes and open sockets are cut.
pub struct Server {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl Server {
    /// Serves on `listener` (bound by the caller, so a test can bind port 0 and keep it).
    pub fn start(listener: TcpListener, options: Options) -> std::io::Result<Server> {
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            target: Mutex::new(options.webhook_url.clone()),
            options,
            keys: Mutex::new(keys::Keys::default()),
            webhooks: Mutex::new(Vec::new()),
            sockets: Mutex::new(Vec::new()),
            stopping: AtomicBool::new(false),
            ids: AtomicU64::new(0),
        });
        let accepting = Arc::clone(&shared);
        let accept = thread::spawn(move || {
            for stream in listener.incoming() {
                if accepting.stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let shared = Arc::clone(&accepting);
                thread::spawn(move || serve(stream, &shared));
            }
        });
        Ok(Server {
            addr,
            shared,
            accept: Some(accept),
        })
    }

    #[cfg(test)]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: the worker's `LAYERCODE_API_BASE_URL`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every webhook body sent so far, in order.
    #[cfg(test)]
    pub fn webhooks(&self) -> Vec<Value> {
        lock(&self.shared.webhooks).clone()
    }

    /// Blocks until the server stops (the CLI runs until it is killed).
    pub fn wait(mut self) {
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wake the accept loop, which then sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        for (_, socket) in lock(&self.shared.sockets).drain(..) {
            let _ = socket.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// One connection: an authorize request, a socket upgrade, or something else.
fn serve(mut stream: TcpStream, shared: &Arc<Shared>) {
    if shared.stopping.load(Ordering::SeqCst) {
        return;
    }
    let request = match http::read_request(&mut stream) {
        Ok(request) => request,
        Err(e) => {
            http::respond_json(&mut stream, 400, &json!({ "error": e.to_string() }));
            return;
        }
    };
    match (request.method.as_str(), request.path.as_str()) {
        ("POST", AUTHORIZE_PATH) => {
            let (status, body) = lock(&shared.keys).authorize(
                request.header("authorization"),
                shared.options.api_key.as_deref(),
                &shared.options.agent_id,
                &request.body,
                |prefix| shared.mint(prefix),
                Instant::now(),
            );
            let outcome = match body["conversation_id"].as_str() {
                Some(conversation) => format!("conversation {conversation}"),
                None => format!("{status}: {}", body["error"].as_str().unwrap_or_default()),
            };
            shared.log(&format!("authorize_session → {outcome}"));
            http::respond_json(&mut stream, status, &body);
        }
        ("GET", SOCKET_PATH) => socket::accept(stream, request, shared),
        ("POST", path) if agent_path(path).is_some() => {
            let (status, body) = update_agent(shared, &request, agent_path(path).unwrap_or(""));
            http::respond_json(&mut stream, status, &body);
        }
        ("GET", "/") => {
            let _ = http::respond(
                &mut stream,
                200,
                "text/plain; charset=utf-8",
                b"layercode-sim: a local stand-in for Layercode's cloud\n",
            );
        }
        (_, AUTHORIZE_PATH | SOCKET_PATH) => {
            http::respond_json(&mut stream, 405, &json!({"error": "method not allowed"}));
        }
        _ => http::respond_json(&mut stream, 404, &json!({"error": "not found"})),
    }
}

/// The agent id of `/v1/agents/{agent_id}`.
fn agent_path(path: &str) -> Option<&str> {
    path.strip_prefix(AGENTS_PATH)
        .filter(|id| !id.is_empty() && !id.contains('/'))
}

/// `POST /v1/agents/{agent_id}` with `{"webhook_url": …}`: where this agent's webhooks go, as
/// Layercode's REST API sets it (only that field is imitated). Lets a test point the stand-in at
/// a worker that started after it.
fn update_agent(shared: &Shared, request: &http::Request, agent_id: &str) -> keys::Answer {
    if !keys::bearer_ok(
        request.header("authorization"),
        shared.options.api_key.as_deref(),
    ) {
        return keys::error(400, "missing or invalid bearer token");
    }
    if agent_id != shared.options.agent_id {
        return keys::error(404, "agent not found");
    }
    let url = serde_json::from_slice::<Value>(&request.body)
        .ok()
        .and_then(|body| body["webhook_url"].as_str().map(str::to_string));
    let Some(url) = url else {
        return keys::error(400, "webhook_url must be a string");
    };
    match Target::parse(&url) {
        Ok(target) => {
            shared.log(&format!(
                "agent {agent_id}: webhooks now go to {}",
                target.url()
            ));
            let answer = json!({"id": agent_id, "webhook_url": target.url()});
            *lock(&shared.target) = Some(target);
            (200, answer)
        }
        Err(problem) => keys::error(400, &problem),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
