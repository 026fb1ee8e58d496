//! `/metrics` in the Prometheus text exposition format (0.0.4), encoded by prometheus-client.
//! Values are read at scrape time from the boards the pipeline already keeps (camera health,
//! analysis counters, the filing stage) and from the store, so nothing is counted twice: each
//! scrape gathers them into one collector that prometheus-client encodes. Every name is listed
//! in `docs/metrics.md`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use super::error::WebError;
use super::state::WebState;

type Labels = Vec<(String, String)>;

#[derive(Debug)]
enum Values {
    Samples(Vec<(Labels, f64)>),
    /// Per-bucket counts (not cumulative) against upper bounds, the count and the sum.
    Histogram {
        buckets: Vec<(f64, u64)>,
        count: u64,
        sum: f64,
    },
}

/// One metric family as read at this scrape, named as docs/metrics.md names its samples.
#[derive(Debug)]
struct Family {
    name: String,
    help: String,
    kind: MetricType,
    values: Values,
}

/// What one scrape read: the families in the order they are shown.
#[derive(Debug, Default)]
struct Out(Vec<Family>);

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let kind = match kind {
            "counter" => MetricType::Counter,
            "gauge" => MetricType::Gauge,
            other => unreachable!("no {other} family is read this way"),
        };
        self.0.push(Family {
            name: name.to_string(),
            help: help.to_string(),
            kind,
            values: Values::Samples(Vec::new()),
        });
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

    /// A sample of the family opened last (`name` says which, for the reader).
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], v: f64) {
        let f = self.0.last_mut().expect("a family before its samples");
        debug_assert_eq!(f.name, name);
        if let Values::Samples(s) = &mut f.values {
            s.push((
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                v,
            ));
        }
    }

    /// A histogram from cumulative bucket counts against `bounds` (without +Inf).
    fn histogram(
        &mut self,
        name: &str,
        help: &str,
        bounds: &[f64],
        cumulative: &[u64],
        count: u64,
        sum: f64,
    ) {
        let mut below = 0;
        let buckets = bounds
            .iter()
            .zip(cumulative)
            .map(|(le, &n)| {
                let here = n.saturating_sub(below);
                below = n;
                (*le, here)
            })
            .collect();
        self.0.push(Family {
            name: name.to_string(),
            help: help.to_string(),
            kind: MetricType::Histogram,
            values: Values::Histogram {
                buckets,
                count,
                sum,
            },
        });
    }

    /// The Prometheus text of everything read.
    fn encode(self) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(self));
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &registry)
            .expect("writing to a String cannot fail");
        text
    }
}

/// A whole number is shown as one (`3`, not `3.0`).
fn whole(v: f64) -> Option<i64> {
    (v.fract() == 0.0 && v.abs() < 9e15).then_some(v as i64)
}

impl Collector for Out {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for f in &self.0 {
            // prometheus-client adds `_total` to a counter's name itself.
            let name = match f.kind {
                MetricType::Counter => f.name.strip_suffix("_total").unwrap_or(&f.name),
                _ => &f.name,
            };
            let mut m = encoder.encode_descriptor(name, &f.help, None, f.kind)?;
            match &f.values {
                Values::Samples(samples) => {
                    for (labels, v) in samples {
                        let e = m.encode_family(labels)?;
                        match (f.kind, whole(*v)) {
                            (MetricType::Counter, Some(n)) => {
                                ConstCounter::new(n.max(0) as u64).encode(e)?
                            }
                            (MetricType::Counter, None) => ConstCounter::new(*v).encode(e)?,
                            (_, Some(n)) => ConstGauge::new(n).encode(e)?,
                            (_, None) => ConstGauge::new(*v).encode(e)?,
                        }
                    }
                }
                Values::Histogram {
                    buckets,
                    count,
                    sum,
                } => m.encode_histogram::<NoLabelSet>(*sum, *count, buckets, None)?,
            }
        }
        Ok(())
    }
}

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "metrics",
    summary = "Prometheus metrics, named in docs/metrics.md (viewer)",
    responses(
        (status = 200, description = "Prometheus text exposition format", body = String, content_type = "text/plain"),
        (status = 401, description = "not authenticated"),
    )
)]
pub async fn metrics(State(st): State<Arc<WebState>>) -> Result<Response, WebError> {
    let mut o = Out::default();
    let health = st.health.snapshot(st.clock.now());
    let analysis = st.analysis.lock().clone();
    let ids = |f: fn(&crate::model::health::CameraStatus) -> Option<f64>| {
        health
            .iter()
            .map(move |h| (h.health.id.to_string(), f(h)))
            .collect::<Vec<_>>()
    };
    o.per_camera(
        "citywatch_camera_up",
        "gauge",
        "1 while the camera is streaming.",
        ids(|h| {
            Some((h.health.state == crate::model::health::HealthState::Streaming) as u8 as f64)
        }),
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
        "citywatch_camera_frames_shed_total",
        "counter",
        "Due frames shed (fairly, before decoding where possible) while analysis was behind.",
        ids(|h| Some(h.health.frames_shed as f64)),
    );
    o.per_camera(
        "citywatch_camera_degraded",
        "gauge",
        "1 while the camera sheds frames because analysis cannot keep up.",
        ids(|h| Some(h.health.degraded as u8 as f64)),
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
    let counts = |f: fn(&crate::model::live::AnalysisStatus) -> u64| {
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
        "citywatch_plate_reads_total",
        "counter",
        "Plate reads of standing vehicles taken on the camera.",
        counts(|a| a.plate_reads),
    );
    o.per_camera(
        "citywatch_plates_read_total",
        "counter",
        "Of the plate reads, those that found a valid plate.",
        counts(|a| a.plates_read),
    );
    o.per_camera(
        "citywatch_plate_errors_total",
        "counter",
        "Plate reads that failed in the reader (the vehicle is read again next period).",
        counts(|a| a.plate_errors),
    );
    o.per_camera(
        "citywatch_plate_read_seconds_total",
        "counter",
        "Time spent reading plates on the camera, in seconds.",
        counts(|a| a.plate_read_ms / 1000),
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
        o.histogram(
            "citywatch_inference_seconds",
            "Time the detector took per batch (preprocessing, session.run, decoding).",
            &crate::model::live::LATENCY_BUCKETS,
            &buckets,
            count,
            sum,
        );
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

    let rules = st.store.rule_summary().await.map_err(WebError::internal)?;
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
    let counts = st.store.counts().await.map_err(WebError::internal)?;
    o.family("citywatch_cases", "gauge", "Cases in the store.");
    o.sample("citywatch_cases", &[], counts.cases as f64);
    let (by_status, overdue) = tokio::try_join!(
        st.store.case_status_counts(),
        st.store.overdue_count(st.now())
    )
    .map_err(WebError::internal)?;
    o.family(
        "citywatch_cases_by_status",
        "gauge",
        "Cases by life-cycle status (filed, dispatched, handled, verified_closed, not_rectified, check_manual, returned, closed).",
    );
    let count = |s: crate::store::progress::CaseStatus| {
        by_status
            .iter()
            .find(|(k, _)| k == s.as_str())
            .map_or(0, |(_, n)| *n)
    };
    for s in crate::store::progress::CaseStatus::ALL {
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
        count(crate::store::progress::CaseStatus::Handled) as f64,
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
        let p = p.lock().clone();
        let cams = |f: fn(&crate::model::live::CameraPatrol) -> f64| {
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
                (|l: &crate::model::live::PlatformLoad| l.cap as f64) as fn(&_) -> f64,
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
        let w = w.lock().clone();
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
            "citywatch_captures_held",
            "gauge",
            "Captures held in memory because the capture queue's disk refused them.",
        );
        o.sample("citywatch_captures_held", &[], s.held as f64);
        o.family(
            "citywatch_filing_blocked",
            "gauge",
            "1 while a disk refuses captures (place: evidence or queue; reason: disk_full, read_only, no_permission, io_error).",
        );
        if let Some(b) = &s.blocked {
            o.sample(
                "citywatch_filing_blocked",
                &[("place", b.place), ("reason", b.reason.as_str())],
                1.0,
            );
        }
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
    Ok((
        [(
            header::CONTENT_TYPE,
            prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
        )],
        o.encode(),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_encoded_with_escaped_labels_whole_numbers_and_histograms() {
        let mut o = Out::default();
        o.family("x_total", "counter", "X.");
        o.sample("x_total", &[("camera", "c\"1\\\n")], 3.0);
        o.sample("x_total", &[], 1.5);
        o.family("g", "gauge", "G.");
        o.sample("g", &[("a", "1"), ("b", "2")], 0.25);
        o.histogram("h_seconds", "H.", &[0.1, 1.0], &[2, 5], 6, 2.5);
        assert_eq!(
            o.encode(),
            "# HELP x_total X.\n# TYPE x_total counter\n\
             x_total{camera=\"c\\\"1\\\\\\n\"} 3\nx_total 1.5\n\
             # HELP g G.\n# TYPE g gauge\ng{a=\"1\",b=\"2\"} 0.25\n\
             # HELP h_seconds H.\n# TYPE h_seconds histogram\n\
             h_seconds_bucket{le=\"0.1\"} 2\nh_seconds_bucket{le=\"1\"} 5\n\
             h_seconds_bucket{le=\"+Inf\"} 6\nh_seconds_sum 2.5\nh_seconds_count 6\n"
        );
    }
}
