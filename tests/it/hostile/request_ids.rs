//! `X-Request-Id` from the client: kept and echoed only when well formed, never a way to forge
//! log fields. Raw TCP, so that ids no HTTP client would send can be sent.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::wire::{find, show};
use crate::helpers::{Backend, ServerProcess, fresh_database};

/// One request over raw TCP with `Connection: close`; the raw answer.
async fn exchange_raw(addr: &str, request: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .expect("an answer within 10 s")
        .unwrap();
    raw
}

/// The values of `name` in the head of a raw answer, as bytes.
fn raw_header_values(raw: &[u8], name: &str) -> Vec<Vec<u8>> {
    let head = &raw[..find(raw, b"\r\n\r\n").unwrap_or(raw.len())];
    head.split(|b| *b == b'\n')
        .filter_map(|line| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let colon = line.iter().position(|b| *b == b':')?;
            line[..colon]
                .eq_ignore_ascii_case(name.as_bytes())
                .then(|| line[colon + 1..].trim_ascii().to_vec())
        })
        .collect()
}

/// A client-chosen `X-Request-Id` goes into every log line of its request and back in the
/// answer, so only a well-formed one (one header, 1 to 128 characters of `[A-Za-z0-9._:-]`)
/// is kept. Anything else (too long, quotes and spaces that would forge fields in a text log,
/// tabs, bytes that are not UTF-8, two ids at once) is replaced by a fresh id: neither echoed
/// nor logged, for routed answers and for the pre-serialised documents alike. Control
/// characters and line breaks never get that far (hyper refuses the request head).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_request_ids_are_kept_only_when_well_formed() {
    let database = fresh_database(Backend::Sqlite).await;
    let node = ServerProcess::start(&database, &[]).await;
    let addr = node.base.trim_start_matches("http://").to_owned();
    let request = |path: &str, ids: &[&[u8]]| {
        let mut out =
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n").into_bytes();
        for id in ids {
            out.extend_from_slice(b"X-Request-Id: ");
            out.extend_from_slice(id);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out
    };
    let long = format!("forged-long-{}", "x".repeat(200));
    let hostile: Vec<(&str, Vec<&[u8]>)> = vec![
        ("too long", vec![long.as_bytes()]),
        (
            "quotes and spaces",
            vec![b"abc\" level=ERROR message=\"forged-quote".as_slice()],
        ),
        ("a tab", vec![b"forged\ttab".as_slice()]),
        ("not UTF-8", vec![b"forged-\xff\xfe-utf8".as_slice()]),
        ("an equals sign", vec![b"Root=forged-equals".as_slice()]),
        (
            "two ids",
            vec![b"forged-first".as_slice(), b"forged-second".as_slice()],
        ),
    ];
    let fresh = |id: &[u8]| {
        id.len() == 16
            && id
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
    };
    for path in ["/healthz", "/jwks"] {
        for (what, ids) in &hostile {
            let raw = exchange_raw(&addr, &request(path, ids)).await;
            assert!(
                raw.starts_with(b"HTTP/1.1 200"),
                "{what} at {path}: {}",
                show(&raw)
            );
            let echoed = raw_header_values(&raw, "x-request-id");
            assert_eq!(echoed.len(), 1, "{what} at {path}: {}", show(&raw));
            assert!(fresh(&echoed[0]), "{what} at {path}: {}", show(&echoed[0]));
            assert!(find(&raw, b"forged").is_none(), "{what} at {path} echoed");
        }
        // A control character never reaches Latchkey.
        let raw = exchange_raw(&addr, &request(path, &[b"forged\x01ctl"])).await;
        assert!(find(&raw, b"forged").is_none(), "{}", show(&raw));
        // A well-formed id is kept and echoed.
        let id = format!("lb-7f3a.node_2:req-42-{}", path.len());
        let raw = exchange_raw(&addr, &request(path, &[id.as_bytes()])).await;
        assert_eq!(
            raw_header_values(&raw, "x-request-id"),
            vec![id.as_bytes().to_vec()],
            "{}",
            show(&raw)
        );
        let max = "m".repeat(128);
        let raw = exchange_raw(&addr, &request(path, &[max.as_bytes()])).await;
        assert_eq!(
            raw_header_values(&raw, "x-request-id"),
            vec![max.into_bytes()]
        );
    }
    // The log holds the well-formed id (on the routed request's span) and nothing forged.
    let mut log = String::new();
    for _ in 0..50 {
        log = node.log();
        if log.contains("lb-7f3a.node_2:req-42-8") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        log.contains("\"request_id\":\"lb-7f3a.node_2:req-42-8\""),
        "{log}"
    );
    assert!(!log.contains("forged"), "{log}");
}
