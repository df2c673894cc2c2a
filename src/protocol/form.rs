//! Form and query parameters (`application/x-www-form-urlencoded`) with the rules of
//! RFC 6749 §3.1 and §3.2: a parameter sent twice is an error, and one sent without a value is
//! treated as omitted.

/// At most this many parameters per request.
pub const MAX_PARAMS: usize = 64;
/// At most this many bytes per decoded value.
pub const MAX_VALUE_LEN: usize = 8 * 1024;

/// Why a parameter list was refused; each becomes `invalid_request`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    #[error("parameter `{0}` was sent more than once")]
    Duplicate(String),
    #[error("too many parameters")]
    TooMany,
    #[error("parameter `{0}` is too long")]
    TooLong(String),
    #[error("parameter `{0}` contains a control character")]
    ControlCharacter(String),
}

/// Decoded parameters in the order they were sent.
#[derive(Debug, Clone, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Parses and checks a query string or form body. Percent-decoding that yields invalid
    /// UTF-8 becomes U+FFFD, which no identifier or token contains, so such values fail the
    /// checks that read them.
    pub fn parse(input: &[u8]) -> Result<Params, FormError> {
        Self::from_pairs(
            form_urlencoded::parse(input).map(|(n, v)| (n.into_owned(), v.into_owned())),
        )
    }

    /// Parameters from already decoded pairs (a signed request object's claims, a pushed
    /// request read back), under the same rules as `parse`.
    pub fn from_pairs(
        input: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Params, FormError> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (name, value) in input {
            if pairs.len() >= MAX_PARAMS {
                return Err(FormError::TooMany);
            }
            if value.len() > MAX_VALUE_LEN || name.len() > 256 {
                return Err(FormError::TooLong(truncate(&name)));
            }
            // No protocol value contains a NUL or other C0 control character (but tab, CR
            // and LF may appear in free text such as a password); refusing them here keeps
            // them away from every lookup.
            if name
                .chars()
                .chain(value.chars())
                .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
            {
                return Err(FormError::ControlCharacter(truncate(&name)));
            }
            if pairs.iter().any(|(n, _)| *n == name) {
                return Err(FormError::Duplicate(truncate(&name)));
            }
            pairs.push((name, value));
        }
        Ok(Params { pairs })
    }

    /// The parameters as a form body, the way `parse` reads them back.
    pub fn to_form(&self) -> String {
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(self.pairs.iter())
            .finish()
    }

    /// These parameters without the ones named.
    pub fn without(&self, names: &[&str]) -> Params {
        Params {
            pairs: self
                .pairs
                .iter()
                .filter(|(n, _)| !names.contains(&n.as_str()))
                .cloned()
                .collect(),
        }
    }

    /// These parameters with `name` set to `value` (replacing it when present).
    pub fn with(&self, name: &str, value: &str) -> Params {
        let mut out = self.without(&[name]);
        out.pairs.push((name.to_owned(), value.to_owned()));
        out
    }

    /// The value of `name`; an empty value counts as absent (RFC 6749 §3.1).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }
}

fn truncate(name: &str) -> String {
    name.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_treats_empty_as_absent() {
        let p = Params::parse(b"a=1&b=&c=x%20y+z").unwrap();
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("b"), None);
        assert_eq!(p.get("c"), Some("x y z"));
        assert_eq!(p.get("d"), None);
    }

    #[test]
    fn refuses_duplicates_and_oversize() {
        assert_eq!(
            Params::parse(b"a=1&a=2").unwrap_err(),
            FormError::Duplicate("a".into())
        );
        assert!(Params::parse(b"a=&a=").is_err());
        let many: String = (0..100).map(|i| format!("p{i}=1&")).collect();
        assert_eq!(
            Params::parse(many.as_bytes()).unwrap_err(),
            FormError::TooMany
        );
        let long = format!("a={}", "x".repeat(MAX_VALUE_LEN + 1));
        assert!(Params::parse(long.as_bytes()).is_err());
    }

    #[test]
    fn refuses_control_characters() {
        assert_eq!(
            Params::parse(b"a=x%00y").unwrap_err(),
            FormError::ControlCharacter("a".into())
        );
        assert!(Params::parse(b"a%01=1").is_err());
        assert!(Params::parse(b"a=line%0Aline").is_ok());
    }

    #[test]
    fn non_utf8_does_not_panic() {
        let p = Params::parse(b"a=%ff%fe&b=\xff").unwrap();
        assert!(p.get("a").unwrap().contains('\u{fffd}'));
    }
}
