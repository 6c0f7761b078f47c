//! The offline half of manifest resolution on arbitrary bytes: media type
//! detection, index parsing and platform choice, manifest parsing and pairing of
//! layers with `diff_ids`, config parsing. Never panics; what it accepts is
//! consistent (the chosen index entry is one of the index's, one descriptor per
//! layer, a layer/diff_id count mismatch refused).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pulltime::oci::platform::Platform;
use pulltime::oci::media_type::{DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST};
use pulltime::registry::manifest::{
    layer_descriptors, media_type_of, parse_config, parse_index, parse_manifest, pick_platform,
};

/// `Content-Type` values a registry may send; the first input byte picks one.
const DECLARED: &[Option<&str>] = &[
    None,
    Some(OCI_INDEX),
    Some(DOCKER_LIST),
    Some(OCI_MANIFEST),
    Some(DOCKER_MANIFEST),
    Some("application/json"),
    Some("application/vnd.oci.image.index.v1+json; charset=utf-8"),
    Some("text/plain"),
    Some(""),
];

const WANTS: &[&str] = &[
    "linux/amd64",
    "linux/arm64",
    "linux/arm64/v8",
    "linux/arm/v7",
    "windows/amd64",
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let declared = DECLARED[selector as usize % DECLARED.len()];
    let media_type = media_type_of(declared, body);

    if let Ok(index) = parse_index(body) {
        for want in WANTS.iter().map(|w| Platform::parse(w).unwrap()) {
            if let Ok((digest, _name)) = pick_platform(&index, &want, "fuzz/repo") {
                assert!(
                    index
                        .manifests()
                        .iter()
                        .any(|m| m.digest().to_string() == digest),
                    "picked digest {digest} is not in the index"
                );
            }
        }
        // serde_json skips unknown fields without checking their UTF-8, so only a
        // valid UTF-8 document (all JSON is) must also pass media type detection.
        if std::str::from_utf8(body).is_ok() {
            assert!(media_type.is_ok(), "an index whose media type is an error");
        }
    }

    if let Ok(manifest) = parse_manifest(body) {
        let n = manifest.layers().len();
        let ids: Vec<String> = (0..n).map(|i| format!("sha256:{i:064x}")).collect();
        if let Ok(layers) = layer_descriptors(&manifest, ids) {
            assert_eq!(layers.len(), n);
        }
        assert!(
            layer_descriptors(&manifest, vec![String::new(); n + 1]).is_err(),
            "layer/diff_id count mismatch accepted"
        );
    }

    if let Ok((_diff_ids, platform)) = parse_config(body) {
        let _ = Platform::parse(&platform);
    }
});
