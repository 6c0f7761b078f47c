//! Two uncompressed tar layers applied in sequence into one fresh root; nothing may
//! appear, change or disappear outside it (see `pulltime_fuzz`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pulltime::oci::media_type::Compression;

fuzz_target!(|data: &[u8]| {
    pulltime_fuzz::apply_two_layers(data, Compression::None);
});
