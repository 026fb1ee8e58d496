//! Decode cost per camera: full decode against keyframe-only decode.
//!
//! Input: 1080p25 H.264 with a keyframe every 2 s, made once from the shipped vtest sample
//! (upscaled, re-timed to 25 fps) and cached under `target/bench-data/`.
//! Each mode runs one camera in a child process of this bench, over the whole file, as fast
//! as it decodes, at a 640-wide analysis size; the child reports its own CPU time and peak
//! RSS. Figures: CPU-seconds per hour of video, frames/s, peak RSS (and its growth over an
//! idle process, i.e. the camera's own cost).
//!
//! Run with `make bench` (or `cargo bench --bench decode`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use citywatch::config::PipelineConfig;
use citywatch::core::{Shutdown, SystemClock};
use citywatch::ingest::spawn_camera;
use gstreamer as gst;
use gstreamer::prelude::*;

/// Analysis rates compared: every keyframe, one frame per 5 s, one per minute.
const ANALYSIS_FPS: [f64; 3] = [0.5, 0.2, 1.0 / 60.0];
const KEYFRAME_EVERY_S: u32 = 2;

fn data_file() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-data");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("vtest-1080p25-gop2s.mp4")
}

/// Makes the 1080p25 input once (about half a minute on two cores).
fn prepare(out: &Path) {
    if out.exists() {
        return;
    }
    eprintln!(
        "bench: making {} from sample-videos/vtest.mp4",
        out.display()
    );
    gst::init().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-videos/vtest.mp4");
    let tmp = out.with_extension("tmp");
    let desc = format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! videoscale ! \
         video/x-raw,width=1920,height=1080,format=I420 ! videorate ! video/x-raw,framerate=25/1 ! \
         x264enc bframes=0 key-int-max={} speed-preset=veryfast bitrate=4000 \
         option-string=scenecut=0 ! h264parse ! \
         mp4mux ! filesink location=\"{}\"",
        src.display(),
        25 * KEYFRAME_EVERY_S,
        tmp.display()
    );
    let p = gst::parse::launch(&desc).unwrap();
    p.set_state(gst::State::Playing).unwrap();
    let bus = p.bus().unwrap();
    let msg = bus
        .timed_pop_filtered(
            gst::ClockTime::NONE,
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .unwrap();
    p.set_state(gst::State::Null).unwrap();
    if let gst::MessageView::Error(e) = msg.view() {
        panic!("making the bench input failed: {}", e.error());
    }
    std::fs::rename(&tmp, out).unwrap();
}

/// CPU seconds (user + system) used by this process so far.
fn cpu_s() -> f64 {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(ru.ru_utime) + t(ru.ru_stime)
}

/// A field of /proc/self/status in KiB. VmHWM (peak RSS) starts afresh at exec, unlike
/// getrusage's ru_maxrss, which a child inherits from the bench process.
fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// The child: one camera over the whole file; prints one JSON line.
fn child(mode: &str, fps: f64, file: &Path) {
    gst::init().unwrap();
    let idle_rss = status_kb("VmRSS:");
    let cfg = PipelineConfig::parse(
        &format!(
            "[[cameras]]\nid = \"bench\"\nurl = \"file://{}\"\nanalysis_fps = {fps}\nanalysis_width = 640\nkeyframe_only = \"{mode}\"\n",
            file.display()
        ),
        Path::new("/"),
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let cpu0 = cpu_s();
    let start = Instant::now();
    let (frames, video_s) = rt.block_on(async {
        let shutdown = Shutdown::new();
        let mut cam = spawn_camera(
            &cfg.cameras[0],
            &cfg.ingest,
            cfg.backoff(),
            Arc::new(SystemClock),
            shutdown,
        );
        let mut n = 0u64;
        let mut last = Duration::ZERO;
        while let Some(f) = cam.next_frame().await {
            n += 1;
            last = f.pts.unwrap_or(last);
        }
        (n, last.as_secs_f64())
    });
    let wall = start.elapsed().as_secs_f64();
    let (cpu1, peak_kb) = (cpu_s(), status_kb("VmHWM:"));
    println!(
        "{{\"mode\":\"{mode}\",\"frames\":{frames},\"last_pts_s\":{video_s:.2},\"wall_s\":{wall:.3},\"cpu_s\":{:.3},\"peak_rss_kb\":{peak_kb},\"idle_rss_kb\":{idle_rss}}}",
        cpu1 - cpu0
    );
}

fn duration_s(file: &Path) -> f64 {
    gst::init().unwrap();
    let d = gstreamer_pbutils_free_duration(file);
    d.as_secs_f64()
}

/// The file's duration, read by prerolling a demuxer (no decoding).
fn gstreamer_pbutils_free_duration(file: &Path) -> Duration {
    let p = gst::parse::launch(&format!(
        "filesrc location=\"{}\" ! qtdemux ! fakesink",
        file.display()
    ))
    .unwrap();
    p.set_state(gst::State::Paused).unwrap();
    let _ = p.state(gst::ClockTime::from_seconds(10));
    let d = p.query_duration::<gst::ClockTime>().unwrap();
    p.set_state(gst::State::Null).unwrap();
    Duration::from_nanos(d.nseconds())
}

fn main() {
    let file = data_file();
    if let Ok(spec) = std::env::var("CITYWATCH_BENCH_CHILD") {
        let (mode, fps) = spec.split_once('@').unwrap();
        child(mode, fps.parse().unwrap(), &file);
        return;
    }
    // `cargo bench` passes --bench; a filter argument is ignored.
    prepare(&file);
    let video_s = duration_s(&file);
    let frames_total = (video_s * 25.0).round();
    println!(
        "decode bench: {} ({video_s:.1} s, 1920x1080, 25 fps, keyframe every {KEYFRAME_EVERY_S} s), 640 wide RGB out, median of 3 runs",
        file.display()
    );
    for fps in ANALYSIS_FPS {
        println!(
            "analysis rate {fps:.4} fps (one frame every {:.0} s):",
            1.0 / fps
        );
        let mut per_hour = Vec::new();
        for mode in ["off", "on"] {
            let mut runs = Vec::new();
            for _ in 0..3 {
                let out = Command::new(std::env::current_exe().unwrap())
                    .env("CITYWATCH_BENCH_CHILD", format!("{mode}@{fps}"))
                    .env("CITYWATCH_LOG", "warn")
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
                runs.push(serde_json::from_str::<serde_json::Value>(&line).unwrap());
            }
            runs.sort_by(|a, b| {
                a["cpu_s"]
                    .as_f64()
                    .partial_cmp(&b["cpu_s"].as_f64())
                    .unwrap()
            });
            let v = &runs[1];
            let f = |k: &str| v[k].as_f64().unwrap();
            let (cpu, wall) = (f("cpu_s"), f("wall_s"));
            per_hour.push(cpu / video_s * 3600.0);
            println!(
                "  {:<14} {:8.1} CPU-s per hour of video (cpu {cpu:.2} s, runs {}) | {:7.1} video frames/s | {} analysis frames | peak RSS {:.1} MiB, camera adds {:.1} MiB",
                if mode == "off" {
                    "full decode"
                } else {
                    "keyframe-only"
                },
                per_hour[per_hour.len() - 1],
                runs.iter()
                    .map(|r| format!("{:.2}", r["cpu_s"].as_f64().unwrap()))
                    .collect::<Vec<_>>()
                    .join("/"),
                frames_total / wall,
                v["frames"],
                f("peak_rss_kb") / 1024.0,
                (f("peak_rss_kb") - f("idle_rss_kb")) / 1024.0,
            );
        }
        let ratio = per_hour[1] / per_hour[0];
        println!(
            "  keyframe-only / full = {ratio:.3} ({:.1}x less CPU); goal at most 0.100: {}",
            1.0 / ratio,
            if ratio <= 0.1 { "met" } else { "not met" }
        );
    }
}
