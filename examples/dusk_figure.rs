//! Draws docs/figures/dusk_bin.svg: the bin zone of the scenario camera through the dusk
//! clips, compared with its daylight reference two ways: the brightness comparison the bin
//! rule used before (share of cells whose grey moved by more than 0.08) and the light-proof
//! structure comparison it uses now (`scene::structure`). Solid lines: dusk with nothing
//! added; dashed: dusk while litter lies in the zone from 30 s.
//!
//! `cargo run --example dusk_figure` (from the repository root).

use std::sync::Arc;

use citywatch::config::{CameraConfig, IngestDefaults};
use citywatch::core::{Shutdown, SystemClock};
use citywatch::ingest::spawn_camera;
use citywatch::model::Polygon;
use citywatch::scene::structure::Patch;

/// The bin zone of tests/scenarios/pipeline.toml.
fn zone() -> Polygon {
    Polygon(vec![[0.72, 0.82], [0.92, 0.82], [0.92, 0.97], [0.72, 0.97]])
}

/// (seconds, structure share, brightness share) per analysed frame; the reference is the
/// first frame.
async fn trace(clip: &str) -> Vec<(f64, f32, f32)> {
    let cam = CameraConfig::for_file("figure", std::path::Path::new(clip), 2.0);
    let mut handle = spawn_camera(
        &cam,
        &IngestDefaults::default(),
        Default::default(),
        Arc::new(SystemClock),
        Shutdown::new(),
    );
    let mut reference: Option<Patch> = None;
    let mut out = Vec::new();
    while let Some(frame) = handle.next_frame().await {
        let p = Patch::of(&frame, &zone());
        let r = reference.get_or_insert_with(|| p.clone());
        let t = frame.pts.map(|d| d.as_secs_f64()).unwrap_or(0.0);
        out.push((
            t,
            p.changed_share(&r.grey),
            p.brightness_share(&r.grey, 0.08),
        ));
    }
    out
}

fn polyline(points: &[(f64, f32)], colour: &str, dash: bool) -> String {
    let pts: Vec<String> = points
        .iter()
        .map(|(t, v)| format!("{:.1},{:.1}", 60.0 + t * 8.0, 260.0 - *v as f64 * 220.0))
        .collect();
    format!(
        "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"{} points=\"{}\"/>",
        if dash {
            " stroke-dasharray=\"6 4\""
        } else {
            ""
        },
        pts.join(" ")
    )
}

#[tokio::main]
async fn main() {
    let dusk = trace("tests/scenarios/dusk.mp4").await;
    let litter = trace("tests/scenarios/dusk_litter.mp4").await;
    let mut svg = String::from(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"760\" height=\"320\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"760\" height=\"320\" fill=\"white\"/>\n\
         <line x1=\"60\" y1=\"260\" x2=\"700\" y2=\"260\" stroke=\"black\"/>\n\
         <line x1=\"60\" y1=\"40\" x2=\"60\" y2=\"260\" stroke=\"black\"/>\n",
    );
    for i in 0..=8 {
        let x = 60 + i * 80;
        svg.push_str(&format!(
            "<text x=\"{x}\" y=\"276\" text-anchor=\"middle\">{}</text>\n",
            i * 10
        ));
    }
    for v in [0.0, 0.25, 0.5, 0.75, 1.0] {
        let y = 260.0 - v * 220.0;
        svg.push_str(&format!(
            "<text x=\"52\" y=\"{:.0}\" text-anchor=\"end\">{v}</text>\n",
            y + 4.0
        ));
    }
    svg.push_str("<line x1=\"60\" y1=\"205\" x2=\"700\" y2=\"205\" stroke=\"#999\" stroke-dasharray=\"2 3\"/><text x=\"704\" y=\"209\">rule threshold 0.25</text>\n");
    svg.push_str("<text x=\"380\" y=\"300\" text-anchor=\"middle\">stream time (s); light falls to 30 % and turns warm from 10 s to 60 s</text>\n");
    svg.push_str("<text x=\"60\" y=\"24\">Changed share of the bin zone against its daylight reference</text>\n");
    for (series, dash) in [(&dusk, false), (&litter, true)] {
        let old: Vec<(f64, f32)> = series.iter().map(|(t, _, b)| (*t, *b)).collect();
        let new: Vec<(f64, f32)> = series.iter().map(|(t, s, _)| (*t, *s)).collect();
        svg.push_str(&polyline(&old, "#d62728", dash));
        svg.push_str(&polyline(&new, "#1f77b4", dash));
        svg.push('\n');
    }
    svg.push_str("<text x=\"470\" y=\"60\" fill=\"#d62728\">brightness (before)</text>\n<text x=\"470\" y=\"78\" fill=\"#1f77b4\">structure, gain-compensated (now)</text>\n<text x=\"470\" y=\"96\">solid: dusk, nothing added; dashed: litter from 30 s</text>\n</svg>\n");
    std::fs::write("docs/figures/dusk_bin.svg", svg).expect("write docs/figures/dusk_bin.svg");
    let at = |s: &Vec<(f64, f32, f32)>, t: f64| {
        s.iter()
            .min_by(|a, b| (a.0 - t).abs().total_cmp(&(b.0 - t).abs()))
            .copied()
    };
    for t in [5.0, 35.0, 70.0] {
        println!(
            "t={t}: dusk structure/brightness {:?}; litter {:?}",
            at(&dusk, t),
            at(&litter, t)
        );
    }
}
