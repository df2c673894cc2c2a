use super::*;

fn check(user_agent: &str, expected: &str) {
    assert_eq!(summarise(user_agent), expected, "{user_agent}");
}

#[test]
fn browsers_and_systems_are_named_as_people_know_them() {
    check(
        "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
        "Firefox, Linux",
    );
    check(
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
         Chrome/131.0.0.0 Safari/537.36",
        "Chrome, Windows",
    );
    check(
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
         Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
        "Edge, Windows",
    );
    check(
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like \
         Gecko) Version/18.1 Safari/605.1.15",
        "Safari, macOS",
    );
    check(
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, \
         like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
        "Safari, iPhone",
    );
    check(
        "Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like \
         Gecko) CriOS/120.0.6099.119 Mobile/15E148 Safari/604.1",
        "Chrome, iPad",
    );
    check(
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) \
         Chrome/131.0.0.0 Mobile Safari/537.36",
        "Chrome, Android",
    );
    check(
        "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) \
         SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36",
        "Samsung Internet, Android",
    );
    check(
        "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) \
         Chrome/131.0.0.0 Safari/537.36",
        "Chrome, ChromeOS",
    );
    check(
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
         Chrome/131.0.0.0 Safari/537.36 OPR/115.0.0.0",
        "Opera, Windows",
    );
}

#[test]
fn other_clients_are_named_by_their_product_or_not_at_all() {
    check("curl/8.4.0", "curl");
    check("python-requests/2.31.0", "python-requests");
    check("", "");
    check("Mozilla/5.0", "");
    check("Mozilla/5.0 (X11; Linux x86_64)", "Linux");
    // Nothing odd is copied: only plain, short product names.
    check("<script>alert(1)</script>", "");
    check(&"a".repeat(40), "");
    check("ünïcode/1.0", "");
}

#[test]
fn only_the_start_of_a_long_header_is_looked_at() {
    let padded = format!("{} Firefox/133.0", "x".repeat(MAX_SCANNED));
    check(&padded, "");
    let multibyte = "é".repeat(MAX_SCANNED * 2);
    check(&multibyte, "");
}
