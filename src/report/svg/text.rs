//! The one way the charts put text on the canvas: every `<text>` goes through
//! [`Canvas`], which estimates its box (conservatively, for the widest common
//! sans-serif faces, DejaVu Sans among them) and keeps it, so that a chart's
//! layout can be checked without rendering it: no two texts overlap and none
//! leaves the canvas ([`Chart::layout_problems`]).

use std::fmt::Write as _;

/// Where a text sits: its box in canvas coordinates (top left, width, height).
#[derive(Debug, Clone, PartialEq)]
pub struct TextBox {
    /// Left edge.
    pub x: f64,
    /// Top edge.
    pub y: f64,
    /// Estimated width.
    pub w: f64,
    /// Height: ascent plus descent.
    pub h: f64,
    /// The text itself (unescaped).
    pub text: String,
}

impl TextBox {
    /// True when the two boxes share some area (touching edges do not count).
    pub fn overlaps(&self, other: &TextBox) -> bool {
        self.x < other.x + other.w
            && other.x < self.x + self.w
            && self.y < other.y + other.h
            && other.y < self.y + self.h
    }
}

/// A drawn chart: the SVG document, its size, and the box of each text in it
/// (in document order).
#[derive(Debug, Clone)]
pub struct Chart {
    /// The SVG document.
    pub svg: String,
    /// Canvas width.
    pub width: f64,
    /// Canvas height.
    pub height: f64,
    /// Every `<text>` of the document, in order.
    pub texts: Vec<TextBox>,
}

impl Chart {
    /// Texts that overlap one another or reach past the canvas, in words; empty
    /// when the layout is sound.
    pub fn layout_problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (i, a) in self.texts.iter().enumerate() {
            if a.x < 0.0 || a.y < 0.0 || a.x + a.w > self.width || a.y + a.h > self.height {
                out.push(format!(
                    "{:?} at ({:.1}, {:.1}) size {:.1}x{:.1} leaves the {}x{} canvas",
                    a.text, a.x, a.y, a.w, a.h, self.width, self.height
                ));
            }
            for b in &self.texts[i + 1..] {
                if a.overlaps(b) {
                    out.push(format!("{:?} overlaps {:?}", a.text, b.text));
                }
            }
        }
        out
    }
}

/// How a text is aligned on its x.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Anchor {
    /// x is the left edge.
    Start,
    /// x is the middle.
    Middle,
    /// x is the right edge.
    End,
}

/// Size and weight of a text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Font {
    /// Font size in pixels.
    pub size: f64,
    /// Bold.
    pub bold: bool,
}

/// Axis ticks, legends, labels.
pub const NORMAL: Font = Font {
    size: 12.0,
    bold: false,
};
/// Headings.
pub const TITLE: Font = Font {
    size: 14.0,
    bold: true,
};
/// Group headings.
pub const BOLD: Font = Font {
    size: 12.0,
    bold: true,
};

/// Above the baseline, in ems (DejaVu Sans: 0.93).
const ASCENT: f64 = 0.95;
/// Below the baseline, in ems (DejaVu Sans: 0.24).
const DESCENT: f64 = 0.26;

/// The advance of one character in ems, rounded up over DejaVu Sans (wider than
/// Arial, Helvetica and Liberation Sans) so that an estimate is never short.
fn char_em(c: char) -> f64 {
    match c {
        'i' | 'j' | 'l' | '.' | ',' | ':' | ';' | '\'' | '|' | '!' => 0.34,
        'f' | 'r' | 't' | '(' | ')' | '[' | ']' | '/' | '\\' | '-' | ' ' | '"' | '`' => 0.47,
        'm' | 'w' | 'M' | 'W' | '@' | '%' | '…' | '—' => 1.0,
        'A'..='Z' | '#' | '+' | '=' | '<' | '>' | '~' | '&' | '×' | '{' | '}' => 0.84,
        c if c.is_ascii() => 0.66,
        _ => 1.0,
    }
}

/// Estimated width of `text` in `font`, in pixels: never less than a sans-serif
/// face draws it (bold faces are up to a fifth wider).
pub fn text_width(text: &str, font: Font) -> f64 {
    let em: f64 = text.chars().map(char_em).sum();
    em * font.size * if font.bold { 1.2 } else { 1.0 }
}

/// Height of a line of `font`, top of the tallest glyph to the bottom of the
/// lowest.
pub fn line_height(font: Font) -> f64 {
    (ASCENT + DESCENT) * font.size
}

/// Escapes text for SVG.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A chart being drawn: shapes and texts in order, and the texts' boxes.
pub struct Canvas {
    body: String,
    texts: Vec<TextBox>,
}

impl Canvas {
    /// An empty canvas.
    pub fn new() -> Canvas {
        Canvas {
            body: String::new(),
            texts: Vec::new(),
        }
    }

    /// Appends shapes (no `<text>`: texts go through [`Canvas::text`]).
    pub fn shape(&mut self, svg: &str) {
        debug_assert!(!svg.contains("<text"), "texts go through Canvas::text");
        self.body.push_str(svg);
    }

    /// The box `text` would take with its baseline at `y`.
    pub fn measure(x: f64, y: f64, anchor: Anchor, font: Font, text: &str) -> TextBox {
        let w = text_width(text, font);
        let left = match anchor {
            Anchor::Start => x,
            Anchor::Middle => x - w / 2.0,
            Anchor::End => x - w,
        };
        TextBox {
            x: left,
            y: y - ASCENT * font.size,
            w,
            h: line_height(font),
            text: text.to_string(),
        }
    }

    /// Whether a box would overlap no text placed so far.
    pub fn is_free(&self, b: &TextBox) -> bool {
        !self.texts.iter().any(|t| t.overlaps(b))
    }

    /// A chart's heading at the top left: its title, then grey lines under it
    /// (a subtitle, a note) 18-20 px apart. Returns the last line's baseline.
    pub fn heading(&mut self, x: f64, title: &str, lines: &[&str]) -> f64 {
        self.text(x, 22.0, Anchor::Start, TITLE, "", title);
        let mut y = 22.0;
        for line in lines {
            y += 20.0;
            self.text(x, y, Anchor::Start, NORMAL, r##"fill="#555555""##, line);
        }
        y
    }

    /// Draws `text` with its baseline at `y`; `attrs` are more attributes of the
    /// element (a fill, a class). Returns its box.
    pub fn text(
        &mut self,
        x: f64,
        y: f64,
        anchor: Anchor,
        font: Font,
        attrs: &str,
        text: &str,
    ) -> TextBox {
        let b = Self::measure(x, y, anchor, font, text);
        self.put(x, y, anchor, font, attrs, text, None);
        self.texts.push(b.clone());
        b
    }

    /// Draws `text` only if it overlaps no text placed so far (axis ticks):
    /// returns whether it did.
    pub fn text_if_free(&mut self, x: f64, y: f64, anchor: Anchor, font: Font, text: &str) -> bool {
        let b = Self::measure(x, y, anchor, font, text);
        if !self.is_free(&b) {
            return false;
        }
        self.put(x, y, anchor, font, "", text, None);
        self.texts.push(b);
        true
    }

    /// Draws `text` turned a quarter left (reading upwards), centred on
    /// (`cx`, `cy`): a y-axis title. Its box is the turned box.
    pub fn vertical_text(&mut self, cx: f64, cy: f64, font: Font, text: &str) -> TextBox {
        let w = text_width(text, font);
        let h = line_height(font);
        // Turned about (cx, cy): the baseline at cx + (ascent - descent) / 2 keeps
        // the glyphs centred on cx.
        let base = cx + (ASCENT - DESCENT) * font.size / 2.0;
        let b = TextBox {
            x: cx - h / 2.0,
            y: cy - w / 2.0,
            w: h,
            h: w,
            text: text.to_string(),
        };
        let turn = format!("rotate(-90 {base:.1} {cy:.1})");
        self.put(base, cy, Anchor::Middle, font, "", text, Some(&turn));
        self.texts.push(b.clone());
        b
    }

    #[allow(clippy::too_many_arguments)]
    fn put(
        &mut self,
        x: f64,
        y: f64,
        anchor: Anchor,
        font: Font,
        attrs: &str,
        text: &str,
        transform: Option<&str>,
    ) {
        let _ = write!(self.body, r#"<text x="{x:.1}" y="{y:.1}""#);
        match anchor {
            Anchor::Start => {}
            Anchor::Middle => self.body.push_str(r#" text-anchor="middle""#),
            Anchor::End => self.body.push_str(r#" text-anchor="end""#),
        }
        if font.size != NORMAL.size {
            let _ = write!(self.body, r#" font-size="{}""#, font.size);
        }
        if font.bold {
            self.body.push_str(r#" font-weight="bold""#);
        }
        if let Some(t) = transform {
            let _ = write!(self.body, r#" transform="{t}""#);
        }
        if !attrs.is_empty() {
            self.body.push(' ');
            self.body.push_str(attrs);
        }
        let _ = write!(self.body, ">{}</text>", esc(text));
    }

    /// The rightmost edge of any text so far.
    pub fn text_right(&self) -> f64 {
        self.texts.iter().map(|t| t.x + t.w).fold(0.0, f64::max)
    }

    /// The document: a white `width` by `height` canvas with everything drawn.
    pub fn finish(self, width: f64, height: f64) -> Chart {
        let (width, height) = (width.ceil(), height.ceil());
        let mut svg = format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="{}">"#,
            NORMAL.size
        );
        svg.push('\n');
        let _ = writeln!(
            svg,
            r##"<rect width="100%" height="100%" fill="#ffffff"/>"##
        );
        svg.push_str(&self.body);
        svg.push_str("\n</svg>\n");
        Chart {
            svg,
            width,
            height,
            texts: self.texts,
        }
    }
}

impl Default for Canvas {
    fn default() -> Self {
        Self::new()
    }
}

/// What a legend entry shows beside its label.
#[derive(Debug, Clone, Copy)]
pub enum Swatch<'a> {
    /// A filled square.
    Fill(&'a str),
    /// A line (colour, dash pattern or "") with a dot: a series.
    Line(&'a str, &'a str),
}

/// Draws a legend from (`x`, `y`) (the top of its first row), entries left to
/// right, wrapped before `right`; returns the y below it. An entry wider than
/// the space gets a row of its own (the caller makes the canvas wide enough:
/// [`legend_entry_width`]).
pub fn legend(canvas: &mut Canvas, x: f64, y: f64, right: f64, entries: &[(Swatch, &str)]) -> f64 {
    const ROW: f64 = 20.0;
    let (mut cx, mut cy) = (x, y);
    for (swatch, label) in entries {
        let w = legend_entry_width(label);
        if cx > x && cx + w > right {
            cx = x;
            cy += ROW;
        }
        match swatch {
            Swatch::Fill(c) => canvas.shape(&format!(
                r#"<rect x="{cx:.1}" y="{:.1}" width="12" height="12" fill="{c}"/>"#,
                cy + 2.0
            )),
            Swatch::Line(c, dash) => canvas.shape(&format!(
                r#"<line x1="{cx:.1}" y1="{0:.1}" x2="{1:.1}" y2="{0:.1}" stroke="{c}" stroke-width="2"{2}/><circle cx="{3:.1}" cy="{0:.1}" r="3" fill="{c}"/>"#,
                cy + 8.0,
                cx + 22.0,
                dash_attr(dash),
                cx + 11.0
            )),
        }
        canvas.text(cx + 28.0, cy + 12.0, Anchor::Start, NORMAL, "", label);
        cx += w + 16.0;
    }
    if entries.is_empty() { y } else { cy + ROW }
}

/// Width of a legend entry: swatch, gap, label.
pub fn legend_entry_width(label: &str) -> f64 {
    28.0 + text_width(label, NORMAL)
}

/// ` stroke-dasharray="..."` for a non-empty dash pattern.
pub fn dash_attr(dash: &str) -> String {
    if dash.is_empty() {
        String::new()
    } else {
        format!(r#" stroke-dasharray="{dash}""#)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxes_follow_the_anchor_and_overlap_only_with_area() {
        let a = Canvas::measure(100.0, 50.0, Anchor::Start, NORMAL, "abc");
        let m = Canvas::measure(100.0, 50.0, Anchor::Middle, NORMAL, "abc");
        let e = Canvas::measure(100.0, 50.0, Anchor::End, NORMAL, "abc");
        assert_eq!(a.x, 100.0);
        assert!((m.x + m.w / 2.0 - 100.0).abs() < 1e-9);
        assert!((e.x + e.w - 100.0).abs() < 1e-9);
        assert!(a.y < 50.0 && a.y + a.h > 50.0, "the box spans the baseline");
        assert!(a.overlaps(&m) && m.overlaps(&e));
        // Touching is not overlapping.
        let right = TextBox {
            x: a.x + a.w,
            ..a.clone()
        };
        assert!(!a.overlaps(&right));
        assert!(text_width("WWW", BOLD) > text_width("WWW", NORMAL));
        assert!(text_width("iii", NORMAL) < text_width("mmm", NORMAL));
    }

    #[test]
    fn layout_problems_name_overlaps_and_texts_off_the_canvas() {
        let mut c = Canvas::new();
        c.text(10.0, 20.0, Anchor::Start, NORMAL, "", "one");
        assert!(!c.text_if_free(12.0, 22.0, Anchor::Start, NORMAL, "two"));
        c.text(12.0, 22.0, Anchor::Start, NORMAL, "", "three");
        c.text(195.0, 100.0, Anchor::Start, NORMAL, "", "far");
        let chart = c.finish(200.0, 100.0);
        let p = chart.layout_problems();
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].contains("\"one\" overlaps \"three\""), "{p:?}");
        assert!(p[1].contains("\"far\"") && p[1].contains("leaves"), "{p:?}");
        assert_eq!(chart.svg.matches("<text").count(), 3, "two was not drawn");
    }

    #[test]
    fn a_legend_wraps_before_the_right_edge() {
        let mut c = Canvas::new();
        let labels = ["alpha", "beta", "gamma", "delta", "epsilon"];
        let entries: Vec<(Swatch, &str)> =
            labels.iter().map(|l| (Swatch::Fill("#000"), *l)).collect();
        let end = legend(&mut c, 10.0, 0.0, 200.0, &entries);
        let chart = c.finish(200.0, end);
        assert!(end > 20.0, "more than one row");
        assert!(
            chart.layout_problems().is_empty(),
            "{:?}",
            chart.layout_problems()
        );
    }
}
