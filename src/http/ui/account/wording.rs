//! The words of the account page's own sections (password, email, profile, sessions), per
//! language; the page's other words are the shared `text::Text`. Kept apart so that the
//! account page's vocabulary (a label for every editable claim) does not crowd the pages of a
//! login.

use crate::accounts::account::password::Refusal;
use crate::accounts::account::profile::{EditableClaim, Invalid};

#[derive(serde::Serialize)]
pub struct AccountText {
    pub contents: &'static str,
    pub profile_title: &'static str,
    pub profile_save: &'static str,
    pub profile_saved: &'static str,
    pub profile_refused: &'static str,
    pub password_title: &'static str,
    pub current_password: &'static str,
    pub new_password: &'static str,
    pub password_hint: &'static str,
    pub password_change: &'static str,
    pub password_changed: &'static str,
    pub password_wrong: &'static str,
    pub password_too_short: &'static str,
    pub password_too_long: &'static str,
    pub password_guessable: &'static str,
    pub password_same: &'static str,
    /// In place of the change form, for a user without a password (created through an
    /// upstream).
    pub password_none: &'static str,
    /// Followed by a link to the reset form, when mail is on.
    pub password_set_by_mail: &'static str,
    pub password_set_link: &'static str,
    /// In place of the email form's password field, for a user without a password.
    pub email_needs_password: &'static str,
    pub email_title: &'static str,
    pub email_none: &'static str,
    pub email_verified: &'static str,
    pub email_unverified: &'static str,
    pub email_new: &'static str,
    pub email_hint: &'static str,
    pub email_change: &'static str,
    pub email_sent: &'static str,
    pub email_unchanged: &'static str,
    pub email_invalid: &'static str,
    pub sessions_title: &'static str,
    pub session_this: &'static str,
    pub session_unknown_device: &'static str,
    pub session_unknown_address: &'static str,
    pub session_started: &'static str,
    pub session_last_used: &'static str,
    pub session_sign_out: &'static str,
    pub sessions_sign_out_others: &'static str,
    pub session_ended: &'static str,
    pub sessions_ended: &'static str,
    pub sessions_more: &'static str,
    pub identities_title: &'static str,
    pub identities_none: &'static str,
    pub identity_subject: &'static str,
    pub identity_unlink: &'static str,
    /// Followed by the upstream's display name.
    pub identity_link: &'static str,
    pub identity_linked: &'static str,
    pub identity_unlinked: &'static str,
    pub identity_not_linked: &'static str,
    pub identity_last_way_in: &'static str,
    /// Labels of the editable claims, in `EditableClaim::ALL` order.
    pub claims: [&'static str; 14],
    pub invalid_too_long: &'static str,
    pub invalid_control: &'static str,
    pub invalid_url: &'static str,
    pub invalid_date: &'static str,
    pub invalid_time_zone: &'static str,
    pub invalid_locale: &'static str,
    pub invalid_phone_number: &'static str,
}

pub const EN: AccountText = AccountText {
    contents: "On this page",
    profile_title: "Your profile",
    profile_save: "Save profile",
    profile_saved: "Your profile was saved.",
    profile_refused: "Some values could not be saved. Please correct the fields marked below.",
    password_title: "Change password",
    current_password: "Current password",
    new_password: "New password",
    password_hint: "At least 8 characters, and not a password people often use. Changing it \
                    signs you out everywhere else.",
    password_change: "Change password",
    password_changed: "Your password was changed. You were signed out everywhere else.",
    password_wrong: "The current password is incorrect.",
    password_too_short: "The new password must be at least 8 characters long.",
    password_too_long: "The new password must be at most 1024 bytes long.",
    password_guessable: "This password is too easy to guess: it is one that many people use, \
                         or made from your name or address. Please choose another.",
    password_same: "The new password must differ from the current one.",
    password_none: "Your account has no password: you sign in through a linked provider or \
                    with a passkey.",
    password_set_by_mail: "To set a password as well, ask for a link by email:",
    password_set_link: "Set a password",
    email_needs_password: "Changing your address here needs your password, and your account \
                           has none.",
    email_title: "Email address",
    email_none: "You have no email address yet.",
    email_verified: "verified",
    email_unverified: "not verified yet",
    email_new: "New email address",
    email_hint: "We send a link to the new address; it counts as verified once you follow \
                 the link. Enter your current address again to get its link once more.",
    email_change: "Change email address",
    email_sent: "A link is on its way to the address. Follow it to verify the address.",
    email_unchanged: "This is already your verified address.",
    email_invalid: "Enter an email address such as name@example.com.",
    sessions_title: "Where you are signed in",
    session_this: "This device",
    session_unknown_device: "Unknown device",
    session_unknown_address: "unknown address",
    session_started: "Signed in",
    session_last_used: "Last used",
    session_sign_out: "Sign out",
    sessions_sign_out_others: "Sign out everywhere else",
    session_ended: "That session was signed out.",
    sessions_ended: "You were signed out everywhere else.",
    sessions_more: "Only the 50 most recently used sessions are listed; signing out everywhere \
                    else ends all of them.",
    identities_title: "Linked sign-ins",
    identities_none: "You sign in with no other provider yet.",
    identity_subject: "Account at the provider",
    identity_unlink: "Unlink",
    identity_link: "Link",
    identity_linked: "The sign-in was linked to your account.",
    identity_unlinked: "The sign-in was unlinked from your account.",
    identity_not_linked: "This account has no such linked sign-in.",
    identity_last_way_in: "This is your only way to sign in: add a passkey or link another \
                           sign-in first.",
    claims: [
        "Full name",
        "Given name",
        "Middle name",
        "Family name",
        "Nickname",
        "Preferred username",
        "Profile page (URL)",
        "Picture (URL)",
        "Website (URL)",
        "Gender",
        "Birthdate (YYYY-MM-DD)",
        "Time zone (e.g. Europe/Berlin)",
        "Language (e.g. en-GB)",
        "Phone number",
    ],
    invalid_too_long: "This is too long (at most 256 characters).",
    invalid_control: "This must be a single line of text.",
    invalid_url: "Enter a web address starting with https:// or http://.",
    invalid_date: "Enter a date as YYYY-MM-DD (or only the year, YYYY).",
    invalid_time_zone: "Enter a time zone name such as Europe/Berlin.",
    invalid_locale: "Enter a language tag such as en-GB.",
    invalid_phone_number: "Enter a phone number such as +49 30 1234567.",
};

pub const DE: AccountText = AccountText {
    contents: "Auf dieser Seite",
    profile_title: "Ihr Profil",
    profile_save: "Profil speichern",
    profile_saved: "Ihr Profil wurde gespeichert.",
    profile_refused: "Einige Angaben konnten nicht gespeichert werden. Bitte korrigieren Sie \
                      die markierten Felder.",
    password_title: "Passwort ändern",
    current_password: "Aktuelles Passwort",
    new_password: "Neues Passwort",
    password_hint: "Mindestens 8 Zeichen, und kein Passwort, das viele verwenden. Eine Änderung \
                    meldet Sie überall sonst ab.",
    password_change: "Passwort ändern",
    password_changed: "Ihr Passwort wurde geändert. Sie wurden überall sonst abgemeldet.",
    password_wrong: "Das aktuelle Passwort ist falsch.",
    password_too_short: "Das neue Passwort muss mindestens 8 Zeichen lang sein.",
    password_too_long: "Das neue Passwort darf höchstens 1024 Byte lang sein.",
    password_guessable: "Dieses Passwort ist zu leicht zu erraten: Viele verwenden es, oder es \
                         ist aus Ihrem Namen oder Ihrer Adresse gebildet. Bitte wählen Sie ein \
                         anderes.",
    password_same: "Das neue Passwort muss sich vom aktuellen unterscheiden.",
    password_none: "Ihr Konto hat kein Passwort: Sie melden sich über einen verknüpften \
                    Anbieter oder mit einem Passkey an.",
    password_set_by_mail: "Um zusätzlich ein Passwort festzulegen, fordern Sie einen Link per \
                           E-Mail an:",
    password_set_link: "Passwort festlegen",
    email_needs_password: "Um Ihre Adresse hier zu ändern, ist Ihr Passwort nötig, und Ihr \
                           Konto hat keines.",
    email_title: "E-Mail-Adresse",
    email_none: "Sie haben noch keine E-Mail-Adresse.",
    email_verified: "bestätigt",
    email_unverified: "noch nicht bestätigt",
    email_new: "Neue E-Mail-Adresse",
    email_hint: "Wir senden einen Link an die neue Adresse; sie gilt als bestätigt, sobald Sie \
                 ihm folgen. Geben Sie Ihre aktuelle Adresse erneut ein, um ihren Link noch \
                 einmal zu erhalten.",
    email_change: "E-Mail-Adresse ändern",
    email_sent: "Ein Link ist unterwegs an die Adresse. Folgen Sie ihm, um die Adresse zu \
                 bestätigen.",
    email_unchanged: "Das ist bereits Ihre bestätigte Adresse.",
    email_invalid: "Bitte eine E-Mail-Adresse wie name@example.com eingeben.",
    sessions_title: "Wo Sie angemeldet sind",
    session_this: "Dieses Gerät",
    session_unknown_device: "Unbekanntes Gerät",
    session_unknown_address: "unbekannte Adresse",
    session_started: "Angemeldet",
    session_last_used: "Zuletzt genutzt",
    session_sign_out: "Abmelden",
    sessions_sign_out_others: "Überall sonst abmelden",
    session_ended: "Diese Sitzung wurde abgemeldet.",
    sessions_ended: "Sie wurden überall sonst abgemeldet.",
    sessions_more: "Nur die 50 zuletzt genutzten Sitzungen werden gezeigt; „Überall sonst \
                    abmelden“ beendet alle.",
    identities_title: "Verknüpfte Anmeldungen",
    identities_none: "Sie melden sich noch bei keinem anderen Anbieter an.",
    identity_subject: "Konto beim Anbieter",
    identity_unlink: "Verknüpfung lösen",
    identity_link: "Verknüpfen mit",
    identity_linked: "Die Anmeldung wurde mit Ihrem Konto verknüpft.",
    identity_unlinked: "Die Verknüpfung wurde gelöst.",
    identity_not_linked: "Dieses Konto hat keine solche verknüpfte Anmeldung.",
    identity_last_way_in: "Das ist Ihre einzige Möglichkeit, sich anzumelden: Fügen Sie zuerst \
                           einen Passkey hinzu oder verknüpfen Sie eine weitere Anmeldung.",
    claims: [
        "Vollständiger Name",
        "Vorname",
        "Zweiter Vorname",
        "Nachname",
        "Spitzname",
        "Bevorzugter Benutzername",
        "Profilseite (URL)",
        "Bild (URL)",
        "Website (URL)",
        "Geschlecht",
        "Geburtsdatum (JJJJ-MM-TT)",
        "Zeitzone (z. B. Europe/Berlin)",
        "Sprache (z. B. de-DE)",
        "Telefonnummer",
    ],
    invalid_too_long: "Das ist zu lang (höchstens 256 Zeichen).",
    invalid_control: "Bitte nur eine Zeile Text.",
    invalid_url: "Bitte eine Webadresse eingeben, die mit https:// oder http:// beginnt.",
    invalid_date: "Bitte ein Datum als JJJJ-MM-TT eingeben (oder nur das Jahr, JJJJ).",
    invalid_time_zone: "Bitte einen Zeitzonennamen wie Europe/Berlin eingeben.",
    invalid_locale: "Bitte ein Sprachkürzel wie de-DE eingeben.",
    invalid_phone_number: "Bitte eine Telefonnummer wie +49 30 1234567 eingeben.",
};

/// The account page's words in the language `lang` of the shared `Text` (English when there
/// are none in it).
pub fn for_lang(lang: &str) -> &'static AccountText {
    match lang {
        "de" => &DE,
        _ => &EN,
    }
}

impl AccountText {
    pub fn claim_label(&self, claim: EditableClaim) -> &'static str {
        let index = EditableClaim::ALL
            .iter()
            .position(|c| *c == claim)
            .unwrap_or_default();
        self.claims[index]
    }

    pub fn invalid(&self, invalid: Invalid) -> &'static str {
        match invalid {
            Invalid::TooLong => self.invalid_too_long,
            Invalid::Control => self.invalid_control,
            Invalid::NotUrl => self.invalid_url,
            Invalid::NotDate => self.invalid_date,
            Invalid::NotTimeZone => self.invalid_time_zone,
            Invalid::NotLocale => self.invalid_locale,
            Invalid::NotPhoneNumber => self.invalid_phone_number,
        }
    }

    pub fn refusal(&self, refusal: Refusal) -> &'static str {
        match refusal {
            Refusal::TooShort => self.password_too_short,
            Refusal::TooLong => self.password_too_long,
            Refusal::Guessable => self.password_guessable,
            Refusal::SameAsCurrent => self.password_same,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_labels_every_claim() {
        for text in [&EN, &DE] {
            for claim in EditableClaim::ALL {
                assert!(!text.claim_label(claim).is_empty());
            }
        }
        assert_eq!(EN.claim_label(EditableClaim::PhoneNumber), "Phone number");
        assert_eq!(DE.claim_label(EditableClaim::Name), "Vollständiger Name");
        assert_eq!(for_lang("de").profile_title, "Ihr Profil");
        assert_eq!(for_lang("fr").profile_title, "Your profile");
    }
}
