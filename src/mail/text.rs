//! The words of every mail, per language. A message is written in the user's `locale`
//! claim, else in the language of the request that caused it; English when neither is known.

pub struct MailText {
    pub lang: &'static str,
    pub greeting: &'static str,
    pub reset_subject: &'static str,
    pub reset_intro: &'static str,
    pub reset_button: &'static str,
    pub reset_valid: &'static str,
    pub reset_ignore: &'static str,
    pub verify_subject: &'static str,
    pub verify_intro: &'static str,
    pub verify_button: &'static str,
    pub verify_valid: &'static str,
    pub verify_ignore: &'static str,
    pub signup_subject: &'static str,
    pub signup_intro: &'static str,
    pub signup_button: &'static str,
    pub signup_valid: &'static str,
    pub signup_ignore: &'static str,
    pub changed_subject: &'static str,
    /// Followed by the new address.
    pub changed_intro: &'static str,
    pub changed_if_you: &'static str,
    pub changed_if_not: &'static str,
    pub changed_button: &'static str,
    pub sent_by: &'static str,
}

pub static EN: MailText = MailText {
    lang: "en",
    greeting: "Hello",
    reset_subject: "Reset your password",
    reset_intro: "Someone (hopefully you) asked to reset the password of your account. Open this link to choose a new one:",
    reset_button: "Choose a new password",
    reset_valid: "The link works once, for 30 minutes, and only until your password changes.",
    reset_ignore: "If you did not ask for this, ignore this mail: your password stays as it is.",
    verify_subject: "Confirm your email address",
    verify_intro: "Please confirm that this address belongs to your account by opening this link:",
    verify_button: "Confirm my address",
    verify_valid: "The link works once, for 24 hours.",
    verify_ignore: "If you did not expect this mail, you can ignore it.",
    signup_subject: "Confirm your address to finish signing up",
    signup_intro: "Thank you for signing up. Open this link to confirm your email address and finish creating your account:",
    signup_button: "Finish signing up",
    signup_valid: "The link works once, for 24 hours; until then there is no account.",
    signup_ignore: "If you did not sign up, ignore this mail: no account will be created.",
    changed_subject: "Your email address was changed",
    changed_intro: "The email address of your account was changed from this address to:",
    changed_if_you: "If you made this change, there is nothing more to do.",
    changed_if_not: "If you did not, someone else may be using your account: sign in, choose a new password, set your address back, and tell the people who run this service.",
    changed_button: "Open my account",
    sent_by: "Sent by the sign-in service of",
};

pub static DE: MailText = MailText {
    lang: "de",
    greeting: "Hallo",
    reset_subject: "Passwort zurücksetzen",
    reset_intro: "Jemand (hoffentlich Sie) hat verlangt, das Passwort Ihres Kontos zurückzusetzen. Öffnen Sie diesen Link, um ein neues zu wählen:",
    reset_button: "Neues Passwort wählen",
    reset_valid: "Der Link funktioniert einmal, 30 Minuten lang, und nur, solange Ihr Passwort unverändert ist.",
    reset_ignore: "Wenn Sie das nicht verlangt haben, ignorieren Sie diese Mail: Ihr Passwort bleibt, wie es ist.",
    verify_subject: "Bestätigen Sie Ihre E-Mail-Adresse",
    verify_intro: "Bitte bestätigen Sie, dass diese Adresse zu Ihrem Konto gehört, indem Sie diesen Link öffnen:",
    verify_button: "Adresse bestätigen",
    verify_valid: "Der Link funktioniert einmal, 24 Stunden lang.",
    verify_ignore: "Wenn Sie diese Mail nicht erwartet haben, können Sie sie ignorieren.",
    signup_subject: "Bestätigen Sie Ihre Adresse, um die Registrierung abzuschließen",
    signup_intro: "Danke für Ihre Registrierung. Öffnen Sie diesen Link, um Ihre E-Mail-Adresse zu bestätigen und Ihr Konto anzulegen:",
    signup_button: "Registrierung abschließen",
    signup_valid: "Der Link funktioniert einmal, 24 Stunden lang; bis dahin gibt es kein Konto.",
    signup_ignore: "Wenn Sie sich nicht registriert haben, ignorieren Sie diese Mail: Es wird kein Konto angelegt.",
    changed_subject: "Ihre E-Mail-Adresse wurde geändert",
    changed_intro: "Die E-Mail-Adresse Ihres Kontos wurde von dieser Adresse geändert in:",
    changed_if_you: "Wenn Sie das waren, ist nichts weiter zu tun.",
    changed_if_not: "Wenn nicht, verwendet vielleicht jemand anderes Ihr Konto: Melden Sie sich an, wählen Sie ein neues Passwort, stellen Sie Ihre Adresse wieder her und informieren Sie die Betreiber dieses Dienstes.",
    changed_button: "Mein Konto öffnen",
    sent_by: "Gesendet vom Anmeldedienst von",
};

/// The texts for a language tag or a list of them (`de-CH en`, `de,en;q=0.5`): the first
/// known primary language, else English.
pub fn for_language(tags: &str) -> &'static MailText {
    for tag in tags.split([' ', ',']) {
        let primary = tag
            .split([';', '-', '_'])
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match primary.as_str() {
            "en" => return &EN,
            "de" => return &DE,
            _ => {}
        }
    }
    &EN
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_are_picked_from_tags_and_lists() {
        let check = |tags: &str, lang: &str| assert_eq!(for_language(tags).lang, lang, "{tags}");
        check("de", "de");
        check("de-CH", "de");
        check("fr de", "de");
        check("fr-CH, de;q=0.8, en;q=0.5", "de");
        check("en-GB,de", "en");
        check("", "en");
        check("fr", "en");
    }
}
