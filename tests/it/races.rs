//! Races are tests: every check-then-act on security state is fired by `RACERS` concurrent
//! requests, on one node and spread over two nodes sharing one database, and the limit must
//! hold exactly. Throttles count every attempt before the work it guards, so a burst gets
//! exactly the attempts the rule allows; single-use things (codes, refresh tokens, finished
//! interactions, forced-password-change tickets) are taken by exactly one request.

use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{
    Backend, Browser, PASSWORD, RACERS, TestApp, TestClient, code_form, fire, hidden_field,
    pkce_pair, query_of, spawn_app_with, spawn_node_with,
};

both_backends!(
    racing_wrong_passwords_get_exactly_the_free_attempts,
    racing_password_grant_guesses_get_exactly_the_free_attempts,
    racing_wrong_client_secrets_get_exactly_the_free_attempts,
    racing_wrong_admin_tokens_get_exactly_the_free_attempts,
    racing_consent_answers_issue_exactly_one_code,
    racing_code_redemptions_issue_exactly_one_token,
    racing_refresh_rotations_rotate_exactly_once,
    racing_refresh_reuse_and_user_deletion_never_deadlock,
    racing_removals_of_the_last_two_second_factors_keep_one,
    racing_forced_password_changes_take_the_ticket_once,
);

/// How many times to run each race: on one node, then spread over two.
const LAYOUTS: [Layout; 2] = [Layout::OneNode, Layout::TwoNodes];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    OneNode,
    TwoNodes,
}

/// A fresh deployment for one layout: the first node, and (for `TwoNodes`) a second one
/// over the same database. `base(i)` is the node racer `i` talks to.
struct Deployment {
    first: TestApp,
    second: Option<TestApp>,
}

impl Deployment {
    async fn start(backend: Backend, layout: Layout, password_grant: bool) -> Deployment {
        let extra: &[(&str, &str)] = if password_grant {
            &[("LATCHKEY_ENABLE_PASSWORD_GRANT", "true")]
        } else {
            &[]
        };
        Self::start_with(backend, layout, extra).await
    }

    /// `start` with extra settings on every node.
    async fn start_with(backend: Backend, layout: Layout, extra: &[(&str, &str)]) -> Deployment {
        let settings = |env: &mut Vec<(String, String)>| {
            for (key, value) in extra {
                env.push(((*key).into(), (*value).into()));
            }
        };
        let first = spawn_app_with(backend, settings).await;
        let second = match layout {
            Layout::OneNode => None,
            Layout::TwoNodes => Some(spawn_node_with(&first, settings).await),
        };
        Deployment { first, second }
    }

    /// Stops every node's clock at the same second: the burst then happens within one
    /// second whatever the machine's speed, so a one-second back-off cannot run out in the
    /// middle of it and let a counted attempt more through than the rule says.
    fn freeze_time(&self) {
        let now = latchkey::clock::Clock::now(&latchkey::clock::SystemClock);
        self.first.clock.freeze_at(now);
        if let Some(second) = &self.second {
            second.clock.freeze_at(now);
        }
    }

    fn base(&self, i: usize) -> String {
        match (&self.second, i % 2) {
            (Some(second), 1) => second.base.clone(),
            _ => self.first.base.clone(),
        }
    }
}

fn tally(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

/// A login form loaded in its own browser: what a racer posts.
struct LoginForm {
    http: reqwest::Client,
    interaction: String,
    csrf: String,
}

async fn login_form(app: &TestApp, client: &TestClient) -> LoginForm {
    let browser = Browser::new(app);
    let step = browser.authorize_for(client, "openid").await;
    let page = browser.get(&step.location.unwrap()).await;
    LoginForm {
        http: browser.http,
        interaction: hidden_field(&page.body, "interaction").unwrap(),
        csrf: hidden_field(&page.body, "csrf_token").unwrap(),
    }
}

/// Fifty wrong passwords for one account at once: the five free ones and the sixth (which
/// locks the account for a second) are checked; every other one is refused before any hash.
/// The right password right after the burst is refused too: the burst cannot buy a guess.
async fn racing_wrong_passwords_get_exactly_the_free_attempts(backend: Backend) {
    for layout in LAYOUTS {
        let d = Deployment::start(backend, layout, false).await;
        d.first.create_user("alice").await;
        let client = TestClient::from_registration(&d.first.create_web_client().await);
        let mut racers = Vec::new();
        for i in 0..RACERS {
            let form = login_form(&d.first, &client).await;
            let url = format!("{}/login", d.base(i));
            racers.push(async move {
                form.http
                    .post(url)
                    .form(&[
                        ("interaction", form.interaction.as_str()),
                        ("csrf_token", form.csrf.as_str()),
                        ("username", "alice"),
                        ("password", "a wrong guess"),
                    ])
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            });
        }
        d.freeze_time();
        let statuses = fire(racers).await;
        assert_eq!(
            tally(&statuses, 401),
            6,
            "{layout:?}: checked: {statuses:?}"
        );
        assert_eq!(tally(&statuses, 429), RACERS - 6, "{layout:?}: refused");
        let form = login_form(&d.first, &client).await;
        let right = form
            .http
            .post(d.first.url("/login"))
            .form(&[
                ("interaction", form.interaction.as_str()),
                ("csrf_token", form.csrf.as_str()),
                ("username", "alice"),
                ("password", PASSWORD),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(right.status(), 429, "{layout:?}: the lock holds");
        let failed = events(&d.first, "login_failed").await;
        assert_eq!(failed.len(), 6, "{layout:?}: one event per checked guess");
    }
}

/// The password grant shares the login's counting.
async fn racing_password_grant_guesses_get_exactly_the_free_attempts(backend: Backend) {
    for layout in LAYOUTS {
        let d = Deployment::start(backend, layout, true).await;
        d.first.create_user("alice").await;
        let reg = d
            .first
            .create_client(json!({"grant_types": ["password"], "scope": "openid"}))
            .await;
        let client_id = reg["client_id"].as_str().unwrap().to_owned();
        let secret = reg["client_secret"].as_str().unwrap().to_owned();
        let racers = (0..RACERS)
            .map(|i| {
                let http = d.first.http.clone();
                let url = format!("{}/token", d.base(i));
                let (client_id, secret) = (client_id.clone(), secret.clone());
                async move {
                    http.post(url)
                        .basic_auth(client_id, Some(secret))
                        .form(&[
                            ("grant_type", "password"),
                            ("username", "alice"),
                            ("password", "a wrong guess"),
                        ])
                        .send()
                        .await
                        .unwrap()
                        .status()
                        .as_u16()
                }
            })
            .collect();
        d.freeze_time();
        let statuses = fire(racers).await;
        assert_eq!(
            tally(&statuses, 400),
            6,
            "{layout:?}: checked: {statuses:?}"
        );
        assert_eq!(tally(&statuses, 429), RACERS - 6, "{layout:?}: refused");
    }
}

/// Fifty wrong secrets for one client at once: the ten free failures and the eleventh (which
/// locks the client id for a second) are answered `invalid_client`, the rest 429.
async fn racing_wrong_client_secrets_get_exactly_the_free_attempts(backend: Backend) {
    for layout in LAYOUTS {
        let d = Deployment::start(backend, layout, false).await;
        let client = TestClient::from_registration(&d.first.create_web_client().await);
        let racers = (0..RACERS)
            .map(|i| {
                let http = d.first.http.clone();
                let url = format!("{}/token", d.base(i));
                let client_id = client.client_id.clone();
                async move {
                    http.post(url)
                        .basic_auth(client_id, Some("not-the-secret"))
                        .form(&[("grant_type", "client_credentials")])
                        .send()
                        .await
                        .unwrap()
                        .status()
                        .as_u16()
                }
            })
            .collect();
        d.freeze_time();
        let statuses = fire(racers).await;
        assert_eq!(
            tally(&statuses, 401),
            11,
            "{layout:?}: counted: {statuses:?}"
        );
        assert_eq!(tally(&statuses, 429), RACERS - 11, "{layout:?}: refused");
        // One event for the first failure and one for the tenth, each with its count.
        let failed = events(&d.first, "client_auth_failed").await;
        assert_eq!(failed.len(), 2, "{layout:?}: {failed:?}");
    }
}

/// 150 wrong admin tokens at once from one address: the hundred free ones and the one that
/// locks the address are answered 401, the rest 429, and then the right token waits too.
async fn racing_wrong_admin_tokens_get_exactly_the_free_attempts(backend: Backend) {
    const ADMIN_RACERS: usize = 150;
    for layout in LAYOUTS {
        let d = Deployment::start(backend, layout, false).await;
        let racers = (0..ADMIN_RACERS)
            .map(|i| {
                let http = d.first.http.clone();
                let url = format!("{}/admin/clients", d.base(i));
                async move {
                    http.get(url)
                        .bearer_auth(format!("wrong-token-{i:04}-0123456789"))
                        .send()
                        .await
                        .unwrap()
                        .status()
                        .as_u16()
                }
            })
            .collect();
        d.freeze_time();
        let statuses = fire(racers).await;
        assert_eq!(tally(&statuses, 401), 101, "{layout:?}: counted");
        assert_eq!(tally(&statuses, 429), ADMIN_RACERS - 101, "{layout:?}");
        let (right, _) = d.first.admin(Method::GET, "/admin/clients", None).await;
        assert_eq!(right, 429, "{layout:?}: the right token waits too");
    }
}

/// Fifty answers of one consent form at once (one browser double-clicking, or replaying):
/// one code, every other answer refused, and one consent event.
async fn racing_consent_answers_issue_exactly_one_code(backend: Backend) {
    for layout in LAYOUTS {
        let d = Deployment::start(backend, layout, false).await;
        d.first.create_user("alice").await;
        let client = TestClient::from_registration(&d.first.create_web_client().await);
        let browser = Browser::new(&d.first);
        let step = browser.authorize_for(&client, "openid email").await;
        let step = browser
            .login(&step.location.unwrap(), "alice", PASSWORD)
            .await;
        let page = browser.get(&step.location.unwrap()).await;
        let interaction = hidden_field(&page.body, "interaction").unwrap();
        let csrf = hidden_field(&page.body, "csrf_token").unwrap();
        let racers = (0..RACERS)
            .map(|i| {
                let http = browser.http.clone();
                let url = format!("{}/consent", d.base(i));
                let (interaction, csrf) = (interaction.clone(), csrf.clone());
                async move {
                    let r = http
                        .post(url)
                        .form(&[
                            ("interaction", interaction.as_str()),
                            ("csrf_token", csrf.as_str()),
                            ("decision", "allow"),
                        ])
                        .send()
                        .await
                        .unwrap();
                    let location = r
                        .headers()
                        .get("location")
                        .map(|l| l.to_str().unwrap().to_owned());
                    (r.status().as_u16(), location)
                }
            })
            .collect();
        let answers = fire(racers).await;
        let codes: Vec<_> = answers
            .iter()
            .filter_map(|(_, l)| l.as_deref())
            .filter(|l| l.starts_with(&client.redirect_uri) && query_of(l).contains_key("code"))
            .collect();
        assert_eq!(codes.len(), 1, "{layout:?}: {answers:?}");
        let refused = answers.iter().filter(|(s, _)| *s == 400).count();
        assert_eq!(refused, RACERS - 1, "{layout:?}: {answers:?}");
        assert_eq!(events(&d.first, "consent_granted").await.len(), 1);
    }
}

/// A finished code flow: the client and the code to redeem.
async fn code_for(d: &Deployment, scope: &str) -> (TestClient, String, String) {
    d.first.create_user("alice").await;
    let client = TestClient::from_registration(
        &d.first
            .create_client(json!({
                "client_name": "Race",
                "redirect_uris": ["https://app.example.test/callback"],
                "grant_types": ["authorization_code", "refresh_token"],
                "scope": "openid offline_access",
                "first_party": true,
            }))
            .await,
    );
    let browser = Browser::new(&d.first);
    let (verifier, challenge) = pkce_pair();
    let query = browser
        .code_flow(&client, scope, Some(&challenge), &[])
        .await;
    (client, query["code"].clone(), verifier)
}

async fn token_requests(
    d: &Deployment,
    client: &TestClient,
    form: Vec<(&'static str, String)>,
) -> Vec<(u16, Value)> {
    let racers = (0..RACERS)
        .map(|i| {
            let http = d.first.http.clone();
            let url = format!("{}/token", d.base(i));
            let (id, secret) = (client.client_id.clone(), client.secret.clone());
            let form = form.clone();
            async move {
                let r = http
                    .post(url)
                    .basic_auth(id, secret)
                    .form(&form)
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                (status, r.json::<Value>().await.unwrap_or(Value::Null))
            }
        })
        .collect();
    fire(racers).await
}

/// Fifty redemptions of one code at once: one token response; the reuse then revokes it.
async fn racing_code_redemptions_issue_exactly_one_token(backend: Backend) {
    for layout in LAYOUTS {
        let d = Deployment::start(backend, layout, false).await;
        let (client, code, verifier) = code_for(&d, "openid").await;
        let answers = token_requests(
            &d,
            &client,
            vec![
                ("grant_type", "authorization_code".to_owned()),
                ("code", code),
                ("redirect_uri", client.redirect_uri.clone()),
                ("code_verifier", verifier),
            ],
        )
        .await;
        let issued = answers.iter().filter(|(s, _)| *s == 200).count();
        assert_eq!(issued, 1, "{layout:?}: {answers:?}");
        assert!(
            answers
                .iter()
                .all(|(s, b)| *s == 200 || b["error"] == "invalid_grant"),
            "{layout:?}: {answers:?}"
        );
    }
}

/// Fifty rotations of one refresh token at once: exactly one new token; the others are reuse,
/// which revokes the family, so the one new token is dead too.
async fn racing_refresh_rotations_rotate_exactly_once(backend: Backend) {
    for (layout, grace) in LAYOUTS.into_iter().flat_map(|l| [(l, "0"), (l, "10")]) {
        let settings = [("LATCHKEY_REFRESH_TOKEN_REUSE_GRACE", grace)];
        let d = Deployment::start_with(backend, layout, &settings).await;
        let (client, code, verifier) = code_for(&d, "openid offline_access").await;
        let (status, body, _) = d
            .first
            .token(&client, &code_form(&client, &code, Some(&verifier)))
            .await;
        assert_eq!(status, 200, "{body}");
        let refresh = body["refresh_token"].as_str().unwrap().to_owned();
        let answers = token_requests(
            &d,
            &client,
            vec![
                ("grant_type", "refresh_token".to_owned()),
                ("refresh_token", refresh),
            ],
        )
        .await;
        let rotated: Vec<&Value> = answers
            .iter()
            .filter(|(s, _)| *s == 200)
            .map(|(_, b)| b)
            .collect();
        let newest = rotated[0]["refresh_token"].as_str().unwrap();
        let (status, _, _) = d
            .first
            .token(
                &client,
                &[("grant_type", "refresh_token"), ("refresh_token", newest)],
            )
            .await;
        if grace == "0" {
            assert_eq!(rotated.len(), 1, "{layout:?}: {answers:?}");
            // Every loser is refused as reuse: never a 5xx (a Postgres deadlock between a
            // racer revoking the family and one that waited for the winner's rotation was
            // answered 503), never load shedding (a refusal mints nothing).
            let refused = answers
                .iter()
                .filter(|(s, b)| *s == 400 && b["error"] == "invalid_grant")
                .count();
            assert_eq!(refused, RACERS - 1, "{layout:?}: {answers:?}");
            assert_eq!(
                status, 400,
                "{layout:?}: the family was revoked by the reuse"
            );
        } else {
            // Within the reuse grace the racers are retries: the family rotated once, and
            // every one of them got its successor. Each of them also gets tokens minted,
            // fifty at once, and on a loaded test machine some of those can wait for a
            // database connection longer than the pool's timeout: such a racer is answered
            // 503 temporarily_unavailable (load shed, to be retried), never refused nor
            // given another successor.
            let shed = answers
                .iter()
                .filter(|(s, b)| *s == 503 && b["error"] == "temporarily_unavailable")
                .count();
            assert_eq!(
                rotated.len() + shed,
                RACERS,
                "{layout:?} grace: only successes and load shedding: {answers:?}"
            );
            assert!(
                rotated.len() > RACERS / 2,
                "{layout:?} grace: most racers are served: {answers:?}"
            );
            assert!(
                rotated.iter().all(|b| b["refresh_token"] == newest),
                "{layout:?} grace: one successor"
            );
            assert_eq!(status, 200, "{layout:?} grace: the family lives on");
        }
    }
}

/// One request of a race that mixes kinds of request: its status and JSON answer.
type Racer = std::pin::Pin<Box<dyn Future<Output = (u16, Value)> + Send>>;

/// A user deleted while fifty racers present one refresh token of theirs: the deletion and
/// the family's revocation lock the same rows (grant, refresh-token row) and must take them
/// in one order, or Postgres finds a deadlock and a side is answered 503. Every answer is a
/// rotation, a refusal or the deletion; afterwards the family is dead.
async fn racing_refresh_reuse_and_user_deletion_never_deadlock(backend: Backend) {
    for layout in LAYOUTS {
        // Without a reuse grace: every racer but one is reuse, and revokes the family.
        let settings = [("LATCHKEY_REFRESH_TOKEN_REUSE_GRACE", "0")];
        let d = Deployment::start_with(backend, layout, &settings).await;
        let (client, code, verifier) = code_for(&d, "openid offline_access").await;
        let (status, body, _) = d
            .first
            .token(&client, &code_form(&client, &code, Some(&verifier)))
            .await;
        assert_eq!(status, 200, "{body}");
        let refresh = body["refresh_token"].as_str().unwrap().to_owned();
        let alice = d.first.app.store.get_user_by_username("alice").await;
        let sub = alice.unwrap().unwrap().sub;
        let mut racers: Vec<Racer> = Vec::new();
        for i in 0..RACERS {
            let http = d.first.http.clone();
            let base = d.base(i);
            if i == RACERS / 2 {
                let url = format!("{base}/admin/users/{sub}");
                racers.push(Box::pin(async move {
                    let r = http
                        .delete(url)
                        .bearer_auth(crate::helpers::ADMIN_TOKEN)
                        .send()
                        .await
                        .unwrap();
                    (r.status().as_u16(), json!("deletion"))
                }));
                continue;
            }
            let (id, secret) = (client.client_id.clone(), client.secret.clone());
            let refresh = refresh.clone();
            racers.push(Box::pin(async move {
                let r = http
                    .post(format!("{base}/token"))
                    .basic_auth(id, secret)
                    .form(&[
                        ("grant_type", "refresh_token"),
                        ("refresh_token", refresh.as_str()),
                    ])
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                (status, r.json::<Value>().await.unwrap_or(Value::Null))
            }));
        }
        let answers = fire(racers).await;
        assert!(
            answers.iter().all(|(s, b)| *s == 204 && b == "deletion"
                || *s == 200
                || *s == 400 && b["error"] == "invalid_grant"),
            "{layout:?}: {answers:?}"
        );
        assert!(
            answers.iter().filter(|(s, _)| *s == 200).count() <= 1,
            "{layout:?}: {answers:?}"
        );
        for (status, body) in answers.iter().filter(|(s, _)| *s == 200) {
            let newest = body["refresh_token"].as_str().unwrap();
            let (status_after, _, _) = d
                .first
                .token(
                    &client,
                    &[("grant_type", "refresh_token"), ("refresh_token", newest)],
                )
                .await;
            assert_eq!(status_after, 400, "{layout:?}: {status} then a live family");
        }
    }
}

/// A user who must use a second factor has two (a TOTP and a passkey); fifty of the user's
/// own removals of them at once (the account page's store call, which keeps the last one),
/// half of each, on one node's store or two: one succeeds, and the other factor stays,
/// however the removals interleave.
async fn racing_removals_of_the_last_two_second_factors_keep_one(backend: Backend) {
    use latchkey::store::{FactorRemoval, PasskeyRecord, Store};
    for layout in LAYOUTS {
        let d = Deployment::start(backend, layout, false).await;
        let alice = d.first.create_user("alice").await;
        let sub = alice["sub"].as_str().unwrap().to_owned();
        let (status, body) = d
            .first
            .admin(
                Method::PATCH,
                &format!("/admin/users/{sub}"),
                Some(&json!({"mfa_required": true})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let (status, totp) = d
            .first
            .admin(Method::POST, &format!("/admin/users/{sub}/totp"), None)
            .await;
        assert_eq!(status, 201, "{totp}");
        let totp_id = totp["id"].as_str().unwrap().to_owned();
        // The store does not read the credential; the ceremony is tested in passkeys.rs.
        let store: &dyn Store = d.first.app.store.as_ref();
        let registered = store
            .insert_passkey(&PasskeyRecord {
                passkey_id: "passkey-1".into(),
                credential_id: vec![1, 2, 3],
                user_sub: sub.clone(),
                name: "Laptop".into(),
                credential: "{}".into(),
                sign_count: 0,
                created_at: d.first.app.now(),
                last_used_at: None,
            })
            .await
            .unwrap();
        assert!(registered);
        let racers = (0..RACERS)
            .map(|i| {
                let node = match (&d.second, i % 2) {
                    (Some(second), 1) => second,
                    _ => &d.first,
                };
                let store = node.app.store.clone();
                let sub = sub.clone();
                let id = if i % 4 < 2 {
                    totp_id.clone()
                } else {
                    "passkey-1".to_owned()
                };
                async move { store.delete_factor(&sub, &id, true).await.unwrap() }
            })
            .collect();
        let outcomes = fire(racers).await;
        let count = |o: FactorRemoval| outcomes.iter().filter(|x| **x == o).count();
        assert_eq!(count(FactorRemoval::Removed), 1, "{layout:?}: {outcomes:?}");
        assert!(
            count(FactorRemoval::LastSecondFactor) > 0,
            "{layout:?}: {outcomes:?}"
        );
        assert_eq!(
            count(FactorRemoval::NotFound) + count(FactorRemoval::LastSecondFactor),
            RACERS - 1,
            "{layout:?}: {outcomes:?}"
        );
        let (_, user) = d
            .first
            .admin(Method::GET, &format!("/admin/users/{sub}"), None)
            .await;
        assert_eq!(
            user["factors"].as_array().unwrap().len(),
            1,
            "{layout:?}: one second factor stays: {user}"
        );
    }
}

/// Fifty submissions of one forced-password-change form at once: the ticket is taken once;
/// the password is the winner's, and the form cannot be replayed afterwards.
async fn racing_forced_password_changes_take_the_ticket_once(backend: Backend) {
    for layout in LAYOUTS {
        let d = Deployment::start(backend, layout, false).await;
        let alice = d.first.create_user("alice").await;
        let sub = alice["sub"].as_str().unwrap().to_owned();
        let (status, _) = d
            .first
            .admin(
                reqwest::Method::PATCH,
                &format!("/admin/users/{sub}"),
                Some(&json!({"password_reset_required": true})),
            )
            .await;
        assert_eq!(status, 200);
        let client = TestClient::from_registration(&d.first.create_web_client().await);
        let browser = Browser::new(&d.first);
        let step = browser.authorize_for(&client, "openid").await;
        let form = browser
            .login(&step.location.unwrap(), "alice", PASSWORD)
            .await;
        assert_eq!(form.status, 200, "the password form");
        let interaction = hidden_field(&form.body, "interaction").unwrap();
        let ticket = hidden_field(&form.body, "csrf_token").unwrap();
        let racers = (0..RACERS)
            .map(|i| {
                let http = browser.http.clone();
                let url = format!("{}/password", d.base(i));
                let (interaction, ticket, sub) = (interaction.clone(), ticket.clone(), sub.clone());
                async move {
                    let password = format!("a new password number {i:02}");
                    let status = http
                        .post(url)
                        .form(&[
                            ("interaction", interaction.as_str()),
                            ("sub", sub.as_str()),
                            ("csrf_token", ticket.as_str()),
                            ("new_password", password.as_str()),
                            ("confirm_password", password.as_str()),
                        ])
                        .send()
                        .await
                        .unwrap()
                        .status()
                        .as_u16();
                    (status, password)
                }
            })
            .collect();
        let answers = fire(racers).await;
        let winners: Vec<_> = answers.iter().filter(|(s, _)| *s == 303).collect();
        assert_eq!(winners.len(), 1, "{layout:?}: {answers:?}");
        assert_eq!(
            answers.iter().filter(|(s, _)| *s == 400).count(),
            RACERS - 1,
            "{layout:?}"
        );
        let user = d.first.app.store.get_user(&sub).await.unwrap().unwrap();
        assert!(!user.password_reset_required);
        assert!(
            d.first
                .app
                .passwords
                .verify(&winners[0].1, Some(&user.password_hash))
                .await
                .unwrap(),
            "{layout:?}: the stored password is the winner's"
        );
    }
}

/// The audit events of one kind, newest first.
async fn events(app: &TestApp, kind: &str) -> Vec<Value> {
    app.events(&format!("kind={kind}&limit=100")).await
}
