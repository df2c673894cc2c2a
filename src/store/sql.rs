//! The one SQL implementation of every store trait, shared by the Postgres and SQLite backends.
//!
//! `impl_sql_store!` instantiates it for a store type and its sqlx database. The SQL text is the
//! same for both dialects: runtime-checked `sqlx::query` with `$N` placeholders, which
//! sqlx-sqlite accepts too. The few real differences are macro arguments: the statement that
//! opens a write transaction, the row-locking suffix of the purge queries, and the embedded
//! migrations. This module owns the SQL and the atomicity of every operation; it must not
//! branch on the backend at run time, and it must not put bound values into error messages.
//!
//! Concurrency rules every method follows:
//! - A security decision (consume a code, rotate a refresh token, take an interaction) is made
//!   by one conditional `UPDATE`/`DELETE`, so the database, not the caller, picks the one
//!   winner among racing requests on any number of nodes.
//! - Write transactions open with `begin_write` (`BEGIN IMMEDIATE` on SQLite), so a SQLite
//!   transaction never has to upgrade a read lock to a write lock, which fails at once with
//!   `SQLITE_BUSY` instead of waiting for the busy timeout.
//! - Cache counters in `change_version` are bumped in the same transaction as the change.

use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::error::{DatabaseError, ErrorKind};

use super::{StoreError, StoreResult};

/// The unique constraints of the schema: Postgres constraint name, the first column SQLite
/// names in "UNIQUE constraint failed: table.column", and the field `Conflict` reports.
const UNIQUE_CONSTRAINTS: &[(&str, &str, &str)] = &[
    ("client_pkey", "client.client_id", "client_id"),
    ("app_user_pkey", "app_user.sub", "sub"),
    ("app_user_username_key", "app_user.username", "username"),
    ("session_pkey", "session.session_hash", "session_hash"),
    (
        "interaction_pkey",
        "interaction.interaction_id",
        "interaction_id",
    ),
    ("auth_grant_pkey", "auth_grant.grant_id", "grant_id"),
    ("auth_code_pkey", "auth_code.code_hash", "code_hash"),
    (
        "refresh_token_pkey",
        "refresh_token.token_hash",
        "token_hash",
    ),
    (
        "revoked_access_token_pkey",
        "revoked_access_token.jti",
        "jti",
    ),
    ("consent_pkey", "consent.user_sub", "consent"),
    ("signing_key_pkey", "signing_key.kid", "kid"),
    (
        "change_version_pkey",
        "change_version.name",
        "change_version",
    ),
];

/// The field named by a unique violation, found by constraint name (Postgres) or by the
/// column in the message (SQLite, whose errors carry no constraint name).
fn conflict_field(db: &dyn DatabaseError) -> &'static str {
    let sqlite_column = db
        .message()
        .strip_prefix("UNIQUE constraint failed: ")
        .and_then(|columns| columns.split(", ").next());
    UNIQUE_CONSTRAINTS
        .iter()
        .find(|(pg, lite, _)| db.constraint() == Some(*pg) || sqlite_column == Some(*lite))
        .map_or("unique", |(_, _, field)| *field)
}

/// True for errors that say "try again later" rather than "this request is wrong": the
/// connection broke, the server is shutting down or full, a lock could not be had in time.
fn is_transient(db: &dyn DatabaseError) -> bool {
    let Some(code) = db.code() else {
        return false;
    };
    if db
        .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
        .is_some()
    {
        // SQLSTATE class 08 is connection exceptions; 57P01-03 are shutdowns and start-ups;
        // 53300 is too many connections; 40001 and 40P01 are serialization failures and
        // deadlocks, which succeed when retried; 57014 is a statement cancelled by
        // statement_timeout and 55P03 a lock not available: the database is too busy now.
        code.starts_with("08")
            || matches!(
                &*code,
                "57P01" | "57P02" | "57P03" | "53300" | "40001" | "40P01" | "57014" | "55P03"
            )
    } else if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        // SQLite reports extended result codes; the low byte is the primary code. SQLITE_BUSY
        // (5) and SQLITE_LOCKED (6) arrive only after the busy timeout has run out.
        code.parse::<i32>()
            .is_ok_and(|extended| matches!(extended & 0xff, 5 | 6))
    } else {
        false
    }
}

/// True for errors caused by a value the database cannot hold at all, whatever the request
/// meant: Postgres refuses NUL characters in text (22021) and over-long index entries (54000).
/// They come from client input, so they are the client's error, not the server's.
fn is_unstorable_value(db: &dyn DatabaseError) -> bool {
    db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
        .is_some()
        && matches!(db.code().as_deref(), Some("22021" | "22P05" | "54000"))
}

/// A database error's message and code, without the detail that can quote row values.
fn describe(db: &dyn DatabaseError) -> String {
    match db.code() {
        Some(code) => format!("{} (code {code})", db.message()),
        None => db.message().to_owned(),
    }
}

/// Maps an sqlx error to the store's error. Messages never contain bound values: sqlx puts
/// none in its own messages, and `describe` leaves out Postgres' `DETAIL`, which can.
pub(super) fn db_err(error: sqlx::Error) -> StoreError {
    match error {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(error.to_string()),
        sqlx::Error::Database(db) if db.kind() == ErrorKind::UniqueViolation => {
            StoreError::Conflict(conflict_field(db.as_ref()))
        }
        sqlx::Error::Database(db) if is_transient(db.as_ref()) => {
            StoreError::Unavailable(describe(db.as_ref()))
        }
        sqlx::Error::Database(db) if is_unstorable_value(db.as_ref()) => {
            StoreError::InvalidInput(describe(db.as_ref()))
        }
        sqlx::Error::Database(db) => StoreError::Database(describe(db.as_ref())),
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
            StoreError::Corrupt(error.to_string())
        }
        // A configuration error can quote the connection URL, password included.
        sqlx::Error::Configuration(_) => {
            StoreError::Database("invalid database connection settings".to_owned())
        }
        other => StoreError::Database(other.to_string()),
    }
}

pub(super) fn migrate_err(error: sqlx::migrate::MigrateError) -> StoreError {
    match error {
        sqlx::migrate::MigrateError::Execute(e) => db_err(e),
        other => StoreError::Database(format!("migration failed: {other}")),
    }
}

pub(super) fn to_json<T: Serialize>(value: &T, what: &str) -> StoreResult<String> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::Database(format!("cannot serialize {what}: {:?}", e.classify())))
}

/// Parses a JSON column. The error names the position, not the content, because the content
/// can be personal data (user claims).
pub(super) fn from_json<T: DeserializeOwned>(text: &str, what: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|e| {
        StoreError::Corrupt(format!(
            "{what} is not valid: {:?} error at line {}, column {}",
            e.classify(),
            e.line(),
            e.column()
        ))
    })
}

/// What deleting a client or a user takes with it, in one transaction: the owner row, the
/// dependent rows (each a statement binding only the owner's id as `$1`), and its grants,
/// revoked rather than deleted so that their access tokens stay refused until they expire.
pub(super) struct OwnerDeletion {
    pub(super) delete_owner: &'static str,
    /// Binds the owner's id as `$1` and `now` as `$2`.
    pub(super) revoke_grants: &'static str,
    pub(super) dependents: &'static [&'static str],
    /// The `change_version` row to bump, when nodes cache this kind of owner.
    pub(super) version: Option<&'static str>,
}

pub(super) const CLIENT_DELETION: OwnerDeletion = OwnerDeletion {
    delete_owner: "DELETE FROM client WHERE client_id = $1",
    revoke_grants: "UPDATE auth_grant SET revoked_at = $2 WHERE client_id = $1 AND revoked_at IS NULL",
    dependents: &[
        "DELETE FROM auth_code WHERE client_id = $1",
        "DELETE FROM refresh_token WHERE client_id = $1",
        "DELETE FROM consent WHERE client_id = $1",
    ],
    version: Some(q::CLIENTS_VERSION),
};

pub(super) const USER_DELETION: OwnerDeletion = OwnerDeletion {
    delete_owner: "DELETE FROM app_user WHERE sub = $1",
    revoke_grants: "UPDATE auth_grant SET revoked_at = $2 WHERE user_sub = $1 AND revoked_at IS NULL",
    dependents: &[
        q::DELETE_SESSIONS_OF_USER,
        "DELETE FROM auth_code WHERE user_sub = $1",
        "DELETE FROM refresh_token WHERE user_sub = $1",
        "DELETE FROM consent WHERE user_sub = $1",
    ],
    version: None,
};

/// Column lists, as macros so that `concat!` can build whole statements at compile time.
macro_rules! client_columns {
    () => {
        "client_id, secret_hash, metadata, issued_at, updated_at"
    };
}
macro_rules! user_columns {
    () => {
        "sub, username, password_hash, claims, disabled, created_at, updated_at, \
         password_reset_required"
    };
}
macro_rules! session_columns {
    () => {
        "session_hash, sid, user_sub, auth_time, amr, created_at, expires_at"
    };
}
macro_rules! grant_columns {
    () => {
        "grant_id, client_id, user_sub, scope, created_at, expires_at, revoked_at"
    };
}
macro_rules! code_columns {
    () => {
        "code_hash, grant_id, client_id, user_sub, redirect_uri, scope, code_challenge, nonce, \
         sid, auth_time, amr, acr, resource, created_at, expires_at"
    };
}
macro_rules! refresh_columns {
    () => {
        "token_hash, grant_id, client_id, user_sub, scope, sid, auth_time, amr, resource, \
         created_at, idle_expires_at, expires_at"
    };
}
macro_rules! consent_columns {
    () => {
        "user_sub, client_id, scope, updated_at"
    };
}
macro_rules! key_columns {
    () => {
        "kid, alg, private_sealed, public_jwk, created_at, retired_at"
    };
}
/// The family of the row being examined (`$table.grant_id`) exists and is not revoked.
/// Postgres: a CTE named `relaxed` (one row) that turns `synchronous_commit` off for the
/// statement's own transaction; the statement selects from it, so it runs first. Used only
/// by the writes of a login flow whose loss in a Postgres crash costs the user no more than
/// repeating a step: a new session with its login event, a finished interaction with its
/// consent, code and event (the client's exchange of that code then fails and it starts
/// over). Their commit does not wait for its WAL to reach the disk; the WAL writer flushes
/// it within `wal_writer_delay` (200 ms by default), many commits to one flush. WAL order
/// keeps such rows ahead of any later synchronous commit, so a code can never be seen
/// redeemed (a synchronous commit) and then lost.
macro_rules! relaxed_commit {
    () => {
        "relaxed AS (SELECT set_config('synchronous_commit', 'off', true) AS setting)"
    };
}
/// `$table`'s user exists and is not disabled.
macro_rules! active_user {
    ($table:literal) => {
        concat!(
            "EXISTS (SELECT 1 FROM app_user u WHERE u.sub = ",
            $table,
            ".user_sub AND NOT u.disabled)"
        )
    };
}
macro_rules! live_grant {
    ($table:literal) => {
        concat!(
            "EXISTS (SELECT 1 FROM auth_grant g WHERE g.grant_id = ",
            $table,
            ".grant_id AND g.revoked_at IS NULL)"
        )
    };
}

/// The attempt count a `COUNT_ATTEMPT` update reaches: 1 in a new window (the last one,
/// `$3` seconds long, has passed at `$2`), else one more than before.
macro_rules! next_attempt {
    () => {
        "(CASE WHEN throttle.expires_at <= $2 THEN 1 ELSE throttle.failures + 1 END)"
    };
}
/// The lock a `COUNT_ATTEMPT` update sets for the count `next_attempt!` reaches (n): the
/// lockout at `$6` attempts, else past the `$4` free ones a back-off of 2^(n - free - 1)
/// seconds capped at `$5`, else none (0). Shifts stand in for powers, which SQLite lacks;
/// the exponent is bounded before shifting.
macro_rules! attempt_lock {
    () => {
        concat!(
            "CASE WHEN ",
            next_attempt!(),
            " >= $6 THEN $2 + $7 WHEN ",
            next_attempt!(),
            " > $4 THEN $2 + (CASE WHEN ",
            next_attempt!(),
            " - $4 > 20 THEN $5 WHEN (CAST(1 AS BIGINT) << CAST(",
            next_attempt!(),
            " - $4 - 1 AS INTEGER)) >= $5 THEN $5 ELSE (CAST(1 AS BIGINT) << CAST(",
            next_attempt!(),
            " - $4 - 1 AS INTEGER)) END) ELSE 0 END"
        )
    };
}

/// The statements that are the same in both dialects.
pub(super) mod q {
    pub(crate) const CLIENTS_VERSION: &str = "clients";
    pub(crate) const KEYS_VERSION: &str = "keys";
    pub(crate) const BUMP_VERSION: &str =
        "UPDATE change_version SET version = version + 1 WHERE name = $1";
    pub(crate) const CHANGE_VERSIONS: &str = "SELECT name, version FROM change_version";

    pub(crate) const INSERT_CLIENT: &str = concat!(
        "INSERT INTO client (",
        client_columns!(),
        ") VALUES ($1, $2, $3, $4, $5)"
    );
    pub(crate) const GET_CLIENT: &str = concat!(
        "SELECT ",
        client_columns!(),
        " FROM client WHERE client_id = $1"
    );
    // Keyset pagination; the first page starts after '' (the schema forbids empty ids).
    pub(crate) const LIST_CLIENTS: &str = concat!(
        "SELECT ",
        client_columns!(),
        " FROM client WHERE client_id > $1 ORDER BY client_id LIMIT $2"
    );
    pub(crate) const UPDATE_CLIENT_METADATA: &str =
        "UPDATE client SET metadata = $2, updated_at = $3 WHERE client_id = $1";
    pub(crate) const SET_CLIENT_SECRET: &str =
        "UPDATE client SET secret_hash = $2, updated_at = $3 WHERE client_id = $1";

    pub(crate) const INSERT_USER: &str = concat!(
        "INSERT INTO app_user (",
        user_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    );
    pub(crate) const GET_USER: &str =
        concat!("SELECT ", user_columns!(), " FROM app_user WHERE sub = $1");
    pub(crate) const GET_USER_BY_USERNAME: &str = concat!(
        "SELECT ",
        user_columns!(),
        " FROM app_user WHERE username = $1"
    );
    // What a login needs before counting its attempt, in one read: the latest lock in force
    // at $3 on the throttle keys ($1, $2) and the user named $4 (NULL columns when there is
    // none).
    pub(crate) const GET_USER_FOR_LOGIN: &str = "SELECT t.locked_until, \
         u.sub, u.username, u.password_hash, u.claims, u.disabled, u.created_at, u.updated_at, \
         u.password_reset_required \
         FROM (SELECT MAX(CASE WHEN locked_until > $3 THEN locked_until END) AS locked_until \
               FROM throttle WHERE throttle_key IN ($1, $2)) t \
         LEFT JOIN app_user u ON u.username = $4";
    pub(crate) const LIST_USERS: &str = concat!(
        "SELECT ",
        user_columns!(),
        " FROM app_user WHERE sub > $1 ORDER BY sub LIMIT $2"
    );
    pub(crate) const UPDATE_USER: &str = "UPDATE app_user \
         SET username = $2, claims = $3, disabled = $4, updated_at = $5, \
         password_reset_required = $6 WHERE sub = $1";
    // The forced password change: only while the password is still the one the user proved
    // ($2) and a new one is required, so of racing submissions one wins, and a ticket dies
    // once the password changed (by this form or by an operator).
    pub(crate) const REPLACE_REQUIRED_PASSWORD: &str = "UPDATE app_user \
         SET password_hash = $3, updated_at = $4, password_reset_required = FALSE \
         WHERE sub = $1 AND password_hash = $2 AND password_reset_required AND NOT disabled";
    pub(crate) const SET_PASSWORD: &str = "UPDATE app_user SET password_hash = $2, updated_at = $3, \
         password_reset_required = FALSE WHERE sub = $1";

    pub(crate) const INSERT_SESSION: &str = concat!(
        "INSERT INTO session (",
        session_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7)"
    );
    pub(crate) const GET_SESSION: &str = concat!(
        "SELECT ",
        session_columns!(),
        " FROM session WHERE session_hash = $1 AND expires_at > $2"
    );
    pub(crate) const DELETE_SESSION: &str = "DELETE FROM session WHERE session_hash = $1";
    pub(crate) const DELETE_SESSIONS_OF_USER: &str = "DELETE FROM session WHERE user_sub = $1";

    // A session with its user and that user's consent for one client ($3), in one read.
    pub(crate) const GET_SESSION_VIEW: &str = "SELECT s.session_hash, s.sid, s.user_sub, \
         s.auth_time, s.amr, s.created_at, s.expires_at, u.username, u.disabled, \
         c.scope AS consented_scope \
         FROM session s JOIN app_user u ON u.sub = s.user_sub \
         LEFT JOIN consent c ON c.user_sub = s.user_sub AND c.client_id = $3 \
         WHERE s.session_hash = $1 AND s.expires_at > $2";

    // The primary key lets exactly one of racing finishes insert the mark.
    pub(crate) const FINISH_INTERACTION: &str = "INSERT INTO finished_interaction \
         (interaction_id, expires_at) VALUES ($1, $2) ON CONFLICT (interaction_id) DO NOTHING";
    /// Postgres: the finished mark, the grant and the code in one statement; when the mark
    /// already existed, `finished` is empty and nothing else is written. `$1`..`$15` are the
    /// code (`bind_code`), `$16` the grant's expiry, `$17`/`$18` the interaction id and its
    /// expiry.
    pub(crate) const FINISH_INTERACTION_WITH_CODE: &str = concat!(
        "WITH ",
        relaxed_commit!(),
        ", finished AS (INSERT INTO finished_interaction (interaction_id, expires_at) \
         SELECT $17, $18 FROM relaxed \
         ON CONFLICT (interaction_id) DO NOTHING RETURNING interaction_id), \
         new_grant AS (INSERT INTO auth_grant (",
        grant_columns!(),
        ") SELECT $2, $3, $4, $6, $14, $16, NULL FROM finished) INSERT INTO auth_code (",
        code_columns!(),
        ") SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15 FROM finished"
    );
    /// Postgres: the consent page's Allow in one statement. `live` is the session `$19` if it
    /// is live at `$14`, is the one the interaction was decided for (public id `$27`) and its
    /// user enabled; only then is the finished mark inserted; only
    /// when both (`go`) are the consent merged, the event, the grant and the code written,
    /// with the session's user, sid, auth_time and amr. The consent keeps the scopes granted
    /// before, in their order, then adds the new ones (`$20`). Answers whether there was a
    /// session and whether the code was stored. `$1`..`$15` the code (its `$4`, `$9`..`$11`
    /// unused), `$16` the grant's expiry, `$17`/`$18` the interaction, `$21`..`$26` the
    /// event (`bind_event`; its `$23` unused).
    pub(crate) const FINISH_CONSENT: &str = concat!(
        "WITH ",
        relaxed_commit!(),
        ", live AS (SELECT s.user_sub, s.sid, s.auth_time, s.amr FROM relaxed, session s \
         JOIN app_user u ON u.sub = s.user_sub \
         WHERE s.session_hash = $19 AND s.sid = $27 AND s.expires_at > $14 AND NOT u.disabled), \
         finished AS (INSERT INTO finished_interaction (interaction_id, expires_at) \
         SELECT $17, $18 FROM live ON CONFLICT (interaction_id) DO NOTHING \
         RETURNING interaction_id), \
         go AS (SELECT live.* FROM live, finished), \
         consented AS (INSERT INTO consent (",
        consent_columns!(),
        ") SELECT go.user_sub, $3, $20, $14 FROM go ON CONFLICT (user_sub, client_id) \
         DO UPDATE SET updated_at = excluded.updated_at, scope = (\
         SELECT string_agg(t.token, ' ' ORDER BY t.first) FROM (SELECT u.token, MIN(u.n) AS first \
         FROM unnest(string_to_array(consent.scope || ' ' || excluded.scope, ' ')) \
         WITH ORDINALITY AS u(token, n) WHERE u.token <> '' GROUP BY u.token) t)), \
         logged AS (INSERT INTO audit_event (occurred_at, kind, user_sub, client_id, ip, detail) \
         SELECT $21, $22, go.user_sub, $24, $25, $26 FROM go), \
         new_grant AS (INSERT INTO auth_grant (",
        grant_columns!(),
        ") SELECT $2, $3, go.user_sub, $6, $14, $16, NULL FROM go), \
         new_code AS (INSERT INTO auth_code (",
        code_columns!(),
        ") SELECT $1, $2, $3, go.user_sub, $5, $6, $7, $8, go.sid, go.auth_time, go.amr, \
         $12, $13, $14, $15 FROM go RETURNING 1) \
         SELECT (SELECT COUNT(*) FROM live) AS sessions, \
         (SELECT COUNT(*) FROM new_code) AS issued, (SELECT user_sub FROM live) AS user_sub"
    );

    pub(crate) const INSERT_GRANT: &str = concat!(
        "INSERT INTO auth_grant (",
        grant_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7)"
    );
    pub(crate) const GET_GRANT: &str = concat!(
        "SELECT ",
        grant_columns!(),
        " FROM auth_grant WHERE grant_id = $1"
    );
    pub(crate) const REVOKE_GRANT: &str =
        "UPDATE auth_grant SET revoked_at = $2 WHERE grant_id = $1 AND revoked_at IS NULL";
    pub(crate) const DELETE_REFRESH_TOKENS_OF_GRANT: &str =
        "DELETE FROM refresh_token WHERE grant_id = $1";
    pub(crate) const REVOKE_GRANTS_OF_USER: &str = "UPDATE auth_grant SET revoked_at = $3 \
         WHERE user_sub = $1 AND ($2 IS NULL OR client_id = $2) AND revoked_at IS NULL";
    pub(crate) const DELETE_REFRESH_TOKENS_OF_USER: &str =
        "DELETE FROM refresh_token WHERE user_sub = $1 AND ($2 IS NULL OR client_id = $2)";
    /// Only ever raises the expiry: the grant must outlive every token already issued.
    pub(crate) const EXTEND_GRANT: &str =
        "UPDATE auth_grant SET expires_at = $2 WHERE grant_id = $1 AND expires_at < $2";

    pub(crate) const INSERT_CODE: &str = concat!(
        "INSERT INTO auth_code (",
        code_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
    );
    // The single conditional update that redeems a code: of racing calls, the database lets
    // exactly one see `consumed_at IS NULL`. A code whose family was revoked (for example by
    // revoke_grants_for_user) cannot be redeemed either.
    pub(crate) const CONSUME_CODE: &str = concat!(
        "UPDATE auth_code SET consumed_at = $2 \
         WHERE code_hash = $1 AND consumed_at IS NULL AND expires_at > $2 AND ",
        live_grant!("auth_code"),
        " AND ",
        active_user!("auth_code"),
        " RETURNING ",
        code_columns!()
    );
    /// Postgres: the grant and its code in one statement (one round trip, atomic without a
    /// transaction). The grant takes the code's ids, scope and creation time; `$16` is the
    /// grant's expiry.
    pub(crate) const INSERT_GRANT_AND_CODE: &str = concat!(
        "WITH new_grant AS (INSERT INTO auth_grant (",
        grant_columns!(),
        ") VALUES ($2, $3, $4, $6, $14, $16, NULL)) INSERT INTO auth_code (",
        code_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
    );
    /// Postgres: `CONSUME_CODE` and `EXTEND_GRANT` (to `$3`) of the redeemed code's grant in
    /// one statement. Of racing calls the row lock on the code lets one through; the others
    /// see no row and extend nothing.
    pub(crate) const CONSUME_CODE_AND_EXTEND_GRANT: &str = concat!(
        "WITH consumed AS (UPDATE auth_code SET consumed_at = $2 \
         WHERE code_hash = $1 AND consumed_at IS NULL AND expires_at > $2 AND ",
        live_grant!("auth_code"),
        " AND ",
        active_user!("auth_code"),
        " RETURNING ",
        code_columns!(),
        "), extended AS (UPDATE auth_grant SET expires_at = $3 \
         WHERE grant_id IN (SELECT grant_id FROM consumed) AND expires_at < $3) SELECT ",
        code_columns!(),
        " FROM consumed"
    );
    pub(crate) const CODE_STATE: &str =
        "SELECT grant_id, consumed_at FROM auth_code WHERE code_hash = $1";

    pub(crate) const INSERT_REFRESH_TOKEN: &str = concat!(
        "INSERT INTO refresh_token (",
        refresh_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
    );
    // The conditional update that rotates a token out; same reasoning as CONSUME_CODE.
    pub(crate) const ROTATE_REFRESH_TOKEN: &str = concat!(
        "UPDATE refresh_token SET rotated_at = $2 \
         WHERE token_hash = $1 AND rotated_at IS NULL \
         AND idle_expires_at > $2 AND expires_at > $2 AND ",
        live_grant!("refresh_token"),
        " RETURNING ",
        refresh_columns!()
    );
    // Why a rotation failed: a token rotated before, or one whose family was revoked, is
    // reuse; anything else (unknown, expired, family gone) is merely invalid.
    pub(crate) const REFRESH_TOKEN_STATE: &str = "SELECT rt.grant_id, \
         (rt.rotated_at IS NOT NULL OR g.revoked_at IS NOT NULL) AS reused \
         FROM refresh_token rt LEFT JOIN auth_grant g ON g.grant_id = rt.grant_id \
         WHERE rt.token_hash = $1";
    pub(crate) const GET_REFRESH_TOKEN: &str = concat!(
        "SELECT ",
        refresh_columns!(),
        " FROM refresh_token WHERE token_hash = $1 AND rotated_at IS NULL \
         AND idle_expires_at > $2 AND expires_at > $2 AND ",
        live_grant!("refresh_token")
    );

    pub(crate) const ROTATED_TOKEN_GRANT: &str =
        "SELECT grant_id FROM refresh_token WHERE token_hash = $1 AND rotated_at IS NOT NULL";

    // Revoking twice keeps the later expiry, so a row is never purged while it still matters.
    pub(crate) const REVOKE_ACCESS_TOKEN: &str = "INSERT INTO revoked_access_token (jti, expires_at) \
         VALUES ($1, $2) ON CONFLICT (jti) DO UPDATE SET expires_at = excluded.expires_at \
         WHERE excluded.expires_at > revoked_access_token.expires_at";
    // One round trip: the jti is listed, or the token has a grant and that grant is not a
    // live one (revoked, or already purged because it expired).
    pub(crate) const IS_ACCESS_TOKEN_REVOKED: &str = "SELECT \
         EXISTS (SELECT 1 FROM revoked_access_token WHERE jti = $1) \
         OR ($2 IS NOT NULL AND NOT EXISTS \
             (SELECT 1 FROM auth_grant WHERE grant_id = $2 AND revoked_at IS NULL)) \
         AS revoked";

    pub(crate) const GET_CONSENT: &str = concat!(
        "SELECT ",
        consent_columns!(),
        " FROM consent WHERE user_sub = $1 AND client_id = $2"
    );
    pub(crate) const SAVE_CONSENT: &str = concat!(
        "INSERT INTO consent (",
        consent_columns!(),
        ") VALUES ($1, $2, $3, $4) ON CONFLICT (user_sub, client_id) \
         DO UPDATE SET scope = excluded.scope, updated_at = excluded.updated_at"
    );
    pub(crate) const DELETE_CONSENT: &str =
        "DELETE FROM consent WHERE user_sub = $1 AND client_id = $2";
    pub(crate) const LIST_CONSENTS: &str = concat!(
        "SELECT ",
        consent_columns!(),
        " FROM consent WHERE user_sub = $1 ORDER BY client_id"
    );

    pub(crate) const LIST_KEYS: &str = concat!(
        "SELECT ",
        key_columns!(),
        " FROM signing_key ORDER BY created_at DESC, kid DESC"
    );
    pub(crate) const INSERT_KEY: &str = concat!(
        "INSERT INTO signing_key (",
        key_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6)"
    );
    // A no-op update whose point is the row lock it takes on Postgres: it serialises nodes
    // that insert or rotate keys at the same moment. On SQLite, BEGIN IMMEDIATE already did.
    pub(crate) const LOCK_KEYS: &str =
        "UPDATE change_version SET version = version WHERE name = 'keys'";
    pub(crate) const ANY_KEY: &str = "SELECT EXISTS (SELECT 1 FROM signing_key) AS present";
    pub(crate) const RETIRE_KEYS: &str =
        "UPDATE signing_key SET retired_at = $1 WHERE retired_at IS NULL";
    /// Counts an attempt for key `$1` at `$2` under a rule (`$3` window, `$4` free, `$5`
    /// max_delay, `$6` lockout_after, `$7` lockout), unless the key is locked: the `WHERE` of
    /// the upsert leaves a locked row alone, and then no row is returned. The row lock of the
    /// upsert orders racing attempts, so each sees the count of the ones before it. `$8` is
    /// the lock a first attempt sets (`ThrottleRule` computes it; normally 0).
    pub(crate) const COUNT_ATTEMPT: &str = concat!(
        "INSERT INTO throttle (throttle_key, failures, expires_at, locked_until) \
         VALUES ($1, 1, $2 + $3, $8) \
         ON CONFLICT (throttle_key) DO UPDATE SET failures = ",
        next_attempt!(),
        ", locked_until = ",
        attempt_lock!(),
        ", expires_at = $2 + $3 \
         WHERE throttle.locked_until <= $2 \
         RETURNING failures AS attempts, locked_until"
    );
    pub(crate) const LATEST_LOCK: &str = "SELECT \
         MAX(CASE WHEN locked_until > $3 THEN locked_until END) AS locked_until \
         FROM throttle WHERE throttle_key IN ($1, $2)";
    pub(crate) const THROTTLE_LOCK: &str =
        "SELECT locked_until FROM throttle WHERE throttle_key = $1";
    pub(crate) const CLEAR_ATTEMPTS: &str = "DELETE FROM throttle WHERE throttle_key = $1";
    /// Takes back one attempt of `$1`; a lock goes when the attempts left are within the
    /// rule's free ones (`$2`): it was set by an attempt that turned out a success.
    pub(crate) const RELEASE_ATTEMPT: &str = "UPDATE throttle SET failures = failures - 1, \
         locked_until = CASE WHEN failures - 1 <= $2 THEN 0 ELSE locked_until END \
         WHERE throttle_key = $1 AND failures > 0";
    /// Postgres: `CLEAR_ATTEMPTS` of `$3` and `RELEASE_ATTEMPT` of `$1` in one statement.
    pub(crate) const SETTLE_SUCCESS: &str = "WITH cleared AS \
         (DELETE FROM throttle WHERE throttle_key = $3) \
         UPDATE throttle SET failures = failures - 1, \
         locked_until = CASE WHEN failures - 1 <= $2 THEN 0 ELSE locked_until END \
         WHERE throttle_key = $1 AND failures > 0";

    pub(crate) const INSERT_EVENT: &str = "INSERT INTO audit_event \
         (occurred_at, kind, user_sub, client_id, ip, detail) VALUES ($1, $2, $3, $4, $5, $6)";
    /// Postgres: a session and the audit event of the login that started it, in one
    /// statement. `$1`..`$7` the session, `$8`..`$13` the event (`bind_event`).
    pub(crate) const INSERT_SESSION_WITH_EVENT: &str = concat!(
        "WITH ",
        relaxed_commit!(),
        ", logged AS (INSERT INTO audit_event \
         (occurred_at, kind, user_sub, client_id, ip, detail) \
         SELECT $8, $9, $10, $11, $12, $13 FROM relaxed) INSERT INTO session (",
        session_columns!(),
        ") SELECT $1, $2, $3, $4, $5, $6, $7 FROM relaxed"
    );
    pub(crate) const LIST_EVENTS: &str = "SELECT event_id, occurred_at, kind, user_sub, \
         client_id, ip, detail FROM audit_event \
         WHERE ($1 IS NULL OR kind = $1) AND ($2 IS NULL OR user_sub = $2) \
         AND ($3 IS NULL OR client_id = $3) AND ($4 IS NULL OR occurred_at >= $4) \
         AND ($5 IS NULL OR event_id < $5) \
         ORDER BY event_id DESC LIMIT $6";

    pub(crate) const DELETE_RETIRED_KEYS: &str =
        "DELETE FROM signing_key WHERE retired_at IS NOT NULL AND retired_at < $1";
}

/// The two throttle keys a lock query compares against; callers pass one or two.
pub(crate) fn key_pair<'k>(keys: &[&'k str]) -> (&'k str, &'k str) {
    let first = keys.first().copied().unwrap_or_default();
    (first, keys.get(1).copied().unwrap_or(first))
}

/// `before` (a space-separated scope, if any) followed by the tokens of `added` it lacks: the
/// consent a user has after granting `added`, in the order Postgres's `FINISH_CONSENT` keeps.
pub(crate) fn merge_scopes(before: Option<&str>, added: &str) -> String {
    let mut tokens: Vec<&str> = Vec::new();
    for token in before
        .unwrap_or_default()
        .split(' ')
        .chain(added.split(' '))
    {
        if !token.is_empty() && !tokens.contains(&token) {
            tokens.push(token);
        }
    }
    tokens.join(" ")
}

/// Builds the purge statements: each deletes at most `$2` rows that expired by `$1`.
/// `$lock` is appended to the inner SELECT; on Postgres it is `FOR UPDATE SKIP LOCKED`, so
/// that nodes purging at once take disjoint batches instead of deadlocking on each other's
/// row locks.
macro_rules! purge_statements {
    ($lock:literal) => {
        [
            concat!(
                "DELETE FROM auth_code WHERE code_hash IN (SELECT code_hash FROM auth_code \
                 WHERE expires_at <= $1 LIMIT $2",
                $lock,
                ")"
            ),
            concat!(
                "DELETE FROM session WHERE session_hash IN (SELECT session_hash FROM session \
                 WHERE expires_at <= $1 LIMIT $2",
                $lock,
                ")"
            ),
            concat!(
                "DELETE FROM finished_interaction WHERE interaction_id IN (SELECT interaction_id \
                 FROM finished_interaction WHERE expires_at <= $1 LIMIT $2",
                $lock,
                ")"
            ),
            // Rotated tokens stay until they would have expired: a replay of one is then still
            // recognised as reuse, which revokes a family an attacker may have taken over.
            concat!(
                "DELETE FROM refresh_token WHERE token_hash IN (SELECT token_hash \
                 FROM refresh_token WHERE idle_expires_at <= $1 OR expires_at <= $1 LIMIT $2",
                $lock,
                ")"
            ),
            // Runs after codes and refresh tokens: a grant goes only once nothing that can
            // still mint tokens refers to it, whatever expiry the caller gave it.
            concat!(
                "DELETE FROM auth_grant WHERE grant_id IN (SELECT grant_id FROM auth_grant \
                 WHERE expires_at <= $1 \
                 AND NOT EXISTS (SELECT 1 FROM refresh_token rt WHERE rt.grant_id = auth_grant.grant_id) \
                 AND NOT EXISTS (SELECT 1 FROM auth_code c WHERE c.grant_id = auth_grant.grant_id) \
                 LIMIT $2",
                $lock,
                ")"
            ),
            concat!(
                "DELETE FROM revoked_access_token WHERE jti IN (SELECT jti \
                 FROM revoked_access_token WHERE expires_at <= $1 LIMIT $2",
                $lock,
                ")"
            ),
            concat!(
                "DELETE FROM throttle WHERE throttle_key IN (SELECT throttle_key \
                 FROM throttle WHERE expires_at <= $1 AND locked_until <= $1 LIMIT $2",
                $lock,
                ")"
            ),
            // Audit events are kept for store::AUDIT_RETENTION (90 days).
            concat!(
                "DELETE FROM audit_event WHERE event_id IN (SELECT event_id \
                 FROM audit_event WHERE occurred_at <= $1 - 7776000 LIMIT $2",
                $lock,
                ")"
            ),
        ]
    };
}
pub(super) use purge_statements;

/// Implements every store trait for `$store` (a struct with a `pool: sqlx::Pool<$db>` field)
/// with the SQL above. `begin_write` is the statement that opens a write transaction,
/// `purge_lock` the suffix described at `purge_statements!`, `migrator` the embedded
/// migrations of the dialect.
macro_rules! impl_sql_store {
    (
        store: $store:ty,
        database: $db:ty,
        begin_write: $begin_write:literal,
        purge_lock: $purge_lock:literal,
        one_statement_code_writes: $one_statement_code_writes:literal,
        migrator: $migrator:expr $(,)?
    ) => {
        // An anonymous scope, so that the helpers below do not leak into the backend module.
        const _: () = {
            use ::async_trait::async_trait;
            use ::sqlx::Row as _;
            use $crate::protocol::client::ClientMetadata;
            use $crate::store::sql::{self, OwnerDeletion, db_err, q};
            use $crate::store::{
                AttemptCount, AuditEvent, AuditFilter, AuditStore, AuthCodeRecord, AuthCodeStore,
                ChangeVersions, ClientRecord, ClientStore, CodeRedemption, ConsentFinish,
                ConsentOutcome, ConsentRecord, ConsentStore, GrantRecord, GrantStore, Housekeeping,
                InteractionFinish, InteractionStore, KeyStore, RefreshTokenRecord,
                RefreshTokenStore, RevocationStore, Rotation, SessionRecord, SessionStore,
                SessionView, SigningKeyRecord, StoreResult, ThrottleRule, ThrottleStore,
                UserRecord, UserStore,
            };

            type Pool = ::sqlx::Pool<$db>;
            type DbRow = <$db as ::sqlx::Database>::Row;
            type Tx = ::sqlx::Transaction<'static, $db>;
            type Query<'q> =
                ::sqlx::query::Query<'q, $db, <$db as ::sqlx::Database>::Arguments<'q>>;

            const PURGE: [&str; 8] = sql::purge_statements!($purge_lock);

            fn col<'r, T>(row: &'r DbRow, name: &str) -> StoreResult<T>
            where
                T: ::sqlx::Decode<'r, $db> + ::sqlx::Type<$db>,
            {
                row.try_get(name).map_err(db_err)
            }

            async fn begin_write(pool: &Pool) -> StoreResult<Tx> {
                pool.begin_with($begin_write).await.map_err(db_err)
            }

            async fn commit(tx: Tx) -> StoreResult<()> {
                tx.commit().await.map_err(db_err)
            }

            async fn bump_version(tx: &mut Tx, name: &str) -> StoreResult<()> {
                ::sqlx::query(q::BUMP_VERSION)
                    .bind(name)
                    .execute(&mut **tx)
                    .await
                    .map_err(db_err)?;
                Ok(())
            }

            /// Runs one write and, when it touched a row, bumps `version`, atomically.
            async fn write_and_bump(
                pool: &Pool,
                query: Query<'_>,
                version: &str,
            ) -> StoreResult<u64> {
                let mut tx = begin_write(pool).await?;
                let affected = query
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?
                    .rows_affected();
                if affected > 0 {
                    bump_version(&mut tx, version).await?;
                    commit(tx).await?;
                }
                Ok(affected)
            }

            async fn delete_owner(
                pool: &Pool,
                deletion: &OwnerDeletion,
                id: &str,
                now: i64,
            ) -> StoreResult<bool> {
                let mut tx = begin_write(pool).await?;
                let deleted = ::sqlx::query(deletion.delete_owner)
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?
                    .rows_affected();
                if deleted == 0 {
                    return Ok(false);
                }
                // Codes and tokens go before the grants are revoked. consume_code locks a
                // code and then its grant, so taking the locks in the same order cannot
                // deadlock with it on Postgres; and a token that a racing rotation inserts
                // after the delete's snapshot is still dead, because its grant is revoked last.
                for statement in deletion.dependents.iter().copied() {
                    ::sqlx::query(statement)
                        .bind(id)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                }
                ::sqlx::query(deletion.revoke_grants)
                    .bind(id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                if let Some(version) = deletion.version {
                    bump_version(&mut tx, version).await?;
                }
                commit(tx).await?;
                Ok(true)
            }

            async fn insert_grant_with<'c, E>(executor: E, grant: &GrantRecord) -> StoreResult<()>
            where
                E: ::sqlx::Executor<'c, Database = $db>,
            {
                ::sqlx::query(q::INSERT_GRANT)
                    .bind(&grant.grant_id)
                    .bind(&grant.client_id)
                    .bind(&grant.user_sub)
                    .bind(&grant.scope)
                    .bind(grant.created_at)
                    .bind(grant.expires_at)
                    .bind(grant.revoked_at)
                    .execute(executor)
                    .await
                    .map_err(db_err)?;
                Ok(())
            }

            /// Binds a session's seven columns, in `session_columns!` order.
            fn bind_session<'q>(query: Query<'q>, session: &'q SessionRecord) -> Query<'q> {
                query
                    .bind(&session.session_hash)
                    .bind(&session.sid)
                    .bind(&session.user_sub)
                    .bind(session.auth_time)
                    .bind(&session.amr)
                    .bind(session.created_at)
                    .bind(session.expires_at)
            }

            /// Binds an audit event's six columns (all but its id), in `INSERT_EVENT` order.
            fn bind_event<'q>(query: Query<'q>, event: &'q AuditEvent) -> Query<'q> {
                query
                    .bind(event.occurred_at)
                    .bind(&event.kind)
                    .bind(&event.user_sub)
                    .bind(&event.client_id)
                    .bind(&event.ip)
                    .bind(&event.detail)
            }

            /// The grant (family) row a new code starts.
            fn code_grant(code: &AuthCodeRecord, expires_at: i64) -> GrantRecord {
                GrantRecord {
                    grant_id: code.grant_id.clone(),
                    client_id: code.client_id.clone(),
                    user_sub: code.user_sub.clone(),
                    scope: code.scope.clone(),
                    created_at: code.created_at,
                    expires_at,
                    revoked_at: None,
                }
            }

            /// Binds a code's fifteen columns, in `code_columns!` order, as `$1`..`$15`.
            fn bind_code<'q>(query: Query<'q>, code: &'q AuthCodeRecord) -> Query<'q> {
                query
                    .bind(&code.code_hash)
                    .bind(&code.grant_id)
                    .bind(&code.client_id)
                    .bind(&code.user_sub)
                    .bind(&code.redirect_uri)
                    .bind(&code.scope)
                    .bind(code.code_challenge.as_deref())
                    .bind(code.nonce.as_deref())
                    .bind(&code.sid)
                    .bind(code.auth_time)
                    .bind(&code.amr)
                    .bind(code.acr.as_deref())
                    .bind(code.resource.as_deref())
                    .bind(code.created_at)
                    .bind(code.expires_at)
            }

            /// Why a code was not redeemed: a reused code (whose grant the caller revokes),
            /// or an unknown or expired one.
            async fn unredeemed<'c, E>(executor: E, code_hash: &[u8]) -> StoreResult<CodeRedemption>
            where
                E: ::sqlx::Executor<'c, Database = $db>,
            {
                let state = ::sqlx::query(q::CODE_STATE)
                    .bind(code_hash)
                    .fetch_optional(executor)
                    .await
                    .map_err(db_err)?;
                Ok(match state {
                    Some(row) if col::<Option<i64>>(&row, "consumed_at")?.is_some() => {
                        CodeRedemption::Reused {
                            grant_id: col(&row, "grant_id")?,
                        }
                    }
                    _ => CodeRedemption::Invalid,
                })
            }

            async fn insert_keys_in(tx: &mut Tx, keys: &[SigningKeyRecord]) -> StoreResult<()> {
                for key in keys {
                    ::sqlx::query(q::INSERT_KEY)
                        .bind(&key.kid)
                        .bind(&key.alg)
                        .bind(&key.private_sealed)
                        .bind(&key.public_jwk)
                        .bind(key.created_at)
                        .bind(key.retired_at)
                        .execute(&mut **tx)
                        .await
                        .map_err(db_err)?;
                }
                Ok(())
            }

            fn client_from_row(row: &DbRow) -> StoreResult<ClientRecord> {
                let metadata: String = col(row, "metadata")?;
                Ok(ClientRecord {
                    client_id: col(row, "client_id")?,
                    secret_hash: col(row, "secret_hash")?,
                    metadata: sql::from_json(&metadata, "client metadata")?,
                    issued_at: col(row, "issued_at")?,
                    updated_at: col(row, "updated_at")?,
                })
            }

            fn user_from_row(row: &DbRow) -> StoreResult<UserRecord> {
                let claims: String = col(row, "claims")?;
                Ok(UserRecord {
                    sub: col(row, "sub")?,
                    username: col(row, "username")?,
                    password_hash: col(row, "password_hash")?,
                    claims: sql::from_json(&claims, "user claims")?,
                    disabled: col(row, "disabled")?,
                    password_reset_required: col(row, "password_reset_required")?,
                    created_at: col(row, "created_at")?,
                    updated_at: col(row, "updated_at")?,
                })
            }

            /// A `GET_SESSION_VIEW` row.
            fn session_view_from_row(row: &DbRow) -> StoreResult<SessionView> {
                Ok(SessionView {
                    session: session_from_row(row)?,
                    username: col(row, "username")?,
                    user_disabled: col(row, "disabled")?,
                    consented_scope: col(row, "consented_scope")?,
                })
            }

            /// Inserts an interaction's finished mark; false when it was there already.
            async fn mark_finished<'c, E>(
                executor: E,
                interaction_id: &str,
                expires_at: i64,
            ) -> StoreResult<bool>
            where
                E: ::sqlx::Executor<'c, Database = $db>,
            {
                let result = ::sqlx::query(q::FINISH_INTERACTION)
                    .bind(interaction_id)
                    .bind(expires_at)
                    .execute(executor)
                    .await
                    .map_err(db_err)?;
                Ok(result.rows_affected() == 1)
            }

            fn session_from_row(row: &DbRow) -> StoreResult<SessionRecord> {
                Ok(SessionRecord {
                    session_hash: col(row, "session_hash")?,
                    sid: col(row, "sid")?,
                    user_sub: col(row, "user_sub")?,
                    auth_time: col(row, "auth_time")?,
                    amr: col(row, "amr")?,
                    created_at: col(row, "created_at")?,
                    expires_at: col(row, "expires_at")?,
                })
            }

            fn grant_from_row(row: &DbRow) -> StoreResult<GrantRecord> {
                Ok(GrantRecord {
                    grant_id: col(row, "grant_id")?,
                    client_id: col(row, "client_id")?,
                    user_sub: col(row, "user_sub")?,
                    scope: col(row, "scope")?,
                    created_at: col(row, "created_at")?,
                    expires_at: col(row, "expires_at")?,
                    revoked_at: col(row, "revoked_at")?,
                })
            }

            fn code_from_row(row: &DbRow) -> StoreResult<AuthCodeRecord> {
                Ok(AuthCodeRecord {
                    code_hash: col(row, "code_hash")?,
                    grant_id: col(row, "grant_id")?,
                    client_id: col(row, "client_id")?,
                    user_sub: col(row, "user_sub")?,
                    redirect_uri: col(row, "redirect_uri")?,
                    scope: col(row, "scope")?,
                    code_challenge: col(row, "code_challenge")?,
                    nonce: col(row, "nonce")?,
                    sid: col(row, "sid")?,
                    auth_time: col(row, "auth_time")?,
                    amr: col(row, "amr")?,
                    acr: col(row, "acr")?,
                    resource: col(row, "resource")?,
                    created_at: col(row, "created_at")?,
                    expires_at: col(row, "expires_at")?,
                })
            }

            fn refresh_from_row(row: &DbRow) -> StoreResult<RefreshTokenRecord> {
                Ok(RefreshTokenRecord {
                    token_hash: col(row, "token_hash")?,
                    grant_id: col(row, "grant_id")?,
                    client_id: col(row, "client_id")?,
                    user_sub: col(row, "user_sub")?,
                    scope: col(row, "scope")?,
                    sid: col(row, "sid")?,
                    auth_time: col(row, "auth_time")?,
                    amr: col(row, "amr")?,
                    resource: col(row, "resource")?,
                    created_at: col(row, "created_at")?,
                    idle_expires_at: col(row, "idle_expires_at")?,
                    expires_at: col(row, "expires_at")?,
                })
            }

            fn consent_from_row(row: &DbRow) -> StoreResult<ConsentRecord> {
                Ok(ConsentRecord {
                    user_sub: col(row, "user_sub")?,
                    client_id: col(row, "client_id")?,
                    scope: col(row, "scope")?,
                    updated_at: col(row, "updated_at")?,
                })
            }

            fn key_from_row(row: &DbRow) -> StoreResult<SigningKeyRecord> {
                Ok(SigningKeyRecord {
                    kid: col(row, "kid")?,
                    alg: col(row, "alg")?,
                    private_sealed: col(row, "private_sealed")?,
                    public_jwk: col(row, "public_jwk")?,
                    created_at: col(row, "created_at")?,
                    retired_at: col(row, "retired_at")?,
                })
            }

            impl $store {
                /// Applies the pending migrations of this dialect. Safe to run on several
                /// nodes at once on Postgres, where sqlx holds an advisory lock meanwhile.
                pub async fn migrate(&self) -> StoreResult<()> {
                    $migrator.run(&self.pool).await.map_err(sql::migrate_err)
                }
            }

            #[async_trait]
            impl ClientStore for $store {
                async fn insert_client(&self, client: &ClientRecord) -> StoreResult<()> {
                    let metadata = sql::to_json(&client.metadata, "client metadata")?;
                    let query = ::sqlx::query(q::INSERT_CLIENT)
                        .bind(&client.client_id)
                        .bind(client.secret_hash.as_deref())
                        .bind(metadata)
                        .bind(client.issued_at)
                        .bind(client.updated_at);
                    write_and_bump(&self.pool, query, q::CLIENTS_VERSION).await?;
                    Ok(())
                }

                async fn get_client(&self, client_id: &str) -> StoreResult<Option<ClientRecord>> {
                    ::sqlx::query(q::GET_CLIENT)
                        .bind(client_id)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err)?
                        .as_ref()
                        .map(client_from_row)
                        .transpose()
                }

                async fn list_clients(
                    &self,
                    after: Option<&str>,
                    limit: u32,
                ) -> StoreResult<Vec<ClientRecord>> {
                    ::sqlx::query(q::LIST_CLIENTS)
                        .bind(after.unwrap_or(""))
                        .bind(i64::from(limit))
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db_err)?
                        .iter()
                        .map(client_from_row)
                        .collect()
                }

                async fn update_client_metadata(
                    &self,
                    client_id: &str,
                    metadata: &ClientMetadata,
                    now: i64,
                ) -> StoreResult<bool> {
                    let metadata = sql::to_json(metadata, "client metadata")?;
                    let query = ::sqlx::query(q::UPDATE_CLIENT_METADATA)
                        .bind(client_id)
                        .bind(metadata)
                        .bind(now);
                    Ok(write_and_bump(&self.pool, query, q::CLIENTS_VERSION).await? > 0)
                }

                async fn set_client_secret(
                    &self,
                    client_id: &str,
                    secret_hash: &[u8],
                    now: i64,
                ) -> StoreResult<bool> {
                    let query = ::sqlx::query(q::SET_CLIENT_SECRET)
                        .bind(client_id)
                        .bind(secret_hash)
                        .bind(now);
                    Ok(write_and_bump(&self.pool, query, q::CLIENTS_VERSION).await? > 0)
                }

                async fn delete_client(&self, client_id: &str, now: i64) -> StoreResult<bool> {
                    delete_owner(&self.pool, &sql::CLIENT_DELETION, client_id, now).await
                }
            }

            #[async_trait]
            impl UserStore for $store {
                async fn insert_user(&self, user: &UserRecord) -> StoreResult<()> {
                    let claims = sql::to_json(&user.claims, "user claims")?;
                    ::sqlx::query(q::INSERT_USER)
                        .bind(&user.sub)
                        .bind(&user.username)
                        .bind(&user.password_hash)
                        .bind(claims)
                        .bind(user.disabled)
                        .bind(user.created_at)
                        .bind(user.updated_at)
                        .bind(user.password_reset_required)
                        .execute(&self.pool)
                        .await
                        .map_err(db_err)?;
                    Ok(())
                }

                async fn get_user(&self, sub: &str) -> StoreResult<Option<UserRecord>> {
                    ::sqlx::query(q::GET_USER)
                        .bind(sub)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err)?
                        .as_ref()
                        .map(user_from_row)
                        .transpose()
                }

                async fn get_user_by_username(
                    &self,
                    username: &str,
                ) -> StoreResult<Option<UserRecord>> {
                    ::sqlx::query(q::GET_USER_BY_USERNAME)
                        .bind(username)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err)?
                        .as_ref()
                        .map(user_from_row)
                        .transpose()
                }

                async fn get_user_for_login(
                    &self,
                    username: &str,
                    throttle_keys: &[&str],
                    now: i64,
                ) -> StoreResult<(Option<UserRecord>, Option<i64>)> {
                    let (first, second) = sql::key_pair(throttle_keys);
                    let row = ::sqlx::query(q::GET_USER_FOR_LOGIN)
                        .bind(first)
                        .bind(second)
                        .bind(now)
                        .bind(username)
                        .fetch_one(&self.pool)
                        .await
                        .map_err(db_err)?;
                    let locked_until: Option<i64> = col(&row, "locked_until")?;
                    let sub: Option<String> = col(&row, "sub")?;
                    let user = match sub {
                        Some(_) => Some(user_from_row(&row)?),
                        None => None,
                    };
                    Ok((user, locked_until))
                }

                async fn list_users(
                    &self,
                    after: Option<&str>,
                    limit: u32,
                ) -> StoreResult<Vec<UserRecord>> {
                    ::sqlx::query(q::LIST_USERS)
                        .bind(after.unwrap_or(""))
                        .bind(i64::from(limit))
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db_err)?
                        .iter()
                        .map(user_from_row)
                        .collect()
                }

                async fn update_user(&self, user: &UserRecord) -> StoreResult<bool> {
                    let claims = sql::to_json(&user.claims, "user claims")?;
                    let result = ::sqlx::query(q::UPDATE_USER)
                        .bind(&user.sub)
                        .bind(&user.username)
                        .bind(claims)
                        .bind(user.disabled)
                        .bind(user.updated_at)
                        .bind(user.password_reset_required)
                        .execute(&self.pool)
                        .await
                        .map_err(db_err)?;
                    Ok(result.rows_affected() > 0)
                }

                async fn replace_required_password(
                    &self,
                    sub: &str,
                    current_hash: &str,
                    new_hash: &str,
                    now: i64,
                ) -> StoreResult<bool> {
                    let result = ::sqlx::query(q::REPLACE_REQUIRED_PASSWORD)
                        .bind(sub)
                        .bind(current_hash)
                        .bind(new_hash)
                        .bind(now)
                        .execute(&self.pool)
                        .await
                        .map_err(db_err)?;
                    Ok(result.rows_affected() == 1)
                }

                async fn set_password(
                    &self,
                    sub: &str,
                    password_hash: &str,
                    now: i64,
                ) -> StoreResult<bool> {
                    let result = ::sqlx::query(q::SET_PASSWORD)
                        .bind(sub)
                        .bind(password_hash)
                        .bind(now)
                        .execute(&self.pool)
                        .await
                        .map_err(db_err)?;
                    Ok(result.rows_affected() > 0)
                }

                async fn delete_user(&self, sub: &str, now: i64) -> StoreResult<bool> {
                    delete_owner(&self.pool, &sql::USER_DELETION, sub, now).await
                }
            }

            #[async_trait]
            impl SessionStore for $store {
                async fn insert_session(&self, session: &SessionRecord) -> StoreResult<()> {
                    bind_session(::sqlx::query(q::INSERT_SESSION), session)
                        .execute(&self.pool)
                        .await
                        .map_err(db_err)?;
                    Ok(())
                }

                async fn insert_session_with_event(
                    &self,
                    session: &SessionRecord,
                    event: &AuditEvent,
                ) -> StoreResult<()> {
                    if $one_statement_code_writes {
                        let query =
                            bind_session(::sqlx::query(q::INSERT_SESSION_WITH_EVENT), session);
                        bind_event(query, event)
                            .execute(&self.pool)
                            .await
                            .map_err(db_err)?;
                        return Ok(());
                    }
                    let mut tx = begin_write(&self.pool).await?;
                    bind_event(::sqlx::query(q::INSERT_EVENT), event)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    bind_session(::sqlx::query(q::INSERT_SESSION), session)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    commit(tx).await
                }

                async fn get_session(
                    &self,
                    session_hash: &[u8],
                    now: i64,
                ) -> StoreResult<Option<SessionRecord>> {
                    ::sqlx::query(q::GET_SESSION)
                        .bind(session_hash)
                        .bind(now)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err)?
                        .as_ref()
                        .map(session_from_row)
                        .transpose()
                }

                async fn get_session_view(
                    &self,
                    session_hash: &[u8],
                    now: i64,
                    client_id: &str,
                ) -> StoreResult<Option<SessionView>> {
                    let row = ::sqlx::query(q::GET_SESSION_VIEW)
                        .bind(session_hash)
                        .bind(now)
                        .bind(client_id)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err)?;
                    row.as_ref().map(session_view_from_row).transpose()
                }

                async fn delete_session(&self, session_hash: &[u8]) -> StoreResult<()> {
                    ::sqlx::query(q::DELETE_SESSION)
                        .bind(session_hash)
                        .execute(&self.pool)
                        .await
                        .map_err(db_err)?;
                    Ok(())
                }

                async fn delete_sessions_for_user(&self, sub: &str) -> StoreResult<u64> {
                    let result = ::sqlx::query(q::DELETE_SESSIONS_OF_USER)
                        .bind(sub)
                        .execute(&self.pool)
                        .await
                        .map_err(db_err)?;
                    Ok(result.rows_affected())
                }
            }

            #[async_trait]
            impl InteractionStore for $store {
                async fn finish_interaction(
                    &self,
                    interaction_id: &str,
                    expires_at: i64,
                ) -> StoreResult<bool> {
                    mark_finished(&self.pool, interaction_id, expires_at).await
                }

                async fn finish_interaction_with_code(
                    &self,
                    finish: &InteractionFinish<'_>,
                ) -> StoreResult<bool> {
                    let code = finish.code;
                    if $one_statement_code_writes {
                        let result =
                            bind_code(::sqlx::query(q::FINISH_INTERACTION_WITH_CODE), code)
                                .bind(finish.grant_expires_at)
                                .bind(finish.interaction_id)
                                .bind(finish.interaction_expires_at)
                                .execute(&self.pool)
                                .await
                                .map_err(db_err)?;
                        return Ok(result.rows_affected() == 1);
                    }
                    let mut tx = begin_write(&self.pool).await?;
                    if !mark_finished(
                        &mut *tx,
                        finish.interaction_id,
                        finish.interaction_expires_at,
                    )
                    .await?
                    {
                        // Dropping the transaction rolls it back; nothing was written.
                        return Ok(false);
                    }
                    insert_grant_with(&mut *tx, &code_grant(code, finish.grant_expires_at)).await?;
                    bind_code(::sqlx::query(q::INSERT_CODE), code)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    commit(tx).await?;
                    Ok(true)
                }

                async fn finish_consent(
                    &self,
                    finish: &ConsentFinish<'_>,
                ) -> StoreResult<ConsentOutcome> {
                    let now = finish.code.created_at;
                    if $one_statement_code_writes {
                        let query = bind_code(::sqlx::query(q::FINISH_CONSENT), finish.code)
                            .bind(finish.grant_expires_at)
                            .bind(finish.interaction_id)
                            .bind(finish.interaction_expires_at)
                            .bind(finish.session_hash)
                            .bind(finish.scope);
                        let row = bind_event(query, finish.event)
                            .bind(finish.session_sid)
                            .fetch_one(&self.pool)
                            .await
                            .map_err(db_err)?;
                        let sessions: i64 = col(&row, "sessions")?;
                        let issued: i64 = col(&row, "issued")?;
                        return Ok(match (sessions, issued) {
                            (0, _) => ConsentOutcome::NoSession,
                            (_, 0) => ConsentOutcome::AlreadyFinished,
                            _ => ConsentOutcome::Issued {
                                user_sub: col(&row, "user_sub")?,
                            },
                        });
                    }
                    let mut tx = begin_write(&self.pool).await?;
                    let client_id = &finish.code.client_id;
                    let view = ::sqlx::query(q::GET_SESSION_VIEW)
                        .bind(finish.session_hash)
                        .bind(now)
                        .bind(client_id)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    let view = view.as_ref().map(session_view_from_row).transpose()?;
                    let Some(SessionView {
                        session,
                        user_disabled: false,
                        consented_scope: before,
                        ..
                    }) = view.filter(|v| v.session.sid == finish.session_sid)
                    else {
                        return Ok(ConsentOutcome::NoSession);
                    };
                    if !mark_finished(
                        &mut *tx,
                        finish.interaction_id,
                        finish.interaction_expires_at,
                    )
                    .await?
                    {
                        return Ok(ConsentOutcome::AlreadyFinished);
                    }
                    ::sqlx::query(q::SAVE_CONSENT)
                        .bind(&session.user_sub)
                        .bind(client_id)
                        .bind(sql::merge_scopes(before.as_deref(), finish.scope))
                        .bind(now)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    let event = AuditEvent {
                        user_sub: Some(session.user_sub.clone()),
                        ..finish.event.clone()
                    };
                    bind_event(::sqlx::query(q::INSERT_EVENT), &event)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    let code = AuthCodeRecord {
                        user_sub: session.user_sub.clone(),
                        sid: session.sid,
                        auth_time: session.auth_time,
                        amr: session.amr,
                        ..finish.code.clone()
                    };
                    insert_grant_with(&mut *tx, &code_grant(&code, finish.grant_expires_at))
                        .await?;
                    bind_code(::sqlx::query(q::INSERT_CODE), &code)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    commit(tx).await?;
                    Ok(ConsentOutcome::Issued {
                        user_sub: session.user_sub,
                    })
                }
            }

            #[async_trait]
            impl AuthCodeStore for $store {
                async fn insert_code(
                    &self,
                    code: &AuthCodeRecord,
                    grant_expires_at: i64,
                ) -> StoreResult<()> {
                    if $one_statement_code_writes {
                        bind_code(::sqlx::query(q::INSERT_GRANT_AND_CODE), code)
                            .bind(grant_expires_at)
                            .execute(&self.pool)
                            .await
                            .map_err(db_err)?;
                        return Ok(());
                    }
                    let mut tx = begin_write(&self.pool).await?;
                    insert_grant_with(&mut *tx, &code_grant(code, grant_expires_at)).await?;
                    bind_code(::sqlx::query(q::INSERT_CODE), code)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    commit(tx).await
                }

                async fn consume_code(
                    &self,
                    code_hash: &[u8],
                    now: i64,
                    grant_expires_at: i64,
                ) -> StoreResult<CodeRedemption> {
                    if $one_statement_code_writes {
                        let consumed = ::sqlx::query(q::CONSUME_CODE_AND_EXTEND_GRANT)
                            .bind(code_hash)
                            .bind(now)
                            .bind(grant_expires_at)
                            .fetch_optional(&self.pool)
                            .await
                            .map_err(db_err)?;
                        if let Some(row) = consumed {
                            return Ok(CodeRedemption::Redeemed(code_from_row(&row)?));
                        }
                        return unredeemed(&self.pool, code_hash).await;
                    }
                    let mut tx = begin_write(&self.pool).await?;
                    let consumed = ::sqlx::query(q::CONSUME_CODE)
                        .bind(code_hash)
                        .bind(now)
                        .fetch_all(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    let outcome = match consumed.first() {
                        Some(row) => {
                            let code = code_from_row(row)?;
                            ::sqlx::query(q::EXTEND_GRANT)
                                .bind(&code.grant_id)
                                .bind(grant_expires_at)
                                .execute(&mut *tx)
                                .await
                                .map_err(db_err)?;
                            CodeRedemption::Redeemed(code)
                        }
                        None => unredeemed(&mut *tx, code_hash).await?,
                    };
                    commit(tx).await?;
                    Ok(outcome)
                }
            }

            #[async_trait]
            impl GrantStore for $store {
                async fn insert_grant(&self, grant: &GrantRecord) -> StoreResult<()> {
                    insert_grant_with(&self.pool, grant).await
                }

                async fn get_grant(&self, grant_id: &str) -> StoreResult<Option<GrantRecord>> {
                    ::sqlx::query(q::GET_GRANT)
                        .bind(grant_id)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err)?
                        .as_ref()
                        .map(grant_from_row)
                        .transpose()
                }

                async fn revoke_grant(&self, grant_id: &str, now: i64) -> StoreResult<()> {
                    let mut tx = begin_write(&self.pool).await?;
                    ::sqlx::query(q::REVOKE_GRANT)
                        .bind(grant_id)
                        .bind(now)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    ::sqlx::query(q::DELETE_REFRESH_TOKENS_OF_GRANT)
                        .bind(grant_id)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    commit(tx).await
                }

                async fn revoke_grants_for_user(
                    &self,
                    sub: &str,
                    client_id: Option<&str>,
                    now: i64,
                ) -> StoreResult<u64> {
                    let mut tx = begin_write(&self.pool).await?;
                    let revoked = ::sqlx::query(q::REVOKE_GRANTS_OF_USER)
                        .bind(sub)
                        .bind(client_id)
                        .bind(now)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?
                        .rows_affected();
                    ::sqlx::query(q::DELETE_REFRESH_TOKENS_OF_USER)
                        .bind(sub)
                        .bind(client_id)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    commit(tx).await?;
                    Ok(revoked)
                }
            }

            #[async_trait]
            impl RefreshTokenStore for $store {
                async fn insert_refresh_token(
                    &self,
                    token: &RefreshTokenRecord,
                ) -> StoreResult<()> {
                    insert_refresh_with(&self.pool, token).await
                }

                async fn rotate_refresh_token(
                    &self,
                    old_hash: &[u8],
                    new: &RefreshTokenRecord,
                    now: i64,
                ) -> StoreResult<Rotation> {
                    // The conditional update is the first statement, so the row lock
                    // (Postgres) or write lock (SQLite) is taken before anything is read.
                    let mut tx = begin_write(&self.pool).await?;
                    let rotated = ::sqlx::query(q::ROTATE_REFRESH_TOKEN)
                        .bind(old_hash)
                        .bind(now)
                        .fetch_all(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    let Some(row) = rotated.first() else {
                        let state = ::sqlx::query(q::REFRESH_TOKEN_STATE)
                            .bind(old_hash)
                            .fetch_optional(&mut *tx)
                            .await
                            .map_err(db_err)?;
                        return match state {
                            Some(row) if col::<bool>(&row, "reused")? => Ok(Rotation::Reused {
                                grant_id: col(&row, "grant_id")?,
                            }),
                            _ => Ok(Rotation::Invalid),
                        };
                    };
                    let old = refresh_from_row(row)?;
                    insert_refresh_with(&mut *tx, new).await?;
                    commit(tx).await?;
                    Ok(Rotation::Rotated(old))
                }

                async fn rotated_token_grant(
                    &self,
                    token_hash: &[u8],
                ) -> StoreResult<Option<String>> {
                    ::sqlx::query_scalar(q::ROTATED_TOKEN_GRANT)
                        .bind(token_hash)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err)
                }

                async fn get_refresh_token(
                    &self,
                    token_hash: &[u8],
                    now: i64,
                ) -> StoreResult<Option<RefreshTokenRecord>> {
                    ::sqlx::query(q::GET_REFRESH_TOKEN)
                        .bind(token_hash)
                        .bind(now)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err)?
                        .as_ref()
                        .map(refresh_from_row)
                        .transpose()
                }
            }

            async fn insert_refresh_with<'c, E>(
                executor: E,
                token: &RefreshTokenRecord,
            ) -> StoreResult<()>
            where
                E: ::sqlx::Executor<'c, Database = $db>,
            {
                ::sqlx::query(q::INSERT_REFRESH_TOKEN)
                    .bind(&token.token_hash)
                    .bind(&token.grant_id)
                    .bind(&token.client_id)
                    .bind(&token.user_sub)
                    .bind(&token.scope)
                    .bind(&token.sid)
                    .bind(token.auth_time)
                    .bind(&token.amr)
                    .bind(token.resource.as_deref())
                    .bind(token.created_at)
                    .bind(token.idle_expires_at)
                    .bind(token.expires_at)
                    .execute(executor)
                    .await
                    .map_err(db_err)?;
                Ok(())
            }

            #[async_trait]
            impl RevocationStore for $store {
                async fn revoke_access_token(&self, jti: &str, expires_at: i64) -> StoreResult<()> {
                    ::sqlx::query(q::REVOKE_ACCESS_TOKEN)
                        .bind(jti)
                        .bind(expires_at)
                        .execute(&self.pool)
                        .await
                        .map_err(db_err)?;
                    Ok(())
                }

                async fn is_access_token_revoked(
                    &self,
                    jti: &str,
                    grant_id: Option<&str>,
                ) -> StoreResult<bool> {
                    let row = ::sqlx::query(q::IS_ACCESS_TOKEN_REVOKED)
                        .bind(jti)
                        .bind(grant_id)
                        .fetch_one(&self.pool)
                        .await
                        .map_err(db_err)?;
                    col(&row, "revoked")
                }
            }

            #[async_trait]
            impl ConsentStore for $store {
                async fn get_consent(
                    &self,
                    sub: &str,
                    client_id: &str,
                ) -> StoreResult<Option<ConsentRecord>> {
                    ::sqlx::query(q::GET_CONSENT)
                        .bind(sub)
                        .bind(client_id)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err)?
                        .as_ref()
                        .map(consent_from_row)
                        .transpose()
                }

                async fn save_consent(&self, consent: &ConsentRecord) -> StoreResult<()> {
                    ::sqlx::query(q::SAVE_CONSENT)
                        .bind(&consent.user_sub)
                        .bind(&consent.client_id)
                        .bind(&consent.scope)
                        .bind(consent.updated_at)
                        .execute(&self.pool)
                        .await
                        .map_err(db_err)?;
                    Ok(())
                }

                async fn delete_consent(&self, sub: &str, client_id: &str) -> StoreResult<bool> {
                    let result = ::sqlx::query(q::DELETE_CONSENT)
                        .bind(sub)
                        .bind(client_id)
                        .execute(&self.pool)
                        .await
                        .map_err(db_err)?;
                    Ok(result.rows_affected() > 0)
                }

                async fn list_consents(&self, sub: &str) -> StoreResult<Vec<ConsentRecord>> {
                    ::sqlx::query(q::LIST_CONSENTS)
                        .bind(sub)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db_err)?
                        .iter()
                        .map(consent_from_row)
                        .collect()
                }
            }

            #[async_trait]
            impl KeyStore for $store {
                async fn list_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
                    ::sqlx::query(q::LIST_KEYS)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db_err)?
                        .iter()
                        .map(key_from_row)
                        .collect()
                }

                async fn rotate_keys(
                    &self,
                    new_keys: &[SigningKeyRecord],
                    now: i64,
                ) -> StoreResult<()> {
                    // Bumping first takes the 'keys' row lock before anything else, which
                    // serialises this against other rotations and initial insertions.
                    let mut tx = begin_write(&self.pool).await?;
                    bump_version(&mut tx, q::KEYS_VERSION).await?;
                    ::sqlx::query(q::RETIRE_KEYS)
                        .bind(now)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    insert_keys_in(&mut tx, new_keys).await?;
                    commit(tx).await
                }

                async fn insert_initial_keys(
                    &self,
                    keys: &[SigningKeyRecord],
                ) -> StoreResult<bool> {
                    if keys.is_empty() {
                        return Ok(false);
                    }
                    let mut tx = begin_write(&self.pool).await?;
                    ::sqlx::query(q::LOCK_KEYS)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    // Read after taking the lock: a node that waited for another one's
                    // insertion sees its keys here (each Postgres statement reads the latest
                    // committed data) and backs off.
                    let row = ::sqlx::query(q::ANY_KEY)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    if col::<bool>(&row, "present")? {
                        return Ok(false);
                    }
                    insert_keys_in(&mut tx, keys).await?;
                    bump_version(&mut tx, q::KEYS_VERSION).await?;
                    commit(tx).await?;
                    Ok(true)
                }

                async fn delete_retired_keys(&self, retired_before: i64) -> StoreResult<u64> {
                    let result = ::sqlx::query(q::DELETE_RETIRED_KEYS)
                        .bind(retired_before)
                        .execute(&self.pool)
                        .await
                        .map_err(db_err)?;
                    Ok(result.rows_affected())
                }
            }

            #[async_trait]
            impl ThrottleStore for $store {
                async fn latest_lock(&self, keys: &[&str], now: i64) -> StoreResult<Option<i64>> {
                    let (first, second) = sql::key_pair(keys);
                    ::sqlx::query_scalar(q::LATEST_LOCK)
                        .bind(first)
                        .bind(second)
                        .bind(now)
                        .fetch_one(&self.pool)
                        .await
                        .map_err(db_err)
                }

                async fn count_attempt(
                    &self,
                    key: &str,
                    rule: &ThrottleRule,
                    now: i64,
                ) -> StoreResult<AttemptCount> {
                    let counted = ::sqlx::query(q::COUNT_ATTEMPT)
                        .bind(key)
                        .bind(now)
                        .bind(rule.window)
                        .bind(rule.free)
                        .bind(rule.max_delay)
                        .bind(rule.lockout_after)
                        .bind(rule.lockout)
                        .bind(rule.lock_after(1, now))
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err)?;
                    if let Some(row) = counted {
                        return Ok(AttemptCount::Counted {
                            attempts: col(&row, "attempts")?,
                            locked_until: col(&row, "locked_until")?,
                        });
                    }
                    // Refused: read the lock for the caller's Retry-After. A row that vanished
                    // in between (purged) still refuses this attempt, for a second.
                    let locked_until: Option<i64> = ::sqlx::query_scalar(q::THROTTLE_LOCK)
                        .bind(key)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err)?;
                    Ok(AttemptCount::Refused {
                        locked_until: locked_until.unwrap_or(now + 1).max(now + 1),
                    })
                }

                async fn settle_success(
                    &self,
                    clear: Option<&str>,
                    release: Option<(&str, &ThrottleRule)>,
                ) -> StoreResult<()> {
                    if $one_statement_code_writes
                        && let (Some(clear), Some((key, rule))) = (clear, release)
                    {
                        ::sqlx::query(q::SETTLE_SUCCESS)
                            .bind(key)
                            .bind(rule.free)
                            .bind(clear)
                            .execute(&self.pool)
                            .await
                            .map_err(db_err)?;
                        return Ok(());
                    }
                    if let Some(clear) = clear {
                        ::sqlx::query(q::CLEAR_ATTEMPTS)
                            .bind(clear)
                            .execute(&self.pool)
                            .await
                            .map_err(db_err)?;
                    }
                    if let Some((key, rule)) = release {
                        ::sqlx::query(q::RELEASE_ATTEMPT)
                            .bind(key)
                            .bind(rule.free)
                            .execute(&self.pool)
                            .await
                            .map_err(db_err)?;
                    }
                    Ok(())
                }
            }

            #[async_trait]
            impl AuditStore for $store {
                async fn record_event(&self, event: &AuditEvent) -> StoreResult<()> {
                    bind_event(::sqlx::query(q::INSERT_EVENT), event)
                        .execute(&self.pool)
                        .await
                        .map_err(db_err)?;
                    Ok(())
                }

                async fn list_events(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditEvent>> {
                    let rows = ::sqlx::query(q::LIST_EVENTS)
                        .bind(&filter.kind)
                        .bind(&filter.user_sub)
                        .bind(&filter.client_id)
                        .bind(filter.since)
                        .bind(filter.before)
                        .bind(i64::from(filter.limit))
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db_err)?;
                    rows.iter()
                        .map(|row| {
                            Ok(AuditEvent {
                                event_id: col(row, "event_id")?,
                                occurred_at: col(row, "occurred_at")?,
                                kind: col(row, "kind")?,
                                user_sub: col(row, "user_sub")?,
                                client_id: col(row, "client_id")?,
                                ip: col(row, "ip")?,
                                detail: col(row, "detail")?,
                            })
                        })
                        .collect()
                }
            }

            #[async_trait]
            impl Housekeeping for $store {
                async fn purge_expired(&self, now: i64, batch: u32) -> StoreResult<u64> {
                    // Each statement commits on its own: short transactions keep the locks
                    // brief, and a node that dies half-way leaves nothing inconsistent.
                    let mut purged = 0;
                    for statement in PURGE {
                        purged += ::sqlx::query(statement)
                            .bind(now)
                            .bind(i64::from(batch))
                            .execute(&self.pool)
                            .await
                            .map_err(db_err)?
                            .rows_affected();
                    }
                    Ok(purged)
                }

                async fn change_versions(&self) -> StoreResult<ChangeVersions> {
                    let rows = ::sqlx::query(q::CHANGE_VERSIONS)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db_err)?;
                    let mut versions = ChangeVersions::default();
                    for row in &rows {
                        let name: String = col(row, "name")?;
                        let version: i64 = col(row, "version")?;
                        match name.as_str() {
                            q::CLIENTS_VERSION => versions.clients = version,
                            q::KEYS_VERSION => versions.keys = version,
                            _ => {}
                        }
                    }
                    Ok(versions)
                }

                async fn ping(&self) -> StoreResult<()> {
                    ::sqlx::query("SELECT 1")
                        .execute(&self.pool)
                        .await
                        .map_err(db_err)?;
                    Ok(())
                }

                async fn migrate(&self) -> StoreResult<()> {
                    <$store>::migrate(self).await
                }

                fn pool_stats(&self) -> $crate::store::PoolStats {
                    $crate::store::PoolStats {
                        size: self.pool.size(),
                        idle: self.pool.num_idle(),
                    }
                }
            }
        };
    };
}
pub(super) use impl_sql_store;
