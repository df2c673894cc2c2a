//! The benchmark's ceiling: what Latchkey's stack (axum 0.8 on tokio, aws-lc-rs) does per
//! request with no protocol logic at all.
//!
//! ```text
//! latchkey-bench-ceiling serve PORT NAME=FILE...   # listens on 127.0.0.1:PORT
//!     GET  /fixed/NAME  the bytes of FILE (read once at start), as application/json
//!     POST /token       reads the form, signs one ES256 JWT (RFC 9068 claims like
//!                       Latchkey's) with a key parsed once at start, answers a token response
//! latchkey-bench-ceiling argon2 PHC PASSWORD N     # verifies N times; prints mean ms
//! latchkey-bench-ceiling keygen FILE [ALG]          # new ES256 (default) or RS256 key:
//!                                                   # PKCS#8 into FILE, its public JWK
//!                                                   # (kid "bench") on stdout
//! latchkey-bench-ceiling assertions FILE CLIENT_ID AUD N PREFIX THREADS [ALG]
//!                                                   # N private_key_jwt client assertions
//!                                                   # signed with FILE's key, one a line,
//!                                                   # dealt round-robin into PREFIX0 ..
//! ```
//!
//! `serve` prints `ready` once it listens. Only loopback addresses are bound.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;

struct Ceiling {
    issuer: String,
    fixed: HashMap<String, Bytes>,
    key: EcdsaKeyPair,
    rng: SystemRandom,
    /// base64url of `{"alg":"ES256","kid":"ceiling","typ":"at+jwt"}`, encoded once.
    header_b64: String,
}

#[derive(serde::Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: u64,
    iat: u64,
    nbf: u64,
    jti: String,
    client_id: &'a str,
    scope: &'a str,
}

#[derive(serde::Serialize)]
struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
    scope: String,
}

async fn fixed_body(State(c): State<Arc<Ceiling>>, Path(name): Path<String>) -> Response {
    match c.fixed.get(&name) {
        Some(body) => ([(header::CONTENT_TYPE, "application/json")], body.clone()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// One ES256 JWT per request. The client is "authenticated" by the presence of a Basic
/// header only: the ceiling measures signing and HTTP, not client lookup.
async fn token(
    State(c): State<Arc<Ceiling>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if !headers.contains_key(header::AUTHORIZATION) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let scope = form.get("scope").map(String::as_str).unwrap_or("api.read");
    let mut jti = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut jti);
    let claims = Claims {
        iss: &c.issuer,
        sub: "ceiling-client",
        aud: form.get("resource").map(String::as_str).unwrap_or("ceiling-client"),
        exp: now + 3600,
        iat: now,
        nbf: now,
        jti: URL_SAFE_NO_PAD.encode(jti),
        client_id: "ceiling-client",
        scope,
    };
    let Ok(payload) = serde_json::to_vec(&claims) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let mut jwt = String::with_capacity(c.header_b64.len() + payload.len() * 4 / 3 + 100);
    jwt.push_str(&c.header_b64);
    jwt.push('.');
    URL_SAFE_NO_PAD.encode_string(&payload, &mut jwt);
    let Ok(sig) = c.key.sign(&c.rng, jwt.as_bytes()) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    jwt.push('.');
    URL_SAFE_NO_PAD.encode_string(sig.as_ref(), &mut jwt);
    let mut response = Json(TokenResponse {
        access_token: jwt,
        token_type: "Bearer",
        expires_in: 3600,
        scope: scope.to_owned(),
    })
    .into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn serve(args: &[String]) -> Result<(), String> {
    let port: u16 = args.first().and_then(|p| p.parse().ok()).ok_or("serve needs a PORT")?;
    let mut fixed = HashMap::new();
    for spec in &args[1..] {
        let (name, path) = spec.split_once('=').ok_or(format!("`{spec}` is not NAME=FILE"))?;
        let body = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
        fixed.insert(name.to_owned(), Bytes::from(body));
    }
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map_err(|_| "key generation failed")?;
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
        .map_err(|_| "key parsing failed")?;
    let ceiling = Arc::new(Ceiling {
        issuer: format!("http://127.0.0.1:{port}"),
        fixed,
        key,
        rng,
        header_b64: URL_SAFE_NO_PAD.encode(r#"{"alg":"ES256","kid":"ceiling","typ":"at+jwt"}"#),
    });
    let app = Router::new()
        .route("/fixed/{name}", get(fixed_body))
        .route("/token", post(token))
        .with_state(ceiling);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| e.to_string())?;
        println!("ready");
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
                tokio::select! {
                    _ = term.recv() => {},
                    _ = tokio::signal::ctrl_c() => {},
                }
            })
            .await
            .map_err(|e| e.to_string())
    })
}

/// Mean wall time of one argon2id verification of PASSWORD against PHC (the hash Latchkey
/// stored, so the parameters are exactly Latchkey's), over N runs on this thread. Like
/// Latchkey, it keeps one work area for all runs, so the figure is the hash itself, not
/// page faults from allocating 19 MiB afresh.
fn argon2_time(args: &[String]) -> Result<(), String> {
    use argon2::password_hash::PasswordHash;
    let [phc, password, n] = args else {
        return Err("argon2 needs PHC PASSWORD N".into());
    };
    let n: u32 = n.parse().map_err(|_| "N must be a number")?;
    let parsed = PasswordHash::new(phc).map_err(|e| e.to_string())?;
    let params = argon2::Params::try_from(&parsed).map_err(|e| e.to_string())?;
    let (Some(expected), Some(salt)) = (parsed.hash, parsed.salt) else {
        return Err("the PHC string has no hash or salt".into());
    };
    let mut salt_bytes = [0u8; 64];
    let salt = salt.decode_b64(&mut salt_bytes).map_err(|e| e.to_string())?;
    let argon = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        params.clone(),
    );
    let mut area = vec![argon2::Block::new(); params.block_count()];
    let mut out = vec![0u8; expected.len()];
    let mut ok = true;
    let start = Instant::now();
    for _ in 0..n.max(1) {
        argon
            .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, &mut area)
            .map_err(|e| e.to_string())?;
        ok &= out == expected.as_bytes();
    }
    let mean_ms = start.elapsed().as_secs_f64() * 1000.0 / f64::from(n.max(1));
    if !ok {
        return Err("the password does not match the hash".into());
    }
    println!("{{\"argon2_verify_ms\":{mean_ms:.3},\"runs\":{n}}}");
    Ok(())
}

/// `keygen FILE [ALG]`: a new key for the private_key_jwt scenarios, ES256 (P-256, the
/// default) or RS256 (RSA 2048). The PKCS#8 document goes into FILE; the public JWK, which the
/// bench registers as the client's `jwks`, is printed.
fn keygen(args: &[String]) -> Result<(), String> {
    let (path, alg) = match args {
        [path] => (path, "ES256"),
        [path, alg] => (path, alg.as_str()),
        _ => return Err("keygen needs FILE [ALG]".into()),
    };
    let (pkcs8, jwk) = match alg {
        "ES256" => {
            let rng = SystemRandom::new();
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .map_err(|_| "key generation failed")?;
            let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
                .map_err(|_| "key parsing failed")?;
            // The public key is the uncompressed point 0x04 || X || Y.
            let point = key.public_key().as_ref();
            let jwk = serde_json::json!({
                "kty": "EC", "crv": "P-256", "kid": "bench", "use": "sig", "alg": "ES256",
                "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
                "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
            });
            (pkcs8.as_ref().to_vec(), jwk)
        }
        "RS256" => {
            use aws_lc_rs::encoding::AsDer;
            let key = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                .map_err(|_| "key generation failed")?;
            let pkcs8 = key.as_der().map_err(|_| "key encoding failed")?;
            let public = key.public_key();
            let jwk = serde_json::json!({
                "kty": "RSA", "kid": "bench", "use": "sig", "alg": "RS256",
                "n": URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
                "e": URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
            });
            (pkcs8.as_ref().to_vec(), jwk)
        }
        other => return Err(format!("keygen: unknown ALG {other} (ES256 or RS256)")),
    };
    std::fs::write(path, &pkcs8).map_err(|e| format!("{path}: {e}"))?;
    println!("{jwk}");
    Ok(())
}

/// A key that signs client assertions with one algorithm.
enum AssertionKey {
    Es256(EcdsaKeyPair),
    Rs256(aws_lc_rs::rsa::KeyPair),
}

impl AssertionKey {
    fn sign(&self, rng: &SystemRandom, message: &[u8]) -> Result<Vec<u8>, String> {
        match self {
            AssertionKey::Es256(key) => key
                .sign(rng, message)
                .map(|sig| sig.as_ref().to_vec())
                .map_err(|_| "signing failed".into()),
            AssertionKey::Rs256(key) => {
                let mut sig = vec![0; key.public_modulus_len()];
                key.sign(&aws_lc_rs::signature::RSA_PKCS1_SHA256, rng, message, &mut sig)
                    .map_err(|_| "signing failed")?;
                Ok(sig)
            }
        }
    }
}

/// `assertions FILE CLIENT_ID AUD N PREFIX THREADS [ALG]`: N client assertions (RFC 7523
/// §2.2) signed with the key in FILE (`keygen`'s, same ALG; default ES256), each with its own
/// `jti` (they are single use), valid for 290 s, dealt round-robin into the files PREFIX0 ..
/// PREFIX{THREADS-1}, one per wrk thread. Minting them here, before a run, keeps the signing
/// cost (the client's, not the server's) out of the measurement.
fn assertions(args: &[String]) -> Result<(), String> {
    use std::io::Write;
    let (path, client_id, aud, n, prefix, threads, alg) = match args {
        [path, client_id, aud, n, prefix, threads] => (path, client_id, aud, n, prefix, threads, "ES256"),
        [path, client_id, aud, n, prefix, threads, alg] => {
            (path, client_id, aud, n, prefix, threads, alg.as_str())
        }
        _ => return Err("assertions needs FILE CLIENT_ID AUD N PREFIX THREADS [ALG]".into()),
    };
    let n: usize = n.parse().map_err(|_| "N must be a number")?;
    let threads: usize = threads.parse().map_err(|_| "THREADS must be a number")?;
    let pkcs8 = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    let key = match alg {
        "ES256" => AssertionKey::Es256(
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8)
                .map_err(|_| "key parsing failed")?,
        ),
        "RS256" => AssertionKey::Rs256(
            aws_lc_rs::rsa::KeyPair::from_pkcs8(&pkcs8).map_err(|_| "key parsing failed")?,
        ),
        other => return Err(format!("assertions: unknown ALG {other} (ES256 or RS256)")),
    };
    let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}","kid":"bench","typ":"JWT"}}"#));
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_err(|e| e.to_string())?.as_secs();
    let mint = |count: usize| -> Result<Vec<String>, String> {
        let rng = SystemRandom::new();
        let mut jti = [0u8; 16];
        let mut out = Vec::with_capacity(count);
        for _ in 0..count {
            rand::thread_rng().fill_bytes(&mut jti);
            let claims = serde_json::json!({
                "iss": client_id, "sub": client_id, "aud": aud,
                "iat": now, "exp": now + 290, "jti": URL_SAFE_NO_PAD.encode(jti),
            });
            let signing_input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims.to_string()));
            let sig = key.sign(&rng, signing_input.as_bytes())?;
            out.push(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(&sig)));
        }
        Ok(out)
    };
    // RS256 signatures take most of a millisecond each: every core mints a share.
    let workers = std::thread::available_parallelism().map_or(1, usize::from);
    let minted: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let share = n / workers + usize::from(w < n % workers);
                scope.spawn(move || mint(share))
            })
            .collect();
        let mut all = Vec::with_capacity(n);
        for handle in handles {
            all.extend(handle.join().map_err(|_| "a minting thread panicked".to_string())??);
        }
        Ok::<_, String>(all)
    })?;
    let mut files = (0..threads.max(1))
        .map(|i| {
            let p = format!("{prefix}{i}");
            std::fs::File::create(&p).map(std::io::BufWriter::new).map_err(|e| format!("{p}: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let count = files.len();
    for (i, assertion) in minted.iter().enumerate() {
        writeln!(files[i % count], "{assertion}").map_err(|e| e.to_string())?;
    }
    for mut f in files {
        f.flush().map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("serve") => serve(&args[1..]),
        Some("argon2") => argon2_time(&args[1..]),
        Some("keygen") => keygen(&args[1..]),
        Some("assertions") => assertions(&args[1..]),
        _ => Err("usage: latchkey-bench-ceiling serve PORT NAME=FILE... | argon2 PHC PASSWORD N \
                  | keygen FILE [ALG] | assertions FILE CLIENT_ID AUD N PREFIX THREADS [ALG]"
            .into()),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("latchkey-bench-ceiling: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
