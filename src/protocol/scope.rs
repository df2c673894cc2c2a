//! `Scope`: a set of RFC 6749 §3.3 scope tokens, kept in first-seen order.

use std::fmt;

/// A validated scope: distinct tokens of `%x21 / %x23-5B / %x5D-7E` characters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope(Vec<String>);

/// A scope string with a character RFC 6749 §3.3 does not allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidScope;

fn valid_token(token: &str) -> bool {
    !token.is_empty()
        && token
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

impl Scope {
    /// Parses a space-separated scope string; duplicates collapse.
    pub fn parse(value: &str) -> Result<Scope, InvalidScope> {
        let mut tokens: Vec<String> = Vec::new();
        for token in value.split(' ').filter(|t| !t.is_empty()) {
            if !valid_token(token) {
                return Err(InvalidScope);
            }
            if !tokens.iter().any(|t| t == token) {
                tokens.push(token.to_owned());
            }
        }
        Ok(Scope(tokens))
    }

    /// For values Latchkey stored itself: invalid tokens are dropped rather than reported.
    pub fn parse_lenient(value: &str) -> Scope {
        let mut tokens: Vec<String> = Vec::new();
        for token in value.split(' ').filter(|t| valid_token(t)) {
            if !tokens.iter().any(|t| t == token) {
                tokens.push(token.to_owned());
            }
        }
        Scope(tokens)
    }

    pub fn from_tokens<I: IntoIterator<Item = S>, S: Into<String>>(tokens: I) -> Scope {
        let mut scope = Scope::default();
        for t in tokens {
            let t = t.into();
            if !scope.contains(&t) {
                scope.0.push(t);
            }
        }
        scope
    }

    pub fn contains(&self, token: &str) -> bool {
        self.0.iter().any(|t| t == token)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn is_subset_of(&self, other: &Scope) -> bool {
        self.0.iter().all(|t| other.contains(t))
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// Tokens in `self` that `other` lacks.
    pub fn difference(&self, other: &Scope) -> Scope {
        Scope(
            self.0
                .iter()
                .filter(|t| !other.contains(t))
                .cloned()
                .collect(),
        )
    }

    pub fn union(&self, other: &Scope) -> Scope {
        let mut out = self.clone();
        for t in &other.0 {
            if !out.contains(t) {
                out.0.push(t.clone());
            }
        }
        out
    }

    pub fn intersection(&self, other: &Scope) -> Scope {
        Scope(
            self.0
                .iter()
                .filter(|t| other.contains(t))
                .cloned()
                .collect(),
        )
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_checks_characters_and_collapses_duplicates() {
        assert_eq!(
            Scope::parse("openid  email openid").unwrap().to_string(),
            "openid email"
        );
        assert!(Scope::parse("a\"b").is_err());
        assert!(Scope::parse("a\\b").is_err());
        assert!(Scope::parse("ä").is_err());
        assert!(Scope::parse("").unwrap().is_empty());
    }

    #[test]
    fn set_operations() {
        let a = Scope::parse("openid email profile").unwrap();
        let b = Scope::parse("openid email").unwrap();
        assert!(b.is_subset_of(&a));
        assert!(!a.is_subset_of(&b));
        assert_eq!(a.difference(&b).to_string(), "profile");
        assert_eq!(
            b.union(&Scope::parse("phone").unwrap()).to_string(),
            "openid email phone"
        );
    }
}
