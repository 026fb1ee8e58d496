//! The filing stage, shared by `citywatch run` and `citywatch replay`: a capture becomes an
//! evidence package, then a durable queue entry (`store::spool`), then a database row (and,
//! for rules filed automatically, a case and its outbox row).
//!
//! ```text
//! capture ─► package job (waits post_s of stream for the clip, writes the package; retried
//!            with backoff while the disk refuses) ─► spool (fsynced file) ─► drainer ─► store
//! ```
//!
//! Nothing is acknowledged before it is on disk: a crash at any point leaves either a
//! complete package and a queue entry (drained at the next start) or nothing the next run
//! cannot rebuild.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;

use std::time::Duration;

use base64::Engine;
use tokio::sync::Notify;
use tracing::{error, info, warn};

use crate::analysis::{CaptureFrames, Settled};
use crate::config::{CameraConfig, CasesSettings, EvidenceSettings, RuleKind};
use crate::core::{Backoff, Clock, Shutdown};
use crate::evidence::{
    CameraInfo, EvidenceWriter, ModelInfo, PackageRef, PackageRequest, RuleInfo,
};
use crate::ingest::ring::PacketRing;
use crate::ratelimit::Capture;
use crate::store::spool::{Spool, SpoolEntry};
use crate::store::{CaseStore, FilingMode, Location, capture_key};

pub use crate::model::live::FilingStatus;

/// What one camera contributes to its packages.
#[derive(Clone)]
pub struct CameraEvidence {
    pub info: CameraInfo,
    pub location: Location,
    pub ring: Option<PacketRing>,
    zones: HashMap<String, Vec<[f32; 2]>>,
    rules: HashMap<RuleKind, (f64, f32)>,
}

impl CameraEvidence {
    pub fn new(cam: &CameraConfig, ring: Option<PacketRing>) -> Self {
        Self {
            info: CameraInfo {
                id: cam.id.clone(),
                name: cam.name.clone(),
                preset: cam.preset,
                utc_offset_s: cam.utc_offset_s,
            },
            location: cam.location.clone(),
            ring,
            zones: cam
                .zones
                .iter()
                .map(|z| (z.id.clone(), z.polygon.0.clone()))
                .collect(),
            rules: cam
                .rules
                .iter()
                .map(|r| (r.kind, (r.dwell.as_secs_f64(), r.min_score)))
                .collect(),
        }
    }
}

/// A ring sized for the configured clip.
pub fn ring_for(ev: &EvidenceSettings) -> PacketRing {
    PacketRing::new(
        Duration::from_secs_f64(ev.pre_s + ev.post_s + 20.0),
        (ev.ring_mb as usize) << 20,
    )
}

/// Captures this process made, for merging later duplicates into them: by key, by
/// (camera, capture id), and in the order they came. Bounded: past `KNOWN_MAX`, the oldest
/// whose package is done are forgotten (a duplicate of one of those then only counts in
/// the camera's own limiter, not in the stored aggregation).
#[derive(Default)]
struct KnownCaptures {
    by_key: HashMap<String, Known>,
    by_id: HashMap<(String, u64), String>,
    order: std::collections::VecDeque<String>,
}

const KNOWN_MAX: usize = 4096;

impl KnownCaptures {
    fn insert(&mut self, key: String, k: Known) {
        self.by_id.insert(
            (k.capture.candidate.camera.clone(), k.capture.id),
            key.clone(),
        );
        if self.by_key.insert(key.clone(), k).is_none() {
            self.order.push_back(key);
        }
        let mut tries = self.order.len();
        while self.by_key.len() > KNOWN_MAX && tries > 0 {
            tries -= 1;
            let Some(old) = self.order.pop_front() else {
                break;
            };
            match self.by_key.get(&old) {
                Some(k) if k.evidence.is_some() => {
                    self.by_id
                        .remove(&(k.capture.candidate.camera.clone(), k.capture.id));
                    self.by_key.remove(&old);
                }
                Some(_) => self.order.push_back(old),
                None => {}
            }
        }
    }

    fn key_of(&self, camera: &str, id: u64) -> Option<String> {
        self.by_id.get(&(camera.to_string(), id)).cloned()
    }
}

struct Known {
    capture: Capture,
    mode: FilingMode,
    location: Location,
    /// Set once the package is written (or when there is none to write).
    evidence: Option<Option<serde_json::Value>>,
}

pub struct FilingStage {
    store: Arc<dyn CaseStore>,
    cases: Arc<CasesSettings>,
    evidence: Option<(EvidenceWriter, EvidenceSettings)>,
    model: Option<ModelInfo>,
    spool: Arc<Spool>,
    known: Mutex<KnownCaptures>,
    status: tokio::sync::watch::Sender<FilingStatus>,
    wake: Notify,
    /// Woken when captures reach the store (cases may be waiting for delivery).
    pub stored: Arc<Notify>,
    jobs: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    writers: tokio::sync::Semaphore,
    clock: Arc<dyn Clock>,
    shutdown: Shutdown,
    /// Told the key of each capture the store commits (benchmarks, tests).
    commits: Mutex<Option<tokio::sync::mpsc::UnboundedSender<String>>>,
    /// Closure checks waiting for the cameras.
    checks: crate::closure::SharedChecks,
    /// Captures the queue's disk refused (full, read-only): kept here and written to the
    /// queue by the drainer once the disk takes them.
    held: Mutex<std::collections::BTreeMap<String, SpoolEntry>>,
    /// Captures the analysers wait on, told when each is safe on disk or in the database.
    settled: Arc<Settled>,
}

/// The queue folder's name under the spool root: one queue per database, so entries never
/// reach a database they were not meant for.
fn queue_name(store: &dyn CaseStore) -> String {
    use sha2::Digest;
    let db = sha2::Sha256::digest(crate::core::redact_url(store.url()).as_bytes());
    hex::encode(&db[..6])
}

/// Most packages written at once; more wait their turn.
const MAX_JOBS: usize = 8;

impl FilingStage {
    /// Opens the spool and, if configured, the evidence root.
    pub fn open(
        store: Arc<dyn CaseStore>,
        cases: Arc<CasesSettings>,
        evidence: Option<&EvidenceSettings>,
        model: Option<ModelInfo>,
        clock: Arc<dyn Clock>,
        shutdown: Shutdown,
    ) -> anyhow::Result<Arc<Self>> {
        let spool = Spool::open(
            &cases.spool.join(queue_name(store.as_ref())),
            cases.spool_max,
        )?;
        let evidence = match evidence {
            Some(e) => {
                let font = crate::evidence::image::Watermarker::load(e.font.as_deref())?;
                Some((EvidenceWriter::open(&e.root, font)?, e.clone()))
            }
            None => None,
        };
        Ok(Arc::new(Self {
            store,
            cases,
            evidence,
            model,
            spool: Arc::new(spool),
            known: Mutex::default(),
            status: tokio::sync::watch::channel(FilingStatus::default()).0,
            wake: Notify::new(),
            stored: Arc::new(Notify::new()),
            jobs: Mutex::default(),
            writers: tokio::sync::Semaphore::new(MAX_JOBS),
            clock,
            shutdown,
            commits: Mutex::default(),
            checks: Default::default(),
            held: Mutex::default(),
            settled: Arc::default(),
        }))
    }

    /// What analysers ask before saving a capture's rule as resolved.
    pub fn settled(&self) -> Arc<Settled> {
        self.settled.clone()
    }

    pub fn status(&self) -> FilingStatus {
        let mut s = self.status.borrow().clone();
        s.queued = self.spool.len();
        s.queue_dropped = self.spool.dropped();
        s
    }

    /// The keys of captures as the store commits them, from now on.
    pub fn observe_commits(&self) -> tokio::sync::mpsc::UnboundedReceiver<String> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        *self.commits.lock() = Some(tx);
        rx
    }

    /// Status changes, to await (tests, the status page).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<FilingStatus> {
        self.status.subscribe()
    }

    fn update(&self, f: impl FnOnce(&mut FilingStatus)) {
        self.status.send_modify(f);
    }

    pub fn keeps_evidence(&self) -> bool {
        self.evidence.is_some()
    }

    fn now(&self) -> f64 {
        crate::core::to_unix(self.clock.now())
    }

    /// A new capture: builds its package (in the background) and queues it for the store.
    pub fn capture(
        self: &Arc<Self>,
        cam: &CameraEvidence,
        c: Capture,
        frames: Option<CaptureFrames>,
    ) {
        let key = capture_key(&c);
        let mode = self.cases.mode(c.candidate.rule);
        self.known.lock().insert(
            key.clone(),
            Known {
                capture: c.clone(),
                mode,
                location: cam.location.clone(),
                evidence: None,
            },
        );
        match (&self.evidence, frames) {
            (Some(evidence), Some(frames)) => {
                let this = self.clone();
                let cam = cam.clone();
                let evidence = evidence.clone();
                self.update(|s| s.evidence_pending += 1);
                let job =
                    tokio::spawn(async move { this.package(evidence, cam, key, c, frames).await });
                let mut jobs = self.jobs.lock();
                jobs.retain(|j| !j.is_finished());
                jobs.push(job);
            }
            _ => self.enqueue(&key, None),
        }
    }

    /// A duplicate merged into a known capture: its count goes up in the store too.
    pub fn merged(&self, id: u64, camera: &str, aggregation_delta: u32, evidence_t: f64) {
        let mut known = self.known.lock();
        let Some(key) = known.key_of(camera, id) else {
            return;
        };
        let Some(k) = known.by_key.get_mut(&key) else {
            return;
        };
        k.capture.aggregation += aggregation_delta;
        k.capture.last_evidence = k.capture.last_evidence.max(evidence_t);
        let ready = k.evidence.clone();
        drop(known);
        if let Some(ev) = ready {
            self.enqueue(&key, ev);
        }
    }

    fn enqueue(&self, key: &str, evidence: Option<serde_json::Value>) {
        let entry = {
            let mut known = self.known.lock();
            let Some(k) = known.by_key.get_mut(key) else {
                return;
            };
            k.evidence = Some(evidence.clone());
            SpoolEntry {
                capture: k.capture.clone(),
                evidence,
                mode: k.mode,
                location: k.location.clone(),
            }
        };
        self.put_or_hold(key, entry);
        self.wake.notify_one();
    }

    /// Writes a capture to the queue. When the queue's disk refuses it (full, read-only),
    /// the capture is held in memory for the drainer to write later; returns false then.
    /// The status's `held` follows.
    fn put_or_hold(&self, key: &str, entry: SpoolEntry) -> bool {
        let written = match self.spool.put(key, &entry) {
            Ok(()) => {
                self.held.lock().remove(key);
                self.unblock("queue");
                self.settled.mark(key);
                true
            }
            Err(crate::store::spool::SpoolError::Io { source, .. }) => {
                let reason = crate::model::live::BlockReason::of(&source);
                warn!(capture = key, error = %source, reason = reason.as_str(), "the capture queue's disk refused a capture; it is held until the database stores it or the disk takes it");
                self.block("queue", reason, source.to_string());
                self.held.lock().insert(key.to_string(), entry);
                false
            }
            Err(e) => {
                // The queue is full: given up, counted and shown (`queue_dropped`).
                error!(capture = key, error = %e, "capture not queued");
                self.update(|s| s.last_queue_error = Some(e.to_string()));
                self.settled.mark(key);
                true
            }
        };
        let held = self.held.lock().len();
        self.update(|s| s.held = held);
        written
    }

    /// Writes held captures to the queue, oldest key first, until the disk refuses one.
    fn retry_held(&self) {
        let held: Vec<(String, SpoolEntry)> = self
            .held
            .lock()
            .iter()
            .map(|(k, e)| (k.clone(), e.clone()))
            .collect();
        for (key, entry) in held {
            if !self.put_or_hold(&key, entry) {
                break;
            }
        }
    }

    /// A disk refused a write: status says which, why and since when.
    fn block(&self, place: &'static str, reason: crate::model::live::BlockReason, detail: String) {
        let now = self.now();
        self.update(|s| {
            let since = match &s.blocked {
                Some(b) if b.place == place && b.reason == reason => b.since,
                _ => now,
            };
            s.blocked = Some(crate::model::live::FilingBlocked {
                place,
                reason,
                since,
            });
            if place == "queue" {
                s.last_queue_error = Some(detail);
            }
        });
    }

    /// A write to `place` went through: it no longer blocks filing.
    fn unblock(&self, place: &'static str) {
        if self
            .status
            .borrow()
            .blocked
            .as_ref()
            .is_some_and(|b| b.place == place)
        {
            self.update(|s| {
                s.blocked = None;
                if place == "queue" {
                    s.last_queue_error = None;
                }
            });
        }
    }

    async fn package(
        self: Arc<Self>,
        (writer, ev): (EvidenceWriter, EvidenceSettings),
        cam: CameraEvidence,
        key: String,
        c: Capture,
        frames: CaptureFrames,
    ) {
        // The clip: wait until the stream has passed the confirmation by post_s.
        let (clip, clip_note) = cut_clip(cam.ring.as_ref(), frames.confirm_stream_s, &ev).await;
        let mut frames = frames;
        let photo_note = full_size_photo(&cam, &clip, &mut frames).await;
        let rule = cam
            .rules
            .get(&c.candidate.rule)
            .copied()
            .unwrap_or((c.candidate.dwell_s, 0.0));
        let req = Arc::new(PackageRequest {
            key: key.clone(),
            capture: c.clone(),
            camera: cam.info.clone(),
            location: cam.location.clone(),
            rule: RuleInfo {
                kind: c.candidate.rule.as_str().into(),
                zone: c.candidate.zone.clone(),
                dwell_s: rule.0,
                min_score: rule.1,
            },
            model: self.model.clone(),
            confirm: frames.confirm,
            confirm_stream_s: frames.confirm_stream_s,
            first_seen: frames.first_seen,
            plate: frames.plate,
            zone_polygon: cam.zones.get(&c.candidate.zone).cloned(),
            clip,
            clip_note,
            photo_note,
        });
        let _permit = self.writers.acquire().await.expect("never closed");
        let mut backoff = Backoff::doubling(Duration::from_millis(500), Duration::from_secs(60));
        let written = loop {
            let (w, r) = (writer.clone(), req.clone());
            match tokio::task::spawn_blocking(move || w.write(&r)).await {
                Ok(Ok(p)) => break Some(p),
                Ok(Err(e)) => {
                    let reason = match &e {
                        crate::evidence::EvidenceError::Io { source, .. } => {
                            crate::model::live::BlockReason::of(source)
                        }
                        _ => crate::model::live::BlockReason::IoError,
                    };
                    warn!(camera = %cam.info.id, capture = %key, error = %e, reason = reason.as_str(), retry_in_s = backoff.peek().as_secs_f64(), "evidence package not written; will retry");
                    self.block("evidence", reason, e.to_string());
                    self.update(|s| {
                        s.evidence_errors += 1;
                        s.last_evidence_error = Some(e.to_string());
                    });
                }
                Err(e) => {
                    // A bug, not the disk: trying again would panic again. The capture is
                    // filed without its package rather than lost (and its camera's state,
                    // which waits for it to settle, saved again); operators see it with
                    // no photos, and the status says why.
                    let why =
                        format!("the evidence writer panicked ({e}); filed without its package");
                    error!(camera = %cam.info.id, capture = %key, error = %e, "evidence writer panicked; the capture is filed without its package");
                    self.unblock("evidence");
                    self.update(|s| {
                        s.evidence_pending -= 1;
                        s.evidence_errors += 1;
                        s.last_evidence_error = Some(why);
                    });
                    self.enqueue(&key, None);
                    return;
                }
            }
            tokio::select! {
                _ = self.shutdown.triggered() => break None,
                _ = tokio::time::sleep(backoff.next_delay()) => {}
            }
        };
        self.update(|s| s.evidence_pending -= 1);
        let Some(p) = written else {
            // Shutting down: the next run (a replay, or the same footage) rebuilds it.
            return;
        };
        self.unblock("evidence");
        self.update(|s| {
            s.evidence_written += 1;
            s.last_evidence_error = None;
        });
        info!(camera = %cam.info.id, capture = %key, package = %p.path, "evidence package written");
        let value = reference(&writer, &ev, &p);
        self.enqueue(&key, Some(value));
    }
}

/// How much older than the confirmation a keyframe may be to be its photo.
const STILL_MAX_AGE_NS: u64 = 5_000_000_000;

/// Makes the confirmation photo the camera's full-size picture: the clip's last keyframe at or
/// before the confirmation, decoded whole, when it is larger than the analysis frame and at
/// most [`STILL_MAX_AGE_NS`] older. Returns the manifest's note saying so; leaves the analysis
/// frame (and returns None) otherwise.
async fn full_size_photo(
    cam: &CameraEvidence,
    clip: &[crate::ingest::ring::Packet],
    frames: &mut CaptureFrames,
) -> Option<String> {
    let at = (frames.confirm_stream_s? * 1e9) as u64;
    let key = clip
        .iter()
        .rev()
        .find(|p| p.key && p.pts <= at + 1_000_000)?
        .clone();
    if at.saturating_sub(key.pts) > STILL_MAX_AGE_NS {
        return None;
    }
    match tokio::task::spawn_blocking(move || crate::ingest::still::decode_keyframe(&key)).await {
        Ok(Ok(still)) if still.width > frames.confirm.width => {
            let note = format!(
                "confirm.jpg and crop.jpg are the keyframe at {:.3} s of stream time, at the camera's full size {}x{}",
                still.pts as f64 / 1e9,
                still.width,
                still.height
            );
            frames.confirm = crate::evidence::image::Picture {
                width: still.width,
                height: still.height,
                rgb: Arc::new(still.rgb),
            };
            Some(note)
        }
        Ok(Ok(_)) => None,
        Ok(Err(e)) => {
            warn!(camera = %cam.info.id, error = %e, "full-size still not decoded; the analysis frame is the photo");
            None
        }
        Err(e) => {
            warn!(camera = %cam.info.id, error = %e, "the still decoder panicked");
            None
        }
    }
}

/// The stream around `at` (stream seconds): `pre_s` before to `post_s` after, once the
/// stream has passed it; or why there is none.
async fn cut_clip(
    ring: Option<&PacketRing>,
    at: Option<f64>,
    ev: &EvidenceSettings,
) -> (Vec<crate::ingest::ring::Packet>, Option<String>) {
    match (ring, at) {
        (Some(ring), Some(at)) => {
            let at_ns = (at * 1e9) as u64;
            let from = at_ns.saturating_sub((ev.pre_s * 1e9) as u64);
            let until = at_ns + (ev.post_s * 1e9) as u64;
            let generation0 = ring.progress().generation;
            let waited = ring
                .reached(
                    until,
                    generation0,
                    Duration::from_secs_f64(ev.post_s + 30.0),
                )
                .await;
            let packets = if waited.generation == generation0 {
                ring.cut(from, until)
            } else {
                Vec::new()
            };
            let note = packets.is_empty().then(|| {
                if waited.generation != generation0 {
                    "the camera reconnected before the clip was complete".to_string()
                } else {
                    "the stream buffer no longer reached back to the clip's start".to_string()
                }
            });
            (packets, note)
        }
        _ => (
            Vec::new(),
            Some("this camera keeps no stream buffer".to_string()),
        ),
    }
}

impl FilingStage {
    /// The closure checks the cameras look at; settled here once a look is recorded.
    pub fn checks(&self) -> crate::closure::SharedChecks {
        self.checks.clone()
    }

    /// A closure check decided: the look's photo and clip join the case's package, then the
    /// verdict goes to the store (retried until it is there, or shutdown), and the check
    /// is settled in the shared list.
    pub fn checked(
        self: &Arc<Self>,
        cam: &CameraEvidence,
        r: crate::closure::CheckResult,
        frame: Option<(crate::evidence::image::Picture, Option<f64>)>,
    ) {
        let this = self.clone();
        let cam = cam.clone();
        let job = tokio::spawn(async move {
            let case = r.request.case_number.clone();
            let mut evidence = None;
            if let (Some((writer, ev)), Some(package), Some((picture, stream_s)), false) = (
                &this.evidence,
                &r.request.package,
                frame,
                matches!(r.outcome, crate::closure::CheckOutcome::Unjudged { .. }),
            ) {
                let (clip, clip_note) = cut_clip(cam.ring.as_ref(), stream_s, ev).await;
                let add = crate::evidence::Addendum {
                    case_number: case.clone(),
                    outcome: r.outcome.as_str().into(),
                    picture,
                    t: r.t,
                    stream_s,
                    bbox: r.request.bbox,
                    clip,
                    clip_note,
                };
                let (w, p) = (writer.clone(), package.clone());
                match tokio::task::spawn_blocking(move || w.append(&p, &add)).await {
                    Ok(Ok(p)) => {
                        info!(case = %case, package = %p.path, "closure check's look added to the package");
                        evidence = Some(reference(writer, ev, &p));
                    }
                    Ok(Err(e)) => {
                        // A package that fails its check is not extended: the verdict is
                        // recorded without the look, and the log says why.
                        error!(case = %case, error = %e, "closure check's look not added to the package");
                    }
                    Err(e) => error!(case = %case, error = %e, "evidence writer panicked"),
                }
            }
            let policy = this.cases.policy();
            let mut backoff =
                Backoff::doubling(Duration::from_millis(500), Duration::from_secs(30));
            loop {
                match this
                    .store
                    .record_check(
                        &case,
                        &r.outcome,
                        evidence.as_ref(),
                        "citywatch",
                        &policy,
                        &this.cases.closure,
                        r.t,
                    )
                    .await
                {
                    Ok(status) => {
                        info!(case = %case, outcome = r.outcome.as_str(), status = ?status.map(|s| s.as_str()), "closure check recorded");
                        let next = match (&r.outcome, status) {
                            (
                                crate::closure::CheckOutcome::Unjudged { .. },
                                Some(crate::store::progress::CaseStatus::Handled),
                            ) => Some(r.t + this.cases.closure.retry_s),
                            _ => None,
                        };
                        this.checks.settle(&r.request.camera, &case, next);
                        this.stored.notify_one();
                        return;
                    }
                    Err(e) => {
                        warn!(case = %case, error = %e, "closure check not recorded; will retry")
                    }
                }
                tokio::select! {
                    _ = this.shutdown.triggered() => return,
                    _ = tokio::time::sleep(backoff.next_delay()) => {}
                }
            }
        });
        let mut jobs = self.jobs.lock();
        jobs.retain(|j| !j.is_finished());
        jobs.push(job);
    }
}

/// The evidence reference stored with the capture and sent with the case.
fn reference(writer: &EvidenceWriter, ev: &EvidenceSettings, p: &PackageRef) -> serde_json::Value {
    let url = |f: &str| match &ev.url_base {
        Some(base) => format!("{}/{}/{f}", base.trim_end_matches('/'), p.path),
        None => format!("{}/{f}", p.path),
    };
    let mut v = serde_json::json!({
        "package": p.path,
        "manifest_sha256": p.manifest_sha256,
        "manifest": url("manifest.json"),
        "files": p.files.iter().map(|f| url(f)).collect::<Vec<_>>(),
    });
    if ev.embed_images {
        let mut images = serde_json::Map::new();
        for f in p.files.iter().filter(|f| f.ends_with(".jpg")) {
            if let Ok(b) = std::fs::read(writer.root().join(&p.path).join(f)) {
                images.insert(
                    f.clone(),
                    base64::engine::general_purpose::STANDARD.encode(b).into(),
                );
            }
        }
        v["images"] = images.into();
    }
    v
}

impl FilingStage {
    /// Captures held because the queue's disk refused them go straight to the database
    /// while it answers. While both refuse, a held capture is only in memory, and its camera's
    /// saved state still has its rule unmet ([`Settled`]): a kill then loses the copy, and the
    /// restarted process meets the rule again and files it. Returns how many were stored.
    async fn store_held(&self) -> Result<usize, crate::store::StoreError> {
        let held: Vec<(String, SpoolEntry)> = self
            .held
            .lock()
            .iter()
            .map(|(k, e)| (k.clone(), e.clone()))
            .collect();
        if held.is_empty() {
            return Ok(0);
        }
        let policy = self.cases.policy();
        let mut n = 0;
        for (key, e) in held {
            let stored = e.record(self.store.as_ref(), &policy, self.now()).await?;
            self.settled.mark(&key);
            let held = {
                // A newer version (a merge) held meanwhile stays for the next pass.
                let mut h = self.held.lock();
                if h.get(&key) == Some(&e) {
                    h.remove(&key);
                }
                h.len()
            };
            if let Some(tx) = self.commits.lock().as_ref() {
                let _ = tx.send(stored);
            }
            self.update(|s| {
                s.stored += 1;
                s.held = held;
            });
            n += 1;
        }
        info!(
            captures = n,
            "stored held captures straight to the database (the queue's disk refuses them)"
        );
        Ok(n)
    }

    /// Writes the queue to the store once, then any held captures. Returns how many were
    /// written.
    pub async fn drain_once(&self) -> Result<usize, crate::store::StoreError> {
        let policy = self.cases.policy();
        let r = match self
            .spool
            .drain(self.store.as_ref(), &policy, self.now(), |key| {
                if let Some(tx) = self.commits.lock().as_ref() {
                    let _ = tx.send(key.to_string());
                }
                self.update(|s| s.stored += 1);
            })
            .await
        {
            Ok(n) => self.store_held().await.map(|m| n + m),
            Err(e) => Err(e),
        };
        match &r {
            Ok(n) => {
                if *n > 0 {
                    self.stored.notify_one();
                }
                self.update(|s| s.last_db_error = None);
            }
            Err(e) => self.update(|s| {
                s.db_errors += 1;
                s.last_db_error = Some(e.to_string());
            }),
        }
        r
    }

    /// Drains another worker's queue (a worker that died with captures waiting for the
    /// database). Entries are keyed, so two workers draining the same queue store each once.
    /// `root` is the spool root that worker was given.
    pub async fn drain_orphan(
        &self,
        root: &std::path::Path,
    ) -> Result<usize, crate::store::StoreError> {
        let policy = self.cases.policy();
        let dir = root.join(queue_name(self.store.as_ref()));
        let Ok(spool) = Spool::adopt(&dir) else {
            return Ok(0);
        };
        let n = spool
            .drain(self.store.as_ref(), &policy, self.now(), |_| {
                self.update(|s| s.stored += 1);
            })
            .await?;
        if n > 0 {
            info!(queue = %dir.display(), captures = n, "stored the captures a departed worker left queued");
            self.stored.notify_one();
        }
        Ok(n)
    }

    /// Drains the queue whenever something arrives, retrying with backoff while the
    /// database is unreachable, until shutdown.
    pub async fn run_drainer(self: Arc<Self>) {
        let mut backoff = Backoff::doubling(Duration::from_millis(500), Duration::from_secs(30));
        loop {
            self.retry_held();
            let wait = match self.drain_once().await {
                Ok(_) => {
                    backoff.reset();
                    Duration::from_secs(5)
                }
                Err(e) => {
                    let d = backoff.next_delay();
                    warn!(error = %e, queued = self.spool.len(), retry_in_s = d.as_secs_f64(), "cannot write captures to the database; they wait in the queue");
                    d
                }
            };
            tokio::select! {
                biased;
                _ = self.shutdown.triggered() => return,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Runs retention every `sweep_interval_s` until shutdown.
    pub async fn run_retention(self: Arc<Self>) {
        let Some((writer, ev)) = self.evidence.clone() else {
            return;
        };
        let policy = crate::evidence::retention::Policy {
            max_age: Duration::from_secs_f64(ev.max_age_days * 86400.0),
            quota_bytes: (ev.quota_gb * (1u64 << 30) as f64) as u64,
            alert_ratio: ev.alert_ratio,
        };
        loop {
            let keep_s = ev.closed_keep_days * 86400.0;
            match self.store.finished_capture_keys(self.now(), keep_s).await {
                Ok(finished) => {
                    let root = writer.root().to_path_buf();
                    let now = self.clock.now();
                    let sweep = tokio::task::spawn_blocking(move || {
                        crate::evidence::retention::sweep(&root, now, &policy, &finished)
                    })
                    .await
                    .unwrap_or_default();
                    if sweep.quota_alert {
                        warn!(
                            used_bytes = sweep.used_bytes,
                            quota_bytes = sweep.quota_bytes,
                            kept_open = sweep.kept_open,
                            "evidence storage is close to its quota"
                        );
                    }
                    self.update(|s| s.retention = Some(sweep));
                }
                Err(e) => warn!(error = %e, "retention skipped: the store is unreachable"),
            }
            tokio::select! {
                _ = self.shutdown.triggered() => return,
                _ = tokio::time::sleep(Duration::from_secs_f64(ev.sweep_interval_s.max(1.0))) => {}
            }
        }
    }

    /// Waits for every package being built (their clips need the stream to go on, or the
    /// cameras to end), then drains the queue.
    pub async fn flush(&self) -> Result<usize, crate::store::StoreError> {
        loop {
            let jobs: Vec<_> = std::mem::take(&mut *self.jobs.lock());
            if jobs.is_empty() {
                break;
            }
            for j in jobs {
                let _ = j.await;
            }
        }
        self.retry_held();
        let drained = self.drain_once().await;
        let held = self.held.lock().len();
        if held > 0 {
            error!(
                captures = held,
                "captures still held at the end: the capture queue's disk and the database refused them"
            );
        }
        drained
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(id: u64, ready: bool) -> Known {
        Known {
            capture: Capture {
                id,
                candidate: crate::rules::engine::Candidate {
                    rule: RuleKind::AbandonedVehicle,
                    camera: "cam".into(),
                    preset: None,
                    zone: "z".into(),
                    place: [0.0, 0.0, 0.1, 0.1],
                    episode: Some(id),
                    label: "car".into(),
                    start: 0.0,
                    confirm: id as f64,
                    bbox: [0.0, 0.0, 0.1, 0.1],
                    score: 0.9,
                    dwell_s: 60.0,
                    embedding: None,
                    parts: Vec::new(),
                    plate: None,
                },
                aggregation: 1,
                last_evidence: 0.0,
                closed_at: None,
                left: false,
                resembles: None,
            },
            mode: FilingMode::Review,
            location: Location::default(),
            evidence: ready.then_some(None),
        }
    }

    #[test]
    fn known_captures_are_bounded_and_keep_those_still_being_packaged() {
        let mut k = KnownCaptures::default();
        k.insert("pending".into(), known(0, false));
        for i in 1..=(KNOWN_MAX as u64 + 10) {
            k.insert(format!("k{i}"), known(i, true));
        }
        assert_eq!(k.by_key.len(), KNOWN_MAX);
        assert_eq!(k.by_id.len(), KNOWN_MAX);
        assert_eq!(
            k.key_of("cam", 0).as_deref(),
            Some("pending"),
            "still packaging: kept"
        );
        assert_eq!(k.key_of("cam", 1), None, "the oldest done one went");
        assert_eq!(
            k.key_of("cam", KNOWN_MAX as u64 + 10).as_deref(),
            Some("k4106")
        );
    }
}

#[cfg(test)]
mod store_down_tests {
    //! The filing stage on a fake case store: while the database is down captures wait in
    //! the queue, and each reaches the store exactly once when it returns.
    use std::collections::HashSet;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::cases::CasePolicy;
    use crate::store::{StoreError, StoreFuture};

    #[derive(Default)]
    struct FakeStore {
        down: AtomicBool,
        recorded: Mutex<Vec<String>>,
    }

    impl CaseStore for FakeStore {
        fn url(&self) -> &str {
            "fake://cases"
        }

        fn record_capture<'a>(
            &'a self,
            c: &'a Capture,
            _evidence: Option<&'a serde_json::Value>,
            _mode: FilingMode,
            _policy: &'a CasePolicy,
            _location: &'a Location,
            _now: f64,
        ) -> StoreFuture<'a, (String, Option<String>)> {
            Box::pin(async move {
                if self.down.load(Ordering::SeqCst) {
                    return Err(StoreError::Db {
                        url: "fake://cases".into(),
                        source: sqlx::Error::PoolTimedOut,
                    });
                }
                let key = capture_key(c);
                self.recorded.lock().push(key.clone());
                Ok((key, None))
            })
        }

        fn record_check<'a>(
            &'a self,
            _case: &'a str,
            _outcome: &'a crate::closure::CheckOutcome,
            _evidence: Option<&'a serde_json::Value>,
            _actor: &'a str,
            _policy: &'a crate::cases::CasePolicy,
            _closure: &'a crate::config::ClosureSettings,
            _at: f64,
        ) -> StoreFuture<'a, Option<crate::store::progress::CaseStatus>> {
            Box::pin(async { Ok(None) })
        }

        fn finished_capture_keys(
            &self,
            _now: f64,
            _keep_s: f64,
        ) -> StoreFuture<'_, HashSet<String>> {
            Box::pin(async { Ok(HashSet::new()) })
        }
    }

    fn capture(id: u64) -> Capture {
        crate::ratelimit::sample_capture(id, 1_767_574_800.0 + id as f64)
    }

    #[tokio::test]
    async fn captures_wait_while_the_store_is_down_and_each_is_stored_once_after() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "[cases]\ndatabase = \"sqlite::memory:\"\ncategories = \"pipelines/categories/default.toml\"\nspool = \"{}\"\n[[cameras]]\nid = \"c\"\nurl = \"rtsp://127.0.0.1/c\"\n",
            dir.path().display()
        );
        let cfg = crate::config::PipelineConfig::parse(
            &text,
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")),
        )
        .expect("test config");
        let store = Arc::new(FakeStore::default());
        store.down.store(true, Ordering::SeqCst);
        let stage = FilingStage::open(
            store.clone(),
            Arc::new(cfg.cases.clone().unwrap()),
            None,
            None,
            Arc::new(crate::core::ManualClock::new(std::time::UNIX_EPOCH)),
            Shutdown::new(),
        )
        .unwrap();
        let cam = CameraEvidence::new(&cfg.cameras[0], None);
        for i in 0..3 {
            stage.capture(&cam, capture(i), None);
        }
        assert!(stage.drain_once().await.is_err());
        assert_eq!(stage.status().queued, 3);
        assert!(store.recorded.lock().is_empty());

        store.down.store(false, Ordering::SeqCst);
        assert_eq!(stage.drain_once().await.unwrap(), 3);
        assert_eq!(stage.drain_once().await.unwrap(), 0);
        let recorded = store.recorded.lock().clone();
        let distinct: HashSet<&String> = recorded.iter().collect();
        assert_eq!((recorded.len(), distinct.len()), (3, 3));
        assert_eq!(stage.status().queued, 0);
    }
}

impl crate::model::live::FilingControl for FilingStage {
    fn status(&self) -> FilingStatus {
        FilingStage::status(self)
    }
    fn published(&self) -> FilingStatus {
        self.status.borrow().clone()
    }
    fn wake(&self) {
        self.stored.notify_one();
    }
}
