use super::*;

#[test]
fn accept_errors_back_off_unless_they_concern_one_connection() {
    let error = |kind| io::Error::from(kind);
    // A connection reset before we took it: accept the next one at once.
    for kind in [
        io::ErrorKind::ConnectionAborted,
        io::ErrorKind::ConnectionReset,
        io::ErrorKind::Interrupted,
    ] {
        assert_eq!(accept_error_delay(&error(kind), None), None, "{kind:?}");
    }
    // Out of descriptors (EMFILE): pause, doubling up to a second, so the loop neither
    // spins nor gives up.
    let emfile = io::Error::from_raw_os_error(24);
    let mut delay = None;
    let mut seen = Vec::new();
    for _ in 0..10 {
        delay = accept_error_delay(&emfile, delay);
        seen.push(delay.unwrap().as_millis());
    }
    assert_eq!(seen, [10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000]);
}
