//! Token revocation (RFC 7009): revoking a refresh token ends its family, revoking an access
//! token makes introspection and userinfo refuse it, the `token_type_hint` is honoured but not
//! trusted, and another client's token or an unknown token gets 200 with nothing changed.

use crate::both_backends;
use crate::helpers::{
    Backend, TestClient, assert_error, field, is_active, post_as, refresh, resource_server, revoke,
    spawn_app_with_alice, user_tokens, userinfo_status,
};

both_backends!(
    revoking_a_refresh_token_ends_its_family,
    revoking_an_access_token_makes_introspection_and_userinfo_refuse_it,
    a_wrong_token_type_hint_does_not_stop_revocation,
    revoking_another_clients_token_answers_200_and_changes_nothing,
    revoking_an_unknown_token_answers_200,
    revocation_without_a_token_is_an_invalid_request,
);

async fn revoking_a_refresh_token_ends_its_family(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let rs = resource_server(&app).await;
    let first = user_tokens(&app, &client, "openid offline_access").await;
    let (status, second) = refresh(&app, &client, &field(&first, "refresh_token"), None).await;
    assert_eq!(status, 200, "{second}");
    let (a1, a2, rt2) = (
        field(&first, "access_token"),
        field(&second, "access_token"),
        field(&second, "refresh_token"),
    );
    assert!(is_active(&app, &rs, &a2).await);

    assert_eq!(
        revoke(&app, &client, &rt2, Some("refresh_token")).await,
        200
    );
    let (status, body) = refresh(&app, &client, &rt2, None).await;
    assert_error(status, &body, 400, "invalid_grant");
    for token in [&a1, &a2, &rt2] {
        assert!(
            !is_active(&app, &rs, token).await,
            "every token of the family is inactive"
        );
    }
    assert_eq!(userinfo_status(&app, &a2).await, 401);
}

async fn revoking_an_access_token_makes_introspection_and_userinfo_refuse_it(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let rs = resource_server(&app).await;
    let revoked = field(&user_tokens(&app, &client, "openid").await, "access_token");
    let kept = field(&user_tokens(&app, &client, "openid").await, "access_token");
    assert_eq!(userinfo_status(&app, &revoked).await, 200);

    assert_eq!(
        revoke(&app, &client, &revoked, Some("access_token")).await,
        200
    );
    assert!(!is_active(&app, &rs, &revoked).await);
    assert_eq!(userinfo_status(&app, &revoked).await, 401);
    // Only that token: another one of the same user and client is untouched.
    assert!(is_active(&app, &rs, &kept).await);
    assert_eq!(userinfo_status(&app, &kept).await, 200);
    // Revoking it again is fine.
    assert_eq!(revoke(&app, &client, &revoked, None).await, 200);
}

async fn a_wrong_token_type_hint_does_not_stop_revocation(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let rs = resource_server(&app).await;
    let access = field(&user_tokens(&app, &client, "openid").await, "access_token");
    assert_eq!(
        revoke(&app, &client, &access, Some("refresh_token")).await,
        200
    );
    assert!(!is_active(&app, &rs, &access).await);
    assert_eq!(userinfo_status(&app, &access).await, 401);

    for hint in ["access_token", "something_else"] {
        let tokens = user_tokens(&app, &client, "openid offline_access").await;
        let refresh_token = field(&tokens, "refresh_token");
        assert_eq!(revoke(&app, &client, &refresh_token, Some(hint)).await, 200);
        let (status, body) = refresh(&app, &client, &refresh_token, None).await;
        assert_error(status, &body, 400, "invalid_grant");
        assert!(
            !is_active(&app, &rs, &field(&tokens, "access_token")).await,
            "hint {hint}"
        );
    }
}

async fn revoking_another_clients_token_answers_200_and_changes_nothing(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let rs = resource_server(&app).await;
    let other = TestClient::from_registration(&app.create_web_client().await);
    let tokens = user_tokens(&app, &client, "openid offline_access").await;
    let (access, refresh_token) = (
        field(&tokens, "access_token"),
        field(&tokens, "refresh_token"),
    );

    for hint in [None, Some("access_token"), Some("refresh_token")] {
        assert_eq!(revoke(&app, &other, &access, hint).await, 200);
        assert_eq!(revoke(&app, &other, &refresh_token, hint).await, 200);
        assert_eq!(revoke(&app, &rs, &access, hint).await, 200);
    }
    assert!(is_active(&app, &rs, &access).await);
    assert_eq!(userinfo_status(&app, &access).await, 200);
    assert!(is_active(&app, &rs, &refresh_token).await);
    let (status, body) = refresh(&app, &client, &refresh_token, None).await;
    assert_eq!(status, 200, "the owner's refresh token still works: {body}");
}

async fn revoking_an_unknown_token_answers_200(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let url = app.endpoint("revocation_endpoint").await;
    let header_segment = "eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCJ9";
    let fake_jwt = format!("{header_segment}.e30.c2lnbmF0dXJl");
    for token in ["not-a-token", "a.b.c", fake_jwt.as_str(), &"x".repeat(5000)] {
        for hint in [None, Some("access_token"), Some("refresh_token")] {
            let mut form = vec![("token", token)];
            if let Some(h) = hint {
                form.push(("token_type_hint", h));
            }
            let (status, _, headers) = post_as(&app, &url, &client, &form).await;
            assert_eq!(status, 200, "{token:.20} {hint:?}");
            assert_eq!(headers["cache-control"], "no-store");
        }
    }
}

async fn revocation_without_a_token_is_an_invalid_request(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let url = app.endpoint("revocation_endpoint").await;
    for form in [
        vec![],
        vec![("token", "")],
        vec![("token_type_hint", "access_token")],
    ] {
        let (status, body, headers) = post_as(&app, &url, &client, &form).await;
        assert_error(status, &body, 400, "invalid_request");
        assert_eq!(headers["cache-control"], "no-store");
    }
    let duplicated = [("token", "a"), ("token", "b")];
    let (status, body, _) = post_as(&app, &url, &client, &duplicated).await;
    assert_error(status, &body, 400, "invalid_request");
}
