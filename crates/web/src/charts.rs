//! Inline SVG charts for the pages: plain markup with no script and no external file, so a
//! chart draws wherever the page does (loopback only, no CDN). Labels are escaped; each
//! chart carries a `<title>` for screen readers and hover text on every bar.

use std::fmt::Write;

use super::html::esc;

/// The series' colours, in order (a colour-blind-safe palette).
const PALETTE: &[&str] = &[
    "#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442",
];

const WIDTH: f64 = 640.0;
const LABEL_W: f64 = 200.0;
const ROW_H: f64 = 22.0;

/// Vertical bars, one per `x`, each stacked from its series' values; a legend names the
/// series. Nothing is drawn for no data.
pub fn stacked_bars(id: &str, title: &str, xs: &[String], series: &[(String, Vec<f64>)]) -> String {
    if xs.is_empty() || series.is_empty() {
        return String::new();
    }
    let (h, top, bottom) = (180.0, 10.0, 34.0);
    let totals: Vec<f64> = (0..xs.len())
        .map(|i| {
            series
                .iter()
                .map(|(_, v)| v.get(i).copied().unwrap_or(0.0))
                .sum()
        })
        .collect();
    let max = totals.iter().copied().fold(0.0, f64::max).max(1.0);
    let slot = (WIDTH - 40.0) / xs.len() as f64;
    // Every day's label when they fit, else every few.
    let every = (xs.len() as f64 / 10.0).ceil().max(1.0) as usize;
    let bar = (slot * 0.7).max(2.0);
    let legend_h = ROW_H * series.len().div_ceil(3) as f64;
    let full_h = h + legend_h;
    let mut s = format!(
        "<svg class=\"chart\" id=\"{}\" viewBox=\"0 0 {WIDTH} {full_h}\" width=\"{WIDTH}\" height=\"{full_h}\" role=\"img\" xmlns=\"http://www.w3.org/2000/svg\"><title>{}</title>",
        esc(id),
        esc(title)
    );
    let plot = h - top - bottom;
    let _ = write!(
        s,
        "<text x=\"0\" y=\"{:.0}\" font-size=\"11\">{}</text>",
        top + 10.0,
        fmt_count(max)
    );
    for (i, x) in xs.iter().enumerate() {
        let x0 = 40.0 + i as f64 * slot + (slot - bar) / 2.0;
        let mut y = top + plot;
        for (k, (name, v)) in series.iter().enumerate() {
            let val = v.get(i).copied().unwrap_or(0.0);
            if val <= 0.0 {
                continue;
            }
            let hh = plot * val / max;
            y -= hh;
            let _ = write!(
                s,
                "<rect x=\"{x0:.1}\" y=\"{y:.1}\" width=\"{bar:.1}\" height=\"{hh:.1}\" fill=\"{}\"><title>{} {}: {}</title></rect>",
                PALETTE[k % PALETTE.len()],
                esc(x),
                esc(name),
                fmt_count(val)
            );
        }
        if i % every == 0 || i + 1 == xs.len() {
            let _ = write!(
                s,
                "<text x=\"{:.1}\" y=\"{:.0}\" font-size=\"10\" text-anchor=\"middle\">{}</text>",
                x0 + bar / 2.0,
                h - bottom + 14.0,
                esc(x.get(5..).unwrap_or(x))
            );
        }
    }
    let _ = write!(
        s,
        "<line x1=\"40\" y1=\"{0:.1}\" x2=\"{WIDTH}\" y2=\"{0:.1}\" stroke=\"#888\"/>",
        top + plot
    );
    for (k, (name, _)) in series.iter().enumerate() {
        let (col, row) = (k % 3, k / 3);
        let (lx, ly) = (40.0 + col as f64 * 200.0, h + row as f64 * ROW_H);
        let _ = write!(
            s,
            "<rect x=\"{lx}\" y=\"{:.0}\" width=\"12\" height=\"12\" fill=\"{}\"/><text x=\"{:.0}\" y=\"{:.0}\" font-size=\"12\">{}</text>",
            ly,
            PALETTE[k % PALETTE.len()],
            lx + 16.0,
            ly + 11.0,
            esc(name)
        );
    }
    s.push_str("</svg>");
    s
}

/// One horizontal bar per row: its label on the left, the bar scaled to `max`, and the
/// row's text after it. Nothing is drawn for no rows.
pub fn bars(id: &str, title: &str, rows: &[(String, f64, String)], max: f64) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let max = if max > 0.0 { max } else { 1.0 };
    let h = ROW_H * rows.len() as f64 + 4.0;
    let span = WIDTH - LABEL_W - 110.0;
    let mut s = format!(
        "<svg class=\"chart\" id=\"{}\" viewBox=\"0 0 {WIDTH} {h}\" width=\"{WIDTH}\" height=\"{h}\" role=\"img\" xmlns=\"http://www.w3.org/2000/svg\"><title>{}</title>",
        esc(id),
        esc(title)
    );
    for (i, (label, v, text)) in rows.iter().enumerate() {
        let y = 2.0 + i as f64 * ROW_H;
        let w = (span * v.max(0.0) / max).min(span);
        let _ = write!(
            s,
            "<text x=\"{:.0}\" y=\"{:.0}\" font-size=\"12\" text-anchor=\"end\">{}</text><rect x=\"{LABEL_W}\" y=\"{:.0}\" width=\"{w:.1}\" height=\"{:.0}\" fill=\"{}\"><title>{}: {}</title></rect><text x=\"{:.1}\" y=\"{:.0}\" font-size=\"12\">{}</text>",
            LABEL_W - 6.0,
            y + 15.0,
            esc(label),
            y + 3.0,
            ROW_H - 6.0,
            PALETTE[0],
            esc(label),
            esc(text),
            LABEL_W + w + 6.0,
            y + 15.0,
            esc(text)
        );
    }
    s.push_str("</svg>");
    s
}

fn fmt_count(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_maximum_and_escape_labels() {
        let svg = bars(
            "rates",
            "Confirmation <rate>",
            &[
                ("a & b".into(), 1.0, "100%".into()),
                ("c".into(), 0.5, "50%".into()),
            ],
            1.0,
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("<title>Confirmation &lt;rate&gt;</title>"));
        assert!(svg.contains(">a &amp; b</text>"));
        let span = WIDTH - LABEL_W - 110.0;
        assert!(svg.contains(&format!("width=\"{span:.1}\"")), "{svg}");
        assert!(
            svg.contains(&format!("width=\"{:.1}\"", span / 2.0)),
            "{svg}"
        );
        assert_eq!(bars("x", "t", &[], 1.0), "");
    }

    #[test]
    fn stacked_bars_stack_each_days_series() {
        let svg = stacked_bars(
            "per-day",
            "Captures per day",
            &["2026-01-05".into(), "2026-01-06".into()],
            &[
                ("vehicles".into(), vec![2.0, 0.0]),
                ("vendors".into(), vec![2.0, 1.0]),
            ],
        );
        // Three segments (a zero draws none), the tallest day at full height.
        assert_eq!(svg.matches("<rect x=").count() - 2, 3, "{svg}");
        assert!(svg.contains("2026-01-05 vendors: 2"));
        assert!(svg.contains(">01-06</text>"));
        assert_eq!(stacked_bars("x", "t", &[], &[]), "");
    }
}
