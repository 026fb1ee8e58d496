//! `citywatch run`: starts every enabled camera, hands their frames to analysis, prints
//! camera health periodically, and shuts down cleanly on SIGINT/SIGTERM.
//!
//! Analysis stages (detection, episodes, rules) plug in where frames are consumed; until
//! they exist, frames are counted and released.

use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};

use crate::config::PipelineConfig;
use crate::core::{Clock, Shutdown};
use crate::ingest::{CameraStatus, HealthBoard, spawn_camera};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFormat {
    Table,
    Json,
}

pub struct RunOptions {
    /// Stop by itself after this long (demos, smoke tests).
    pub duration: Option<Duration>,
    pub status_format: StatusFormat,
}

/// One status line per camera.
pub fn format_status(s: &CameraStatus, format: StatusFormat) -> String {
    match format {
        StatusFormat::Json => serde_json::to_string(s).expect("status serialises"),
        StatusFormat::Table => {
            let h = &s.health;
            let age = s
                .last_frame_age_s
                .map(|a| format!("{a:.1}s"))
                .unwrap_or_else(|| "-".into());
            let mut line = format!(
                "{:<12} {:<11} frames={:<6} dropped={:<4} reconnects={:<3} last_frame_age={:<7} keyframe_only={} url={}",
                h.id,
                h.state.as_str(),
                h.frames,
                h.frames_dropped,
                h.reconnects,
                age,
                if h.keyframe_only { "yes" } else { "no" },
                h.url
            );
            if let Some(e) = &h.last_error {
                line.push_str(&format!(" last_error=\"{e}\""));
            }
            line
        }
    }
}

/// Runs until shutdown (a signal, `duration`, or every camera finished).
pub async fn run(
    config: PipelineConfig,
    clock: Arc<dyn Clock>,
    shutdown: Shutdown,
    opts: RunOptions,
) -> anyhow::Result<()> {
    let backoff = config.backoff();
    let mut board = HealthBoard::default();
    let mut threads = Vec::new();
    let mut consumers = Vec::new();
    for cam in config.cameras.iter().filter(|c| c.enabled) {
        let handle = spawn_camera(
            cam,
            &config.ingest,
            backoff,
            clock.clone(),
            shutdown.clone(),
        );
        board.add(handle.health.clone());
        let (mut frames, thread) = handle.into_parts();
        threads.push(thread);
        consumers.push(tokio::spawn(async move {
            let mut n = 0u64;
            while let Some(frame) = frames.recv().await {
                n += 1;
                drop(frame);
            }
            n
        }));
    }
    info!(cameras = threads.len(), "pipeline started");

    let interval = crate::config::secs(config.settings.status_interval_s);
    let mut ticker = tokio::time::interval(interval);
    ticker.tick().await;
    let stop_after = async {
        match opts.duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(stop_after);
    loop {
        tokio::select! {
            biased;
            _ = shutdown.triggered() => break,
            _ = &mut stop_after => { shutdown.trigger(); break; }
            _ = ticker.tick() => {
                print_status(&board, clock.as_ref(), opts.status_format);
                if threads.iter().all(|t| t.is_finished()) {
                    info!("every camera has stopped");
                    break;
                }
            }
        }
    }
    shutdown.trigger();

    // Give the camera threads the shutdown deadline, then report what is stuck.
    let deadline = crate::config::secs(config.settings.shutdown_timeout_s);
    let joined = tokio::task::spawn_blocking(move || {
        let until = std::time::Instant::now() + deadline;
        let mut stuck = Vec::new();
        for t in threads {
            while !t.is_finished() && std::time::Instant::now() < until {
                std::thread::sleep(Duration::from_millis(10));
            }
            if t.is_finished() {
                t.join();
            } else {
                stuck.push(t.id.to_string());
            }
        }
        stuck
    })
    .await?;
    for c in consumers {
        c.abort();
    }
    print_status(&board, clock.as_ref(), opts.status_format);
    if !joined.is_empty() {
        warn!(cameras = ?joined, "shutdown deadline passed; forcing exit");
    } else {
        info!("shut down cleanly");
    }
    Ok(())
}

fn print_status(board: &HealthBoard, clock: &dyn Clock, format: StatusFormat) {
    let now = clock.now();
    for s in board.snapshot(now) {
        println!("{}", format_status(&s, format));
    }
}
