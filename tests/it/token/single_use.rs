//! Single use under concurrency: one code, or one refresh token, sent 20 times at once over one
//! node succeeds exactly once; every other request gets `invalid_grant`. (Spread over several
//! nodes and processes: `races` and `cluster`.)

use std::sync::Arc;

use serde_json::Value;

use crate::both_backends;
use crate::helpers::{
    Backend, Browser, TestApp, TestClient, assert_error, code_form, field, pkce_pair,
    spawn_app_with_alice, spawn_app_with_alice_and, user_tokens,
};

both_backends!(
    a_code_redeemed_in_a_race_of_20_succeeds_exactly_once,
    a_refresh_token_used_in_a_race_of_20_rotates_exactly_once,
);

/// Sends the same token request `n` times at once (all tasks released together by a
/// barrier, over one shared reqwest client); returns every (status, body).
async fn race(
    app: &TestApp,
    client: &TestClient,
    form: &[(&str, &str)],
    n: usize,
) -> Vec<(u16, Value)> {
    let form: Vec<(String, String)> = form
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        let http = app.http.clone();
        let url = app.url("/token");
        let form = form.clone();
        let id = client.client_id.clone();
        let secret = client.secret.clone();
        let barrier = barrier.clone();
        tasks.spawn(async move {
            let request = http.post(url).basic_auth(id, secret).form(&form);
            barrier.wait().await;
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        });
    }
    tasks.join_all().await
}

fn assert_exactly_one_success(results: &[(u16, Value)]) {
    let successes = results.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!(successes, 1, "{results:?}");
    for (status, body) in results.iter().filter(|(s, _)| *s != 200) {
        assert_error(*status, body, 400, "invalid_grant");
    }
}

async fn a_code_redeemed_in_a_race_of_20_succeeds_exactly_once(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let browser = Browser::new(&app);
    let (verifier, challenge) = pkce_pair();
    let query = browser
        .code_flow(&client, "openid offline_access", Some(&challenge), &[])
        .await;
    let form = code_form(&client, &query["code"], Some(&verifier));
    assert_exactly_one_success(&race(&app, &client, &form, 20).await);
}

/// Without the reuse grace (which makes the racers retries that all get the one successor:
/// `races.rs`), the losers present a rotated-out token and are refused.
async fn a_refresh_token_used_in_a_race_of_20_rotates_exactly_once(backend: Backend) {
    let (app, client) =
        spawn_app_with_alice_and(backend, &[("LATCHKEY_REFRESH_TOKEN_REUSE_GRACE", "0")]).await;
    let tokens = user_tokens(&app, &client, "openid offline_access").await;
    let refresh_token = field(&tokens, "refresh_token");
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token.as_str()),
    ];
    assert_exactly_one_success(&race(&app, &client, &form, 20).await);
}
