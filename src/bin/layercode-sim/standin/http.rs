//! The little HTTP/1.1 the stand-in needs, over blocking `std::net` sockets: reading a request
//! (the worker's `authorize_session`, the browser's WebSocket upgrade), writing a response, and
//! the client side of a webhook whose connection can be closed from another thread (barge-in).

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

/// Request heads are small; a body is an authorize request.
const MAX_HEAD_BYTES: usize = 16 * 1024;
const MAX_BODY_BYTES: usize = 64 * 1024;

/// A request as the stand-in's routes need it.
#[derive(Debug)]
pub struct Request {
    pub method: String,
    /// The path without the query.
    pub path: String,
    pub query: String,
    /// Names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Bytes read past the head and body (a WebSocket client's first frames).
    pub rest: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// A query parameter, percent-decoded.
    pub fn param(&self, name: &str) -> Option<String> {
        self.query.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (key == name).then(|| percent_decode(value))
        })
    }
}

/// Reads up to the blank line that ends a head (of a `what`: request or response). Returns the
/// head as text and the bytes read past it; `closed_early` is the error when the peer leaves first.
fn read_head(
    stream: &mut TcpStream,
    what: &str,
    closed_early: &str,
) -> io::Result<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = find(&buf, b"\r\n\r\n") {
            break at;
        }
        if buf.len() > MAX_HEAD_BYTES {
            return Err(invalid(&format!("{what} head too large")));
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(invalid(closed_early));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let rest = buf.split_off(head_end + 4);
    buf.truncate(head_end);
    Ok((String::from_utf8_lossy(&buf).into_owned(), rest))
}

/// Reads one request head and its `Content-Length` body.
pub fn read_request(stream: &mut TcpStream) -> io::Result<Request> {
    let (head, mut rest) = read_head(
        stream,
        "request",
        "connection closed before the request head ended",
    )?;
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Err(invalid("malformed request line"));
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    if length > MAX_BODY_BYTES {
        return Err(invalid("request body too large"));
    }
    let mut chunk = [0u8; 4096];
    while rest.len() < length {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(invalid("connection closed before the body ended"));
        }
        rest.extend_from_slice(&chunk[..n]);
    }
    let after = rest.split_off(length);
    Ok(Request {
        method: method.to_string(),
        path: path.to_string(),
        query: query.to_string(),
        headers,
        body: rest,
        rest: after,
    })
}

/// Writes a whole response and closes the exchange (`Connection: close`).
pub fn respond(
    stream: &mut TcpStream,
    status: u16,
    content_type: &str,
    body: &[u8],
) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status} {}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n",
        reason(status),
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()
}

pub fn respond_json(stream: &mut TcpStream, status: u16, body: &serde_json::Value) {
    let _ = respond(
        stream,
        status,
        "application/json",
        body.to_string().as_bytes(),
    );
}

fn reason(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        426 => "Upgrade Required",
        _ => "Error",
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_string())
}

fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let hex = |b: u8| char::from(b).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&high), Some(&low)) => hex(high).zip(hex(low)),
            _ => None,
        };
        match (escaped, bytes[i]) {
            (Some((high, low)), _) => {
                out.push(u8::try_from(high * 16 + low).unwrap_or(b'?'));
                i += 3;
                continue;
            }
            (None, b'+') => out.push(b' '),
            (None, b) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ---------------------------------------------------------------------------------------------
// The client side of a webhook

/// Where webhooks go: an `http://host:port/path` URL (the local worker).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `host:port`, for connecting and the `Host` header.
    pub authority: String,
    pub path: String,
}

impl Target {
    /// A base URL (`http://127.0.0.1:8787`, the webhook path `/agent` is added) or the full
    /// webhook URL (`…/agent`, `…/api/agent`). Plain `http` only: the stand-in is for a worker on
    /// this machine.
    pub fn parse(url: &str) -> Result<Target, String> {
        let url = url.trim().trim_end_matches('/');
        let Some(rest) = url.strip_prefix("http://") else {
            return Err(format!(
                "the stand-in sends webhooks to a local worker over http://, not {url:?}"
            ));
        };
        let (authority, path) = match rest.find('/') {
            Some(at) => (&rest[..at], &rest[at..]),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err(format!("no host in {url:?}"));
        }
        let authority = if authority.contains(':') {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        let path = if path.ends_with("/agent") {
            path.to_string()
        } else {
            format!("{path}/agent")
        };
        Ok(Target { authority, path })
    }

    pub fn url(&self) -> String {
        format!("http://{}{}", self.authority, self.path)
    }
}

/// An open webhook exchange: the response's status and content type, and its body.
pub struct Exchange {
    pub status: u16,
    pub content_type: String,
    pub body: Body,
}

/// Closes a webhook's connection from another thread: the worker sees the caller hang up.
pub struct Abort(TcpStream);

impl Abort {
    pub fn abort(&self) {
        let _ = self.0.shutdown(Shutdown::Both);
    }
}

/// Connects to the worker; returns the stream and its abort handle.
pub fn connect(target: &Target, read_timeout: Duration) -> io::Result<(TcpStream, Abort)> {
    let stream = TcpStream::connect(&target.authority)?;
    stream.set_read_timeout(Some(read_timeout))?;
    let abort = Abort(stream.try_clone()?);
    Ok((stream, abort))
}

/// POSTs a JSON body with extra headers and reads the response head.
pub fn post(
    mut stream: TcpStream,
    target: &Target,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<Exchange> {
    let mut head = format!(
        "POST {} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n",
        target.path,
        target.authority,
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()?;

    let (head, pending) = read_head(
        &mut stream,
        "response",
        "the worker closed the connection without answering",
    )?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| invalid("malformed status line"))?;
    let header = |name: &str| {
        head.split("\r\n")
            .skip(1)
            .filter_map(|line| line.split_once(':'))
            .find(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
    };
    let content_type = header("content-type").unwrap_or_default();
    let framing = if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        Framing::Chunked {
            left: 0,
            done: false,
        }
    } else if let Some(length) = header("content-length").and_then(|v| v.parse::<u64>().ok()) {
        Framing::Length(length)
    } else {
        Framing::Close
    };
    Ok(Exchange {
        status,
        content_type,
        body: Body {
            stream,
            pending,
            framing,
        },
    })
}

enum Framing {
    Length(u64),
    Chunked { left: u64, done: bool },
    Close,
}

/// A response body, de-chunked.
pub struct Body {
    stream: TcpStream,
    /// Bytes read from the socket but not yet handed out.
    pending: Vec<u8>,
    framing: Framing,
}

impl Body {
    /// The next raw bytes from the socket (buffered first).
    fn fill(&mut self) -> io::Result<usize> {
        if self.pending.is_empty() {
            return self.read_more();
        }
        Ok(self.pending.len())
    }

    /// Reads from the socket into `pending`, whatever it already holds; 0 at the end.
    fn read_more(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 4096];
        let n = self.stream.read(&mut chunk)?;
        self.pending.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    fn take(&mut self, max: usize, out: &mut [u8]) -> usize {
        let n = max.min(out.len()).min(self.pending.len());
        out[..n].copy_from_slice(&self.pending[..n]);
        self.pending.drain(..n);
        n
    }

    /// Reads one `size[;ext]\r\n` line of a chunked body.
    fn chunk_size(&mut self) -> io::Result<u64> {
        loop {
            if let Some(at) = find(&self.pending, b"\r\n") {
                let line = String::from_utf8_lossy(&self.pending[..at]).into_owned();
                self.pending.drain(..at + 2);
                let size = line.split(';').next().unwrap_or_default().trim();
                if size.is_empty() {
                    continue; // the CRLF that ends the previous chunk's data
                }
                return u64::from_str_radix(size, 16).map_err(|_| invalid("bad chunk size"));
            }
            // Not `fill`: it would hand back the incomplete line already held (a size line cut
            // between its CR and LF, say) without reading on, and this loop would spin.
            if self.read_more()? == 0 {
                return Err(invalid("the body ended inside a chunk header"));
            }
            if self.pending.len() > MAX_HEAD_BYTES {
                return Err(invalid("chunk header too long"));
            }
        }
    }

    /// The whole body as text, at most `limit` bytes.
    pub fn read_text(&mut self, limit: usize) -> io::Result<String> {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = self.read(&mut buf)?;
            if n == 0 || out.len() > limit {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        out.truncate(limit);
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
}

impl Read for Body {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        match self.framing {
            Framing::Length(0) | Framing::Chunked { done: true, .. } => Ok(0),
            Framing::Length(left) => {
                if self.fill()? == 0 {
                    return Ok(0);
                }
                let n = self.take(usize::try_from(left).unwrap_or(usize::MAX), out);
                self.framing = Framing::Length(left - n as u64);
                Ok(n)
            }
            Framing::Close => {
                if self.fill()? == 0 {
                    return Ok(0);
                }
                Ok(self.take(usize::MAX, out))
            }
            Framing::Chunked { left, .. } => {
                let left = if left == 0 { self.chunk_size()? } else { left };
                if left == 0 {
                    self.framing = Framing::Chunked {
                        left: 0,
                        done: true,
                    };
                    return Ok(0);
                }
                if self.fill()? == 0 {
                    return Err(invalid("the body ended inside a chunk"));
                }
                let n = self.take(usize::try_from(left).unwrap_or(usize::MAX), out);
                self.framing = Framing::Chunked {
                    left: left - n as u64,
                    done: false,
                };
                Ok(n)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::thread;

    #[test]
    fn targets() {
        let t = |url: &str| Target::parse(url).map(|t| t.url());
        assert_eq!(
            t("http://127.0.0.1:8787"),
            Ok("http://127.0.0.1:8787/agent".into())
        );
        assert_eq!(
            t("http://127.0.0.1:8787/"),
            Ok("http://127.0.0.1:8787/agent".into())
        );
        assert_eq!(
            t("http://localhost/api/agent"),
            Ok("http://localhost:80/api/agent".into())
        );
        assert!(Target::parse("https://w.example.dev").is_err());
        assert!(Target::parse("http://").is_err());
    }

    #[test]
    fn query_parameters_are_decoded() {
        let request = Request {
            method: "GET".into(),
            path: "/".into(),
            query: "a=1&client_session_key=lc%5Fkey+x&b".into(),
            headers: Vec::new(),
            body: Vec::new(),
            rest: Vec::new(),
        };
        assert_eq!(
            request.param("client_session_key").as_deref(),
            Some("lc_key x")
        );
        assert_eq!(request.param("b").as_deref(), Some(""));
        assert_eq!(request.param("c"), None);
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("é%C3%A9"), "éé");
    }

    /// A server that answers one request with `response` (raw bytes, in the given pieces).
    fn serve_once(pieces: Vec<&'static [u8]>) -> Target {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let target = Target::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
        thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let request = read_request(&mut stream).unwrap();
            assert_eq!(request.method, "POST");
            assert_eq!(request.path, "/agent");
            assert_eq!(request.body, b"{}");
            assert_eq!(request.header("x-test"), Some("yes"));
            for piece in pieces {
                stream.write_all(piece).unwrap();
                stream.flush().unwrap();
            }
        });
        target
    }

    fn exchange_of(pieces: Vec<&'static [u8]>) -> (Exchange, String) {
        let target = serve_once(pieces);
        let (stream, _abort) = connect(&target, Duration::from_secs(10)).unwrap();
        let mut exchange = post(stream, &target, &[("x-test", "yes")], b"{}").unwrap();
        let text = exchange.body.read_text(1 << 20).unwrap();
        (exchange, text)
    }

    #[test]
    fn chunked_bodies_split_anywhere_are_decoded() {
        let (exchange, text) = exchange_of(vec![
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n5\r\nda",
            b"ta:\r\n3;x=1\r\n a\n\r",
            b"\n0\r\n\r\n",
        ]);
        assert_eq!(exchange.status, 200);
        assert_eq!(exchange.content_type, "text/event-stream");
        assert_eq!(text, "data: a\n");
    }

    #[test]
    fn a_chunk_size_line_cut_between_its_cr_and_lf_is_read_on() {
        // The server waits until the client has read each piece before writing the next, so the
        // reader does hold `\r` alone (what a loaded machine's TCP can deliver any time).
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let target = Target::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
        let (read_tx, read_rx) = std::sync::mpsc::channel::<()>();
        let server = thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            read_request(&mut stream).unwrap();
            let pieces: [&[u8]; 3] = [
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r",
                b"\nabc\r",
                b"\n0\r\n\r\n",
            ];
            for piece in pieces {
                stream.write_all(piece).unwrap();
                stream.flush().unwrap();
                // The client says it has taken this piece (or is gone).
                let _ = read_rx.recv();
            }
        });
        let (stream, _abort) = connect(&target, Duration::from_secs(10)).unwrap();
        let mut exchange = post(stream, &target, &[("x-test", "yes")], b"{}").unwrap();
        // In a thread, so that a reader spinning on the held `\r` fails the test, not hangs it.
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        thread::spawn(move || {
            read_tx.send(()).unwrap();
            let mut text = Vec::new();
            let mut buf = [0u8; 16];
            loop {
                match exchange.body.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => text.extend_from_slice(&buf[..n]),
                    Err(e) => panic!("{e}"),
                }
                let _ = read_tx.send(());
            }
            let _ = done_tx.send(text);
        });
        // A bound for a hang only.
        let text = done_rx.recv_timeout(Duration::from_secs(30)).unwrap();
        assert_eq!(text, b"abc");
        server.join().unwrap();
    }

    #[test]
    fn length_and_close_delimited_bodies_are_read() {
        let (exchange, text) = exchange_of(vec![
            b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 11\r\n\r\n{\"error\":1}extra",
        ]);
        assert_eq!((exchange.status, text.as_str()), (401, "{\"error\":1}"));
        let (_, text) = exchange_of(vec![b"HTTP/1.1 200 OK\r\n\r\nuntil close"]);
        assert_eq!(text, "until close");
    }

    #[test]
    fn aborting_wakes_a_blocked_read() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let target = Target::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
        let server = thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            read_request(&mut stream).unwrap();
            stream
                .write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
                .unwrap();
            // Then nothing: the body stalls until the client hangs up.
            let mut buf = [0u8; 16];
            stream.read(&mut buf).unwrap_or(0)
        });
        let (stream, abort) = connect(&target, Duration::from_secs(60)).unwrap();
        let mut exchange = post(stream, &target, &[("x-test", "yes")], b"{}").unwrap();
        let reader = thread::spawn(move || exchange.body.read(&mut [0u8; 16]));
        abort.abort();
        assert!(matches!(reader.join().unwrap(), Ok(0) | Err(_)));
        assert_eq!(server.join().unwrap(), 0, "the worker sees the hang-up");
    }
}
