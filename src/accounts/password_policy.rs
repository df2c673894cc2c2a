//! What a password chosen by its user must be (NIST SP 800-63B §5.1.1.2): at least
//! `MIN_PASSWORD_LEN` characters, and not one that attackers try first. No composition
//! rules (no "one digit, one symbol"): they make passwords harder to remember, not to guess.
//!
//! "Tried first" is decided by `zxcvbn`, a well-kept estimator that carries the data this
//! needs: 30 000 of the most common passwords (from leaked password sets), common names
//! and words, and the patterns people use to stretch them (repeats, sequences, keyboard
//! walks, dates, l33t spellings), plus what we pass in about the user (their username and
//! address). A password it expects to fall within about a million guesses (its scores 0
//! and 1) is refused: every entry of the common-password list is, and so is `alice2024`
//! for the user alice.
//!
//! Used where a person chooses their own password (the reset link, sign-up, the account
//! page's password change); operators setting one through the admin API or CLI get the
//! length check only.

use super::password::check_new_password;

/// How many characters the estimator looks at: its cost grows fast with length, and a
/// password this long is no quick guess whatever it holds.
const ESTIMATE_CHARS: usize = 64;

/// Why a chosen password was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weakness {
    /// Too short or too long (the reason, in words).
    Length(&'static str),
    /// Among the passwords attackers try first.
    Guessable,
}

/// Checks a password a person chose; `context` holds what an attacker knows of them
/// (username, address).
pub fn check(password: &str, context: &[&str]) -> Result<(), Weakness> {
    check_new_password(password).map_err(Weakness::Length)?;
    let head: String = password.chars().take(ESTIMATE_CHARS).collect();
    let estimate = zxcvbn::zxcvbn(&head, context);
    if estimate.score() < zxcvbn::Score::Two {
        return Err(Weakness::Guessable);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_and_derived_passwords_are_refused_long_unusual_ones_pass() {
        let check_one = |password: &str, expected: Result<(), Weakness>| {
            assert_eq!(
                check(password, &["alice", "alice@example.com"]),
                expected,
                "{password}"
            );
        };
        check_one(
            "short",
            Err(Weakness::Length(
                "password must be at least 8 characters long",
            )),
        );
        check_one("password", Err(Weakness::Guessable));
        check_one("12345678", Err(Weakness::Guessable));
        check_one("iloveyou", Err(Weakness::Guessable));
        check_one("qwertyuiop", Err(Weakness::Guessable));
        check_one("aaaaaaaaaaaa", Err(Weakness::Guessable));
        check_one("alice2024", Err(Weakness::Guessable));
        check_one("correct horse battery staple", Ok(()));
        check_one("Vintage-Lantern-Oboe-47", Ok(()));
        // No composition rules: lower-case words alone are fine when they are not common.
        check_one("umbrella quinoa trombone", Ok(()));
        // Long input is cut before estimating, not refused.
        check_one(&"x7Gq!".repeat(100), Ok(()));
    }
}
