//! A relying-party library nobody here wrote (the `openidconnect` crate) runs the code + PKCE
//! flow against Latchkey, configured only with the issuer URL, and validates the ID token
//! (signature from JWKS, issuer, audience, expiry, nonce, at_hash) by its own rules.

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};

use crate::both_backends;
use crate::helpers::{Backend, Browser, PASSWORD, query_of, spawn_app};

both_backends!(openidconnect_crate_completes_the_code_flow);

async fn openidconnect_crate_completes_the_code_flow(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user("alice").await;
    let registration = app.create_web_client().await;
    let http = openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(app.base.clone()).unwrap(), &http)
            .await
            .expect("discovery and JWKS parse");
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(registration["client_id"].as_str().unwrap().to_owned()),
        Some(ClientSecret::new(
            registration["client_secret"].as_str().unwrap().to_owned(),
        )),
    )
    .set_redirect_uri(RedirectUrl::new("https://app.example.test/callback".to_owned()).unwrap());

    for round in 0..2 {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (auth_url, state, nonce) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("email".to_owned()))
            .add_scope(Scope::new("profile".to_owned()))
            .set_pkce_challenge(challenge)
            .url();

        let browser = Browser::new(&app);
        let mut step = browser.get(auth_url.as_str()).await;
        let mut location = step.location.clone().unwrap();
        if location.starts_with("/login") {
            step = browser.login(&location, "alice", PASSWORD).await;
            location = step.location.clone().unwrap();
        }
        if round == 0 {
            assert!(
                location.starts_with("/consent"),
                "first round asks for consent"
            );
            location = browser
                .consent(&location, "allow")
                .await
                .1
                .location
                .unwrap();
        } else {
            assert!(!location.starts_with("/consent"), "consent is remembered");
        }
        let q = query_of(&location);
        assert_eq!(&q["state"], state.secret());
        assert_eq!(q["iss"], app.base);

        let tokens = client
            .exchange_code(AuthorizationCode::new(q["code"].clone()))
            .unwrap()
            .set_pkce_verifier(verifier)
            .request_async(&http)
            .await
            .expect("token exchange");
        let id_token = tokens.id_token().expect("an ID token");
        let id_verifier = client.id_token_verifier();
        let claims = id_token
            .claims(&id_verifier, &nonce)
            .expect("ID token validates");
        let expected_hash = claims.access_token_hash().expect("at_hash present");
        let actual = AccessTokenHash::from_token(
            tokens.access_token(),
            id_token.signing_alg().unwrap(),
            id_token.signing_key(&id_verifier).unwrap(),
        )
        .unwrap();
        assert_eq!(&actual, expected_hash);

        let info: CoreUserInfoClaims = client
            .user_info(tokens.access_token().clone(), None)
            .unwrap()
            .request_async(&http)
            .await
            .expect("userinfo");
        assert_eq!(info.subject(), claims.subject());
        assert_eq!(info.email().map(|e| e.as_str()), Some("alice@example.test"));
    }
}
