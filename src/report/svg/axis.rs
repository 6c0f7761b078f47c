//! Axis arithmetic shared by the charts: round steps, ticks that reach past
//! the data, log-scale ticks, and the labels on them.

/// A round axis step (1, 2 or 5 times a power of ten) for `span`, giving about
/// `ticks` steps.
pub fn tick_step(span: f64, ticks: f64) -> f64 {
    let raw = (span / ticks).max(1e-9);
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * mag)
}

/// Ticks from 0 in round steps, the last at or past `span`: the axis runs from 0
/// to the last.
pub fn linear_ticks(span: f64, ticks: f64) -> Vec<f64> {
    let span = span.max(1e-9);
    let step = tick_step(span, ticks);
    let n = (span / step - 1e-9).ceil().max(1.0) as usize;
    (0..=n).map(|k| k as f64 * step).collect()
}

/// A number with as many decimals as `step` needs (`0.25` for a step of 0.05).
pub fn tick_label(v: f64, step: f64) -> String {
    let decimals = (-(step.log10() - 1e-9).floor()).max(0.0) as usize;
    format!("{v:.decimals$}")
}

/// Ticks of a log axis covering `lo..=hi` (both positive): 1, 2 and 5 times the
/// powers of ten when the range spans at most three decades, powers of ten
/// alone beyond. The first is at or below `lo`, the last at or above `hi`.
pub fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let lo = lo.max(1e-12);
    let hi = hi.max(lo);
    let mults: &[f64] = if hi.log10() - lo.log10() <= 3.0 {
        &[1.0, 2.0, 5.0]
    } else {
        &[1.0]
    };
    let (e0, e1) = (lo.log10().floor() as i32 - 1, hi.log10().ceil() as i32 + 1);
    let all: Vec<f64> = (e0..=e1)
        .flat_map(|e| mults.iter().map(move |m| decimal(*m, e)))
        .collect();
    let first = all
        .iter()
        .rposition(|v| *v <= lo * (1.0 + 1e-9))
        .unwrap_or(0);
    let last = all
        .iter()
        .position(|v| *v >= hi * (1.0 - 1e-9))
        .unwrap_or(all.len() - 1);
    all[first..=last.max(first + 1)].to_vec()
}

/// `m` times ten to the `e`, as exact as a literal (`0.2`, not `0.20000000000000004`).
fn decimal(m: f64, e: i32) -> f64 {
    if e < 0 {
        m / 10f64.powi(-e)
    } else {
        m * 10f64.powi(e)
    }
}

/// Seconds on a log axis: `50 ms`, `0.2 s`... `1 s`, `20 s`, `1000 s`.
pub fn seconds_label(t: f64) -> String {
    if t < 0.1 {
        format!("{} ms", trim(t * 1e3))
    } else {
        format!("{} s", trim(t))
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// `100M`, `1G`, `2.5G`: bits per second, short enough for an axis.
pub fn short_rate(bytes_per_s: f64) -> String {
    let bits = bytes_per_s * 8.0;
    let (v, unit) = if bits >= 1e9 {
        (bits / 1e9, "G")
    } else if bits >= 1e6 {
        (bits / 1e6, "M")
    } else {
        (bits / 1e3, "k")
    };
    let n = format!("{v:.1}");
    format!("{}{unit}", n.trim_end_matches(".0"))
}

/// Seconds for people: `12 s`, `1.5 s`, `250 ms`.
pub fn fmt_s(t: f64) -> String {
    if t >= 10.0 {
        format!("{t:.0} s")
    } else if t >= 1.0 {
        format!("{t:.1} s")
    } else {
        format!("{:.0} ms", t * 1e3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_round_and_ticks_reach_past_the_end() {
        assert_eq!(tick_step(1.0, 8.0), 0.2);
        assert_eq!(tick_step(60.0, 8.0), 10.0);
        assert!((tick_step(0.05, 8.0) - 0.01).abs() < 1e-12);
        for span in [0.013, 0.4, 1.0, 7.3, 12.0, 99.9, 1234.5] {
            let t = linear_ticks(span, 8.0);
            assert_eq!(t[0], 0.0);
            assert!(*t.last().unwrap() >= span, "{span}: {t:?}");
            assert!(
                t[t.len() - 2] < span,
                "{span}: no tick wasted past the end: {t:?}"
            );
        }
        assert_eq!(linear_ticks(1.0, 8.0).len(), 6, "0, 0.2, ..., 1.0");
        assert_eq!(tick_label(0.25, 0.05), "0.25");
        assert_eq!(tick_label(20.0, 10.0), "20");
        assert_eq!(tick_label(1.5, 0.5), "1.5");
    }

    #[test]
    fn log_ticks_enclose_the_range() {
        assert_eq!(log_ticks(0.3, 4.0), vec![0.2, 0.5, 1.0, 2.0, 5.0]);
        assert_eq!(log_ticks(1.0, 10.0), vec![1.0, 2.0, 5.0, 10.0]);
        let wide = log_ticks(0.004, 900.0);
        assert_eq!(wide, vec![0.001, 0.01, 0.1, 1.0, 10.0, 100.0, 1000.0]);
        assert_eq!(seconds_label(0.05), "50 ms");
        assert_eq!(seconds_label(0.2), "0.2 s");
        assert_eq!(seconds_label(1000.0), "1000 s");
        assert_eq!(short_rate(1.25e9), "10G");
        assert_eq!(short_rate(125_000.0), "1M");
    }
}
