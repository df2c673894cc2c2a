//! The generator of hostile requests: one malformed request per case, of one of twenty shapes
//! (garbage, wrong encodings, oversized parts, bad credentials and cookies, broken HTTP, ...),
//! aimed at one of the `targets`. No tests here.

use std::fmt::Write as _;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use super::rng::Rng;
use super::targets::{Ctx, encode, endpoints, realistic_params};
use super::wire::{Framing, Kind, Request};
use crate::helpers::ADMIN_TOKEN;

pub(super) fn random_json(rng: &mut Rng, depth: usize) -> Value {
    match rng.below(if depth > 3 { 5 } else { 8 }) {
        0 => Value::Null,
        1 => json!(rng.chance(50)),
        2 => json!(rng.next() as i64),
        3 => json!(rng.word_in(0, 40)),
        4 => json!(String::from_utf8_lossy(&rng.bytes_in(0, 20))),
        5 => Value::Array(
            (0..rng.range(0, 4))
                .map(|_| random_json(rng, depth + 1))
                .collect(),
        ),
        _ => {
            let keys = [
                "redirect_uris",
                "grant_types",
                "scope",
                "client_name",
                "token_endpoint_auth_method",
                "username",
                "password",
                "email",
                "disabled",
                "name",
                "post_logout_redirect_uris",
                "response_types",
                "id_token_signed_response_alg",
                "x",
            ];
            let mut map = serde_json::Map::new();
            for _ in 0..rng.range(0, 5) {
                let key = rng.pick(&keys).to_string();
                map.insert(key, random_json(rng, depth + 1));
            }
            Value::Object(map)
        }
    }
}

/// A JSON body for the admin API: hostile shapes and plausible-but-wrong metadata.
pub(super) fn admin_json(rng: &mut Rng) -> Vec<u8> {
    match rng.below(9) {
        0 => "[".repeat(rng.range(100, 5000)).into_bytes(),
        1 => format!("{}1{}", "[".repeat(200), "]".repeat(200)).into_bytes(),
        2 => br#"{"redirect_uris":["https://a.example/cb"],"redirect_uris":["https://b.example/cb"]}"#
            .to_vec(),
        3 => br#"{"client_name":"\ud800","redirect_uris":["https://a.example/\u0000"]}"#.to_vec(),
        4 => br#"{"redirect_uris":"https://a.example/cb","grant_types":7,"scope":1e999}"#.to_vec(),
        5 => json!({
            "redirect_uris": (0..rng.range(1, 300)).map(|i| format!("https://a{i}.example/cb")).collect::<Vec<_>>(),
            "client_name": "x".repeat(rng.range(0, 5000)),
        })
        .to_string()
        .into_bytes(),
        6 => json!({
            "username": rng.word_in(0, 300),
            "password": rng.word_in(0, 2000),
            "email": rng.word(20),
            "phone_number": String::from_utf8_lossy(&rng.bytes(30)),
        })
        .to_string()
        .into_bytes(),
        7 => rng.bytes_in(0, 500),
        _ => random_json(rng, 0).to_string().into_bytes(),
    }
}

pub(super) fn bad_authorization(rng: &mut Rng, ctx: &Ctx) -> Vec<Vec<u8>> {
    let one = |v: &str| vec![v.as_bytes().to_vec()];
    match rng.below(16) {
        0 => one("Basic !!!not-base64!!!"),
        1 => vec![format!("Basic {}", STANDARD.encode(rng.bytes_in(0, 60))).into_bytes()],
        2 => vec![format!("Bearer {}", rng.word(10_240)).into_bytes()],
        3 => vec![
            format!("Bearer {ADMIN_TOKEN}").into_bytes(),
            b"Bearer second".to_vec(),
        ],
        4 => vec![
            format!(
                "Basic {}",
                STANDARD.encode(format!("{}:{}", ctx.client_id, ctx.client_secret))
            )
            .into_bytes(),
            format!("Basic {}", STANDARD.encode("other:secret")).into_bytes(),
        ],
        5 => one("Basic Og=="),
        6 => one("Basic"),
        7 => one("Bearer"),
        8 => one("Bearer "),
        9 => vec![b"Basic \xff\xfe\xfd".to_vec()],
        10 => one(&format!(
            "Basic {}",
            STANDARD.encode(format!("{}:%zz%", ctx.client_id))
        )),
        11 => one(&format!(
            "Basic {}",
            STANDARD.encode(format!("%00:{}", ctx.client_secret))
        )),
        12 => one(&format!("Bearer {}.{}", ctx.access_token, "x")),
        13 => {
            // A real token with its payload swapped.
            let mut parts: Vec<String> = ctx.access_token.split('.').map(str::to_owned).collect();
            parts[1] = URL_SAFE_NO_PAD.encode(br#"{"iss":"x","sub":"admin","exp":99999999999}"#);
            one(&format!("Bearer {}", parts.join(".")))
        }
        14 => one(&format!("Digest {}", rng.word(40))),
        _ => one(&format!("Bearer {}", "A".repeat(rng.range(1, 60_000)))),
    }
}

pub(super) fn bad_cookie(rng: &mut Rng) -> Vec<u8> {
    match rng.below(8) {
        0 => format!("latchkey_session={}", rng.word_in(0, 4000)).into_bytes(),
        1 => b"=;;;=;latchkey_session;latchkey_session=".to_vec(),
        2 => format!(
            "latchkey_session=a; latchkey_session=b; latchkey_interaction={}",
            rng.word(30)
        )
        .into_bytes(),
        3 => {
            let mut v = b"latchkey_interaction=".to_vec();
            v.extend(rng.bytes(40).into_iter().map(|b| b | 0x80));
            v
        }
        4 => (0..300)
            .map(|i| format!("c{i}=v{i}"))
            .collect::<Vec<_>>()
            .join("; ")
            .into_bytes(),
        5 => b"__Host-latchkey_session=%ff%00; latchkey_session=\"quoted\"".to_vec(),
        6 => format!("latchkey_session={}", "x".repeat(30_000)).into_bytes(),
        _ => b"latchkey_session=\t".to_vec(),
    }
}

/// Broken HTTP: requests a strict parser refuses, answered (if at all) by the HTTP layer.
pub(super) fn broken_http(rng: &mut Rng, ctx: &Ctx, target: &str) -> Request {
    let r = |label: &str, method: &str| {
        let mut req = Request::new(label, Kind::Other, method, target.as_bytes().to_vec());
        req.broken_http = true;
        req
    };
    let body = b"grant_type=client_credentials".to_vec();
    match rng.below(16) {
        0 => {
            let mut req = r("bare LF", "POST").form(body);
            req.eol = "\n";
            req.broken_http = false;
            req
        }
        1 => {
            let mut req = r("header without colon", "GET");
            req.raw_head = b"X-No-Colon\r\n".to_vec();
            req
        }
        2 => r("control byte in header", "GET").header("X-Ctl", b"a\x01b\x7f".to_vec()),
        3 => r("space in header name", "GET").header("Bad Name", "v"),
        4 => {
            let mut req = r("NUL in target", "GET");
            req.target = format!("{target}?a=\0b").into_bytes();
            req
        }
        5 => {
            let mut req = r("space in target", "GET");
            req.target = format!("{target}?a=b c").into_bytes();
            req
        }
        6 => r("CL and TE", "POST")
            .header("Content-Length", "5")
            .header("Transfer-Encoding", "chunked")
            .form(body),
        7 => r("two content lengths", "POST")
            .header("Content-Length", "29")
            .header("Content-Length", "3")
            .form(body),
        8 => r("negative content length", "POST").header("Content-Length", "-1"),
        9 => r("bad chunk size", "POST")
            .header("Transfer-Encoding", "chunked")
            .form(b"zz\r\nabc\r\n0\r\n\r\n".to_vec()),
        10 => r("obs-fold", "GET").header("X-Fold", "a\r\n b"),
        11 => r("too many headers", "GET").body(Vec::new()).headers_n(150),
        12 => r("huge header", "GET").header("X-Huge", "h".repeat(rng.range(70_000, 500_000))),
        13 => {
            let mut req = r("absolute-form target", "POST").form(body);
            req.target = format!("http://evil.example{}", ctx.token).into_bytes();
            req.broken_http = false;
            req.kind = Kind::Json;
            req
        }
        14 => {
            let mut req = r("asterisk target", "OPTIONS");
            req.target = b"*".to_vec();
            req
        }
        _ => r("empty Host", "GET").header("Host", ""),
    }
}

/// Case `n`: one malformed request.
pub(super) fn case(rng: &mut Rng, ctx: &Ctx) -> Request {
    let all = endpoints(ctx);
    let (name, path, methods, kind) = rng.pick(&all).clone();
    let method = *rng.pick(&methods);
    let admin = path.starts_with("/admin");
    let params = realistic_params(rng, ctx, &path);
    let shape = rng.below(20);
    let base = |label: &str, method: &str, target: String| {
        Request::new(
            format!("{name} {method}: {label}"),
            kind,
            method,
            target.into_bytes(),
        )
    };
    let mut req = match shape {
        0 => base("garbage body", method, path.clone()).form(rng.bytes_in(1, 3000)),
        1 => {
            let mut body = encode(&params).into_bytes();
            let at = rng.below(body.len() + 1);
            body.splice(at..at, rng.bytes_in(1, 8).into_iter().map(|b| b | 0x80));
            base("non-UTF-8 bytes", method, path.clone()).form(body)
        }
        2 => {
            let mut r = base("oversized body", "POST", path.clone()).form(vec![
                b'a';
                rng.range(
                    64 * 1024 + 1,
                    200_000
                )
            ]);
            if rng.chance(30) {
                r.framing = Framing::Chunked;
            }
            r.may_drop = true;
            r
        }
        3 => base("huge header", method, path.clone())
            .header("X-Filler", "f".repeat(rng.range(4_000, 60_000)))
            .form(encode(&params)),
        4 => {
            let mut dup = params.clone();
            let first = params[rng.below(params.len())].clone();
            dup.push((first.0, rng.word(5)));
            if method == "GET" {
                base(
                    "duplicated parameter",
                    "GET",
                    format!("{path}?{}", encode(&dup)),
                )
            } else {
                base("duplicated parameter", method, path.clone()).form(encode(&dup))
            }
        }
        5 => {
            let ct = *rng.pick(&[
                "text/plain",
                "application/json",
                "multipart/form-data; boundary=xyz",
                "application/x-www-form-urlencodedX",
                "application/x-www-form-urlencoded; charset=latin1; charset=utf-8",
                "application/*",
                "\u{7f}",
                "",
            ]);
            let mut r = base("wrong content type", "POST", path.clone())
                .header("Content-Type", ct)
                .body(encode(&params));
            // DEL is not a valid header byte: the HTTP layer refuses it.
            r.broken_http = ct == "\u{7f}";
            r
        }
        6 => {
            let mut r = base("empty body", "POST", path.clone());
            match rng.below(3) {
                0 => r = r.header("Content-Type", "application/x-www-form-urlencoded"),
                1 => r = r.header("Content-Type", "application/json"),
                _ => {}
            }
            if rng.chance(50) {
                r.framing = Framing::None;
            }
            r
        }
        7 => {
            if admin {
                base("form where JSON expected", method, path.clone())
                    .header("Authorization", format!("Bearer {ADMIN_TOKEN}"))
                    .form(encode(&params))
            } else {
                let obj: serde_json::Map<String, Value> =
                    params.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
                base("JSON where form expected", "POST", path.clone())
                    .json(Value::Object(obj).to_string())
            }
        }
        8 => {
            let broken = *rng.pick(&[
                "%", "%4", "%zz", "a=%", "=%E2%82", "%%%%", "a%3", "&&&=&=", "%C0%80",
            ]);
            let body = format!("{}&{broken}", encode(&params));
            if method == "GET" {
                base(
                    "truncated percent-encoding",
                    "GET",
                    format!("{path}?{body}"),
                )
            } else {
                base("truncated percent-encoding", method, path.clone()).form(body)
            }
        }
        9 => {
            let mut body = encode(&params);
            if rng.chance(50) {
                body.push_str("&nul=%00");
                base("NUL escaped", method, format!("{path}?x=%00")).form(body)
            } else {
                let mut raw = body.into_bytes();
                raw.extend_from_slice(b"&raw=a\0b");
                base("raw NUL", "POST", path.clone()).form(raw)
            }
        }
        10 => {
            let mut long = params.clone();
            let i = rng.below(long.len());
            long[i].1 = rng.word_in(8 * 1024, 60 * 1024);
            if method == "GET" && rng.chance(50) {
                base(
                    "very long value",
                    "GET",
                    format!("{path}?{}", encode(&long)),
                )
            } else {
                base("very long value", "POST", path.clone()).form(encode(&long))
            }
        }
        11 => {
            let m = *rng.pick(&[
                "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE", "FOO", "get",
            ]);
            let mut r = base("weird method", m, path.clone()).form(encode(&params));
            if m == "OPTIONS" && rng.chance(50) {
                r = r
                    .header("Origin", "https://spa.example")
                    .header("Access-Control-Request-Method", "POST");
            }
            if m == "HEAD" {
                // A HEAD answer has no body to read past.
                r.body.clear();
            }
            r
        }
        12 => {
            let mut r = if method == "GET" {
                base(
                    "bad Authorization",
                    "GET",
                    format!("{path}?{}", encode(&params)),
                )
            } else {
                base("bad Authorization", method, path.clone()).form(encode(&params))
            };
            for value in bad_authorization(rng, ctx) {
                r = r.header("Authorization", value);
            }
            r
        }
        13 => {
            let mut r = if method == "GET" {
                base("bad cookie", "GET", format!("{path}?{}", encode(&params)))
            } else {
                base("bad cookie", method, path.clone()).form(encode(&params))
            };
            r = r.header("Cookie", bad_cookie(rng));
            if rng.chance(30) {
                r = r.header("Cookie", bad_cookie(rng));
            }
            r
        }
        14 => {
            // Plausible requests with real credentials and wrong details: the deep paths.
            let mut r = if method == "GET" {
                base("plausible", "GET", format!("{path}?{}", encode(&params)))
            } else if admin {
                base("plausible", method, path.clone()).json(admin_json(rng))
            } else {
                base("plausible", method, path.clone()).form(encode(&params))
            };
            if admin || rng.chance(20) {
                r = r.header("Authorization", format!("Bearer {ADMIN_TOKEN}"));
            } else if rng.chance(70) {
                r = r.header(
                    "Authorization",
                    format!(
                        "Basic {}",
                        STANDARD.encode(format!("{}:{}", ctx.client_id, ctx.client_secret))
                    ),
                );
            }
            r
        }
        15 => {
            let mut r = base("admin JSON", method, path.clone()).json(admin_json(rng));
            if rng.chance(75) {
                r = r.header("Authorization", format!("Bearer {ADMIN_TOKEN}"));
            }
            r
        }
        16 => {
            let junk = *rng.pick(&[
                "/%ff%fe",
                "/..%2F..%2Fetc%2Fpasswd",
                "//token",
                "/token/",
                "/authorize%00",
                "/admin/clients/%ff",
                "/admin/users/%2e%2e",
                "/admin/clients/a/b/c",
                "/admin/",
                "/admin",
                "/.well-known/",
                "/%2e%2e/admin/keys",
            ]);
            let target = if rng.chance(20) {
                format!("/{}", "p".repeat(rng.range(2_000, 20_000)))
            } else {
                junk.to_owned()
            };
            let mut r = Request::new("junk path", Kind::Other, method, target.into_bytes());
            if rng.chance(50) {
                r = r.header("Authorization", format!("Bearer {ADMIN_TOKEN}"));
            }
            r
        }
        17 => {
            let mut query = String::new();
            for _ in 0..rng.range(1, 100) {
                let _ = write!(query, "{}={}&", rng.word_in(0, 8), rng.word_in(0, 30));
            }
            base("random query", "GET", format!("{path}?{query}"))
        }
        18 => broken_http(rng, ctx, &path),
        _ => {
            let mut r = base("abandoned body", "POST", path.clone()).form(encode(&params));
            r.framing = Framing::Abandon;
            r
        }
    };
    // Without the admin token unless the shape put it there.
    if admin && shape != 7 && shape != 14 && shape != 15 && shape != 12 && rng.chance(30) {
        req = req.header("Authorization", format!("Bearer {ADMIN_TOKEN}"));
    }
    req
}
