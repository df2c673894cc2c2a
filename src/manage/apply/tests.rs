use serde_json::json;

use super::*;

fn no_env(_: &str) -> Option<String> {
    None
}

#[test]
fn the_file_holds_clients_users_and_upstreams_and_nothing_else() {
    let file = ApplyFile::parse(
        r#"
        [[client]]
        client_id = "billing"
        redirect_uris = ["https://billing.example.com/cb"]

        [[user]]
        username = "alice"
        email_verified = true
        "#,
    )
    .unwrap();
    assert_eq!(file.client.len(), 1);
    assert_eq!(file.client[0]["client_id"], json!("billing"));
    assert_eq!(file.user[0]["email_verified"], json!(true));
    // Upstreams are declarable since issue 17; any other table is refused.
    assert!(ApplyFile::parse("[[upstream]]\nid = \"x\"").is_ok());
    assert!(ApplyFile::parse("[[group]]\nname = \"x\"").is_err());
    assert!(ApplyFile::parse("[[client]\n").is_err());
}

#[test]
fn secrets_come_only_from_the_environment() {
    let env = |name: &str| (name == "SET").then(|| "s3cret".to_owned());
    assert_eq!(
        secret_from(&json!("env:SET"), "client_secret", &env).unwrap(),
        ("SET".to_owned(), "s3cret".to_owned())
    );
    for value in [json!("s3cret"), json!("env:UNSET"), json!(5), json!("env:")] {
        let err = secret_from(&value, "client_secret", &no_env).unwrap_err();
        assert!(!err.0.contains("s3cret"), "{err}");
    }
}

#[test]
fn a_plan_shows_each_field_and_masks_secrets() {
    let current = json!({"scope": "openid", "client_name": "Old", "gone": 1});
    let wanted = json!({"scope": "openid profile", "client_name": "Old"});
    let fields = diff_objects(current.as_object().unwrap(), wanted.as_object().unwrap());
    assert_eq!(
        fields,
        vec![
            FieldChange {
                field: "gone".into(),
                from: Some("1".into()),
                to: None
            },
            FieldChange {
                field: "scope".into(),
                from: Some("\"openid\"".into()),
                to: Some("\"openid profile\"".into())
            },
        ]
    );
    let mut plan = Plan::default();
    assert_eq!(
        plan.to_string(),
        "No changes: the database already matches the file.\n"
    );
    plan.items.push(PlanItem {
        action: Action::Update,
        kind: "client",
        name: "billing".into(),
        fields: vec![FieldChange {
            field: "client_secret".into(),
            from: Some(MASK.into()),
            to: Some(format!("{MASK} (from env:BILLING)")),
        }],
    });
    let text = plan.to_string();
    assert!(text.contains("~ update client billing"), "{text}");
    assert!(
        text.contains("client_secret: ******** -> ******** (from env:BILLING)"),
        "{text}"
    );
    assert!(
        text.contains("Plan: 0 to create, 1 to update, 0 to delete."),
        "{text}"
    );
}
