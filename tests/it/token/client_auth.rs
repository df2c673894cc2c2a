//! Client authentication at the three endpoints that need it (token, revocation,
//! introspection): failures are 401 `invalid_client` (with a Basic challenge when Basic was
//! used), `client_secret_post` works everywhere, two methods at once are refused, Basic
//! credentials are form-urlencoded (RFC 6749 §2.3.1), public clients send only their id.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{
    Backend, TestApp, TestClient, assert_error, field, introspect, post_as, refresh, spawn_app,
    spawn_app_with_alice, user_tokens,
};

both_backends!(
    failed_client_authentication_is_401_invalid_client_with_a_basic_challenge,
    client_secret_post_authenticates_at_every_endpoint,
    two_client_authentication_methods_at_once_are_an_invalid_request,
    basic_credentials_are_form_url_decoded,
    public_clients_use_their_client_id_at_the_token_endpoint_but_cannot_introspect,
);

/// The three endpoints that authenticate clients, each with a request that is valid apart
/// from client authentication.
async fn authenticated_endpoints(
    app: &TestApp,
) -> Vec<(String, Vec<(&'static str, &'static str)>)> {
    vec![
        (
            app.endpoint("token_endpoint").await,
            vec![("grant_type", "client_credentials")],
        ),
        (
            app.endpoint("revocation_endpoint").await,
            vec![("token", "some-token")],
        ),
        (
            app.endpoint("introspection_endpoint").await,
            vec![("token", "some-token")],
        ),
    ]
}

fn assert_invalid_client(status: u16, body: &Value, headers: &HeaderMap, basic_challenge: bool) {
    assert_error(status, body, 401, "invalid_client");
    assert_eq!(headers["cache-control"], "no-store");
    if basic_challenge {
        let challenge = headers["www-authenticate"].to_str().unwrap();
        assert!(challenge.starts_with("Basic "), "{challenge}");
    }
}

async fn failed_client_authentication_is_401_invalid_client_with_a_basic_challenge(
    backend: Backend,
) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let wrong_secret = TestClient {
        secret: Some("wrong".into()),
        client_id: client.client_id.clone(),
        redirect_uri: String::new(),
    };
    let unknown = TestClient {
        client_id: "no-such-client".into(),
        ..TestClient::from_registration(&app.create_web_client().await)
    };
    let id_only = TestClient {
        secret: None,
        client_id: client.client_id.clone(),
        redirect_uri: String::new(),
    };
    for (url, form) in authenticated_endpoints(&app).await {
        let (status, body, headers) = post_as(&app, &url, &wrong_secret, &form).await;
        assert_invalid_client(status, &body, &headers, true);
        let (status, body, headers) = post_as(&app, &url, &unknown, &form).await;
        assert_invalid_client(status, &body, &headers, true);
        // client_secret_post with a wrong secret, and a confidential client without its secret.
        let mut posted = form.clone();
        posted.extend([
            ("client_id", client.client_id.as_str()),
            ("client_secret", "wrong"),
        ]);
        let r = app.http.post(&url).form(&posted).send().await.unwrap();
        let (status, headers) = (r.status().as_u16(), r.headers().clone());
        assert_invalid_client(status, &r.json().await.unwrap(), &headers, false);
        let (status, body, headers) = post_as(&app, &url, &id_only, &form).await;
        assert_invalid_client(status, &body, &headers, false);
        // No credentials at all.
        let r = app.http.post(&url).form(&form).send().await.unwrap();
        let (status, headers) = (r.status().as_u16(), r.headers().clone());
        assert_invalid_client(status, &r.json().await.unwrap(), &headers, false);
    }
}

async fn client_secret_post_authenticates_at_every_endpoint(backend: Backend) {
    let app = spawn_app(backend).await;
    let reg = app
        .create_client(json!({
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "client_secret_post",
            "scope": "api.read",
        }))
        .await;
    let id = reg["client_id"].as_str().unwrap();
    let secret = reg["client_secret"].as_str().unwrap();
    let post = |url: String, form: Vec<(&'static str, String)>| {
        let app = &app;
        async move {
            let mut fields: Vec<(&str, &str)> =
                form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            fields.extend([("client_id", id), ("client_secret", secret)]);
            let r = app.http.post(url).form(&fields).send().await.unwrap();
            (
                r.status().as_u16(),
                r.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let (status, body) = post(
        app.endpoint("token_endpoint").await,
        vec![("grant_type", "client_credentials".into())],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let access = field(&body, "access_token");
    let introspection = app.endpoint("introspection_endpoint").await;
    let (status, body) = post(introspection.clone(), vec![("token", access.clone())]).await;
    assert_eq!((status, &body["active"]), (200, &json!(true)), "{body}");
    let (status, _) = post(
        app.endpoint("revocation_endpoint").await,
        vec![("token", access.clone())],
    )
    .await;
    assert_eq!(status, 200);
    let (_, body) = post(introspection, vec![("token", access)]).await;
    assert_eq!(
        body,
        json!({"active": false}),
        "revoked through client_secret_post"
    );
}

async fn two_client_authentication_methods_at_once_are_an_invalid_request(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let secret = client.secret.clone().unwrap();
    for (url, form) in authenticated_endpoints(&app).await {
        let mut fields = form.clone();
        fields.push(("client_secret", &secret));
        let r = app
            .http
            .post(&url)
            .basic_auth(&client.client_id, Some(&secret))
            .form(&fields)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        assert_error(status, &r.json().await.unwrap(), 400, "invalid_request");
    }
}

async fn basic_credentials_are_form_url_decoded(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    // RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic encoding. Encoding every
    // byte is a legal (if extreme) encoding that a server must decode.
    let encode_all = |s: &str| s.bytes().map(|b| format!("%{b:02X}")).collect::<String>();
    let credentials = format!(
        "{}:{}",
        encode_all(&client.client_id),
        encode_all(client.secret.as_deref().unwrap())
    );
    let header = format!("Basic {}", STANDARD.encode(credentials));
    let r = app
        .http
        .post(app.endpoint("token_endpoint").await)
        .header("authorization", &header)
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let r = app
        .http
        .post(app.endpoint("introspection_endpoint").await)
        .header("authorization", &header)
        .form(&[("token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Decoding is not guessing: an encoded id with a wrong secret still fails.
    let wrong = format!(
        "Basic {}",
        STANDARD.encode(format!("{}:%41", encode_all(&client.client_id)))
    );
    let r = app
        .http
        .post(app.endpoint("token_endpoint").await)
        .header("authorization", wrong)
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

async fn public_clients_use_their_client_id_at_the_token_endpoint_but_cannot_introspect(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    app.create_user("alice").await;
    let public = TestClient::from_registration(
        &app.create_client(json!({
            "client_name": "Native App",
            "redirect_uris": ["http://127.0.0.1:7777/callback"],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none",
            "scope": "openid offline_access",
        }))
        .await,
    );
    let tokens = user_tokens(&app, &public, "openid offline_access").await;
    let (status, refreshed) = refresh(&app, &public, &field(&tokens, "refresh_token"), None).await;
    assert_eq!(status, 200, "{refreshed}");

    let (status, body) = introspect(&app, &public, &field(&refreshed, "access_token")).await;
    assert_error(status, &body, 401, "invalid_client");
    // A public client has no secret: presenting one is a failed authentication.
    let (status, body, _) = app
        .token(
            &public,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &field(&refreshed, "refresh_token")),
                ("client_secret", "guess"),
            ],
        )
        .await;
    assert_error(status, &body, 401, "invalid_client");
}
