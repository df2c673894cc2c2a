//! Back-channel logout (OpenID Connect Back-Channel Logout 1.0): when a browser session ends,
//! every client that got tokens in it and registered a `backchannel_logout_uri` is sent a
//! logout token.
//!
//! Durability comes from the store: a token issuance in a session records the client beside
//! it (`joined`), and ending a session queues one outbox item per recorded client in the same
//! transaction that deletes the session (`SessionStore::delete_session`). Any node delivers
//! (`run`): it claims a due item with a lease (`LEASE`), mints the logout token at that moment
//! (`iat` now, `exp` two minutes on; the `jti` stays the same across attempts, so a client can
//! recognise a repeat), and POSTs it under the outbound rules (5 s, no redirects, 256 KiB).
//! A failure is retried with exponential back-off (`retry_delay`) for 24 hours; a node that
//! dies mid-delivery leaves the item to another once the lease runs out. Each delivery and
//! each final failure is an audit event; `deliveries` lists the status per client.

use std::time::Duration;

use serde::Deserialize;

use crate::app::App;
use crate::audit::{self, Event, Kind};
use crate::mint::{self, LOGOUT_EVENT, LogoutTokenClaims};
use crate::store::{AttemptResult, ClientRecord, LOGOUT_KIND, OutboxItem, StoreResult};

/// How long a claimed notification is left to its node before any node may claim it again:
/// far longer than one attempt can take (`outbound::TIMEOUT`).
pub const LEASE: i64 = 30;
/// How often a node looks for due notifications.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Deliveries one node runs at once.
const IN_FLIGHT: usize = 8;
/// A logout token is valid this long (the spec recommends at most two minutes).
pub const TOKEN_LIFETIME: i64 = 120;
/// The first retry waits this long; each further one twice as long, up to `MAX_RETRY_DELAY`.
const FIRST_RETRY_DELAY: i64 = 5;
const MAX_RETRY_DELAY: i64 = 3600;

/// Records that `client` got tokens in the session `sid` of `user_sub`, when it wants to hear
/// of the session's end. Kept as long as the session may live.
pub async fn joined(
    app: &App,
    client: &ClientRecord,
    user_sub: &str,
    sid: &str,
) -> StoreResult<()> {
    if client.metadata.backchannel_logout_uri.is_none() || sid.is_empty() {
        return Ok(());
    }
    let expires_at = app.now() + app.config.session_ttl;
    app.store
        .record_session_client(sid, &client.client_id, user_sub, expires_at)
        .await
}

/// The wait before the retry that follows attempt `attempts` (1-based): 5 s, 10 s, 20 s, …,
/// at most an hour.
pub fn retry_delay(attempts: i64) -> i64 {
    let doublings = attempts.clamp(1, 20) - 1;
    (FIRST_RETRY_DELAY << doublings).min(MAX_RETRY_DELAY)
}

/// The payload of a logout notification in the outbox.
#[derive(Deserialize)]
struct Notice {
    sid: String,
    sub: String,
}

/// A node's delivery loop: every `POLL_INTERVAL`, delivers what is due.
pub async fn run(app: App) {
    let mut interval = tokio::time::interval(POLL_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        deliver_due(&app).await;
    }
}

/// Claims and delivers due notifications, `IN_FLIGHT` at a time, until none is due; returns
/// how many attempts were made.
pub async fn deliver_due(app: &App) -> usize {
    let mut attempts = 0;
    loop {
        let mut batch = Vec::with_capacity(IN_FLIGHT);
        for _ in 0..IN_FLIGHT {
            match app.store.claim_due(LOGOUT_KIND, app.now(), LEASE).await {
                Ok(Some(item)) => batch.push(item),
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "could not claim logout notifications");
                    break;
                }
            }
        }
        if batch.is_empty() {
            return attempts;
        }
        attempts += batch.len();
        futures_util::future::join_all(batch.into_iter().map(|item| deliver(app, item))).await;
    }
}

/// One attempt at one notification, and its result recorded.
async fn deliver(app: &App, item: OutboxItem) {
    let outcome = attempt(app, &item).await;
    let now = app.now();
    let result = match &outcome {
        Ok(()) => AttemptResult::Delivered,
        Err(error) => {
            let retry_at = now + retry_delay(item.attempts);
            AttemptResult::Failed {
                error: error.clone(),
                retry_at: (retry_at < item.give_up_at).then_some(retry_at),
            }
        }
    };
    let recorded = match app
        .store
        .finish_attempt(item.outbox_id, item.attempts, &result, now)
        .await
    {
        Ok(recorded) => recorded,
        Err(e) => {
            // The lease runs out and another attempt follows.
            tracing::warn!(error = %e, "could not record a logout delivery");
            return;
        }
    };
    let sub = serde_json::from_str::<Notice>(&item.payload)
        .map(|n| n.sub)
        .unwrap_or_default();
    let event = match &result {
        AttemptResult::Delivered if recorded => Event::new(Kind::LogoutDelivered),
        AttemptResult::Failed { retry_at: None, .. } if recorded => {
            Event::new(Kind::LogoutDeliveryFailed)
        }
        AttemptResult::Failed { error, .. } => {
            tracing::info!(client_id = %item.subject, attempt = item.attempts, error = %error,
                "back-channel logout delivery failed; it will be retried");
            return;
        }
        _ => return,
    };
    let event = event
        .client(&item.subject)
        .user(&sub)
        .detail("delivery", item.outbox_id)
        .detail("attempts", item.attempts);
    audit::record(app, event).await;
}

/// Mints the logout token and POSTs it; the error is what the status shows.
async fn attempt(app: &App, item: &OutboxItem) -> Result<(), String> {
    let notice: Notice = serde_json::from_str(&item.payload)
        .map_err(|_| "the notification is not readable".to_owned())?;
    let client = app
        .client(&item.subject)
        .await
        .map_err(|e| format!("the client could not be read: {e}"))?
        .ok_or_else(|| "the client no longer exists".to_owned())?;
    let uri = client
        .metadata
        .backchannel_logout_uri
        .as_deref()
        .ok_or_else(|| "the client no longer has a backchannel_logout_uri".to_owned())?;
    let now = app.now();
    let claims = LogoutTokenClaims {
        iss: app.config.issuer.clone(),
        aud: client.client_id.clone(),
        iat: now,
        exp: now + TOKEN_LIFETIME,
        jti: jti(item),
        events: serde_json::json!({ LOGOUT_EVENT: {} }),
        sid: notice.sid,
        sub: notice.sub,
    };
    let token = mint::logout_token(&app.keys.current(), client.metadata.id_token_alg(), &claims)
        .map_err(|e| format!("the logout token could not be signed: {e}"))?;
    app.outbound
        .post_form(uri, &[("logout_token", &token)])
        .await
        .map_err(|e| e.to_string())
}

/// The `jti` of a notification: the same for every attempt, unique per notification.
fn jti(item: &OutboxItem) -> String {
    crate::crypto::sha256_b64(
        format!("backchannel-logout|{}|{}", item.outbox_id, item.created_at).as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_up_to_an_hour() {
        let delays: Vec<i64> = (1..=12).map(retry_delay).collect();
        assert_eq!(&delays[..5], &[5, 10, 20, 40, 80]);
        assert!(delays.windows(2).all(|w| w[1] >= w[0]));
        assert_eq!(retry_delay(11), 3600);
        assert_eq!(retry_delay(1000), 3600);
        // Attempts over 24 hours: the retries do not give up early.
        let mut at = 0;
        let mut n = 0;
        while at < 24 * 3600 {
            n += 1;
            at += retry_delay(n);
        }
        assert!(n > 20, "{n} attempts in a day");
    }
}
