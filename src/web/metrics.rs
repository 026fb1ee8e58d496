//! `/metrics` in the Prometheus text exposition format (0.0.4). Values are read at scrape
//! time from the boards the pipeline already keeps (camera health, analysis counters, the
//! filing stage) and from the store, so nothing is counted twice. Every name is listed in
//! `docs/metrics.md`.

use std::fmt::Write;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::auth::server_error;
use super::state::WebState;

/// Escapes a label value.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    /// A family with one sample per camera; cameras without a value are left out.
    fn per_camera(
        &mut self,
        name: &str,
        kind: &str,
        help: &str,
        values: Vec<(String, Option<f64>)>,
    ) {
        self.family(name, kind, help);
        for (cam, v) in values {
            if let Some(v) = v {
                self.sample(name, &[("camera", &cam)], v);
            }
        }
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], v: f64) {
        let l: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", label(v)))
            .collect();
        if l.is_empty() {
            let _ = writeln!(self.0, "{name} {v}");
        } else {
            let _ = writeln!(self.0, "{name}{{{}}} {v}", l.join(","));
        }
    }
}

pub async fn metrics(State(st): State<Arc<WebState>>) -> Response {
    let mut o = Out(String::new());
    let health = st.health.snapshot(st.clock.now());
    let analysis = st.analysis.lock().expect("analysis board").clone();
    let ids = |f: fn(&crate::ingest::CameraStatus) -> Option<f64>| {
        health
            .iter()
            .map(move |h| (h.health.id.to_string(), f(h)))
            .collect::<Vec<_>>()
    };
    o.per_camera(
        "citywatch_camera_up",
        "gauge",
        "1 while the camera is streaming.",
        ids(|h| Some((h.health.state == crate::ingest::HealthState::Streaming) as u8 as f64)),
    );
    o.per_camera(
        "citywatch_camera_frames_total",
        "counter",
        "Frames delivered to analysis.",
        ids(|h| Some(h.health.frames as f64)),
    );
    o.per_camera(
        "citywatch_camera_frames_dropped_total",
        "counter",
        "Frames dropped because analysis fell behind.",
        ids(|h| Some(h.health.frames_dropped as f64)),
    );
    o.per_camera(
        "citywatch_camera_reconnects_total",
        "counter",
        "Reconnects after failures.",
        ids(|h| Some(h.health.reconnects as f64)),
    );
    o.per_camera(
        "citywatch_camera_last_frame_age_seconds",
        "gauge",
        "Seconds since the camera's last frame.",
        ids(|h| h.last_frame_age_s),
    );
    let counts = |f: fn(&crate::analysis::AnalysisStatus) -> u64| {
        analysis
            .iter()
            .map(move |(cam, a)| (cam.clone(), Some(f(a) as f64)))
            .collect::<Vec<_>>()
    };
    o.per_camera(
        "citywatch_frames_analysed_total",
        "counter",
        "Frames the detector ran on.",
        counts(|a| a.inferences),
    );
    o.per_camera(
        "citywatch_frames_reused_total",
        "counter",
        "Frames that reused the last detections (scene unchanged or over budget).",
        counts(|a| a.reused),
    );
    o.per_camera(
        "citywatch_captures_made_total",
        "counter",
        "Captures this process made, by camera.",
        counts(|a| a.captures),
    );
    o.per_camera(
        "citywatch_camera_off_view",
        "gauge",
        "1 while the camera is off the view its zones were drawn for (rules paused).",
        counts(|a| a.off_view as u64),
    );
    o.per_camera(
        "citywatch_deferred_candidates",
        "gauge",
        "Candidates waiting for a capture token.",
        counts(|a| a.deferred as u64),
    );
    o.per_camera(
        "citywatch_fixtures",
        "gauge",
        "Fixtures the camera knows (benches, a shop's chairs): never stall evidence.",
        counts(|a| a.fixtures as u64),
    );
    o.per_camera(
        "citywatch_proposed_fixtures",
        "gauge",
        "Fixtures the camera proposes (found at its first look or standing for days), waiting for an operator.",
        counts(|a| a.proposed_fixtures as u64),
    );
    o.per_camera(
        "citywatch_episodes_evicted_total",
        "counter",
        "Open episodes dropped because the camera had too many open (the weakest first).",
        counts(|a| a.evicted_episodes),
    );
    o.per_camera(
        "citywatch_camera_detector_down",
        "gauge",
        "1 while the detector fails on the camera's frames (they are unjudged; open episodes are held, their dwell intact).",
        counts(|a| a.detector_down as u64),
    );
    o.per_camera(
        "citywatch_detect_errors_total",
        "counter",
        "Detector runs that failed on the camera's frames.",
        counts(|a| a.detect_errors),
    );
    o.per_camera(
        "citywatch_states_quarantined_total",
        "counter",
        "Saved camera states set aside as unreadable at start (the camera started fresh; the file or the audit log keeps them).",
        counts(|a| a.states_quarantined),
    );
    o.per_camera(
        "citywatch_suppressions_total",
        "counter",
        "Candidates suppressed (duplicate, rate limit, outside hours), by camera.",
        counts(|a| a.suppressed),
    );
    if let Some(lat) = &st.inference {
        let (buckets, count, sum) = lat.snapshot();
        o.family(
            "citywatch_inference_seconds",
            "histogram",
            "Time the detector took per batch (preprocessing, session.run, decoding).",
        );
        for (n, le) in buckets.iter().zip(crate::detect::service::LATENCY_BUCKETS) {
            o.sample(
                "citywatch_inference_seconds_bucket",
                &[("le", &le.to_string())],
                *n as f64,
            );
        }
        o.sample(
            "citywatch_inference_seconds_bucket",
            &[("le", "+Inf")],
            count as f64,
        );
        o.sample("citywatch_inference_seconds_sum", &[], sum);
        o.sample("citywatch_inference_seconds_count", &[], count as f64);
    }
    o.family(
        "citywatch_suppressions_by_reason_total",
        "counter",
        "Suppressed candidates by camera and reason.",
    );
    for (cam, a) in &analysis {
        for (reason, n) in [
            ("duplicate", a.suppressed_duplicate),
            ("rate_limit", a.suppressed_rate_limit),
            ("outside_hours", a.suppressed_outside_hours),
            ("aggregated", a.suppressed_aggregated),
            ("expired", a.suppressed_expired),
            ("resembles_rejected", a.suppressed_resembles_rejected),
        ] {
            o.sample(
                "citywatch_suppressions_by_reason_total",
                &[("camera", cam), ("reason", reason)],
                n as f64,
            );
        }
    }

    let rules = match st.store.rule_summary().await {
        Ok(r) => r,
        Err(e) => return server_error(e),
    };
    o.family(
        "citywatch_captures",
        "gauge",
        "Captures in the store, by rule and review status.",
    );
    for r in &rules {
        for (status, n) in [
            ("pending_review", r.pending),
            ("filed", r.confirmed),
            ("rejected", r.rejected),
        ] {
            o.sample(
                "citywatch_captures",
                &[("rule", &r.rule), ("status", status)],
                n as f64,
            );
        }
    }
    let counts = match st.store.counts().await {
        Ok(c) => c,
        Err(e) => return server_error(e),
    };
    o.family("citywatch_cases", "gauge", "Cases in the store.");
    o.sample("citywatch_cases", &[], counts.cases as f64);
    let (by_status, overdue) = match tokio::try_join!(
        st.store.case_status_counts(),
        st.store.overdue_count(st.now())
    ) {
        Ok(x) => x,
        Err(e) => return server_error(e),
    };
    o.family(
        "citywatch_cases_by_status",
        "gauge",
        "Cases by life-cycle status (filed, dispatched, handled, verified_closed, not_rectified, check_manual, returned, closed).",
    );
    let count = |s: crate::store::lifecycle::CaseStatus| {
        by_status
            .iter()
            .find(|(k, _)| k == s.as_str())
            .map_or(0, |(_, n)| *n)
    };
    for s in crate::store::lifecycle::CaseStatus::ALL {
        o.sample(
            "citywatch_cases_by_status",
            &[("status", s.as_str())],
            count(s) as f64,
        );
    }
    o.family(
        "citywatch_cases_overdue",
        "gauge",
        "Open cases past their deadline (filed, dispatched or not rectified).",
    );
    o.sample("citywatch_cases_overdue", &[], overdue as f64);
    o.family(
        "citywatch_closure_checks_waiting",
        "gauge",
        "Cases reported handled whose place a camera has yet to look at.",
    );
    // A handled case is exactly one whose closure check waits for a camera.
    o.sample(
        "citywatch_closure_checks_waiting",
        &[],
        count(crate::store::lifecycle::CaseStatus::Handled) as f64,
    );
    o.family(
        "citywatch_outbox",
        "gauge",
        "Outbox rows by state: pending is the delivery backlog, dead the dead letters.",
    );
    for (state, n) in [
        ("pending", counts.outbox_pending),
        ("delivered", counts.outbox_delivered),
        ("dead", counts.outbox_dead),
    ] {
        o.sample("citywatch_outbox", &[("state", state)], n as f64);
    }
    if let Some(p) = &st.patrol {
        let p = p.lock().expect("patrol board").clone();
        let cams = |f: fn(&crate::patrol::CameraPatrol) -> f64| {
            p.cameras
                .iter()
                .map(|(id, c)| (id.clone(), Some(f(c))))
                .collect::<Vec<_>>()
        };
        o.per_camera(
            "citywatch_patrol_visits_total",
            "counter",
            "Patrol visits started.",
            cams(|c| c.visits as f64),
        );
        o.per_camera(
            "citywatch_patrol_late_visits_total",
            "counter",
            "Patrol visits that began later than the camera's revisit period allowed.",
            cams(|c| c.late_visits as f64),
        );
        o.per_camera(
            "citywatch_patrol_max_gap_seconds",
            "gauge",
            "Longest time between two visit starts.",
            cams(|c| c.max_gap_s),
        );
        o.per_camera(
            "citywatch_patrol_visiting",
            "gauge",
            "1 while the camera holds a stream slot.",
            cams(|c| c.visiting as u8 as f64),
        );
        for (name, help, f) in [
            (
                "citywatch_patrol_cap",
                "Concurrent stream pulls the platform allows.",
                (|l: &crate::patrol::PlatformLoad| l.cap as f64) as fn(&_) -> f64,
            ),
            (
                "citywatch_patrol_demand",
                "Concurrent pulls needed on average: continuous cameras plus the sum of visit / revisit.",
                |l| l.demand,
            ),
            (
                "citywatch_patrol_feasible",
                "1 when the cap lets every camera be visited within its revisit period.",
                |l| l.feasible as u8 as f64,
            ),
        ] {
            o.family(name, "gauge", help);
            for l in &p.platforms {
                o.sample(name, &[("platform", &l.platform)], f(l));
            }
        }
    }
    if let Some(w) = &st.worker {
        let w = w.lock().expect("worker status").clone();
        let label = [("worker", w.id.as_str())];
        for (name, kind, help, v) in [
            (
                "citywatch_worker_cameras",
                "gauge",
                "Cameras this worker holds the lease of.",
                w.cameras.len() as f64,
            ),
            (
                "citywatch_worker_share",
                "gauge",
                "This worker's fair share of the cameras.",
                w.share as f64,
            ),
            (
                "citywatch_workers_live",
                "gauge",
                "Workers whose heartbeat has not expired, as this worker last saw them.",
                w.live_workers as f64,
            ),
            (
                "citywatch_worker_leases_taken_total",
                "counter",
                "Camera leases this worker took (start, rebalance, takeover).",
                w.taken as f64,
            ),
            (
                "citywatch_worker_leases_given_back_total",
                "counter",
                "Camera leases this worker gave back to rebalance.",
                w.given_back as f64,
            ),
            (
                "citywatch_worker_leases_lost_total",
                "counter",
                "Camera leases another worker took while this one held them.",
                w.lost as f64,
            ),
            (
                "citywatch_worker_heartbeat_errors_total",
                "counter",
                "Heartbeats that failed (the database unreachable).",
                w.round_errors as f64,
            ),
        ] {
            o.family(name, kind, help);
            o.sample(name, &label, v);
        }
    }
    // The fleet: every camera of every worker, as the workers last wrote them.
    if let Ok(rows) = st.store.camera_statuses().await
        && !rows.is_empty()
    {
        let now = crate::core::unix_secs(st.clock.as_ref());
        type Pick = fn(&crate::store::fleet::CameraStatusRow, f64) -> Option<f64>;
        let families: [(&str, &str, &str, Pick); 5] = [
            (
                "citywatch_fleet_camera_up",
                "gauge",
                "1 while the camera is streaming, on whichever worker runs it.",
                |r, _| Some((r.health["state"] == "streaming") as u8 as f64),
            ),
            (
                "citywatch_fleet_camera_frames_total",
                "counter",
                "Frames delivered to analysis, as the camera's worker last reported.",
                |r, _| r.health.get("frames").and_then(|x| x.as_f64()),
            ),
            (
                "citywatch_fleet_camera_inferences_total",
                "counter",
                "Detector runs, as the camera's worker last reported.",
                |r, _| {
                    r.analysis
                        .as_ref()
                        .and_then(|a| a.get("inferences"))
                        .and_then(|x| x.as_f64())
                },
            ),
            (
                "citywatch_fleet_camera_reused_total",
                "counter",
                "Frames that reused detections (the scene gate), as last reported.",
                |r, _| {
                    r.analysis
                        .as_ref()
                        .and_then(|a| a.get("reused"))
                        .and_then(|x| x.as_f64())
                },
            ),
            (
                "citywatch_fleet_report_age_seconds",
                "gauge",
                "Seconds since the camera's worker last wrote its status.",
                |r, now| Some((now - r.at).max(0.0)),
            ),
        ];
        for (name, kind, help, pick) in families {
            o.family(name, kind, help);
            for r in &rows {
                if let Some(v) = pick(r, now) {
                    o.sample(name, &[("camera", &r.camera), ("worker", &r.worker)], v);
                }
            }
        }
    }
    if let Some(f) = &st.filing {
        let s = f.status();
        o.family(
            "citywatch_capture_queue",
            "gauge",
            "Captures waiting in the persistent queue for the database.",
        );
        o.sample("citywatch_capture_queue", &[], s.queued as f64);
        o.family(
            "citywatch_capture_queue_dropped_total",
            "counter",
            "Captures refused because the queue was full.",
        );
        o.sample(
            "citywatch_capture_queue_dropped_total",
            &[],
            s.queue_dropped as f64,
        );
        o.family(
            "citywatch_evidence_pending",
            "gauge",
            "Evidence packages being built.",
        );
        o.sample("citywatch_evidence_pending", &[], s.evidence_pending as f64);
        o.family(
            "citywatch_evidence_write_errors_total",
            "counter",
            "Failed evidence package writes (each retried).",
        );
        o.sample(
            "citywatch_evidence_write_errors_total",
            &[],
            s.evidence_errors as f64,
        );
        if let Some(r) = &s.retention {
            o.family(
                "citywatch_evidence_bytes",
                "gauge",
                "Bytes of evidence under the storage root at the last retention sweep.",
            );
            o.sample("citywatch_evidence_bytes", &[], r.used_bytes as f64);
            o.family(
                "citywatch_evidence_quota_bytes",
                "gauge",
                "The evidence disk quota.",
            );
            o.sample("citywatch_evidence_quota_bytes", &[], r.quota_bytes as f64);
            o.family(
                "citywatch_evidence_quota_alert",
                "gauge",
                "1 when evidence use is at or over the alert share of the quota.",
            );
            o.sample(
                "citywatch_evidence_quota_alert",
                &[],
                r.quota_alert as u8 as f64,
            );
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        o.0,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        let mut o = Out(String::new());
        o.family("x_total", "counter", "X.");
        o.sample("x_total", &[("camera", "c\"1")], 3.0);
        o.sample("x_total", &[], 1.5);
        assert_eq!(
            o.0,
            "# HELP x_total X.\n# TYPE x_total counter\nx_total{camera=\"c\\\"1\"} 3\nx_total 1.5\n"
        );
    }
}
