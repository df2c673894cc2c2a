//! Latchkey serving HTTPS itself (`LATCHKEY_TLS_CERT`, `LATCHKEY_TLS_KEY`), with a certificate
//! generated in the test; and what an https issuer changes: `Secure`, `__Host-` cookies, HSTS.

use crate::both_backends;
use crate::helpers::{Backend, TestClient, spawn_app_with};

both_backends!(https_is_served_with_secure_cookies_and_hsts);

async fn https_is_served_with_secure_cookies_and_hsts(backend: Backend) {
    let dir = latchkey::store::testing::fresh_sqlite_path()
        .parent()
        .unwrap()
        .join("tls");
    std::fs::create_dir_all(&dir).unwrap();
    let generated =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let cert_pem = generated.cert.pem();
    std::fs::write(dir.join("cert.pem"), &cert_pem).unwrap();
    std::fs::write(dir.join("key.pem"), generated.signing_key.serialize_pem()).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let app = spawn_app_with(backend, |env| {
        for (k, v) in env.iter_mut() {
            if k == "LATCHKEY_ISSUER" {
                *v = v.replace("http://", "https://");
            }
        }
        env.push(("LATCHKEY_TLS_CERT".into(), cert.display().to_string()));
        env.push(("LATCHKEY_TLS_KEY".into(), key.display().to_string()));
    })
    .await;
    let base = app.base.replace("http://", "https://");
    let https = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = https
        .get(format!("{base}/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["strict-transport-security"],
        "max-age=31536000; includeSubDomains"
    );
    let doc: serde_json::Value = r.json().await.unwrap();
    assert_eq!(doc["issuer"], base.as_str());
    assert!(
        doc["token_endpoint"]
            .as_str()
            .unwrap()
            .starts_with("https://")
    );
    // Plain http on the same port gets no answer it could use.
    let plain = reqwest::get(format!("{}/healthz", app.base)).await;
    assert!(!plain.is_ok_and(|r| r.status().is_success()));

    // Cookies on an https issuer: __Host- prefix, Secure, HttpOnly, SameSite=Lax, Path=/.
    let admin = |path: &str, body: serde_json::Value| {
        https
            .post(format!("{base}{path}"))
            .bearer_auth(crate::helpers::ADMIN_TOKEN)
            .json(&body)
            .send()
    };
    let reg: serde_json::Value = admin(
        "/admin/clients",
        serde_json::json!({"redirect_uris": ["https://app.example.test/cb"], "scope": "openid"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let client = TestClient::from_registration(&reg);
    let r = https
        .get(format!("{base}/authorize"))
        .query(&[
            ("response_type", "code"),
            ("client_id", client.client_id.as_str()),
            ("redirect_uri", client.redirect_uri.as_str()),
            ("scope", "openid"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.starts_with("__Host-latchkey_interaction="),
        "{cookie}"
    );
    for attribute in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
    }
    assert!(
        !cookie.contains("Domain="),
        "__Host- cookies carry no Domain: {cookie}"
    );
}
