//! `Params::parse` (query strings and form bodies) on arbitrary bytes.
//!
//! Properties: it never panics; a successful parse holds no repeated name, no more than
//! `MAX_PARAMS` pairs, no value longer than `MAX_VALUE_LEN`, no C0/C1 control character but
//! tab, CR and LF, and exactly the pairs `form_urlencoded` decodes, in order; `get` treats an
//! empty value as absent.

#![no_main]

use std::collections::HashSet;

use latchkey::protocol::form::{MAX_PARAMS, MAX_VALUE_LEN, Params};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(params) = Params::parse(data) else {
        return;
    };
    let pairs: Vec<(&str, &str)> = params.iter().collect();
    assert!(pairs.len() <= MAX_PARAMS, "more than MAX_PARAMS pairs");
    let mut names = HashSet::new();
    for (name, value) in &pairs {
        assert!(names.insert(*name), "duplicate name {name:?} accepted");
        assert!(value.len() <= MAX_VALUE_LEN, "over-long value accepted");
        assert!(
            !name
                .chars()
                .chain(value.chars())
                .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r')),
            "control character accepted in {name:?}"
        );
        match params.get(name) {
            Some(v) => assert_eq!(v, *value),
            None => assert!(value.is_empty(), "non-empty {name:?} reads as absent"),
        }
    }
    let reference: Vec<(String, String)> = form_urlencoded::parse(data).into_owned().collect();
    assert_eq!(reference.len(), pairs.len());
    for ((rn, rv), (n, v)) in reference.iter().zip(&pairs) {
        assert_eq!((rn.as_str(), rv.as_str()), (*n, *v));
    }
});
