//! The account page's profile: the standard claims (OpenID Connect Core §5.1) that the
//! operator lets users edit themselves (`LATCHKEY_ACCOUNT_EDITABLE_CLAIMS`).
//!
//! Only string claims a person can state about themselves are editable here: not `email`
//! (its own section, `email`, confirmed by a mailed link), not the `_verified` flags (proof, not statement), not `address`
//! (a structure). Each value is checked for its claim's shape (`EditableClaim::check`), and
//! the result is checked like an admin API patch (`protocol::admin::merge_claims`); the write
//! is one merge of the changed claims into the stored ones (`UserStore::patch_claims`), so a
//! claim the user did not change keeps whatever an operator or a verification gave it
//! meanwhile.

use std::net::IpAddr;

use serde_json::{Map, Value};

use super::super::session::Session;
use crate::app::App;
use crate::audit::{self, Event, Kind};
use crate::protocol::OAuthError;
use crate::protocol::admin::merge_claims;
use crate::protocol::user::UserClaims;

/// Longest value of an editable claim, in characters: ample for a name or a URL, and what an
/// account may store per claim however often it saves.
pub const MAX_CLAIM_CHARS: usize = 256;

/// A standard claim a user may be allowed to edit on the account page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EditableClaim {
    Name,
    GivenName,
    FamilyName,
    MiddleName,
    Nickname,
    PreferredUsername,
    Profile,
    Picture,
    Website,
    Gender,
    Birthdate,
    Zoneinfo,
    Locale,
    PhoneNumber,
}

/// Why a value was refused, for the message next to its field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    /// Longer than `MAX_CLAIM_CHARS`.
    TooLong,
    /// Control characters (a line break, a tab, …).
    Control,
    /// Not an `http` or `https` URL (profile, picture, website).
    NotUrl,
    /// Not `YYYY-MM-DD`, `YYYY` or `0000-MM-DD` naming a real day (birthdate).
    NotDate,
    /// Not a time zone name such as `Europe/Berlin` (zoneinfo).
    NotTimeZone,
    /// Not a language tag such as `de-DE` (locale).
    NotLocale,
    /// Not a phone number such as `+49 30 1234567` (phone_number).
    NotPhoneNumber,
}

impl EditableClaim {
    /// Every editable claim, in the order the page shows them.
    pub const ALL: [EditableClaim; 14] = [
        EditableClaim::Name,
        EditableClaim::GivenName,
        EditableClaim::MiddleName,
        EditableClaim::FamilyName,
        EditableClaim::Nickname,
        EditableClaim::PreferredUsername,
        EditableClaim::Profile,
        EditableClaim::Picture,
        EditableClaim::Website,
        EditableClaim::Gender,
        EditableClaim::Birthdate,
        EditableClaim::Zoneinfo,
        EditableClaim::Locale,
        EditableClaim::PhoneNumber,
    ];

    /// The claim's name on the wire (and the form field's).
    pub fn name(self) -> &'static str {
        match self {
            EditableClaim::Name => "name",
            EditableClaim::GivenName => "given_name",
            EditableClaim::FamilyName => "family_name",
            EditableClaim::MiddleName => "middle_name",
            EditableClaim::Nickname => "nickname",
            EditableClaim::PreferredUsername => "preferred_username",
            EditableClaim::Profile => "profile",
            EditableClaim::Picture => "picture",
            EditableClaim::Website => "website",
            EditableClaim::Gender => "gender",
            EditableClaim::Birthdate => "birthdate",
            EditableClaim::Zoneinfo => "zoneinfo",
            EditableClaim::Locale => "locale",
            EditableClaim::PhoneNumber => "phone_number",
        }
    }

    /// The editable claim called `name`; the error, for the configuration, says why another
    /// name is not one.
    pub fn parse(name: &str) -> Result<EditableClaim, String> {
        if let Some(claim) = Self::ALL.into_iter().find(|c| c.name() == name) {
            return Ok(claim);
        }
        Err(match name {
            "email" => "`email` has a section of its own on the account page (with mail on), \
                        not a profile field"
                .into(),
            "email_verified" | "phone_number_verified" => {
                format!("`{name}` records a proof, not something a user states")
            }
            "address" => "`address` is a structure, not editable on the account page".into(),
            "sub" => "`sub` never changes".into(),
            other => format!(
                "`{other}` is not an editable standard claim (one of {})",
                Self::ALL.map(Self::name).join(", ")
            ),
        })
    }

    /// The claim's current value in `claims`.
    pub fn value(self, claims: &UserClaims) -> Option<&str> {
        let value = match self {
            EditableClaim::Name => &claims.name,
            EditableClaim::GivenName => &claims.given_name,
            EditableClaim::FamilyName => &claims.family_name,
            EditableClaim::MiddleName => &claims.middle_name,
            EditableClaim::Nickname => &claims.nickname,
            EditableClaim::PreferredUsername => &claims.preferred_username,
            EditableClaim::Profile => &claims.profile,
            EditableClaim::Picture => &claims.picture,
            EditableClaim::Website => &claims.website,
            EditableClaim::Gender => &claims.gender,
            EditableClaim::Birthdate => &claims.birthdate,
            EditableClaim::Zoneinfo => &claims.zoneinfo,
            EditableClaim::Locale => &claims.locale,
            EditableClaim::PhoneNumber => &claims.phone_number,
        };
        value.as_deref()
    }

    /// Whether `value` (trimmed, not empty) has this claim's shape.
    pub fn check(self, value: &str) -> Result<(), Invalid> {
        if value.chars().count() > MAX_CLAIM_CHARS {
            return Err(Invalid::TooLong);
        }
        if value.chars().any(char::is_control) {
            return Err(Invalid::Control);
        }
        match self {
            EditableClaim::Profile | EditableClaim::Picture | EditableClaim::Website => {
                is_web_url(value).then_some(()).ok_or(Invalid::NotUrl)
            }
            EditableClaim::Birthdate => is_birthdate(value).then_some(()).ok_or(Invalid::NotDate),
            EditableClaim::Zoneinfo => is_time_zone(value)
                .then_some(())
                .ok_or(Invalid::NotTimeZone),
            EditableClaim::Locale => is_locale(value).then_some(()).ok_or(Invalid::NotLocale),
            EditableClaim::PhoneNumber => is_phone_number(value)
                .then_some(())
                .ok_or(Invalid::NotPhoneNumber),
            _ => Ok(()),
        }
    }
}

/// An absolute `http` or `https` URL with a host: what a relying party may put in a link or
/// an image without running a script (`javascript:`, `data:` are refused).
fn is_web_url(value: &str) -> bool {
    url::Url::parse(value)
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
}

/// OpenID Connect Core §5.1: `YYYY-MM-DD`, `YYYY` alone, or `0000-MM-DD` when the year is
/// left out; the day must exist (year 0000 is a leap year, so 29 February may stand alone).
fn is_birthdate(value: &str) -> bool {
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    let parts: Vec<&str> = value.split('-').collect();
    match parts.as_slice() {
        [year] => digits(year, 4),
        [year, month, day] if digits(year, 4) && digits(month, 2) && digits(day, 2) => {
            let (Ok(y), Ok(m), Ok(d)) = (year.parse::<i32>(), month.parse::<u8>(), day.parse())
            else {
                return false;
            };
            cookie::time::Month::try_from(m)
                .is_ok_and(|m| cookie::time::Date::from_calendar_date(y, m, d).is_ok())
        }
        _ => false,
    }
}

/// An IANA time zone name by its shape (`Europe/Berlin`, `America/Argentina/Buenos_Aires`,
/// `UTC`, `Etc/GMT+5`): segments of letters, digits, `_`, `+` and `-` between slashes,
/// starting with a letter. Whether the zone exists is left to the relying party.
fn is_time_zone(value: &str) -> bool {
    value.len() <= 64
        && value.starts_with(|c: char| c.is_ascii_alphabetic())
        && value.split('/').all(|segment| {
            !segment.is_empty()
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-'))
        })
}

/// A BCP 47 language tag by its shape (`de`, `de-DE`, `zh-Hant-TW`; OpenID Connect also
/// allows `_` as the separator): a 2 or 3 letter language, then subtags of 1 to 8 letters
/// or digits.
fn is_locale(value: &str) -> bool {
    let mut subtags = value.split(['-', '_']);
    let language = subtags.next().unwrap_or_default();
    (2..=3).contains(&language.len())
        && language.bytes().all(|b| b.is_ascii_alphabetic())
        && subtags
            .all(|s| (1..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// A phone number as people write one (E.164 recommended: `+49 30 1234567`): digits, with
/// `+` only in front and spaces, `(`, `)`, `-` and `.` between; 3 to 20 digits.
fn is_phone_number(value: &str) -> bool {
    let body = value.strip_prefix('+').unwrap_or(value);
    let digits = body.bytes().filter(u8::is_ascii_digit).count();
    (3..=20).contains(&digits)
        && body
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b' ' | b'(' | b')' | b'-' | b'.'))
}

/// One editable claim as the page shows it: its current value (or what the user just typed).
pub struct Field {
    pub claim: EditableClaim,
    pub value: String,
    pub invalid: Option<Invalid>,
}

/// The editable claims of `claims`, in the order the operator named them.
pub fn fields(editable: &[EditableClaim], claims: &UserClaims) -> Vec<Field> {
    editable
        .iter()
        .map(|claim| Field {
            claim: *claim,
            value: claim.value(claims).unwrap_or_default().to_owned(),
            invalid: None,
        })
        .collect()
}

/// What saving the profile came to.
pub enum Saved {
    /// The claims are stored (or nothing changed).
    Saved,
    /// Some values were refused; nothing was stored. The fields hold what was typed.
    Refused(Vec<Field>),
    /// The user is gone or disabled.
    SignedOut,
}

/// A claim the form must not carry: a standard claim the operator did not make editable.
/// The error names it.
pub fn refuse_uneditable(
    editable: &[EditableClaim],
    submitted: &[(&str, &str)],
) -> Result<(), OAuthError> {
    const PROVED_OR_STRUCTURED: [&str; 5] = [
        "email",
        "email_verified",
        "phone_number_verified",
        "address",
        "sub",
    ];
    for (name, _) in submitted {
        let standard = EditableClaim::ALL.iter().any(|c| c.name() == *name)
            || PROVED_OR_STRUCTURED.contains(name);
        if standard && !editable.iter().any(|c| c.name() == *name) {
            return Err(OAuthError::invalid_request(format!(
                "`{name}` cannot be changed on the account page"
            )));
        }
    }
    Ok(())
}

/// Saves the editable claims the form submitted (`submitted`: name and value; a claim not
/// submitted is left alone, an empty value removes the claim). Every value is checked first;
/// one refused value stores nothing. Changing the phone number drops its verification.
pub async fn save(
    app: &App,
    session: &Session,
    submitted: &[(&str, &str)],
    ip: Option<IpAddr>,
) -> Result<Saved, OAuthError> {
    let editable = &app.config.account_editable_claims;
    refuse_uneditable(editable, submitted)?;
    let user = match app.store.get_user(&session.user_sub).await? {
        Some(u) if !u.disabled => u,
        _ => return Ok(Saved::SignedOut),
    };
    let mut fields = fields(editable, &user.claims);
    let mut patch = Map::new();
    let mut refused = false;
    for field in &mut fields {
        let Some((_, typed)) = submitted.iter().find(|(n, _)| *n == field.claim.name()) else {
            continue;
        };
        let typed = typed.trim();
        if typed == field.value {
            continue;
        }
        field.value = typed.to_owned();
        if typed.is_empty() {
            patch.insert(field.claim.name().to_owned(), Value::Null);
        } else if let Err(invalid) = field.claim.check(typed) {
            field.invalid = Some(invalid);
            refused = true;
        } else {
            patch.insert(
                field.claim.name().to_owned(),
                Value::String(typed.to_owned()),
            );
        }
        if field.claim == EditableClaim::PhoneNumber {
            patch.insert("phone_number_verified".to_owned(), Value::Null);
        }
    }
    if refused {
        return Ok(Saved::Refused(fields));
    }
    if patch.is_empty() {
        return Ok(Saved::Saved);
    }
    // The admin API's rules on the result, so that the page can never store what an
    // operator could not.
    merge_claims(&user.claims, &patch)?;
    if !app.store.patch_claims(&user.sub, &patch, app.now()).await? {
        return Ok(Saved::SignedOut);
    }
    let changed: Vec<Value> = patch
        .keys()
        .filter(|k| k.as_str() != "phone_number_verified")
        .map(|k| Value::String(k.clone()))
        .collect();
    audit::record(
        app,
        Event::new(Kind::UserUpdated)
            .user(&user.sub)
            .ip(ip)
            .detail("by", "user")
            .detail("claims", changed),
    )
    .await;
    Ok(Saved::Saved)
}

#[cfg(test)]
mod tests;
