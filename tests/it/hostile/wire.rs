//! Requests as bytes on a raw TCP connection, so that shapes no HTTP client library would
//! produce can be sent too (bare LF, conflicting lengths, abandoned bodies), and answers parsed
//! back from the bytes. No tests here.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Kind {
    /// Errors are JSON with an `error` member (token, revocation, introspection, userinfo,
    /// admin API, unknown paths).
    Json,
    /// HTML pages and redirects (authorize, login, consent, logout).
    Page,
    /// Documents and probes (discovery, JWKS, health, metrics, stylesheet).
    Other,
}

/// How the body is framed on the wire.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Framing {
    ContentLength,
    /// No Content-Length at all.
    None,
    Chunked,
    /// Announces more than is sent, then hangs up without waiting for an answer.
    Abandon,
}

#[derive(Clone, Debug)]
pub(super) struct Request {
    pub(super) label: String,
    pub(super) kind: Kind,
    pub(super) method: String,
    pub(super) target: Vec<u8>,
    pub(super) headers: Vec<(Vec<u8>, Vec<u8>)>,
    /// Lines written verbatim after the headers.
    pub(super) raw_head: Vec<u8>,
    pub(super) body: Vec<u8>,
    pub(super) framing: Framing,
    /// Line ending of the head (a bare LF is tolerated by some parsers).
    pub(super) eol: &'static str,
    /// The request is not valid HTTP/1.1 (or exceeds the server's HTTP limits), so an answer
    /// may come from the HTTP layer, not the application, or the connection may just close.
    pub(super) broken_http: bool,
    /// The connection may be closed without an answer (oversized bodies: the server answers
    /// 413 before reading them, and closing an unread socket can reset it).
    pub(super) may_drop: bool,
}

impl Request {
    pub(super) fn new(
        label: impl Into<String>,
        kind: Kind,
        method: &str,
        target: impl Into<Vec<u8>>,
    ) -> Self {
        Request {
            label: label.into(),
            kind,
            method: method.to_owned(),
            target: target.into(),
            headers: Vec::new(),
            raw_head: Vec::new(),
            body: Vec::new(),
            framing: Framing::ContentLength,
            eol: "\r\n",
            broken_http: false,
            may_drop: false,
        }
    }

    pub(super) fn header(mut self, name: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub(super) fn form(self, body: impl Into<Vec<u8>>) -> Self {
        self.header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
    }

    pub(super) fn json(self, body: impl Into<Vec<u8>>) -> Self {
        self.header("Content-Type", "application/json").body(body)
    }

    pub(super) fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    pub(super) fn wire(&self, host: &str) -> Vec<u8> {
        let eol = self.eol.as_bytes();
        let mut out = Vec::with_capacity(self.body.len() + 512);
        out.extend_from_slice(self.method.as_bytes());
        out.push(b' ');
        out.extend_from_slice(&self.target);
        out.extend_from_slice(b" HTTP/1.1");
        out.extend_from_slice(eol);
        let has = |name: &str| {
            self.headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
        };
        if !has("host") {
            out.extend_from_slice(format!("Host: {host}").as_bytes());
            out.extend_from_slice(eol);
        }
        out.extend_from_slice(b"Connection: close");
        out.extend_from_slice(eol);
        for (name, value) in &self.headers {
            out.extend_from_slice(name);
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(eol);
        }
        out.extend_from_slice(&self.raw_head);
        let declares_length = has("content-length") || has("transfer-encoding");
        let sends_body =
            !self.body.is_empty() || matches!(self.method.as_str(), "POST" | "PUT" | "PATCH");
        match self.framing {
            Framing::ContentLength if !declares_length && sends_body => {
                out.extend_from_slice(format!("Content-Length: {}", self.body.len()).as_bytes());
                out.extend_from_slice(eol);
            }
            Framing::Chunked if !declares_length => {
                out.extend_from_slice(b"Transfer-Encoding: chunked");
                out.extend_from_slice(eol);
            }
            Framing::Abandon => {
                out.extend_from_slice(
                    format!("Content-Length: {}", self.body.len() * 2 + 10).as_bytes(),
                );
                out.extend_from_slice(eol);
            }
            _ => {}
        }
        out.extend_from_slice(eol);
        if self.framing == Framing::Chunked && !declares_length {
            for chunk in self.body.chunks(1000) {
                out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                out.extend_from_slice(chunk);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n\r\n");
        } else {
            out.extend_from_slice(&self.body);
        }
        out
    }
}

impl Request {
    pub(super) fn headers_n(mut self, n: usize) -> Self {
        for i in 0..n {
            self.headers
                .push((format!("X-Many-{i}").into_bytes(), b"v".to_vec()));
        }
        self
    }
}

/// The start of a request, printable, for failure messages.
pub(super) fn show(bytes: &[u8]) -> String {
    let mut s = String::new();
    for &b in bytes.iter().take(400) {
        match b {
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            0x20..=0x7e => s.push(b as char),
            _ => {
                let _ = write!(s, "\\x{b:02x}");
            }
        }
    }
    if bytes.len() > 400 {
        let _ = write!(s, "… ({} bytes)", bytes.len());
    }
    s
}

#[derive(Debug)]
pub(super) struct Response {
    pub(super) status: u16,
    pub(super) headers: BTreeMap<String, String>,
    pub(super) body: Vec<u8>,
}

pub(super) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

pub(super) fn parse_response(raw: &[u8]) -> Option<Response> {
    let head_end = find(raw, b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..head_end]).ok()?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let status: u16 = status_line.split(' ').nth(1)?.parse().ok()?;
    let mut headers = BTreeMap::new();
    for line in lines {
        let (name, value) = line.split_once(':')?;
        headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
    }
    let mut body = raw[head_end + 4..].to_vec();
    if headers
        .get("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        let mut decoded = Vec::new();
        let mut rest = &body[..];
        loop {
            let line_end = find(rest, b"\r\n")?;
            let size =
                usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).ok()?, 16).ok()?;
            rest = &rest[line_end + 2..];
            if size == 0 {
                break;
            }
            decoded.extend_from_slice(rest.get(..size)?);
            rest = rest.get(size + 2..)?;
        }
        body = decoded;
    } else if let Some(len) = headers.get("content-length").and_then(|v| v.parse().ok()) {
        body.truncate(len);
    }
    Some(Response {
        status,
        headers,
        body,
    })
}

pub(super) enum Outcome {
    Answered(Response),
    /// Closed or reset without a parsable answer.
    Dropped(String),
    /// Nothing within the time limit.
    Hung,
    /// We hung up on purpose.
    Abandoned,
}

pub(super) async fn send(addr: &str, request: &Request) -> Outcome {
    let bytes = request.wire(addr);
    let Ok(stream) = TcpStream::connect(addr).await else {
        return Outcome::Dropped("connect failed".into());
    };
    let (mut reader, mut writer) = stream.into_split();
    if request.framing == Framing::Abandon {
        let _ = writer.write_all(&bytes).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
        return Outcome::Abandoned;
    }
    // Write while reading: the server may answer (413) before it has read the whole body.
    let write = tokio::spawn(async move {
        let _ = writer.write_all(&bytes).await;
        let _ = writer.flush().await;
        // Keep the write half open until the answer is read: hyper treats a half-close as a
        // client that went away.
        writer
    });
    let mut raw = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), reader.read_to_end(&mut raw)).await;
    drop(write.await);
    match read {
        Err(_) => Outcome::Hung,
        Ok(result) => match parse_response(&raw) {
            Some(response) => Outcome::Answered(response),
            None => Outcome::Dropped(match result {
                Ok(n) => format!("closed after {n} unparsable bytes: {}", show(&raw)),
                Err(e) => format!("{e}"),
            }),
        },
    }
}
