//! The small parsers tests read answers with, and the PKCE pair they send.

use std::collections::{BTreeSet, HashMap};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

/// A PKCE verifier and its S256 challenge.
pub fn pkce_pair() -> (String, String) {
    use sha2::Digest;
    let verifier = latchkey::crypto::random_token(48);
    let challenge = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// The authorization request parameters that send `challenge` as an S256 PKCE challenge.
pub fn pkce_params(challenge: &str) -> [(&'static str, &str); 2] {
    [
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ]
}

/// The value of a hidden input in a rendered form.
pub fn hidden_field(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')?;
    Some(
        html[start..start + end]
            .replace("&#x2b;", "+")
            .replace("&#43;", "+"),
    )
}

/// Query parameters of a URL as a map.
pub fn query_of(url: &str) -> HashMap<String, String> {
    let parsed = url::Url::parse(url).unwrap();
    parsed.query_pairs().into_owned().collect()
}

/// The decoded header (`0`) or claims (`1`) of a JWT, unverified.
pub fn jwt_part(token: &str, index: usize) -> Value {
    let part = token.split('.').nth(index).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// A string field of a JSON answer (a token response, say); panics when it is missing.
pub fn field(body: &Value, name: &str) -> String {
    body[name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} in {body}"))
        .to_owned()
}

/// A space-separated scope as a set, so that order does not matter.
pub fn scope_set(scope: &Value) -> BTreeSet<String> {
    scope
        .as_str()
        .unwrap()
        .split(' ')
        .map(str::to_owned)
        .collect()
}

/// Sends `request` and parses its answer as JSON; panics when there is no answer or it is not
/// JSON.
pub async fn fetch_json(request: reqwest::RequestBuilder) -> Value {
    request.send().await.unwrap().json().await.unwrap()
}
