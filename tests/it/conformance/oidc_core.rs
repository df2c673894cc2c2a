//! OpenID Connect Core rules next to the suite's modules that no module of the suite checks.

use super::rp::Nonce;
use super::{NONCE, auth_params, battery, complete_flow, drive, finish_flow};
use crate::helpers::Browser;

/// Next to oidcc-max-age-1: OpenID Connect Core §3.1.2.1 (errata set 2) says "max_age=0 is
/// equivalent to prompt=login": the user must log in again however recent the session, even
/// within the second of the last login.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_max_age_0_is_prompt_login() {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    let first = complete_flow(&app, &browser, &client, "openid", &[]).await;
    let step = browser
        .authorize(&auth_params(&client, "openid", &[("max_age", "0")]))
        .await;
    let location = step.location.clone().unwrap();
    assert!(
        location.starts_with("/login"),
        "max_age=0 must re-authenticate, got {location}"
    );
    app.clock.advance(1);
    let flow = drive(&browser, step, &client.redirect_uri).await;
    let second = finish_flow(&app, &client, flow, None, Nonce::Is(NONCE)).await;
    assert!(second.id["auth_time"].as_i64() > first.id["auth_time"].as_i64());
}
