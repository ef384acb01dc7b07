//! The machinery behind `MockGemini` and `MockLayercode`: a loopback HTTP/1.1 server that
//! records every request and answers each with the next scripted [`MockReply`] (FIFO), falling
//! back to a default reply. One thread per connection, one request per connection
//! (`Connection: close`), so request #i is also connection #i.
//!
//! It also notices when the client goes away before the answer is complete, which is how tests
//! prove that the worker aborted its upstream fetch.

use super::http::{header_value, is_timeout, BodyReader, Conn};
use serde_json::Value;
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How often a waiting connection thread checks for shutdown and for the client going away.
const POLL: Duration = Duration::from_millis(20);

/// One request as the mock received it.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// Request method, e.g. `POST`.
    pub method: String,
    /// Request target including the query, e.g. `/v1beta/models/x:streamGenerateContent?alt=sse`.
    pub path: String,
    /// Headers in arrival order, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body (decoded if it was sent chunked), as lossy UTF-8.
    pub body: String,
}

impl RecordedRequest {
    /// First value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header_value(&self.headers, name)
    }

    /// The body parsed as JSON; panics with the body if it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| {
            panic!(
                "recorded {} {} body is not JSON ({e}): {:?}",
                self.method, self.path, self.body
            )
        })
    }
}

/// What happens after the last piece of a chunked reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamEnd {
    /// Send the terminating `0\r\n\r\n` and close: a complete, clean body.
    Close,
    /// Keep the connection open without ending the body, until the client leaves or the mock
    /// is dropped (an upstream that stalls mid-stream).
    Hang,
}

/// A reply at the HTTP level; the API-specific mocks translate their reply enums into this.
#[derive(Clone, Debug)]
pub enum MockReply {
    /// A complete body with `Content-Length`.
    Full {
        /// HTTP status.
        status: u16,
        /// `Content-Type` header value.
        content_type: String,
        /// The body, sent as is.
        body: Vec<u8>,
    },
    /// A `Transfer-Encoding: chunked` body; each piece is written and flushed as its own chunk
    /// after its delay (empty pieces are skipped: an empty chunk would end the body).
    Chunked {
        /// HTTP status.
        status: u16,
        /// `Content-Type` header value.
        content_type: String,
        /// (delay before writing, bytes) per chunk.
        pieces: Vec<(Duration, Vec<u8>)>,
        /// What happens after the last piece.
        end: StreamEnd,
    },
    /// Read the request and never answer.
    Hang,
    /// A `Transfer-Encoding: chunked` body whose pieces each wait for their [`Cue`]: a delay, or
    /// a [`Gate`] the test opens once it has seen what must come first. A piece behind a gate
    /// cannot arrive before the test says so, however fast or slow the machine is.
    Cued {
        /// HTTP status.
        status: u16,
        /// `Content-Type` header value.
        content_type: String,
        /// (what the piece waits for, bytes) per chunk; empty pieces only wait.
        pieces: Vec<(Cue, Vec<u8>)>,
        /// What happens after the last piece.
        end: StreamEnd,
    },
    /// `reply` with extra response headers, e.g. a `Content-Encoding` its body may not honour.
    WithHeaders {
        /// (name, value) pairs added to the head.
        headers: Vec<(String, String)>,
        /// The reply they are added to.
        reply: Box<MockReply>,
    },
}

/// A latch the test opens to let a [`MockReply::Cued`] piece go: the ordering of "the worker
/// did X" before "the mock sends Y" then comes from the test, not from a delay. Clones share it.
#[derive(Clone, Debug, Default)]
pub struct Gate(Arc<AtomicBool>);

impl Gate {
    /// A closed gate.
    pub fn new() -> Gate {
        Gate::default()
    }

    /// Lets every piece waiting on this gate go (now and later).
    pub fn open(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether [`Gate::open`] was called.
    pub fn is_open(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// What a piece of a [`MockReply::Cued`] body waits for before it is written.
#[derive(Clone, Debug)]
pub enum Cue {
    /// This long.
    After(Duration),
    /// Until the gate is open. A client that leaves, or the mock stopping, also ends the wait.
    Opened(Gate),
}

/// How the answer to one request went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Answering,
    Completed,
    ClientGone,
    Stopped,
}

#[derive(Default)]
struct Log {
    requests: Vec<RecordedRequest>,
    outcomes: Vec<Outcome>,
    /// Parallel to `requests`: when each arrived and when its first body bytes left.
    timings: Vec<RequestTiming>,
}

/// When the mock received one request and when it wrote the first bytes of its answer's body,
/// on the test process's monotonic clock (comparable with `Instant`s taken by the client).
#[derive(Clone, Copy, Debug)]
pub struct RequestTiming {
    /// The request (head and body) had been read completely.
    pub received_at: Instant,
    /// The first non-empty body chunk (a `Chunked` reply) or the whole body (a `Full` reply)
    /// was written and flushed; `None` while not yet, or never (`Hang`, client gone first).
    pub first_chunk_at: Option<Instant>,
}

impl RequestTiming {
    /// Time from receiving the request to writing the first body chunk, if it was written.
    pub fn time_to_first_chunk(&self) -> Option<Duration> {
        self.first_chunk_at.map(|t| t - self.received_at)
    }
}

/// Chooses the reply from the request itself (for concurrent clients, where FIFO order is
/// meaningless). Scripted replies still come first.
pub type Responder = Box<dyn Fn(&RecordedRequest) -> MockReply + Send + Sync>;

struct Shared {
    name: &'static str,
    script: Mutex<VecDeque<MockReply>>,
    default_reply: Box<dyn Fn() -> MockReply + Send + Sync>,
    /// When set, unscripted requests are answered by it instead of `default_reply`.
    responder: Option<Responder>,
    log: Mutex<Log>,
    changed: Condvar,
    stop: AtomicBool,
    /// Clones of the open sockets (slot per connection, emptied when it ends), shut down on
    /// drop to unblock their threads.
    sockets: Mutex<Vec<Option<TcpStream>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// A scripted loopback HTTP server. Stops (listener closed, connections shut down, threads
/// joined) on drop.
pub struct MockServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl MockServer {
    /// Starts listening on `127.0.0.1:<free port>`. `name` appears in panic messages.
    pub fn start(
        name: &'static str,
        default_reply: impl Fn() -> MockReply + Send + Sync + 'static,
    ) -> MockServer {
        MockServer::start_inner(name, Box::new(default_reply), None)
    }

    /// Like [`MockServer::start`], but every unscripted request is answered with
    /// `responder(&request)`: the reply depends on what was asked, not on arrival order.
    pub fn start_with_responder(
        name: &'static str,
        responder: impl Fn(&RecordedRequest) -> MockReply + Send + Sync + 'static,
    ) -> MockServer {
        let unused_default = || MockReply::Hang;
        MockServer::start_inner(name, Box::new(unused_default), Some(Box::new(responder)))
    }

    fn start_inner(
        name: &'static str,
        default_reply: Box<dyn Fn() -> MockReply + Send + Sync>,
        responder: Option<Responder>,
    ) -> MockServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind mock server on 127.0.0.1");
        let addr = listener.local_addr().expect("mock server address");
        let shared = Arc::new(Shared {
            name,
            script: Mutex::new(VecDeque::new()),
            default_reply,
            responder,
            log: Mutex::new(Log::default()),
            changed: Condvar::new(),
            stop: AtomicBool::new(false),
            sockets: Mutex::new(Vec::new()),
            threads: Mutex::new(Vec::new()),
        });
        let acceptor = {
            let shared = shared.clone();
            thread::Builder::new()
                .name(format!("{name}-accept"))
                .spawn(move || accept_loop(listener, shared))
                .expect("spawn mock acceptor")
        };
        MockServer {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queues a reply for the next unanswered request.
    pub fn push(&self, reply: MockReply) {
        lock(&self.shared.script).push_back(reply);
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.log).requests.clone()
    }

    /// Arrival and first-body-chunk instants of every request so far, in arrival order (index i
    /// belongs to `requests()[i]`).
    pub fn timings(&self) -> Vec<RequestTiming> {
        lock(&self.shared.log).timings.clone()
    }

    /// Waits until at least `n` requests arrived and returns them all; panics on timeout.
    pub fn wait_for_requests(&self, n: usize, timeout: Duration) -> Vec<RecordedRequest> {
        let log = self.wait_until(timeout, |log| log.requests.len() >= n);
        if log.requests.len() < n {
            let seen: Vec<String> = log
                .requests
                .iter()
                .map(|r| format!("{} {}", r.method, r.path))
                .collect();
            drop(log);
            panic!(
                "{}: expected {n} request(s) within {timeout:?}, got {}: {seen:?}{}",
                self.shared.name,
                seen.len(),
                super::worker::current_worker_logs()
            );
        }
        log.requests.clone()
    }

    /// True once the client closed the connection of request `i` (0-based) before the mock
    /// finished answering it. Returns false as soon as the answer completed normally, or when
    /// `timeout` passes with the answer still in progress.
    pub fn client_disconnected(&self, i: usize, timeout: Duration) -> bool {
        let log = self.wait_until(timeout, |log| {
            log.outcomes
                .get(i)
                .is_some_and(|o| *o != Outcome::Answering)
        });
        log.outcomes.get(i) == Some(&Outcome::ClientGone)
    }

    /// Blocks until `done(log)` or timeout; returns the log either way.
    fn wait_until(&self, timeout: Duration, done: impl Fn(&Log) -> bool) -> MutexGuard<'_, Log> {
        let deadline = Instant::now() + timeout;
        let mut log = lock(&self.shared.log);
        while !done(&log) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            log = self
                .shared
                .changed
                .wait_timeout(log, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        log
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // `accept` cannot be interrupted; a throwaway connection wakes it to see the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        for socket in lock(&self.shared.sockets).iter().flatten() {
            let _ = socket.shutdown(Shutdown::Both);
        }
        let threads: Vec<_> = lock(&self.shared.threads).drain(..).collect();
        for t in threads {
            let _ = t.join();
        }
    }
}

/// Locks ignoring poisoning: a panicking test thread must not cascade into the mock.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        let slot = {
            let mut sockets = lock(&shared.sockets);
            sockets.push(stream.try_clone().ok());
            sockets.len() - 1
        };
        let worker = shared.clone();
        let handle = thread::Builder::new()
            .name(format!("{}-conn", shared.name))
            .spawn(move || {
                serve(stream, &worker);
                // Drop our clone too, so the socket really closes now rather than at drop.
                lock(&worker.sockets)[slot] = None;
            })
            .expect("spawn mock connection thread");
        let finished = {
            let mut threads = lock(&shared.threads);
            threads.push(handle);
            // Join the connection threads that are done: an unjoined thread keeps its stack
            // mapped, and a benchmark run opens tens of thousands of connections.
            let (finished, running) = threads.drain(..).partition(|t| t.is_finished());
            *threads = running;
            finished
        };
        for t in finished {
            let _ = t.join();
        }
    }
}

/// Handles one connection: read and record the request, then play the reply.
fn serve(stream: TcpStream, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let _ = stream.set_nodelay(true);
    let Some((request, stream)) = read_request(stream) else {
        return;
    };
    let received_at = Instant::now();
    // Take the reply before announcing the request: a test that reacts to the request by
    // pushing the reply for the *next* one must not have it consumed by this one.
    let scripted = lock(&shared.script).pop_front();
    let reply = scripted.unwrap_or_else(|| match &shared.responder {
        Some(responder) => responder(&request),
        None => (shared.default_reply)(),
    });
    let index = {
        let mut log = lock(&shared.log);
        log.requests.push(request);
        log.outcomes.push(Outcome::Answering);
        log.timings.push(RequestTiming {
            received_at,
            first_chunk_at: None,
        });
        log.requests.len() - 1
    };
    shared.changed.notify_all();
    let mut answer = Answer {
        stream,
        shared,
        index,
    };
    let outcome = match answer.play(reply) {
        Ok(()) => Outcome::Completed,
        Err(gone_or_stopped) => gone_or_stopped,
    };
    let _ = answer.stream.shutdown(Shutdown::Write);
    lock(&shared.log).outcomes[index] = outcome;
    shared.changed.notify_all();
}

/// Reads one request (body by `Content-Length` or chunked). `None` if the peer sent nothing
/// usable, e.g. the wake-up connection made by `Drop`.
fn read_request(stream: TcpStream) -> Option<(RecordedRequest, TcpStream)> {
    let mut conn = Conn::new(stream);
    let (start, headers) = conn.read_head().ok()??;
    let mut parts = start.split_whitespace();
    let (method, path) = (parts.next()?.to_string(), parts.next()?.to_string());
    let mut reader = BodyReader::new(conn, &headers, true, false);
    let body = String::from_utf8_lossy(&reader.read_to_end().ok()?).into_owned();
    Some((
        RecordedRequest {
            method,
            path,
            headers,
            body,
        },
        reader.conn.stream,
    ))
}

/// Writes one reply, watching for the client leaving and for the mock stopping.
struct Answer<'a> {
    stream: TcpStream,
    shared: &'a Shared,
    /// This request's slot in the log (for its timing).
    index: usize,
}

impl Answer<'_> {
    fn play(&mut self, reply: MockReply) -> Result<(), Outcome> {
        self.play_with(reply, &[])
    }

    fn play_with(&mut self, reply: MockReply, extra: &[(String, String)]) -> Result<(), Outcome> {
        match reply {
            MockReply::Full {
                status,
                content_type,
                body,
            } => {
                let head = head(
                    status,
                    &content_type,
                    &format!("Content-Length: {}", body.len()),
                    extra,
                );
                self.write(&[head.as_bytes(), &body].concat())?;
                self.note_first_chunk();
                Ok(())
            }
            MockReply::Chunked {
                status,
                content_type,
                pieces,
                end,
            } => {
                let pieces = pieces
                    .into_iter()
                    .map(|(delay, piece)| (Cue::After(delay), piece))
                    .collect();
                let cued = MockReply::Cued {
                    status,
                    content_type,
                    pieces,
                    end,
                };
                self.play_with(cued, extra)
            }
            MockReply::Cued {
                status,
                content_type,
                pieces,
                end,
            } => {
                let head = head(status, &content_type, "Transfer-Encoding: chunked", extra);
                self.write(head.as_bytes())?;
                for (cue, piece) in pieces {
                    match cue {
                        Cue::After(delay) => self.pause(delay)?,
                        Cue::Opened(gate) => self.wait_for(&gate)?,
                    }
                    if !piece.is_empty() {
                        let chunk =
                            [format!("{:x}\r\n", piece.len()).as_bytes(), &piece, b"\r\n"].concat();
                        self.write(&chunk)?;
                        self.note_first_chunk();
                    }
                }
                match end {
                    StreamEnd::Close => self.write(b"0\r\n\r\n"),
                    StreamEnd::Hang => self.hang(),
                }
            }
            MockReply::Hang => self.hang(),
            MockReply::WithHeaders { headers, reply } => {
                let all: Vec<_> = extra.iter().cloned().chain(headers).collect();
                self.play_with(*reply, &all)
            }
        }
    }

    /// Stamps the first body bytes written for this request (later calls keep the first).
    fn note_first_chunk(&self) {
        let now = Instant::now();
        let mut log = lock(&self.shared.log);
        if let Some(timing) = log.timings.get_mut(self.index) {
            timing.first_chunk_at.get_or_insert(now);
        }
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), Outcome> {
        self.stream
            .write_all(bytes)
            .and_then(|_| self.stream.flush())
            .map_err(|_| self.gone())
    }

    /// Waits `delay`, returning early with the reason if the client leaves or the mock stops.
    fn pause(&mut self, delay: Duration) -> Result<(), Outcome> {
        let deadline = Instant::now() + delay;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            self.check_client(left.min(POLL))?;
        }
    }

    /// Waits until `gate` opens, returning early with the reason if the client leaves or the mock
    /// stops.
    fn wait_for(&mut self, gate: &Gate) -> Result<(), Outcome> {
        while !gate.is_open() {
            self.check_client(POLL)?;
        }
        Ok(())
    }

    /// Waits until the client leaves or the mock stops.
    fn hang(&mut self) -> Result<(), Outcome> {
        loop {
            self.check_client(POLL)?;
        }
    }

    /// Reads for up to `wait`: EOF or a reset means the client went away. The request was read
    /// completely, so any further bytes are unexpected and ignored.
    fn check_client(&mut self, wait: Duration) -> Result<(), Outcome> {
        if self.shared.stop.load(Ordering::SeqCst) {
            return Err(Outcome::Stopped);
        }
        let _ = self.stream.set_read_timeout(Some(wait));
        let mut buf = [0u8; 1024];
        match self.stream.read(&mut buf) {
            Ok(0) => Err(self.gone()),
            Ok(_) => Ok(()),
            Err(e) if is_timeout(&e) => Ok(()),
            Err(_) => Err(self.gone()),
        }
    }

    /// Classifies a failed read/write: our own shutdown on drop is not the client leaving.
    fn gone(&self) -> Outcome {
        if self.shared.stop.load(Ordering::SeqCst) {
            Outcome::Stopped
        } else {
            Outcome::ClientGone
        }
    }
}

fn head(status: u16, content_type: &str, framing: &str, extra: &[(String, String)]) -> String {
    let extra: String = extra
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\n{framing}\r\n{extra}Connection: close\r\n\r\n",
        reason(status)
    )
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        301 => "Moved Permanently",
        302 => "Found",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// A redirect: `status` (3xx) with a `Location` header and an empty body.
pub fn redirect_reply(status: u16, location: &str) -> MockReply {
    MockReply::WithHeaders {
        headers: vec![("Location".into(), location.into())],
        reply: Box::new(MockReply::Full {
            status,
            content_type: "text/plain".into(),
            body: Vec::new(),
        }),
    }
}

/// Convenience for replies with a JSON body.
pub fn json_reply(status: u16, content_type: &str, body: &str) -> MockReply {
    MockReply::Full {
        status,
        content_type: content_type.to_string(),
        body: body.as_bytes().to_vec(),
    }
}

/// A mock of one upstream API: a [`MockServer`] whose scripted replies are that API's own reply
/// type `R` (see `MockGemini`, `MockLayercode`).
pub struct Mock<R> {
    server: MockServer,
    replies: std::marker::PhantomData<fn(R)>,
}

impl<R: Into<MockReply>> Mock<R> {
    /// Wraps a started server.
    pub fn new(server: MockServer) -> Self {
        Mock {
            server,
            replies: std::marker::PhantomData,
        }
    }

    /// `http://127.0.0.1:PORT`: the value for the worker's base-URL var.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// Queues the reply for the next unanswered request (FIFO).
    pub fn push(&self, reply: R) {
        self.server.push(reply.into());
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.server.requests()
    }

    /// Per request (arrival order, index i belongs to `requests()[i]`): when it was received
    /// and when the mock wrote its first body chunk, on this process's monotonic clock.
    pub fn timings(&self) -> Vec<RequestTiming> {
        self.server.timings()
    }

    /// Waits until at least `n` requests arrived; panics on timeout (with the worker log tail).
    pub fn wait_for_requests(&self, n: usize, timeout: Duration) -> Vec<RecordedRequest> {
        self.server.wait_for_requests(n, timeout)
    }

    /// True once the worker closed the connection of request `i` (0-based) before the mock
    /// finished answering (failed write or EOF while streaming or hanging): the worker aborted
    /// its request. False if the answer completed, or still running after `timeout`.
    pub fn client_disconnected(&self, i: usize, timeout: Duration) -> bool {
        self.server.client_disconnected(i, timeout)
    }
}
