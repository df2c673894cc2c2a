use serde_json::Value;

use super::*;

fn document() -> Value {
    serde_json::to_value(document_json()).unwrap()
}

/// Every `$ref` in `value`.
fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("$ref", Value::String(target)) => out.push(target),
                    _ => refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[test]
fn the_document_is_openapi_3_1_and_every_reference_resolves() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut found = Vec::new();
    refs(&doc, &mut found);
    assert!(found.len() > 20, "{found:?}");
    for target in found {
        let name = target
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected reference {target}"));
        assert!(
            !doc["components"]["schemas"][name].is_null(),
            "{target} is referenced but not defined"
        );
    }
}

#[test]
fn every_operation_needs_the_admin_token_and_describes_its_refusal() {
    let doc = document();
    assert_eq!(doc["security"][0]["admin_token"], serde_json::json!([]));
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        assert!(path.starts_with("/admin/"), "{path}");
        for (method, operation) in item.as_object().unwrap() {
            operations += 1;
            let responses = operation["responses"].as_object().unwrap();
            for status in ["401", "429"] {
                assert_eq!(
                    responses[status]["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorBody",
                    "{method} {path} {status}"
                );
            }
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{method} {path}: no success answer"
            );
        }
    }
    assert!(operations >= 20, "{operations}");
}

/// The claims are flattened into users (`allOf`), where an `additionalProperties: false` of
/// their own would refuse every user.
#[test]
fn the_flattened_user_claims_do_not_refuse_the_users_other_members() {
    let doc = document();
    let claims = &doc["components"]["schemas"]["UserClaims"];
    assert!(claims["properties"]["email"].is_object(), "{claims}");
    assert!(claims.get("additionalProperties").is_none(), "{claims}");
    let address = &doc["components"]["schemas"]["Address"];
    assert_eq!(address["additionalProperties"], false, "{address}");
}

#[test]
fn the_upstream_operations_are_described_and_no_answer_has_the_secret() {
    let doc = document();
    let paths = &doc["paths"];
    for (path, methods) in [
        ("/admin/upstreams", &["get", "post"][..]),
        ("/admin/upstreams/{id}", &["get", "put", "delete"][..]),
    ] {
        for method in methods {
            assert!(paths[path][method].is_object(), "{method} {path}");
            assert_eq!(
                paths[path][method]["tags"][0], "upstreams",
                "{method} {path}"
            );
        }
    }
    assert_eq!(
        paths["/admin/upstreams"]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/UpstreamWrite"
    );
    let schemas = &doc["components"]["schemas"];
    assert!(
        schemas["UpstreamWrite"]
            .to_string()
            .contains("client_secret")
    );
    for answer in ["UpstreamResponse", "UpstreamSettings"] {
        assert!(
            !schemas[answer].is_null() && !schemas[answer].to_string().contains("client_secret"),
            "{answer}: {}",
            schemas[answer]
        );
    }
}
