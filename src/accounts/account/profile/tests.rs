use super::*;

fn check(claim: EditableClaim, value: &str, expected: Result<(), Invalid>) {
    assert_eq!(claim.check(value), expected, "{} = {value:?}", claim.name());
}

#[test]
fn values_must_have_their_claims_shape() {
    use EditableClaim::*;
    use Invalid::*;
    check(Name, "Zoë Æsir-Ødegård", Ok(()));
    check(Name, &"n".repeat(MAX_CLAIM_CHARS), Ok(()));
    check(Name, &"n".repeat(MAX_CLAIM_CHARS + 1), Err(TooLong));
    check(Nickname, "two\nlines", Err(Control));
    check(Gender, "non-binary", Ok(()));

    check(Website, "https://zoe.example", Ok(()));
    check(Picture, "http://cdn.example/zoe.png", Ok(()));
    check(Profile, "javascript:alert(1)", Err(NotUrl));
    check(Picture, "data:image/png;base64,AAAA", Err(NotUrl));
    check(Website, "zoe.example", Err(NotUrl));
    check(Website, "file:///etc/passwd", Err(NotUrl));

    check(Birthdate, "1990-02-28", Ok(()));
    check(Birthdate, "1990", Ok(()));
    check(Birthdate, "0000-02-29", Ok(()));
    check(Birthdate, "1990-02-30", Err(NotDate));
    check(Birthdate, "1991-02-29", Err(NotDate));
    check(Birthdate, "1990-13-01", Err(NotDate));
    check(Birthdate, "1990-1-1", Err(NotDate));
    check(Birthdate, "90-01-01", Err(NotDate));
    check(Birthdate, "yesterday", Err(NotDate));

    check(Zoneinfo, "Europe/Berlin", Ok(()));
    check(Zoneinfo, "America/Argentina/Buenos_Aires", Ok(()));
    check(Zoneinfo, "UTC", Ok(()));
    check(Zoneinfo, "Etc/GMT+5", Ok(()));
    check(Zoneinfo, "../etc/passwd", Err(NotTimeZone));
    check(Zoneinfo, "Europe//Berlin", Err(NotTimeZone));
    check(Zoneinfo, "Europe/Berlin <b>", Err(NotTimeZone));

    check(Locale, "de", Ok(()));
    check(Locale, "de-DE", Ok(()));
    check(Locale, "en_US", Ok(()));
    check(Locale, "zh-Hant-TW", Ok(()));
    check(Locale, "german", Err(NotLocale));
    check(Locale, "d", Err(NotLocale));
    check(Locale, "de-", Err(NotLocale));
    check(Locale, "de-DE;q=1", Err(NotLocale));

    check(PhoneNumber, "+49 30 1234567", Ok(()));
    check(PhoneNumber, "+1 (555) 010-0100", Ok(()));
    check(PhoneNumber, "030.123.4567", Ok(()));
    check(PhoneNumber, "12", Err(NotPhoneNumber));
    check(PhoneNumber, "call me", Err(NotPhoneNumber));
    check(PhoneNumber, "49+30", Err(NotPhoneNumber));
    check(PhoneNumber, &"1".repeat(21), Err(NotPhoneNumber));
}

#[test]
fn only_self_stated_string_claims_are_editable() {
    for claim in EditableClaim::ALL {
        assert_eq!(EditableClaim::parse(claim.name()), Ok(claim));
    }
    for (name, fragment) in [
        ("email", "section of its own"),
        ("email_verified", "proof"),
        ("phone_number_verified", "proof"),
        ("address", "structure"),
        ("sub", "never"),
        ("colour", "not an editable standard claim"),
        ("Name", "not an editable standard claim"),
    ] {
        let err = EditableClaim::parse(name).unwrap_err();
        assert!(err.contains(fragment), "{name}: {err}");
    }
}

#[test]
fn a_form_may_not_carry_a_standard_claim_that_is_not_editable() {
    let editable = [EditableClaim::Name, EditableClaim::Locale];
    assert!(refuse_uneditable(&editable, &[("name", "Zoë"), ("locale", "de")]).is_ok());
    // Fields that are no claims (the CSRF token, a language switch) pass.
    assert!(refuse_uneditable(&editable, &[("csrf_token", "x"), ("lang", "de")]).is_ok());
    for name in ["email", "email_verified", "address", "sub", "nickname"] {
        let err = refuse_uneditable(&editable, &[(name, "x")]).unwrap_err();
        assert!(err.description.contains(name), "{name}: {err:?}");
    }
}
