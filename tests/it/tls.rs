//! Latchkey serving HTTPS itself (`LATCHKEY_TLS_CERT`, `LATCHKEY_TLS_KEY`), with a certificate
//! generated in the test; and what an https issuer changes: `Secure`, `__Host-` cookies, HSTS.

use reqwest::Method;

use crate::both_backends;
use crate::helpers::{
    Backend, TestClient, admin_call, authorize_params, self_signed_certificate, spawn_app_with,
};

both_backends!(https_is_served_with_secure_cookies_and_hsts);

async fn https_is_served_with_secure_cookies_and_hsts(backend: Backend) {
    let certificate = self_signed_certificate();
    let (cert, key, cert_pem) = (certificate.cert, certificate.key, certificate.pem);
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
    let metadata =
        serde_json::json!({"redirect_uris": ["https://app.example.test/cb"], "scope": "openid"});
    let (_, reg) = admin_call(
        &https,
        &base,
        Method::POST,
        "/admin/clients",
        Some(&metadata),
    )
    .await;
    let client = TestClient::from_registration(&reg);
    let r = https
        .get(format!("{base}/authorize"))
        .query(&authorize_params(&client, "openid", &[]))
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
