//! User profile claims (OpenID Connect Core §5.1) as the admin API takes and answers them,
//! and the rule for usernames (`canonical_username`, `normalize_username`).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfkc_quick};
use unicode_script::{Script, UnicodeScript};
use unicode_security::MixedScript;
use unicode_security::general_security_profile::{GeneralSecurityProfile, IdentifierType};

/// Longest username, in bytes of its normalised form: the login form refuses longer input
/// before any lookup (`accounts::login`), so a longer name could be created but never used.
pub const MAX_USERNAME_BYTES: usize = 256;

/// The form a username is stored and compared in: Unicode NFKC (UAX #15), so that
/// compatibility variants of one name (fullwidth `ａｌｉｃｅ`, ligatures such as `ﬁ`, a
/// no-break space, superscript digits) are the same name. Case is kept: usernames are
/// case-sensitive, as they always were.
///
/// At login, the typed name is looked up as typed first and, when no user has exactly that
/// name and this form differs from it, in this form: users created before usernames were
/// normalised keep the exact name they were created with, while a user created since is
/// found under any compatibility variant of their name. Most input (all ASCII) is already
/// normalised and costs one lookup, as before. The login throttle's account key should be
/// taken from this form, so that variants of one name share one counter.
pub fn normalize_username(typed: &str) -> Cow<'_, str> {
    if is_nfkc_quick(typed.chars()) == IsNormalized::Yes {
        return Cow::Borrowed(typed);
    }
    let normalized: String = typed.nfkc().collect();
    if normalized == typed {
        Cow::Borrowed(typed)
    } else {
        Cow::Owned(normalized)
    }
}

/// Checks a username given to the admin API or the CLI (creation or rename) and returns the
/// form to store: its NFKC normalisation (`normalize_username`), which must be 1 to
/// `MAX_USERNAME_BYTES` bytes, without control or invisible (default-ignorable) characters
/// or leading or trailing whitespace, and written in one script (UTS #39 §5.1 "single
/// script", with Han, Hiragana and Katakana counting as one for Japanese, Han and Hangul for
/// Korean), plus characters common to all scripts (digits, `.`, `_`, `-`, `@`, spaces) and
/// combining marks. So `аlice` with a Cyrillic `а` is refused rather than standing beside
/// `alice`, and `ａｌｉｃｅ` becomes `alice`. The error is a sentence for the operator.
///
/// Whole-script confusables (a name entirely in Cyrillic that looks Latin) are not detected.
pub fn canonical_username(raw: &str) -> Result<String, String> {
    let name = normalize_username(raw).into_owned();
    if name.is_empty() {
        return Err("username must not be empty".into());
    }
    if name.len() > MAX_USERNAME_BYTES {
        return Err(format!(
            "username must be at most {MAX_USERNAME_BYTES} bytes long (in Unicode NFKC form)"
        ));
    }
    if name.chars().any(char::is_control) {
        return Err("username must not contain control characters".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| c.identifier_type() == Some(IdentifierType::Default_Ignorable))
    {
        return Err(format!(
            "username must not contain invisible characters (U+{:04X})",
            u32::from(c)
        ));
    }
    if name.trim() != name {
        return Err("username must not start or end with whitespace".into());
    }
    if !name.as_str().is_single_script() {
        return Err(format!(
            "username mixes scripts ({}); use letters of one script, plus digits and punctuation such as . _ - @",
            scripts_in(&name)
        ));
    }
    Ok(name)
}

/// The scripts of a name's letters, each with its first character, for the refusal: the
/// operator may not see that `а` is not `a`.
fn scripts_in(name: &str) -> String {
    let mut seen: Vec<(Script, char)> = Vec::new();
    for c in name.chars() {
        let script = c.script();
        if !matches!(script, Script::Common | Script::Inherited)
            && !seen.iter().any(|(s, _)| *s == script)
        {
            seen.push((script, c));
        }
    }
    seen.iter()
        .map(|(script, c)| format!("{} `{c}` U+{:04X}", script.full_name(), u32::from(*c)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The standard claims Latchkey keeps for a user. All optional; `sub` lives on the record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserClaims {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub middle_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nickname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub picture: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gender: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub birthdate: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zoneinfo: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_number_verified: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
}

/// OpenID Connect Core §5.1.1.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Address {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub formatted: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub street_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locality: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}

impl UserClaims {
    /// The claims released for the granted scopes (OpenID Connect Core §5.4), as a JSON
    /// object to merge into userinfo.
    pub fn for_scopes(
        &self,
        scope: &super::scope::Scope,
    ) -> serde_json::Map<String, serde_json::Value> {
        let mut out = serde_json::Map::new();
        let mut put = |key: &str, value: Option<serde_json::Value>| {
            if let Some(v) = value {
                out.insert(key.to_owned(), v);
            }
        };
        let s = |v: &Option<String>| v.clone().map(serde_json::Value::String);
        let b = |v: &Option<bool>| v.map(serde_json::Value::Bool);
        if scope.contains("profile") {
            put("name", s(&self.name));
            put("given_name", s(&self.given_name));
            put("family_name", s(&self.family_name));
            put("middle_name", s(&self.middle_name));
            put("nickname", s(&self.nickname));
            put("preferred_username", s(&self.preferred_username));
            put("profile", s(&self.profile));
            put("picture", s(&self.picture));
            put("website", s(&self.website));
            put("gender", s(&self.gender));
            put("birthdate", s(&self.birthdate));
            put("zoneinfo", s(&self.zoneinfo));
            put("locale", s(&self.locale));
        }
        if scope.contains("email") {
            put("email", s(&self.email));
            put("email_verified", b(&self.email_verified));
        }
        if scope.contains("phone") {
            put("phone_number", s(&self.phone_number));
            put("phone_number_verified", b(&self.phone_number_verified));
        }
        if scope.contains("address") {
            put(
                "address",
                self.address
                    .as_ref()
                    .and_then(|a| serde_json::to_value(a).ok()),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(raw: &str, expected: Result<&str, &str>) {
        match (canonical_username(raw), expected) {
            (Ok(name), Ok(want)) => assert_eq!(name, want, "{raw:?}"),
            (Err(e), Err(fragment)) => assert!(e.contains(fragment), "{raw:?}: {e}"),
            (got, want) => panic!("{raw:?}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn usernames_are_normalised_and_single_script() {
        // Kept as given.
        check("alice", Ok("alice"));
        check("Alice", Ok("Alice"));
        check("alice@example.com", Ok("alice@example.com"));
        check("alice.smith_2-b", Ok("alice.smith_2-b"));
        check("Zoë Smith", Ok("Zoë Smith"));
        check("Ωμέγα", Ok("Ωμέγα"));
        check("иван", Ok("иван"));
        check("山田たろう", Ok("山田たろう"));
        check("カタカナ漢字", Ok("カタカナ漢字"));
        check("김철수", Ok("김철수"));
        check("123", Ok("123"));
        check(&"a".repeat(256), Ok(&"a".repeat(256)));
        // NFKC: compatibility variants become one name.
        check("ａｌｉｃｅ", Ok("alice"));
        check("ﬁona", Ok("fiona"));
        check("alice\u{a0}smith", Ok("alice smith"));
        check("user²", Ok("user2"));
        check("e\u{301}mile", Ok("\u{e9}mile"));
        // Mixed scripts, named with their first letters.
        check(
            "\u{430}lice",
            Err("Cyrillic `\u{430}` U+0430, Latin `l` U+006C"),
        );
        check("Zoë Ω", Err("mixes scripts"));
        check("paypal\u{3b1}", Err("Greek"));
        check("ａlicе", Err("mixes scripts"));
        // The other rules, checked on the normalised form.
        check("", Err("empty"));
        check(" alice", Err("whitespace"));
        check("alice\u{3000}", Err("whitespace"));
        check("alice\n", Err("control"));
        check("a\u{7}b", Err("control"));
        check("ali\u{200b}ce", Err("invisible characters (U+200B)"));
        check("alice\u{202e}", Err("invisible"));
        check("al\u{ad}ice", Err("invisible"));
        check(&"a".repeat(257), Err("256 bytes"));
        check(&"\u{e9}".repeat(129), Err("256 bytes"));
        // U+FDFA is one character and 18 in NFKC form.
        check(&"\u{fdfa}".repeat(15), Err("256 bytes"));
    }

    #[test]
    fn login_lookups_normalise_only_when_needed() {
        assert!(matches!(
            normalize_username("alice"),
            Cow::Borrowed("alice")
        ));
        assert!(matches!(normalize_username("Zoë"), Cow::Borrowed("Zoë")));
        assert_eq!(normalize_username("ａｌｉｃｅ"), "alice");
        assert!(matches!(normalize_username("ａｌｉｃｅ"), Cow::Owned(_)));
        // Not a validation: whatever is typed gets a form to look up.
        assert_eq!(normalize_username("\u{430}lice"), "\u{430}lice");
        assert_eq!(normalize_username(""), "");
    }
}
