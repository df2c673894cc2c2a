//! Every word the pages show, in one place per language, chosen by the visitor's pick in the
//! language switcher, else the request's `ui_locales` (OpenID Connect Core §3.1.2.1), else
//! `Accept-Language` (`for_locales`). Adding a language means adding one `Text` value, its tag
//! in `for_tag` and `protocol::discovery::UI_LOCALES`, and its name in `chrome::LANGUAGES`.

/// Serialized for template overrides, which see it as `t` like the built-in templates do.
#[derive(serde::Serialize)]
pub struct Text {
    pub lang: &'static str,
    pub language_switch: &'static str,
    pub show_password: &'static str,
    pub totp_qr: &'static str,
    pub error_code: &'static str,
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
    pub passkey_or: &'static str,
    pub passkey_sign_in: &'static str,
    pub passkey_failed: &'static str,
    pub passkeys_title: &'static str,
    pub passkeys_none: &'static str,
    pub passkey_created: &'static str,
    pub passkey_last_used: &'static str,
    pub passkey_never_used: &'static str,
    pub passkey_remove: &'static str,
    pub passkey_name: &'static str,
    pub passkey_add: &'static str,
    pub passkey_added: &'static str,
    pub passkey_add_failed: &'static str,
    pub passkey_needs_script: &'static str,
    pub otp_title: &'static str,
    pub otp_intro: &'static str,
    pub otp_intro_passkey: &'static str,
    pub otp_intro_passkey_recovery: &'static str,
    pub otp_recovery_label: &'static str,
    pub passkey_confirm: &'static str,
    pub passkey_confirm_failed: &'static str,
    pub passkey_sign_in_needs_script: &'static str,
    pub otp_label: &'static str,
    pub otp_button: &'static str,
    pub otp_failed: &'static str,
    pub totp_title: &'static str,
    pub totp_intro: &'static str,
    pub totp_secret: &'static str,
    pub totp_code: &'static str,
    pub totp_button: &'static str,
    pub totp_wrong: &'static str,
    pub recovery_title: &'static str,
    pub recovery_intro: &'static str,
    pub recovery_continue: &'static str,
    pub recovery_regenerate: &'static str,
    pub factors_title: &'static str,
    pub factors_none: &'static str,
    pub factor_remove: &'static str,
    pub factor_last_used: &'static str,
    pub factor_never_used: &'static str,
    pub totp_enrol: &'static str,
    pub factor_kind_totp: &'static str,
    pub factor_kind_recovery_codes: &'static str,
    /// Month names, January first, as a date in running text spells them.
    pub months: [&'static str; 12],
    /// How a date and time reads: `{day}`, `{month}`, `{year}` and `{time}` (24-hour, UTC)
    /// are filled in by `Text::when`.
    pub date_pattern: &'static str,
}

pub const EN: Text = Text {
    lang: "en",
    language_switch: "Language",
    show_password: "Show password",
    totp_qr: "QR code of the key below",
    error_code: "Error",
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
    logout_question: "Do you want to sign out?",
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
    passkey_or: "or",
    passkey_sign_in: "Sign in with a passkey",
    passkey_failed: "The passkey sign-in did not work. Try again, or use your password.",
    passkeys_title: "Passkeys",
    passkeys_none: "You have no passkeys yet.",
    passkey_created: "Added",
    passkey_last_used: "Last used",
    passkey_never_used: "never",
    passkey_remove: "Remove",
    passkey_name: "Name of the new passkey",
    passkey_add: "Add a passkey",
    passkey_added: "The passkey was added.",
    passkey_add_failed: "The passkey could not be added.",
    passkey_needs_script: "Adding a passkey needs JavaScript and a browser that supports passkeys.",
    otp_title: "Second step",
    otp_intro: "Enter the six-digit code from your authenticator app, or one of your recovery codes.",
    otp_intro_passkey: "Confirm that it is you with your passkey.",
    otp_intro_passkey_recovery: "Confirm that it is you with your passkey. If you cannot use it, enter one of your recovery codes.",
    otp_recovery_label: "Recovery code",
    passkey_confirm: "Use your passkey",
    passkey_confirm_failed: "That did not work. Try your passkey again.",
    passkey_sign_in_needs_script: "Using a passkey needs JavaScript and a browser that supports passkeys.",
    otp_label: "Code",
    otp_button: "Verify",
    otp_failed: "That code is not valid, or it was used before.",
    totp_title: "Set up an authenticator app",
    totp_intro: "Scan the QR code with your authenticator app, or type in the key below, then enter the code the app shows.",
    totp_secret: "Key",
    totp_code: "Code from the app",
    totp_button: "Confirm",
    totp_wrong: "That code does not match. Check the time on your device and try the current code.",
    recovery_title: "Your recovery codes",
    recovery_intro: "Keep these codes somewhere safe. Each works once, in place of a code from your app, if you lose it. They are shown only now.",
    recovery_continue: "Continue",
    recovery_regenerate: "New recovery codes",
    factors_title: "Second factors",
    factors_none: "You have no second factor yet.",
    factor_remove: "Remove",
    factor_last_used: "last used",
    factor_never_used: "never used",
    totp_enrol: "Set up an authenticator app",
    factor_kind_totp: "authenticator app",
    factor_kind_recovery_codes: "recovery codes",
    months: [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ],
    date_pattern: "{day} {month} {year}, {time} UTC",
};

pub const DE: Text = Text {
    lang: "de",
    language_switch: "Sprache",
    show_password: "Passwort anzeigen",
    totp_qr: "QR-Code des Schlüssels unten",
    error_code: "Fehler",
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
    logout_question: "Möchten Sie sich abmelden?",
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
    passkey_or: "oder",
    passkey_sign_in: "Mit einem Passkey anmelden",
    passkey_failed: "Die Anmeldung mit dem Passkey hat nicht geklappt. Versuchen Sie es erneut oder verwenden Sie Ihr Passwort.",
    passkeys_title: "Passkeys",
    passkeys_none: "Sie haben noch keine Passkeys.",
    passkey_created: "Hinzugefügt",
    passkey_last_used: "Zuletzt verwendet",
    passkey_never_used: "nie",
    passkey_remove: "Entfernen",
    passkey_name: "Name des neuen Passkeys",
    passkey_add: "Passkey hinzufügen",
    passkey_added: "Der Passkey wurde hinzugefügt.",
    passkey_add_failed: "Der Passkey konnte nicht hinzugefügt werden.",
    passkey_needs_script: "Zum Hinzufügen eines Passkeys werden JavaScript und ein Browser mit Passkey-Unterstützung benötigt.",
    otp_title: "Zweiter Schritt",
    otp_intro: "Geben Sie den sechsstelligen Code aus Ihrer Authenticator-App oder einen Ihrer Wiederherstellungscodes ein.",
    otp_intro_passkey: "Bestätigen Sie mit Ihrem Passkey, dass Sie es sind.",
    otp_intro_passkey_recovery: "Bestätigen Sie mit Ihrem Passkey, dass Sie es sind. Wenn das nicht geht, geben Sie einen Ihrer Wiederherstellungscodes ein.",
    otp_recovery_label: "Wiederherstellungscode",
    passkey_confirm: "Passkey verwenden",
    passkey_confirm_failed: "Das hat nicht geklappt. Versuchen Sie es noch einmal mit Ihrem Passkey.",
    passkey_sign_in_needs_script: "Für einen Passkey werden JavaScript und ein Browser mit Passkey-Unterstützung benötigt.",
    otp_label: "Code",
    otp_button: "Bestätigen",
    otp_failed: "Dieser Code ist ungültig oder wurde schon verwendet.",
    totp_title: "Authenticator-App einrichten",
    totp_intro: "Scannen Sie den QR-Code mit Ihrer Authenticator-App oder geben Sie den Schlüssel unten ein, dann den Code, den die App zeigt.",
    totp_secret: "Schlüssel",
    totp_code: "Code aus der App",
    totp_button: "Bestätigen",
    totp_wrong: "Dieser Code passt nicht. Prüfen Sie die Uhrzeit Ihres Geräts und versuchen Sie den aktuellen Code.",
    recovery_title: "Ihre Wiederherstellungscodes",
    recovery_intro: "Bewahren Sie diese Codes sicher auf. Jeder gilt einmal anstelle eines Codes aus Ihrer App, falls Sie diese verlieren. Sie werden nur jetzt angezeigt.",
    recovery_continue: "Weiter",
    recovery_regenerate: "Neue Wiederherstellungscodes",
    factors_title: "Zweite Faktoren",
    factors_none: "Sie haben noch keinen zweiten Faktor.",
    factor_remove: "Entfernen",
    factor_last_used: "zuletzt verwendet",
    factor_never_used: "nie verwendet",
    totp_enrol: "Authenticator-App einrichten",
    factor_kind_totp: "Authenticator-App",
    factor_kind_recovery_codes: "Wiederherstellungscodes",
    months: [
        "Januar",
        "Februar",
        "März",
        "April",
        "Mai",
        "Juni",
        "Juli",
        "August",
        "September",
        "Oktober",
        "November",
        "Dezember",
    ],
    date_pattern: "{day}. {month} {year}, {time} Uhr UTC",
};

/// The language of a page: the one the visitor picked with the switcher, else the first
/// supported language of the request's `ui_locales` (a space-separated list, matched on the
/// primary subtag), else the browser's `Accept-Language`, else English.
pub fn for_locales(ui_locales: Option<&str>) -> &'static Text {
    super::chrome::chosen_language()
        .or_else(|| ui_locales.unwrap_or("").split(' ').find_map(for_tag))
        .or_else(super::chrome::accepted_language)
        .unwrap_or(&EN)
}

/// The language of a page that belongs to no authorization request (the account page, an
/// error before the request is known): `for_locales` without `ui_locales`.
pub fn preferred() -> &'static Text {
    for_locales(None)
}

/// The text set of a language tag (`de`, `de-AT`, `EN`), when the pages speak it.
pub fn for_tag(tag: &str) -> Option<&'static Text> {
    let primary = tag.split('-').next().unwrap_or("").to_ascii_lowercase();
    match primary.as_str() {
        "en" => Some(&EN),
        "de" => Some(&DE),
        _ => None,
    }
}

/// The first supported language of an `Accept-Language` header (RFC 9110 §12.5.4), by
/// quality, else English: for pages outside an authorization request, which has its
/// `ui_locales`.
pub fn for_accept_language(header: Option<&str>) -> &'static Text {
    let mut ranked: Vec<(u16, usize, &str)> = header
        .unwrap_or("")
        .split(',')
        .enumerate()
        .filter_map(|(position, item)| {
            let mut parts = item.split(';');
            let tag = parts.next()?.trim();
            let quality = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .next()
                .map_or(Some(1000), |q| {
                    q.trim()
                        .parse::<f32>()
                        .ok()
                        .filter(|q| (0.0..=1.0).contains(q))
                        .map(|q| (q * 1000.0).round() as u16)
                })?;
            (quality > 0 && !tag.is_empty()).then_some((quality, position, tag))
        })
        .collect();
    // Highest quality first; equal ones in the order the browser sent them.
    ranked.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let tags: Vec<&str> = ranked.iter().map(|(_, _, tag)| *tag).collect();
    for_locales(Some(&tags.join(" ")))
}

impl Text {
    /// A Unix time as a person reads it in this language, in UTC (the server does not know
    /// the reader's time zone): `5 December 2026, 20:41 UTC`.
    pub fn when(&self, unix: i64) -> String {
        let Ok(t) = cookie::time::OffsetDateTime::from_unix_timestamp(unix) else {
            return String::new();
        };
        let month = self.months[usize::from(u8::from(t.month())) - 1];
        self.date_pattern
            .replace("{day}", &t.day().to_string())
            .replace("{month}", month)
            .replace("{year}", &t.year().to_string())
            .replace("{time}", &format!("{:02}:{:02}", t.hour(), t.minute()))
    }

    /// The same time for a `<time datetime>` attribute (RFC 3339, UTC).
    pub fn machine_time(unix: i64) -> String {
        match cookie::time::OffsetDateTime::from_unix_timestamp(unix) {
            Ok(t) => format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            ),
            Err(_) => String::new(),
        }
    }

    /// What a kind of factor is called on the account page.
    pub fn factor_kind(&self, kind: &str) -> String {
        match kind {
            "totp" => self.factor_kind_totp.to_owned(),
            "recovery_codes" => self.factor_kind_recovery_codes.to_owned(),
            other => other.to_owned(),
        }
    }

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
    fn times_read_in_the_pages_language() {
        // 2026-12-05 20:41:09 UTC.
        let at = 1_796_503_269;
        assert_eq!(EN.when(at), "5 December 2026, 20:41 UTC");
        assert_eq!(DE.when(at), "5. Dezember 2026, 20:41 Uhr UTC");
        assert_eq!(
            DE.when(at - 11 * 30 * 86_400 + 3 * 86_400),
            "12. Januar 2026, 20:41 Uhr UTC"
        );
        assert_eq!(Text::machine_time(at), "2026-12-05T20:41:09Z");
        assert_eq!(EN.when(i64::MAX), "", "out of range is shown as nothing");
    }

    #[test]
    fn accept_language_picks_by_quality() {
        let check = |header: Option<&str>, lang: &str| {
            assert_eq!(for_accept_language(header).lang, lang, "{header:?}");
        };
        check(None, "en");
        check(Some(""), "en");
        check(Some("de-DE,de;q=0.9,en;q=0.8"), "de");
        check(Some("fr, en;q=0.5, de;q=0.7"), "de");
        check(Some("de;q=0, en;q=0.1"), "en");
        check(Some("de;q=0"), "en");
        check(Some("de;q=2"), "en");
        check(Some("de;q=abc"), "en");
        check(Some("*;q=0.1, de-AT"), "de");
        check(Some(";;;,,,"), "en");
    }

    #[test]
    fn picks_the_first_supported_locale() {
        assert_eq!(for_locales(Some("fr-CA de-DE en")).lang, "de");
        assert_eq!(for_locales(Some("fr")).lang, "en");
        assert_eq!(for_locales(None).lang, "en");
        assert_eq!(for_locales(Some("")).lang, "en");
        assert_eq!(for_tag("DE-at").map(|t| t.lang), Some("de"));
        assert!(for_tag("*").is_none());
    }
}
