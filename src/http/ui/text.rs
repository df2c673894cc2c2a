//! Every word the login, consent and error pages show, in one place per language, chosen by
//! the request's `ui_locales` (OpenID Connect Core §3.1.2.1). Adding a language means adding
//! one `Text` value and its tag to `protocol::discovery::UI_LOCALES`.

pub struct Text {
    pub lang: &'static str,
    pub login_title: &'static str,
    pub login_intro: &'static str,
    pub username: &'static str,
    pub password: &'static str,
    pub sign_in: &'static str,
    pub or_continue_with: &'static str,
    pub continue_with: &'static str,
    pub login_failed: &'static str,
    pub consent_title: &'static str,
    pub consent_intro: &'static str,
    pub consent_signed_in_as: &'static str,
    pub allow: &'static str,
    pub deny: &'static str,
    pub error_title: &'static str,
    pub error_expired: &'static str,
    pub error_back: &'static str,
    pub throttled: &'static str,
    pub password_title: &'static str,
    pub password_intro: &'static str,
    pub new_password: &'static str,
    pub confirm_password: &'static str,
    pub password_button: &'static str,
    pub password_mismatch: &'static str,
    pub password_too_short: &'static str,
    pub password_same: &'static str,
    pub account_title: &'static str,
    pub account_sign_in: &'static str,
    pub account_apps: &'static str,
    pub account_no_apps: &'static str,
    pub account_withdraw: &'static str,
    pub logout_title: &'static str,
    pub logout_question: &'static str,
    pub logout_button: &'static str,
    pub logout_done: &'static str,
    pub form_post_title: &'static str,
    pub form_post_intro: &'static str,
    pub form_post_continue: &'static str,
    pub device_title: &'static str,
    pub device_intro: &'static str,
    pub device_code: &'static str,
    pub device_continue: &'static str,
    pub device_unknown: &'static str,
    pub device_asking: &'static str,
    pub device_approved: &'static str,
    pub device_denied: &'static str,
    pub scope_openid: &'static str,
    pub scope_profile: &'static str,
    pub scope_email: &'static str,
    pub scope_address: &'static str,
    pub scope_phone: &'static str,
    pub scope_offline_access: &'static str,
    pub scope_other: &'static str,
}

pub const EN: Text = Text {
    lang: "en",
    login_title: "Sign in",
    login_intro: "Sign in to continue to",
    username: "Username",
    password: "Password",
    sign_in: "Sign in",
    or_continue_with: "or",
    continue_with: "Continue with",
    login_failed: "The username or password is incorrect.",
    consent_title: "Allow access?",
    consent_intro: "wants to access your account. It will be able to use:",
    consent_signed_in_as: "Signed in as",
    allow: "Allow",
    deny: "Deny",
    error_title: "Something went wrong",
    error_expired: "This sign-in request has expired or was started in another browser. Go back to the application and start again.",
    error_back: "Go back to the application and try again.",
    throttled: "Too many failed attempts. Wait a moment and try again.",
    password_title: "Choose a new password",
    password_intro: "Your administrator asks you to choose a new password before you continue.",
    new_password: "New password",
    confirm_password: "New password, again",
    password_button: "Save and continue",
    password_mismatch: "The two passwords are not the same.",
    password_too_short: "The password must be at least 8 characters long.",
    password_same: "Choose a password different from the old one.",
    account_title: "Your account",
    account_sign_in: "your account",
    account_apps: "Applications you have given access",
    account_no_apps: "You have not given any application access.",
    account_withdraw: "Withdraw access",
    logout_title: "Sign out",
    logout_question: "Do you want to sign out of Latchkey?",
    logout_button: "Sign out",
    form_post_title: "Returning to the application",
    form_post_intro: "Your browser does not run scripts; press the button to return to the application.",
    form_post_continue: "Continue",
    device_title: "Connect a device",
    device_intro: "Enter the code your device shows you.",
    device_code: "Code",
    device_continue: "Continue",
    device_unknown: "This code is not valid, or it has expired. Check the code on your device.",
    device_asking: "A device is asking for access. Only allow it if you started this on a device of yours and it shows this code:",
    device_approved: "Done. You can return to your device.",
    device_denied: "The device was not given access. You can close this page.",
    logout_done: "You are signed out.",
    scope_openid: "who you are: your user identifier",
    scope_profile: "your name and profile details",
    scope_email: "your email address",
    scope_address: "your postal address",
    scope_phone: "your phone number",
    scope_offline_access: "stay signed in: access when you are not present",
    scope_other: "access to",
};

pub const DE: Text = Text {
    lang: "de",
    login_title: "Anmelden",
    login_intro: "Melden Sie sich an, um fortzufahren zu",
    username: "Benutzername",
    password: "Passwort",
    sign_in: "Anmelden",
    or_continue_with: "oder",
    continue_with: "Weiter mit",
    login_failed: "Benutzername oder Passwort ist falsch.",
    consent_title: "Zugriff erlauben?",
    consent_intro: "möchte auf Ihr Konto zugreifen. Die Anwendung erhält:",
    consent_signed_in_as: "Angemeldet als",
    allow: "Erlauben",
    deny: "Ablehnen",
    error_title: "Etwas ist schiefgegangen",
    error_expired: "Diese Anmeldeanfrage ist abgelaufen oder wurde in einem anderen Browser begonnen. Kehren Sie zur Anwendung zurück und beginnen Sie erneut.",
    error_back: "Kehren Sie zur Anwendung zurück und versuchen Sie es erneut.",
    throttled: "Zu viele Fehlversuche. Bitte warten Sie einen Moment.",
    password_title: "Neues Passwort wählen",
    password_intro: "Ihr Administrator bittet Sie, ein neues Passwort zu wählen, bevor Sie fortfahren.",
    new_password: "Neues Passwort",
    confirm_password: "Neues Passwort wiederholen",
    password_button: "Speichern und fortfahren",
    password_mismatch: "Die beiden Passwörter stimmen nicht überein.",
    password_too_short: "Das Passwort muss mindestens 8 Zeichen lang sein.",
    password_same: "Wählen Sie ein anderes Passwort als das bisherige.",
    account_title: "Ihr Konto",
    account_sign_in: "Ihrem Konto",
    account_apps: "Anwendungen mit Zugriff",
    account_no_apps: "Sie haben keiner Anwendung Zugriff gegeben.",
    account_withdraw: "Zugriff entziehen",
    logout_title: "Abmelden",
    logout_question: "Möchten Sie sich von Latchkey abmelden?",
    logout_button: "Abmelden",
    form_post_title: "Zurück zur Anwendung",
    form_post_intro: "Ihr Browser führt keine Skripte aus; bitte drücken Sie die Schaltfläche, um zur Anwendung zurückzukehren.",
    form_post_continue: "Weiter",
    device_title: "Gerät verbinden",
    device_intro: "Geben Sie den Code ein, den Ihr Gerät anzeigt.",
    device_code: "Code",
    device_continue: "Weiter",
    device_unknown: "Dieser Code ist ungültig oder abgelaufen. Bitte prüfen Sie den Code auf Ihrem Gerät.",
    device_asking: "Ein Gerät bittet um Zugriff. Erlauben Sie ihn nur, wenn Sie dies auf einem Ihrer Geräte begonnen haben und es diesen Code anzeigt:",
    device_approved: "Fertig. Sie können zu Ihrem Gerät zurückkehren.",
    device_denied: "Das Gerät hat keinen Zugriff erhalten. Sie können diese Seite schließen.",
    logout_done: "Sie sind abgemeldet.",
    scope_openid: "wer Sie sind: Ihre Benutzerkennung",
    scope_profile: "Ihren Namen und Ihre Profilangaben",
    scope_email: "Ihre E-Mail-Adresse",
    scope_address: "Ihre Postanschrift",
    scope_phone: "Ihre Telefonnummer",
    scope_offline_access: "angemeldet bleiben: Zugriff, auch wenn Sie nicht anwesend sind",
    scope_other: "Zugriff auf",
};

/// The first supported language of a space-separated `ui_locales` list (matching on the
/// primary subtag), else English.
pub fn for_locales(ui_locales: Option<&str>) -> &'static Text {
    for tag in ui_locales.unwrap_or("").split(' ') {
        let primary = tag.split('-').next().unwrap_or("").to_ascii_lowercase();
        match primary.as_str() {
            "en" => return &EN,
            "de" => return &DE,
            _ => {}
        }
    }
    &EN
}

impl Text {
    /// What a scope gives, in plain words.
    pub fn describe_scope(&self, scope: &str) -> String {
        match scope {
            "openid" => self.scope_openid.to_owned(),
            "profile" => self.scope_profile.to_owned(),
            "email" => self.scope_email.to_owned(),
            "address" => self.scope_address.to_owned(),
            "phone" => self.scope_phone.to_owned(),
            "offline_access" => self.scope_offline_access.to_owned(),
            other => format!("{} “{other}”", self.scope_other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_first_supported_locale() {
        assert_eq!(for_locales(Some("fr-CA de-DE en")).lang, "de");
        assert_eq!(for_locales(Some("fr")).lang, "en");
        assert_eq!(for_locales(None).lang, "en");
    }
}
