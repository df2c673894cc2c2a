//! The commit mode of the interaction finishes. Their rows (a code the client receives in the
//! redirect, a consent the user was told is saved) are acknowledged as soon as the statement
//! returns, so they must commit synchronously: a relaxed commit (`sql::relaxed_commit!`) could
//! lose them in a primary's crash or failover (tests/failover/ shows it happening). The
//! failover test catches a regression only when a crash meets a finish in its last ~200 ms;
//! this catches it every time.

use super::{FINISH_CONSENT, FINISH_INTERACTION, FINISH_INTERACTION_WITH_CODE};

fn commits_synchronously(statement: &str) -> bool {
    !statement.contains("synchronous_commit")
}

#[test]
fn finishes_that_acknowledge_a_code_or_consent_commit_synchronously() {
    for (name, statement) in [
        ("FINISH_INTERACTION", FINISH_INTERACTION),
        ("FINISH_INTERACTION_WITH_CODE", FINISH_INTERACTION_WITH_CODE),
        ("FINISH_CONSENT", FINISH_CONSENT),
    ] {
        assert!(
            commits_synchronously(statement),
            "{name} must not turn synchronous_commit off: {statement}"
        );
    }
    // The check itself: the relaxed CTE is what it looks for.
    assert!(!commits_synchronously(crate::store::sql::relaxed_commit!()));
}
