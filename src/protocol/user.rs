//! User profile claims (OpenID Connect Core §5.1) as the admin API takes and answers them.

use serde::{Deserialize, Serialize};

/// The standard claims Latchkey keeps for a user. All optional; `sub` lives on the record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
