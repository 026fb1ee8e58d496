//! The evaluation report: `report.json` (every number rounded to 4 places, keys sorted, the
//! machine-dependent figures kept apart in the final `run` block), SVG plots (precision–recall
//! per class, event precision and recall per rule) and `report.html`, which shows both.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use plotters::prelude::*;
use serde::Serialize;
use serde_json::Value;

use super::metrics::{self, CaptureRec, ClassScores, EventRec, EventScores, MatchParams, Verdict};
use super::{Clip, EvalOptions, Variant};

pub struct Written {
    pub json: PathBuf,
    pub html: PathBuf,
    pub plots: Vec<PathBuf>,
}

#[derive(Serialize)]
struct ClipOut {
    clip: String,
    truth: String,
    footage: String,
    footage_sha256: String,
    width: u32,
    height: u32,
    fps: f64,
    duration_s: f64,
    events: usize,
    frame_truth: bool,
}

#[derive(Serialize)]
struct EventsOut {
    overall: EventScores,
    by_rule: BTreeMap<String, EventScores>,
    by_camera: BTreeMap<String, EventScores>,
}

#[derive(Serialize)]
struct FramesOut {
    frames_evaluated: usize,
    /// Mean AP@0.5 over the classes with truth boxes.
    map50: Option<f64>,
    classes: BTreeMap<String, ClassScores>,
}

#[derive(Serialize)]
struct CaptureOut<'a> {
    #[serde(flatten)]
    capture: &'a CaptureRec,
    verdict: Verdict,
}

#[derive(Serialize)]
struct WorkOut {
    video_s: f64,
    frames_analysed: u64,
    inferences: u64,
}

#[derive(Serialize)]
struct VariantOut<'a> {
    name: &'a str,
    pipeline: String,
    model: &'a crate::evidence::ModelInfo,
    events: EventsOut,
    #[serde(skip_serializing_if = "Option::is_none")]
    frames: Option<FramesOut>,
    work: WorkOut,
    /// Plates of caught vehicles against the truth's, when it gives plates.
    #[serde(skip_serializing_if = "Option::is_none")]
    plates: Option<&'a super::metrics::PlateScores>,
    captures: Vec<CaptureOut<'a>>,
    missed: Vec<&'a EventRec>,
    /// `--review`: the passes with learning.
    #[serde(skip_serializing_if = "Option::is_none")]
    review: Option<&'a super::review::ReviewOut>,
}

/// One compared figure.
#[derive(Serialize, Clone)]
struct DiffRow {
    scope: String,
    metric: &'static str,
    a: Option<f64>,
    b: Option<f64>,
    delta: Option<f64>,
    /// "A", "B" or null (equal, or not comparable).
    better: Option<&'static str>,
}

#[derive(Serialize)]
struct Results<'a> {
    format: &'static str,
    matching: MatchParams,
    clips: Vec<ClipOut>,
    variants: Vec<VariantOut<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    comparison: Vec<DiffRow>,
}

#[derive(Serialize)]
struct RunVariant {
    name: String,
    wall_s: f64,
    cpu_s: f64,
    /// Analysed frames per second of wall time.
    frames_per_s: f64,
    /// CPU seconds per hour of footage.
    cpu_s_per_video_hour: f64,
    /// Footage seconds per wall second.
    speed: f64,
}

#[derive(Serialize)]
struct RunOut {
    started_unix: u64,
    citywatch: &'static str,
    cpus: usize,
    variants: Vec<RunVariant>,
}

fn events_out(v: &Variant, clips: &[Clip]) -> EventsOut {
    let all = |_: &CaptureRec| true;
    let s = |kc: &dyn Fn(&CaptureRec) -> bool, ke: &dyn Fn(&EventRec) -> bool| {
        metrics::score_events(&v.captures, &v.events, &v.verdicts, kc, ke)
    };
    let mut rules: Vec<_> = v.events.iter().map(|e| e.rule).collect();
    rules.extend(v.captures.iter().map(|c| c.rule));
    rules.sort();
    rules.dedup();
    // Every clip, even one with no events and no captures (a clean negative).
    let mut cams: Vec<_> = clips.iter().map(|c| c.truth.clip.clone()).collect();
    cams.extend(v.captures.iter().map(|c| c.clip.clone()));
    cams.sort();
    cams.dedup();
    EventsOut {
        overall: s(&all, &|_| true),
        by_rule: rules
            .iter()
            .map(|&r| {
                (
                    r.as_str().to_string(),
                    s(&|c| c.rule == r, &|e| e.rule == r),
                )
            })
            .collect(),
        by_camera: cams
            .iter()
            .map(|k| (k.clone(), s(&|c| &c.clip == k, &|e| &e.clip == k)))
            .collect(),
    }
}

fn frames_out(v: &Variant, clips: &[Clip]) -> Option<FramesOut> {
    if !clips.iter().any(|c| c.frames.is_some()) {
        return None;
    }
    let aps: Vec<f64> = v.classes.values().filter_map(|c| c.ap50).collect();
    Some(FramesOut {
        frames_evaluated: v.frames_evaluated,
        map50: (!aps.is_empty()).then(|| aps.iter().sum::<f64>() / aps.len() as f64),
        classes: v.classes.clone(),
    })
}

/// Rounds every non-integer number to 4 places, so that tiny float noise cannot change the
/// bytes and the file stays readable.
fn rounded(v: Value) -> Value {
    match v {
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or(0.0);
            let r = (f * 1e4).round() / 1e4;
            serde_json::Number::from_f64(r).map_or(Value::Null, Value::Number)
        }
        Value::Array(a) => Value::Array(a.into_iter().map(rounded).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, rounded(v))).collect()),
        other => other,
    }
}

/// Higher is better for these; lower for the rest.
fn higher_is_better(metric: &str) -> bool {
    matches!(metric, "precision" | "recall" | "f1" | "ap50" | "map50")
}

fn diff(scope: String, metric: &'static str, a: Option<f64>, b: Option<f64>) -> DiffRow {
    let delta = a.zip(b).map(|(a, b)| b - a);
    let better = delta.and_then(|d| {
        if d.abs() < 1e-9 {
            None
        } else if (d > 0.0) == higher_is_better(metric) {
            Some("B")
        } else {
            Some("A")
        }
    });
    DiffRow {
        scope,
        metric,
        a,
        b,
        delta,
        better,
    }
}

fn event_diffs(
    scope: &str,
    a: Option<&EventScores>,
    b: Option<&EventScores>,
    out: &mut Vec<DiffRow>,
) {
    let f = |s: Option<&EventScores>, k: &str| -> Option<f64> {
        let s = s?;
        match k {
            "precision" => s.precision,
            "recall" => s.recall,
            "f1" => s.f1,
            "false_captures" => Some(s.false_captures as f64),
            "duplicates_per_event" => s.duplicates_per_event,
            "time_to_capture_median_s" => s.time_to_capture_median_s,
            _ => None,
        }
    };
    for m in [
        "precision",
        "recall",
        "f1",
        "false_captures",
        "duplicates_per_event",
        "time_to_capture_median_s",
    ] {
        out.push(diff(scope.to_string(), m, f(a, m), f(b, m)));
    }
}

fn comparison(a: &VariantOut, b: &VariantOut) -> Vec<DiffRow> {
    let mut out = Vec::new();
    event_diffs(
        "events",
        Some(&a.events.overall),
        Some(&b.events.overall),
        &mut out,
    );
    let mut rules: Vec<&String> = a
        .events
        .by_rule
        .keys()
        .chain(b.events.by_rule.keys())
        .collect();
    rules.sort();
    rules.dedup();
    for r in rules {
        event_diffs(
            &format!("rule {r}"),
            a.events.by_rule.get(r),
            b.events.by_rule.get(r),
            &mut out,
        );
    }
    if let (Some(fa), Some(fb)) = (&a.frames, &b.frames) {
        out.push(diff("frames".into(), "map50", fa.map50, fb.map50));
        for (class, ca) in &fa.classes {
            let cb = fb.classes.get(class);
            out.push(diff(
                format!("class {class}"),
                "ap50",
                ca.ap50,
                cb.and_then(|c| c.ap50),
            ));
        }
    }
    out
}

const COLOURS: [RGBColor; 2] = [RGBColor(31, 119, 180), RGBColor(255, 127, 14)];

fn plot_err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow::anyhow!("drawing a plot: {e:?}")
}

/// Precision against recall for one class, one line per variant.
fn pr_plot(path: &Path, class: &str, variants: &[Variant]) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, (480, 360)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{class}: precision–recall (IoU 0.5)"),
            ("sans-serif", 18),
        )
        .margin(10)
        .x_label_area_size(36)
        .y_label_area_size(44)
        .build_cartesian_2d(0f64..1f64, 0f64..1.05f64)
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .x_desc("recall")
        .y_desc("precision")
        .draw()
        .map_err(plot_err)?;
    for (i, v) in variants.iter().enumerate() {
        let Some(c) = v.classes.get(class) else {
            continue;
        };
        let colour = COLOURS[i % 2];
        // The envelope drawn as steps, from recall 0.
        let mut pts = vec![(0.0, c.curve.first().map_or(0.0, |p| p.1))];
        pts.extend(c.curve.iter().copied());
        let label = format!(
            "{} {} (AP {})",
            v.name,
            v.model.name,
            c.ap50.map_or("–".into(), |a| format!("{a:.3}"))
        );
        chart
            .draw_series(LineSeries::new(pts, colour.stroke_width(2)))
            .map_err(plot_err)?
            .label(label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], colour.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerLeft)
        .draw()
        .map_err(plot_err)?;
    root.present().map_err(plot_err)?;
    Ok(())
}

/// Event precision and recall per rule, bars per variant.
fn rules_plot(path: &Path, variants: &[VariantOut]) -> anyhow::Result<()> {
    let mut rules: Vec<&String> = variants
        .iter()
        .flat_map(|v| v.events.by_rule.keys())
        .collect();
    rules.sort();
    rules.dedup();
    let n = rules.len().max(1) as f64;
    let root = SVGBackend::new(path, (640, 360)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Event precision (solid) and recall (light) per rule",
            ("sans-serif", 18),
        )
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(44)
        .build_cartesian_2d(0f64..n, 0f64..1.1f64)
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_desc("share")
        .draw()
        .map_err(plot_err)?;
    let nv = variants.len() as f64;
    let width = 0.8 / (2.0 * nv);
    for (k, v) in variants.iter().enumerate() {
        let colour = COLOURS[k % 2];
        let mut bars = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            let Some(s) = v.events.by_rule.get(*r) else {
                continue;
            };
            for (m, value, style) in [
                (0.0, s.precision, colour.filled()),
                (1.0, s.recall, colour.mix(0.45).filled()),
            ] {
                let x0 = i as f64 + 0.1 + (k as f64 * 2.0 + m) * width;
                bars.push(Rectangle::new(
                    [(x0, 0.0), (x0 + width * 0.9, value.unwrap_or(0.0))],
                    style,
                ));
            }
        }
        chart
            .draw_series(bars)
            .map_err(plot_err)?
            .label(format!("{} {}", v.name, v.model.name))
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], colour.filled()));
    }
    for (i, r) in rules.iter().enumerate() {
        chart
            .draw_series(std::iter::once(Text::new(
                r.to_string(),
                (i as f64 + 0.3, -0.06),
                ("sans-serif", 13),
            )))
            .map_err(plot_err)?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(plot_err)?;
    root.present().map_err(plot_err)?;
    Ok(())
}

fn display_path(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Writes `report.json`, the plots and `report.html` into `opts.out`.
pub fn write(opts: &EvalOptions, clips: &[Clip], variants: &[Variant]) -> anyhow::Result<Written> {
    std::fs::create_dir_all(&opts.out)?;
    let video_s: f64 = clips.iter().map(|c| c.duration_s).sum();
    let outs: Vec<VariantOut> = variants
        .iter()
        .map(|v| VariantOut {
            name: &v.name,
            pipeline: display_path(&v.pipeline),
            model: &v.model,
            events: events_out(v, clips),
            frames: frames_out(v, clips),
            work: WorkOut {
                video_s,
                frames_analysed: v.frames_analysed,
                inferences: v.inferences,
            },
            plates: v.plates.as_ref(),
            captures: v
                .captures
                .iter()
                .zip(&v.verdicts)
                .map(|(capture, &verdict)| CaptureOut { capture, verdict })
                .collect(),
            missed: v
                .events
                .iter()
                .enumerate()
                .filter(|(j, _)| !v.verdicts.contains(&Verdict::Hit(*j)))
                .map(|(_, e)| e)
                .collect(),
            review: v.review.as_ref(),
        })
        .collect();
    let comparison = match outs.as_slice() {
        [a, b] => comparison(a, b),
        _ => Vec::new(),
    };
    let results = Results {
        format: "citywatch-eval/1",
        matching: opts.matching,
        clips: clips
            .iter()
            .map(|c| ClipOut {
                clip: c.truth.clip.clone(),
                truth: display_path(&c.truth.path),
                footage: c
                    .truth
                    .footage
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                footage_sha256: c.sha256.clone(),
                width: c.width,
                height: c.height,
                fps: c.fps,
                duration_s: c.duration_s,
                events: c.truth.events.len(),
                frame_truth: c.frames.is_some(),
            })
            .collect(),
        variants: outs,
        comparison,
    };
    let run = RunOut {
        started_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        citywatch: env!("CARGO_PKG_VERSION"),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        variants: variants
            .iter()
            .map(|v| RunVariant {
                name: v.name.clone(),
                wall_s: v.wall_s,
                cpu_s: v.cpu_s,
                frames_per_s: v.frames_analysed as f64 / v.wall_s.max(1e-9),
                cpu_s_per_video_hour: v.cpu_s / (video_s / 3600.0).max(1e-9),
                speed: video_s / v.wall_s.max(1e-9),
            })
            .collect(),
    };
    let body = serde_json::to_string_pretty(&rounded(serde_json::to_value(&results)?))?;
    let run_text = serde_json::to_string_pretty(&rounded(serde_json::to_value(&run)?))?;
    // The results first, then the run block: everything above `"run"` is byte-identical for
    // the same inputs.
    let mut json = body.trim_end().trim_end_matches('}').trim_end().to_string();
    json.push_str(",\n  \"run\": ");
    json.push_str(&run_text.replace('\n', "\n  "));
    json.push_str("\n}\n");
    let json_path = opts.out.join("report.json");
    std::fs::write(&json_path, &json)?;

    let mut plots = Vec::new();
    let rules_svg = opts.out.join("events_by_rule.svg");
    rules_plot(&rules_svg, &results.variants)?;
    plots.push(rules_svg);
    let mut classes: Vec<&String> = variants.iter().flat_map(|v| v.classes.keys()).collect();
    classes.sort();
    classes.dedup();
    for class in &classes {
        let p = opts.out.join(format!("pr_{}.svg", file_safe(class)));
        pr_plot(&p, class, variants)?;
        plots.push(p);
    }
    let html = html(&results, &run, &plots);
    let html_path = opts.out.join("report.html");
    std::fs::write(&html_path, html)?;
    Ok(Written {
        json: json_path,
        html: html_path,
        plots,
    })
}

fn file_safe(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

use crate::core::html::escape as esc;

fn num(v: Option<f64>) -> String {
    v.map_or("–".into(), |x| {
        if x.fract() == 0.0 && x.abs() < 1e9 {
            format!("{x:.0}")
        } else {
            format!("{x:.3}")
        }
    })
}

fn score_row(out: &mut String, name: &str, s: &EventScores) {
    let _ = write!(
        out,
        "<tr><th>{}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
         <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        esc(name),
        s.events,
        s.captures,
        s.hits,
        s.duplicates,
        s.false_captures,
        s.missed,
        num(s.precision),
        num(s.recall),
        num(s.f1),
        num(s.time_to_capture_median_s),
        num(s.time_to_capture_max_s),
    );
}

const SCORE_HEAD: &str = "<tr><th></th><th>events</th><th>captures</th><th>hits</th>\
<th>duplicates</th><th>false</th><th>missed</th><th>precision</th><th>recall</th><th>F1</th>\
<th>time to capture, median (s)</th><th>max (s)</th></tr>";

fn html(r: &Results, run: &RunOut, plots: &[PathBuf]) -> String {
    let mut h = String::new();
    h.push_str(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>citywatch evaluation</title><style>\
         body{font:14px/1.4 sans-serif;margin:24px;color:#222;max-width:1200px}\
         table{border-collapse:collapse;margin:8px 0 16px}\
         td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}\
         th:first-child,td.l{text-align:left}\
         .better{background:#d9f2d9;font-weight:bold}.worse{background:#f9d6d5}\
         .hit{color:#176917}.duplicate{color:#8a6100}.false{color:#b00020}\
         .run{color:#666;border-top:1px solid #ccc;margin-top:24px}\
         img{border:1px solid #ddd;margin:4px}\
         </style></head><body><h1>citywatch evaluation</h1>",
    );
    let _ = write!(
        h,
        "<p>Matching: a capture hits a truth event of its clip and rule when it is confirmed \
         within the event's span ± {} s and, where the event has a box, its box overlaps it \
         with IoU ≥ {}.</p>",
        r.matching.tolerance_s, r.matching.min_iou
    );
    h.push_str("<h2>Clips</h2><table><tr><th>clip</th><th>footage</th><th>size</th><th>fps</th><th>length (s)</th><th>events</th><th>per-frame truth</th></tr>");
    for c in &r.clips {
        let _ = write!(
            h,
            "<tr><td class=l>{}</td><td class=l>{}</td><td>{}×{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&c.clip),
            esc(&c.footage),
            c.width,
            c.height,
            num(Some(c.fps)),
            num(Some(c.duration_s)),
            c.events,
            if c.frame_truth { "yes" } else { "no" }
        );
    }
    h.push_str("</table>");
    if !r.comparison.is_empty() {
        let (a, b) = (&r.variants[0], &r.variants[1]);
        let _ = write!(
            h,
            "<h2>A against B</h2><p>A: {} with {}; B: {} with {}. The better figure of each \
             row is green, the worse red.</p><table><tr><th>scope</th><th>metric</th><th>A</th>\
             <th>B</th><th>B − A</th></tr>",
            esc(&a.pipeline),
            esc(&a.model.name),
            esc(&b.pipeline),
            esc(&b.model.name)
        );
        for d in &r.comparison {
            let (ca, cb) = match d.better {
                Some("A") => ("better", "worse"),
                Some("B") => ("worse", "better"),
                _ => ("", ""),
            };
            let _ = write!(
                h,
                "<tr><td class=l>{}</td><td class=l>{}</td><td class=\"{ca}\">{}</td>\
                 <td class=\"{cb}\">{}</td><td>{}</td></tr>",
                esc(&d.scope),
                d.metric,
                num(d.a),
                num(d.b),
                num(d.delta)
            );
        }
        h.push_str("</table>");
    }
    h.push_str("<h2>Plots</h2><div>");
    for p in plots {
        if let Some(name) = p.file_name() {
            let name = esc(&name.to_string_lossy());
            let _ = write!(h, "<img src=\"{name}\" alt=\"{name}\">");
        }
    }
    h.push_str("</div>");
    for v in &r.variants {
        let _ = write!(
            h,
            "<h2>{}: {} with {} {}</h2><p>{} frames analysed, the detector ran on {}.</p>\
             <h3>Events</h3><table>{SCORE_HEAD}",
            esc(v.name),
            esc(&v.pipeline),
            esc(&v.model.name),
            esc(&v.model.version),
            v.work.frames_analysed,
            v.work.inferences
        );
        score_row(&mut h, "all", &v.events.overall);
        for (rule, s) in &v.events.by_rule {
            score_row(&mut h, &format!("rule {rule}"), s);
        }
        for (cam, s) in &v.events.by_camera {
            score_row(&mut h, &format!("camera {cam}"), s);
        }
        h.push_str("</table>");
        if let Some(f) = &v.frames {
            let _ = write!(
                h,
                "<h3>Detections (frame level, IoU 0.5)</h3><p>{} labelled frames analysed; \
                 mAP@0.5 {}.</p><table><tr><th>class</th><th>truth boxes</th>\
                 <th>detections</th><th>true</th><th>false</th><th>precision</th>\
                 <th>recall</th><th>AP@0.5</th></tr>",
                f.frames_evaluated,
                num(f.map50)
            );
            for (class, c) in &f.classes {
                let _ = write!(
                    h,
                    "<tr><td class=l>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
                     <td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(class),
                    c.truth_boxes,
                    c.detections,
                    c.true_positives,
                    c.false_positives,
                    num(c.precision),
                    num(c.recall),
                    num(c.ap50)
                );
            }
            h.push_str("</table>");
        }
        h.push_str(
            "<h3>Captures</h3><table><tr><th>clip</th><th>rule</th><th>zone</th><th>label</th>\
             <th>first seen (s)</th><th>confirmed (s)</th><th>score</th><th>verdict</th></tr>",
        );
        for c in &v.captures {
            let (class, text) = match c.verdict {
                Verdict::Hit(j) => ("hit", format!("hit (event {j})")),
                Verdict::Duplicate(j) => ("duplicate", format!("duplicate of event {j}")),
                Verdict::False => ("false", "false".to_string()),
            };
            let k = c.capture;
            let _ = write!(
                h,
                "<tr><td class=l>{}</td><td class=l>{}</td><td class=l>{}</td><td class=l>{}</td>\
                 <td>{}</td><td>{}</td><td>{}</td><td class=\"l {class}\">{text}</td></tr>",
                esc(&k.clip),
                k.rule.as_str(),
                esc(&k.zone),
                esc(&k.label),
                num(Some(k.start_s)),
                num(Some(k.confirm_s)),
                num(Some(k.score)),
            );
        }
        h.push_str("</table>");
        if !v.missed.is_empty() {
            h.push_str("<h3>Missed events</h3><table><tr><th>clip</th><th>rule</th><th>start (s)</th><th>end (s)</th><th>dwell (s)</th></tr>");
            for e in &v.missed {
                let _ = write!(
                    h,
                    "<tr><td class=l>{}</td><td class=l>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(&e.clip),
                    e.rule.as_str(),
                    num(Some(e.start_s)),
                    num(Some(e.end_s)),
                    num(e.dwell_s)
                );
            }
            h.push_str("</table>");
        }
        if let Some(rv) = v.review {
            let _ = write!(
                h,
                "<h3 id=review>Simulated review</h3><p>The truth confirmed {} and rejected {} \
                 captures of the first pass (memory similarity ≥ {}); the second pass no longer \
                 files {} of the first pass's false captures.</p>",
                rv.confirmed,
                rv.rejected,
                rv.similarity,
                rv.false_removed_share
                    .map_or("-".to_string(), |x| format!("{:.0} %", x * 100.0)),
            );
            let passes = [
                ("first pass", Some(&rv.first_pass)),
                ("second pass", Some(&rv.second_pass)),
                ("held out", rv.held_out.as_ref()),
            ];
            for (name, pass) in passes {
                let Some(p) = pass else { continue };
                let _ = write!(
                    h,
                    "<h4>{name}: learned suppressions {} right, {} wrong</h4><table>{SCORE_HEAD}",
                    p.suppressions.right, p.suppressions.wrong
                );
                for (rule, sc) in &p.rules {
                    score_row(&mut h, rule, sc);
                }
                h.push_str("</table>");
            }
        }
    }
    h.push_str("<div class=run><h2>This run</h2><p>Machine-dependent; kept apart from the results.</p><table><tr><th>variant</th><th>wall (s)</th><th>CPU (s)</th><th>frames/s</th><th>CPU-s per hour of video</th><th>× real time</th></tr>");
    for v in &run.variants {
        let _ = write!(
            h,
            "<tr><td class=l>{}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td><td>{:.0}</td><td>{:.1}</td></tr>",
            esc(&v.name),
            v.wall_s,
            v.cpu_s,
            v.frames_per_s,
            v.cpu_s_per_video_hour,
            v.speed
        );
    }
    let _ = writeln!(
        h,
        "</table><p>citywatch {}, {} CPUs.</p></div></body></html>",
        run.citywatch, run.cpus
    );
    h
}
