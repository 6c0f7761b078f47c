//! Like `layer_apply`, but each layer goes through the pipeline's gzip decoder
//! first, as a `tar+gzip` layer does in a pull.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pulltime::oci::media_type::Compression;

fuzz_target!(|data: &[u8]| {
    pulltime_fuzz::apply_two_layers(data, Compression::Gzip);
});
