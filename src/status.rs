//! The status output of `citywatch run`: one line per camera (health, analysis, patrol), and
//! lines for the filing stage, the patrol's platforms and the worker, as a table or as JSON
//! lines (`--status-json`, which scripts and tests read).

use serde::Serialize;

use crate::core::Clock;
use crate::filing::FilingStage;
use crate::ingest::{CameraStatus, HealthBoard};
use crate::patrol::visits::PatrolBoard;
use crate::pipeline::{AnalysisBoard, AnalysisStatus};
use crate::workers::host::WorkerBoard;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFormat {
    Table,
    Json,
}

/// A status line: camera health plus analysis.
#[derive(Debug, Serialize)]
pub struct StatusLine {
    #[serde(flatten)]
    pub camera: CameraStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analysis: Option<AnalysisStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patrol: Option<crate::patrol::CameraPatrol>,
}

/// What the status printer reads.
pub struct Boards {
    pub health: HealthBoard,
    pub analysis: AnalysisBoard,
    /// Whether a detector runs (cameras then show analysis counters).
    pub detecting: bool,
    pub patrol: Option<PatrolBoard>,
    pub worker: Option<WorkerBoard>,
    pub filing: Option<std::sync::Arc<FilingStage>>,
}

impl Boards {
    /// Every line: cameras, filing, patrol platforms, worker.
    pub fn print(&self, clock: &dyn Clock, format: StatusFormat) {
        self.print_cameras(clock, format);
        print_filing(self.filing.as_deref(), format);
        print_patrol(self.patrol.as_ref(), format);
        print_worker(self.worker.as_ref(), format);
    }

    /// One line per camera.
    pub fn print_cameras(&self, clock: &dyn Clock, format: StatusFormat) {
        let now = clock.now();
        let analysis = self.analysis.lock().clone();
        let patrol = self
            .patrol
            .as_ref()
            .map(|p| p.lock().cameras.clone())
            .unwrap_or_default();
        for camera in self.health.snapshot(now) {
            let a = self
                .detecting
                .then(|| analysis.get(&camera.health.id).copied().unwrap_or_default());
            let line = StatusLine {
                patrol: patrol.get(&camera.health.id).cloned(),
                camera,
                analysis: a,
            };
            println!("{}", format_status(&line, format));
        }
    }
}

/// One status line per camera.
pub fn format_status(line: &StatusLine, format: StatusFormat) -> String {
    let s = &line.camera;
    match format {
        StatusFormat::Json => serde_json::to_string(line).expect("status serialises"),
        StatusFormat::Table => {
            let h = &s.health;
            let age = s
                .last_frame_age_s
                .map(|a| format!("{a:.1}s"))
                .unwrap_or_else(|| "-".into());
            let mut out = format!(
                "{:<12} {:<11} frames={:<6} dropped={:<4} reconnects={:<3} last_frame_age={:<7} keyframe_only={} url={}",
                h.id,
                h.shown_state(),
                h.frames,
                h.frames_dropped,
                h.reconnects,
                age,
                if h.keyframe_only { "yes" } else { "no" },
                h.url
            );
            if h.frames_shed > 0 {
                out.push_str(&format!(" shed={}", h.frames_shed));
            }
            if let Some(a) = &line.analysis {
                out.push_str(&format!(
                    " inferences={} reused={} objects={} episodes={} captures={} suppressed={}",
                    a.inferences, a.reused, a.objects, a.open_episodes, a.captures, a.suppressed
                ));
                if a.deferred > 0 {
                    out.push_str(&format!(" deferred={}", a.deferred));
                }
                if a.off_view {
                    out.push_str(" view=off_view");
                }
            }
            if let Some(p) = &line.patrol {
                out.push_str(&format!(
                    " visits={} late_visits={} max_gap_s={:.0}{}",
                    p.visits,
                    p.late_visits,
                    p.max_gap_s,
                    if p.hot { " hot" } else { "" }
                ));
            }
            if let Some(e) = &h.last_error {
                out.push_str(&format!(" last_error=\"{e}\""));
            }
            out
        }
    }
}

/// One line for the filing stage: evidence, the persistent queue, the database.
pub fn print_filing(stage: Option<&FilingStage>, format: StatusFormat) {
    let Some(stage) = stage else { return };
    let s = stage.status();
    match format {
        StatusFormat::Json => println!("{}", serde_json::json!({ "filing": s })),
        StatusFormat::Table => {
            let mut out = format!(
                "{:<12} evidence_pending={} evidence_written={} evidence_errors={} queued={} queue_dropped={} stored={} db_errors={}",
                "[filing]",
                s.evidence_pending,
                s.evidence_written,
                s.evidence_errors,
                s.queued,
                s.queue_dropped,
                s.stored,
                s.db_errors
            );
            if let Some(b) = &s.blocked {
                out.push_str(&format!(
                    " BLOCKED={}:{} held={}",
                    b.place,
                    b.reason.as_str(),
                    s.held
                ));
            }
            if let Some(r) = &s.retention {
                out.push_str(&format!(
                    " evidence_bytes={} quota_bytes={} quota_alert={}",
                    r.used_bytes,
                    r.quota_bytes,
                    if r.quota_alert { "YES" } else { "no" }
                ));
            }
            if let Some(e) = &s.last_evidence_error {
                out.push_str(&format!(" last_evidence_error=\"{e}\""));
            }
            if let Some(e) = &s.last_queue_error {
                out.push_str(&format!(" last_queue_error=\"{e}\""));
            }
            if let Some(e) = &s.last_db_error {
                out.push_str(&format!(" last_db_error=\"{e}\""));
            }
            println!("{out}");
        }
    }
}

/// One line for a worker: its share, its cameras and jobs, its lease changes.
fn print_worker(board: Option<&WorkerBoard>, format: StatusFormat) {
    let Some(board) = board else { return };
    let w = board.lock().clone();
    match format {
        StatusFormat::Json => println!("{}", serde_json::json!({ "worker": w })),
        StatusFormat::Table => {
            let mut out = format!(
                "{:<12} id={} live_workers={} share={} cameras={} jobs={} taken={} given_back={} lost={} round_errors={}",
                "[worker]",
                w.id,
                w.live_workers,
                w.share,
                w.cameras.len(),
                w.jobs.join(","),
                w.taken,
                w.given_back,
                w.lost,
                w.round_errors
            );
            if let Some(e) = &w.last_error {
                out.push_str(&format!(" last_error=\"{e}\""));
            }
            println!("{out}");
        }
    }
}

/// One line per platform while patrolling: demand against cap.
fn print_patrol(board: Option<&PatrolBoard>, format: StatusFormat) {
    let Some(board) = board else { return };
    let platforms = board.lock().platforms.clone();
    for l in platforms {
        match format {
            StatusFormat::Json => println!("{}", serde_json::json!({ "patrol": l })),
            StatusFormat::Table => println!(
                "{:<12} platform={} cap={} cameras={} continuous={} demand={:.2} round_s={:.0} feasible={}",
                "[patrol]",
                l.platform,
                l.cap,
                l.cameras,
                l.continuous,
                l.demand,
                l.round_s,
                if l.feasible { "yes" } else { "NO" }
            ),
        }
    }
}
