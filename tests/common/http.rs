//! A minimal HTTP/1.1 client over `std::net` (one request per connection, `Connection: close`)
//! plus the wire-level pieces the mock servers share: a buffered connection and an incremental
//! body reader for `Content-Length`, chunked and read-to-EOF bodies.
//!
//! Everything is incremental on purpose: the worker's SSE answers are chunked and open-ended, and
//! tests assert on when each event arrived, so nothing may wait for the whole body.

use serde_json::Value;
use std::collections::VecDeque;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// Read timeout for plain requests (and the default for streams between two reads).
pub const READ_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_HEAD: usize = 64 * 1024;

/// Header list in arrival order, names lowercased.
pub type Headers = Vec<(String, String)>;

// ---------------------------------------------------------------------------------------------
// Wire level (shared with the mock servers)
// ---------------------------------------------------------------------------------------------

/// A TCP stream plus the bytes read from it but not yet consumed. Parsers consume only complete
/// units (a whole line, a whole head), so a read timeout in the middle never loses data and the
/// caller can simply try again later.
pub struct Conn {
    /// The socket; exposed for timeouts and shutdown.
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    /// Wraps a connected stream.
    pub fn new(stream: TcpStream) -> Conn {
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    /// One `read` into the buffer; returns the number of bytes read (0 at EOF).
    fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk)?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// Consumes and returns everything up to and including `delim`, reading as needed.
    /// `Ok(None)` means EOF came first (the partial bytes stay buffered).
    fn read_until(&mut self, delim: &[u8], limit: usize) -> io::Result<Option<Vec<u8>>> {
        loop {
            if let Some(pos) = find(&self.buf, delim) {
                return Ok(Some(self.buf.drain(..pos + delim.len()).collect()));
            }
            if self.buf.len() > limit {
                return Err(io::Error::new(
                    ErrorKind::InvalidData,
                    "line or head too long",
                ));
            }
            if self.fill()? == 0 {
                return Ok(None);
            }
        }
    }

    /// Returns up to `max` bytes: buffered ones first, else the result of one `read`.
    /// An empty vector means EOF.
    fn read_some(&mut self, max: usize) -> io::Result<Vec<u8>> {
        if self.buf.is_empty() {
            self.fill()?;
        }
        let n = max.min(self.buf.len());
        Ok(self.buf.drain(..n).collect())
    }

    /// Reads a message head (start line + headers, up to the blank line). Header names are
    /// lowercased. `Ok(None)` if the peer closed before sending a complete head.
    pub fn read_head(&mut self) -> io::Result<Option<(String, Headers)>> {
        let Some(raw) = self.read_until(b"\r\n\r\n", MAX_HEAD)? else {
            return Ok(None);
        };
        let text = String::from_utf8_lossy(&raw[..raw.len() - 4]).into_owned();
        let mut lines = text.split("\r\n");
        let start = lines.next().unwrap_or_default().to_string();
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        Ok(Some((start, headers)))
    }
}

/// Position of the first occurrence of `needle` in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Case-insensitive lookup in a lowercased header list.
pub fn header_value<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    let name = name.to_ascii_lowercase();
    headers
        .iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.as_str())
}

/// How a message body is delimited, with the decoder state for chunked bodies.
enum BodyFraming {
    Length(usize),
    Chunked(ChunkState),
    ToEof,
    Done,
}

/// Where the chunked decoder is: each state is left only once its unit was read completely.
enum ChunkState {
    Size,
    Data(usize),
    DataEnd,
    Trailers,
    Finished,
}

/// Incremental body reader: yields body bytes as they arrive, decoding chunked encoding.
pub struct BodyReader {
    /// The underlying connection.
    pub conn: Conn,
    framing: BodyFraming,
}

impl BodyReader {
    /// A reader for a message with these headers. Requests without a length have no body
    /// (RFC 9112 §6.3); responses without one run to EOF. `no_body` covers HEAD/204/304.
    pub fn new(
        conn: Conn,
        headers: &[(String, String)],
        is_request: bool,
        no_body: bool,
    ) -> BodyReader {
        let chunked = header_value(headers, "transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        let length = header_value(headers, "content-length").and_then(|v| v.parse().ok());
        let framing = match (no_body, chunked, length) {
            (true, _, _) => BodyFraming::Done,
            (_, true, _) => BodyFraming::Chunked(ChunkState::Size),
            (_, _, Some(0)) => BodyFraming::Done,
            (_, _, Some(n)) => BodyFraming::Length(n),
            _ if is_request => BodyFraming::Done,
            _ => BodyFraming::ToEof,
        };
        BodyReader { conn, framing }
    }

    /// The next piece of body data (never empty), or `Ok(None)` at the end of the body.
    /// Timeouts surface as `WouldBlock`/`TimedOut` errors with no data lost.
    pub fn next_data(&mut self) -> io::Result<Option<Vec<u8>>> {
        loop {
            match &mut self.framing {
                BodyFraming::Done => return Ok(None),
                BodyFraming::ToEof => {
                    let data = self.conn.read_some(usize::MAX)?;
                    if data.is_empty() {
                        self.framing = BodyFraming::Done;
                        return Ok(None);
                    }
                    return Ok(Some(data));
                }
                BodyFraming::Length(left) => {
                    let data = self.conn.read_some(*left)?;
                    if data.is_empty() {
                        return Err(eof("body shorter than Content-Length"));
                    }
                    *left -= data.len();
                    if *left == 0 {
                        self.framing = BodyFraming::Done;
                    }
                    return Ok(Some(data));
                }
                BodyFraming::Chunked(state) => {
                    if let Some(data) = step_chunked(&mut self.conn, state)? {
                        return Ok(Some(data));
                    }
                    if matches!(state, ChunkState::Finished) {
                        self.framing = BodyFraming::Done;
                    }
                }
            }
        }
    }

    /// Reads the rest of the body.
    pub fn read_to_end(&mut self) -> io::Result<Vec<u8>> {
        let mut body = Vec::new();
        while let Some(data) = self.next_data()? {
            body.extend_from_slice(&data);
        }
        Ok(body)
    }
}

/// Advances the chunked decoder by one unit. Returns data when a data unit was read; `None`
/// after a size line, a chunk terminator or the trailers (the caller loops; `Finished` = done).
fn step_chunked(conn: &mut Conn, state: &mut ChunkState) -> io::Result<Option<Vec<u8>>> {
    match *state {
        ChunkState::Size => {
            let line = conn
                .read_until(b"\r\n", 1024)?
                .ok_or_else(|| eof("EOF in chunk size"))?;
            let text = String::from_utf8_lossy(&line);
            let hex = text.trim().split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(hex, 16).map_err(|_| {
                io::Error::new(ErrorKind::InvalidData, format!("bad chunk size {text:?}"))
            })?;
            *state = if size == 0 {
                ChunkState::Trailers
            } else {
                ChunkState::Data(size)
            };
            Ok(None)
        }
        ChunkState::Data(left) => {
            let data = conn.read_some(left)?;
            if data.is_empty() {
                return Err(eof("EOF inside a chunk"));
            }
            *state = if data.len() == left {
                ChunkState::DataEnd
            } else {
                ChunkState::Data(left - data.len())
            };
            Ok(Some(data))
        }
        ChunkState::DataEnd => {
            let line = conn
                .read_until(b"\r\n", 1024)?
                .ok_or_else(|| eof("EOF after chunk"))?;
            if line != b"\r\n" {
                return Err(io::Error::new(
                    ErrorKind::InvalidData,
                    "chunk not followed by CRLF",
                ));
            }
            *state = ChunkState::Size;
            Ok(None)
        }
        ChunkState::Trailers => {
            // Trailer lines (normally none) up to the blank line that ends the body.
            let line = conn
                .read_until(b"\r\n", MAX_HEAD)?
                .ok_or_else(|| eof("EOF in trailers"))?;
            if line == b"\r\n" {
                *state = ChunkState::Finished;
            }
            Ok(None)
        }
        ChunkState::Finished => Ok(None),
    }
}

fn eof(what: &str) -> io::Error {
    io::Error::new(ErrorKind::UnexpectedEof, what.to_string())
}

/// True for the error kinds a socket read timeout produces.
pub fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

// ---------------------------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------------------------

/// A complete HTTP response.
#[derive(Clone, Debug)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Headers in arrival order, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The decoded body (chunked encoding removed).
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// First value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header_value(&self.headers, name)
    }

    /// The body as (lossy) UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON; panics with the body if it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "response body is not JSON ({e}), status {}: {:?}",
                self.status,
                self.text()
            )
        })
    }
}

/// Sends one request and reads the whole response; panics on I/O errors.
pub fn request(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> HttpResponse {
    or_panic(
        try_request(method, url, headers, body, READ_TIMEOUT),
        &format!("{method} {url}"),
    )
}

/// The value, or a panic naming `what` failed, with the running worker's log tail.
fn or_panic<T>(result: io::Result<T>, what: &str) -> T {
    result.unwrap_or_else(|e| panic!("{what} failed: {e}{}", super::worker::current_worker_logs()))
}

/// Like [`request`] but returns I/O errors (for polling a server that may not be up yet).
pub fn try_request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    read_timeout: Duration,
) -> io::Result<HttpResponse> {
    let (status, headers, mut reader) = send(method, url, headers, body, read_timeout)?;
    let body = reader.read_to_end()?;
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

/// `GET url`.
pub fn get(url: &str) -> HttpResponse {
    request("GET", url, &[], b"")
}

/// `POST url` with a JSON body (adds `Content-Type: application/json`).
pub fn post_json(url: &str, headers: &[(&str, &str)], body: &str) -> HttpResponse {
    let mut all = vec![("Content-Type", "application/json")];
    all.extend_from_slice(headers);
    request("POST", url, &all, body.as_bytes())
}

/// Splits `http://host:port/path?query` into (`host:port`, `/path?query`).
fn split_url(url: &str) -> io::Result<(String, String)> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        io::Error::new(ErrorKind::InvalidInput, format!("only http:// URLs: {url}"))
    })?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    Ok((host.to_string(), path.to_string()))
}

/// Connects, writes the request and reads the response head (skipping 1xx interim answers).
fn send(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    read_timeout: Duration,
) -> io::Result<(u16, Headers, BodyReader)> {
    let (host, path) = split_url(url)?;
    let mut conn = Conn::new(connect(&host, read_timeout)?);
    conn.stream
        .write_all(&request_bytes(method, &host, &path, headers, body))?;
    read_response_head(conn, method)
}

fn connect(host: &str, read_timeout: Duration) -> io::Result<TcpStream> {
    let addr = host
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(ErrorKind::InvalidInput, format!("cannot resolve {host}")))?;
    let stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?;
    stream.set_read_timeout(Some(read_timeout))?;
    stream.set_write_timeout(Some(READ_TIMEOUT))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Sends a request and hangs up at once, before any byte of the answer: the whole request is
/// written, then the connection is closed (FIN, the way a client that gives up closes it).
/// A reset (RST) instead would make `wrangler dev`'s proxy drop the request before the worker
/// sees it (RELIABILITY.md, issue 22 item 4).
pub fn send_then_hang_up(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) {
    let (host, path) = split_url(url).expect("url");
    let mut stream = connect(&host, READ_TIMEOUT).expect("connect");
    stream
        .write_all(&request_bytes(method, &host, &path, headers, body))
        .expect("write the request");
    stream.shutdown(Shutdown::Both).expect("close");
}

/// `POST url` whose body trickles in, as from a hostile or broken client: the head (declaring
/// the whole `Content-Length`) at once, then one byte of `body` every `gap` from a background
/// thread, while the response is read. Returns the response and how long after sending the
/// head it arrived complete. Panics on I/O errors other than the drip being cut off.
pub fn post_dripping(
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    gap: Duration,
) -> (HttpResponse, Duration) {
    let attempt = || -> io::Result<(HttpResponse, Duration)> {
        let length = body.len().to_string();
        let mut all = headers.to_vec();
        all.push(("Content-Length", &length));
        let (host, path) = split_url(url)?;
        let mut conn = Conn::new(connect(&host, READ_TIMEOUT)?);
        conn.stream
            .write_all(&request_bytes("POST", &host, &path, &all, b""))?;
        let started = Instant::now();
        let done = Arc::new(AtomicBool::new(false));
        let dripper = {
            let mut stream = conn.stream.try_clone()?;
            let (body, done) = (body.to_vec(), done.clone());
            thread::spawn(move || {
                for byte in body {
                    thread::sleep(gap);
                    let stop = done.load(Ordering::SeqCst);
                    if stop || stream.write_all(&[byte]).is_err() {
                        return;
                    }
                }
            })
        };
        let (status, headers, mut reader) = read_response_head(conn, "POST")?;
        let body = reader.read_to_end()?;
        let elapsed = started.elapsed();
        done.store(true, Ordering::SeqCst);
        let _ = reader.conn.stream.shutdown(Shutdown::Both);
        let _ = dripper.join();
        let response = HttpResponse {
            status,
            headers,
            body,
        };
        Ok((response, elapsed))
    };
    or_panic(attempt(), &format!("dripping POST {url}"))
}

fn read_response_head(mut conn: Conn, method: &str) -> io::Result<(u16, Headers, BodyReader)> {
    loop {
        let (start, headers) = conn
            .read_head()?
            .ok_or_else(|| eof("connection closed before a response"))?;
        let status = parse_status(&start)?;
        if (100..200).contains(&status) {
            continue;
        }
        let no_body = method == "HEAD" || status == 204 || status == 304;
        let reader = BodyReader::new(conn, &headers, false, no_body);
        return Ok((status, headers, reader));
    }
}

/// Serialises a request. Adds `Host`, `Content-Length` (unless the caller set framing) and
/// `Connection: close` so every request is self-contained.
fn request_bytes(
    method: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Vec<u8> {
    let has = |name: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    if !has("host") {
        head += &format!("Host: {host}\r\n");
    }
    for (k, v) in headers {
        head += &format!("{k}: {v}\r\n");
    }
    let body_expected =
        !body.is_empty() || !matches!(method, "GET" | "HEAD" | "DELETE" | "OPTIONS");
    if body_expected && !has("content-length") && !has("transfer-encoding") {
        head += &format!("Content-Length: {}\r\n", body.len());
    }
    if !has("connection") {
        head += "Connection: close\r\n";
    }
    head += "\r\n";
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

fn parse_status(start: &str) -> io::Result<u16> {
    start
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .filter(|_| start.starts_with("HTTP/1."))
        .ok_or_else(|| io::Error::new(ErrorKind::InvalidData, format!("bad status line {start:?}")))
}

// ---------------------------------------------------------------------------------------------
// SSE client
// ---------------------------------------------------------------------------------------------

/// One server-sent event as received.
#[derive(Clone, Debug)]
pub struct SseEvent {
    /// The `data:` payload parsed as JSON (`Value::Null` if it is not JSON; see `raw`).
    pub json: Value,
    /// The exact frame bytes including its blank-line terminator, e.g. `data: {…}\n\n`.
    pub raw: String,
    /// When the bytes completing this frame arrived, measured from sending the request.
    pub at: Duration,
}

impl SseEvent {
    /// The event's `type` (`""` for an event without one).
    pub fn kind(&self) -> &str {
        self.json["type"].as_str().unwrap_or_default()
    }
}

/// Concatenated `content` of all `response.tts` events: what the user would hear.
pub fn tts_text(events: &[SseEvent]) -> String {
    events
        .iter()
        .filter(|e| e.kind() == "response.tts")
        .filter_map(|e| e.json["content"].as_str())
        .collect()
}

/// What [`SseClient::next`] found.
#[derive(Debug)]
pub enum SseNext {
    /// A complete event.
    Event(SseEvent),
    /// The body ended (cleanly or not; see [`SseClient::error`]).
    Eof,
    /// Nothing complete arrived within the timeout; the stream is still usable.
    Timeout,
}

/// A streaming reader for a `text/event-stream` response. Frames are split on the first of
/// `\n\n`, `\r\n\r\n` or `\r\r` (the SSE spec's line ends), keeping the raw bytes.
pub struct SseClient {
    /// Response status.
    pub status: u16,
    /// Response headers, names lowercased.
    pub headers: Vec<(String, String)>,
    body: BodyReader,
    started: Instant,
    pending: Vec<u8>,
    ready: VecDeque<SseEvent>,
    raw_body: Vec<u8>,
    eof: bool,
    error: Option<String>,
}

impl SseClient {
    /// `POST`s `body` to `url` and returns once the response head arrived (the body is read
    /// lazily by [`SseClient::next`]); panics on I/O errors.
    pub fn open(url: &str, headers: &[(&str, &str)], body: &[u8]) -> SseClient {
        let started = Instant::now();
        let (status, headers, body) = or_panic(
            send("POST", url, headers, body, READ_TIMEOUT),
            &format!("SSE POST {url}"),
        );
        SseClient {
            status,
            headers,
            body,
            started,
            pending: Vec::new(),
            ready: VecDeque::new(),
            raw_body: Vec::new(),
            eof: false,
            error: None,
        }
    }

    /// Like [`SseClient::open`] for a JSON body, adding `Content-Type: application/json`.
    pub fn open_json(url: &str, headers: &[(&str, &str)], body: &str) -> SseClient {
        let mut all = vec![("Content-Type", "application/json")];
        all.extend_from_slice(headers);
        SseClient::open(url, &all, body.as_bytes())
    }

    /// First value of response header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header_value(&self.headers, name)
    }

    /// Waits up to `timeout` for the next event, telling EOF and timeout apart.
    pub fn next(&mut self, timeout: Duration) -> SseNext {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(event) = self.ready.pop_front() {
                return SseNext::Event(event);
            }
            if self.eof {
                return SseNext::Eof;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return SseNext::Timeout;
            }
            if !self.read_more(left) {
                return SseNext::Timeout;
            }
        }
    }

    /// The next event, or `None` at EOF or timeout ([`SseClient::at_eof`] says which).
    pub fn next_event(&mut self, timeout: Duration) -> Option<SseEvent> {
        match self.next(timeout) {
            SseNext::Event(e) => Some(e),
            SseNext::Eof | SseNext::Timeout => None,
        }
    }

    /// True once the body ended and every complete event was taken.
    pub fn at_eof(&self) -> bool {
        self.eof && self.ready.is_empty()
    }

    /// The I/O error that ended the body, if it did not end cleanly (e.g. chunked body cut off).
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// Every body byte received so far (decoded from chunked encoding).
    pub fn raw_body(&self) -> String {
        String::from_utf8_lossy(&self.raw_body).into_owned()
    }

    /// One read with the given timeout; splits complete frames into `ready`, stamped now.
    /// Returns false on timeout.
    fn read_more(&mut self, timeout: Duration) -> bool {
        let _ = self
            .body
            .conn
            .stream
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))));
        match self.body.next_data() {
            Ok(Some(data)) => {
                self.raw_body.extend_from_slice(&data);
                self.pending.extend_from_slice(&data);
                self.split_frames();
            }
            Ok(None) => self.eof = true,
            Err(e) if is_timeout(&e) => return false,
            Err(e) => {
                self.error = Some(e.to_string());
                self.eof = true;
            }
        }
        true
    }

    fn split_frames(&mut self) {
        let at = self.started.elapsed();
        while let Some(end) = frame_end(&self.pending) {
            let frame: Vec<u8> = self.pending.drain(..end).collect();
            self.ready.push_back(parse_frame(&frame, at));
        }
    }

    /// Reads every remaining event until EOF; panics (showing what arrived) if `timeout` passes.
    pub fn read_all(mut self, timeout: Duration) -> SseTranscript {
        let deadline = Instant::now() + timeout;
        let mut events = Vec::new();
        loop {
            match self.next(deadline.saturating_duration_since(Instant::now())) {
                SseNext::Event(e) => events.push(e),
                SseNext::Eof => break,
                SseNext::Timeout => panic!(
                    "SSE stream did not end within {timeout:?}; got {} events, raw body so far:\n{}{}",
                    events.len(),
                    self.raw_body(),
                    super::worker::current_worker_logs()
                ),
            }
        }
        let raw_body = self.raw_body();
        SseTranscript {
            status: self.status,
            headers: self.headers,
            events,
            raw_body,
            error: self.error,
        }
    }

    /// Closes the socket mid-stream, as Layercode does when the user barges in.
    pub fn disconnect(self) {
        let _ = self.body.conn.stream.shutdown(Shutdown::Both);
    }
}

/// End (exclusive, including the separator) of the first complete frame in `buf`.
fn frame_end(buf: &[u8]) -> Option<usize> {
    [&b"\r\n\r\n"[..], b"\n\n", b"\r\r"]
        .iter()
        .filter_map(|sep| find(buf, sep).map(|pos| (pos, pos + sep.len())))
        .min()
        .map(|(_, end)| end)
}

/// Parses one frame: the `data:` lines (one optional space stripped) joined with `\n`.
fn parse_frame(frame: &[u8], at: Duration) -> SseEvent {
    let raw = String::from_utf8_lossy(frame).into_owned();
    let data: Vec<&str> = raw
        .split(['\n', '\r'])
        .filter_map(|line| line.strip_prefix("data:"))
        .map(|d| d.strip_prefix(' ').unwrap_or(d))
        .collect();
    let json = serde_json::from_str(&data.join("\n")).unwrap_or(Value::Null);
    SseEvent { json, raw, at }
}

/// A complete SSE response.
#[derive(Clone, Debug)]
pub struct SseTranscript {
    /// Response status.
    pub status: u16,
    /// Response headers, names lowercased.
    pub headers: Vec<(String, String)>,
    /// All complete events in order.
    pub events: Vec<SseEvent>,
    /// The whole decoded body, including any incomplete trailing frame.
    pub raw_body: String,
    /// Set if the body ended with an I/O error rather than cleanly.
    pub error: Option<String>,
}

impl SseTranscript {
    /// Concatenated `content` of all `response.tts` events: what the user would hear.
    pub fn tts_text(&self) -> String {
        tts_text(&self.events)
    }

    /// The `type` of every event, in order (`""` for events without one).
    pub fn types(&self) -> Vec<String> {
        self.events.iter().map(|e| e.kind().to_string()).collect()
    }

    /// First value of response header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header_value(&self.headers, name)
    }
}
