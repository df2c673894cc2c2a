use super::*;

fn settings(per_ip: usize) -> ConnectionSettings {
    ConnectionSettings {
        max_connections_per_ip: per_ip,
        ..ConnectionSettings::DEFAULT
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn ipv6_addresses_are_counted_by_their_64_and_mapped_ipv4_as_ipv4() {
    let key = |s: &str| AddressKey::of(ip(s));
    assert_eq!(
        key("2001:db8:1:2::1"),
        key("2001:db8:1:2:ffff:ffff:ffff:ffff")
    );
    assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
    assert_eq!(key("::ffff:192.0.2.7"), key("192.0.2.7"));
    assert_ne!(key("192.0.2.7"), key("192.0.2.8"));
}

#[tokio::test]
async fn caps_hold_per_address_and_in_total_and_free_up_on_close() {
    let limits = ConnectionLimits::new(&settings(2), 3, &[]);
    let a1 = limits.admit(ip("192.0.2.1")).unwrap();
    let _a2 = limits.admit(ip("192.0.2.1")).unwrap();
    assert_eq!(
        limits.admit(ip("192.0.2.1")).err(),
        Some(Refusal::PerAddress)
    );
    // The same /64 is the same address.
    let _b1 = limits.admit(ip("2001:db8::1")).unwrap();
    assert_eq!(limits.admit(ip("2001:db8::2")).err(), Some(Refusal::Total));
    // A refused connection gave its total permit back; closing one frees both counts.
    drop(a1);
    let _a3 = limits.admit(ip("192.0.2.1")).unwrap();
    assert_eq!(limits.admit(ip("192.0.2.9")).err(), Some(Refusal::Total));
    assert_eq!(limits.lock_counts().len(), 2);
}

#[tokio::test]
async fn trusted_proxies_are_held_only_to_the_total() {
    let limits = ConnectionLimits::new(&settings(1), 4, &[ip("10.0.0.1")]);
    let held: Vec<_> = (0..3)
        .map(|_| limits.admit(ip("::ffff:10.0.0.1")).unwrap())
        .collect();
    let _other = limits.admit(ip("10.0.0.2")).unwrap();
    assert_eq!(limits.admit(ip("10.0.0.1")).err(), Some(Refusal::Total));
    assert!(
        limits
            .lock_counts()
            .get(&AddressKey::of(ip("10.0.0.1")))
            .is_none()
    );
    drop(held);
    let drained = tokio::time::timeout(Duration::from_millis(50), limits.all_closed()).await;
    assert!(drained.is_err(), "one connection is still open");
}

#[test]
fn the_total_cap_leaves_room_for_the_database_and_the_process() {
    // (configured, soft descriptor limit, reserved) → enforced
    let check = |configured, soft, reserved, expected| {
        assert_eq!(
            descriptor_budget(configured, soft, reserved),
            expected,
            "{configured} {soft:?} {reserved}"
        );
    };
    check(4096, None, 112, 4096);
    check(4096, Some(1_048_576), 112, 4096);
    check(4096, Some(1024), 112, 912);
    check(100, Some(1024), 112, 100);
    // A limit close to or below the reserve still gives clients half of it.
    check(4096, Some(200), 112, 100);
    check(4096, Some(64), 112, 32);
    check(4096, Some(1), 112, 1);
    assert_eq!(reserved_descriptors(16), 112);
}

#[cfg(unix)]
#[test]
fn the_descriptor_limit_is_read_and_never_lowered() {
    let before = raise_descriptor_limit(0);
    if let Some(before) = before {
        assert_eq!(raise_descriptor_limit(before / 2), Some(before));
    }
}
