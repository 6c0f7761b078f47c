//! `Reference::parse` on arbitrary text: never panics, and whatever it accepts
//! prints back to a reference that parses to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pulltime::oci::reference::{Reference, is_loopback_host, validate_repository};

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let _ = is_loopback_host(input);
    let Ok(r) = Reference::parse(input) else {
        return;
    };
    assert!(!r.registry.is_empty(), "empty registry from {input:?}");
    assert!(
        validate_repository(&r.repository).is_ok(),
        "accepted an invalid repository {:?} from {input:?}",
        r.repository
    );
    assert!(
        r.tag.is_some() || r.digest.is_some(),
        "neither tag nor digest from {input:?}"
    );
    assert!(!r.manifest_reference().is_empty());
    let _ = r.api_host();
    let _ = r.is_loopback();
    let printed = r.to_string();
    let again = Reference::parse(&printed)
        .unwrap_or_else(|e| panic!("{input:?} -> {printed:?} no longer parses: {e}"));
    assert_eq!(again, r, "{input:?} -> {printed:?} parses differently");
});
