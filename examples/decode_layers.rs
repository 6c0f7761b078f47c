//! How fast pulltime's own decoders decompress each layer of an image, in memory
//! (no disk, no network): the per-layer figures docs/model.md compares with
//! `pulltime calibrate`'s one rate per format.
//!
//! ```sh
//! pulltime synth ml-object-detection-multistage --scale 0.05 --compression zstd --to oci:l5
//! cargo run --release --example decode_layers -- l5 ml-object-detection-multistage
//! ```
//!
//! Prints each layer's output bytes and the median output rate of five decodes.

use std::io::Read;
use std::time::Instant;

use pulltime::oci::layout::Layout;
use pulltime::pipeline::readers::decoder;
use pulltime::sim::input::from_layout;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, tag] = args.as_slice() else {
        return Err("usage: decode_layers LAYOUT_DIR TAG".into());
    };
    let dir = std::path::Path::new(dir);
    let image = from_layout(dir, tag)?;
    let layout = Layout::open(dir)?;
    let mut buf = vec![0u8; 256 << 10];
    for (i, l) in image.layers.iter().enumerate() {
        let blob = std::fs::read(layout.blob_path(&l.digest)?)?;
        let mut times = Vec::new();
        let mut out = 0usize;
        for _ in 0..5 {
            let t = Instant::now();
            let mut d = decoder(l.compression, &blob[..])?;
            out = 0;
            loop {
                match d.read(&mut buf)? {
                    0 => break,
                    n => out += n,
                }
            }
            times.push(t.elapsed().as_secs_f64());
        }
        times.sort_by(f64::total_cmp);
        println!(
            "layer {i} ({:?}): {:.1} MB out, {:.0} MB/s",
            l.compression,
            out as f64 / 1e6,
            out as f64 / times[2] / 1e6
        );
    }
    Ok(())
}
