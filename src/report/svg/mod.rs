//! SVG pictures written by hand: the waterfall of one pull ([`waterfall`]), pull
//! time against bandwidth ([`sweep`]), and the critical paths that say why
//! ([`why`], also reachable as `report::svg_bounds`). Text uses the generic `sans-serif` family, so
//! no font files are needed to write or view them; every text is placed through
//! [`text::Canvas`], which keeps its estimated box, so each chart comes with the
//! boxes of its texts ([`Chart::texts`]) and can be checked for texts that
//! overlap or leave the canvas ([`Chart::layout_problems`]).

pub mod axis;
pub mod sweep;
pub mod text;
pub mod waterfall;
pub mod why;

#[cfg(test)]
mod tests;

pub use axis::fmt_s;
pub use sweep::{Series, bandwidth_sweep, image_names};
pub use text::{Chart, TextBox, esc};
pub use waterfall::{COLOURS, waterfall, waterfall_chart};
