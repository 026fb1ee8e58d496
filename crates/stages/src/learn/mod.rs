//! Stage 5a, learning from the operators' verdicts: a memory per camera, zone and rule of
//! what reviewed captures looked like (their embeddings) and what the operator said.
//!
//! A new candidate whose nearest remembered neighbour is a rejection at least `similarity`
//! alike, and no confirmation as close, resembles that rejection: it is not put in front of
//! an operator again, but recorded as a learned suppression that links to the rejected
//! capture (an operator can undo it). A confirmation is never overridden: a candidate as
//! close to a confirmed capture as to any rejection is filed.
//!
//! The memory is bounded per key; the oldest entries age out. It changes only through
//! [`SharedMemory`] (the web UI's verdicts, loaded from the store at start), never inside a
//! replay, so a replay with a given database repeats exactly.

pub use crate::model::calibrate;

use parking_lot::RwLock;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use crate::config::LearnSettings;
use crate::model::candidate::Resemblance;
use crate::model::embedding::similarity;
use crate::model::{Candidate, RuleKind};

pub use crate::model::verdict::{MemoryEntry, Said, TEACHING_REASONS};

type Key = (String, String, RuleKind);

/// The verdict memory of every camera.
#[derive(Debug, Clone, Default)]
pub struct VerdictMemory {
    settings: LearnSettings,
    entries: BTreeMap<Key, VecDeque<MemoryEntry>>,
}

impl VerdictMemory {
    pub fn new(settings: LearnSettings) -> Self {
        Self {
            settings,
            entries: BTreeMap::new(),
        }
    }

    /// A memory of `entries` (oldest first, as the store lists them).
    pub fn from_entries(settings: LearnSettings, entries: Vec<MemoryEntry>) -> Self {
        let mut m = Self::new(settings);
        for e in entries {
            m.remember(e);
        }
        m
    }

    /// Adds a verdict (replacing an earlier one on the same capture); the oldest of its key
    /// age out past `max_per_zone`. Verdicts that teach nothing are ignored.
    pub fn remember(&mut self, e: MemoryEntry) {
        if !e.teaches() || e.embedding.is_empty() {
            return;
        }
        let q = self
            .entries
            .entry((e.camera.clone(), e.zone.clone(), e.rule))
            .or_default();
        q.retain(|x| x.capture != e.capture);
        // Kept in verdict-time order, so ageing out drops the oldest.
        let at = q.iter().position(|x| x.at > e.at).unwrap_or(q.len());
        q.insert(at, e);
        while q.len() > self.settings.max_per_zone.max(1) {
            q.pop_front();
        }
    }

    /// Drops the entry of a capture; says whether there was one.
    pub fn forget(&mut self, capture: &str) -> bool {
        let mut found = false;
        for q in self.entries.values_mut() {
            let before = q.len();
            q.retain(|x| x.capture != capture);
            found |= q.len() != before;
        }
        self.entries.retain(|_, q| !q.is_empty());
        found
    }

    /// Every entry, oldest first within each key.
    pub fn entries(&self) -> impl Iterator<Item = &MemoryEntry> {
        self.entries.values().flatten()
    }

    pub fn len(&self) -> usize {
        self.entries.values().map(VecDeque::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `c` resembles a rejected capture of its camera, zone and rule more than any
    /// confirmed one; the rejection it resembles most.
    pub fn judge(&self, camera: &str, c: &Candidate) -> Option<Resemblance> {
        if !self.settings.enabled {
            return None;
        }
        if let Some(p) = &c.plate {
            // A plate decides before any look: the newest verdict on the same plate on this
            // camera and rule, in any of its zones.
            let newest = self
                .entries
                .iter()
                .filter(|((cam, _, rule), _)| cam == camera && *rule == c.rule)
                .flat_map(|(_, q)| q.iter())
                .filter(|e| e.plate.as_deref() == Some(p.text.as_str()))
                .max_by(|a, b| a.at.total_cmp(&b.at).then(a.capture.cmp(&b.capture)));
            if let Some(e) = newest {
                tracing::debug!(camera, plate = %p.text, verdict = e.said.as_str(), "candidate judged by its plate");
                return (e.said == Said::Rejected).then(|| Resemblance {
                    capture: e.capture.clone(),
                    similarity: 1.0,
                    reason: e.reason.clone(),
                });
            }
        }
        let v = c.embedding.as_deref()?;
        let q = self
            .entries
            .get(&(camera.to_string(), c.zone.clone(), c.rule))?;
        let mut best_reject: Option<(f32, &MemoryEntry)> = None;
        let mut best_confirm = f32::MIN;
        for e in q {
            if e.embedding.len() != v.len() {
                continue; // another model's embedding
            }
            let s = similarity(v, &e.embedding);
            match e.said {
                Said::Confirmed => best_confirm = best_confirm.max(s),
                Said::Rejected => {
                    // Ties go to the newer entry (later in the queue).
                    if best_reject.is_none_or(|(b, _)| s >= b) {
                        best_reject = Some((s, e));
                    }
                }
            }
        }
        tracing::debug!(
            camera,
            zone = %c.zone,
            rule = c.rule.as_str(),
            nearest_rejection = best_reject.map(|(s, _)| s),
            nearest_confirmation = best_confirm,
            "candidate judged against the verdict memory"
        );
        let (s, e) = best_reject?;
        (s >= self.settings.similarity && s > best_confirm).then(|| Resemblance {
            capture: e.capture.clone(),
            similarity: s,
            reason: e.reason.clone(),
        })
    }
}

/// The memory shared by the cameras (reading) and the web UI (writing).
#[derive(Clone, Default)]
pub struct SharedMemory(Arc<RwLock<VerdictMemory>>);

impl SharedMemory {
    pub fn new(memory: VerdictMemory) -> Self {
        Self(Arc::new(RwLock::new(memory)))
    }

    pub fn judge(&self, camera: &str, c: &Candidate) -> Option<Resemblance> {
        self.0.read().judge(camera, c)
    }

    pub fn remember(&self, e: MemoryEntry) {
        self.0.write().remember(e);
    }

    pub fn forget(&self, capture: &str) -> bool {
        self.0.write().forget(capture)
    }

    /// Replaces the whole memory (a reload from the store).
    pub fn replace(&self, memory: VerdictMemory) {
        *self.0.write() = memory;
    }
}

impl crate::model::verdict::VerdictBook for SharedMemory {
    fn remember(&self, e: MemoryEntry) {
        SharedMemory::remember(self, e)
    }
    fn forget(&self, capture: &str) -> bool {
        SharedMemory::forget(self, capture)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> LearnSettings {
        LearnSettings {
            enabled: true,
            similarity: 0.9,
            max_per_zone: 3,
        }
    }

    fn unit(v: &[f32]) -> Vec<f32> {
        let mut v = v.to_vec();
        crate::model::embedding::normalise(&mut v);
        v
    }

    fn entry(id: &str, said: Said, reason: Option<&str>, v: &[f32], at: f64) -> MemoryEntry {
        MemoryEntry {
            capture: id.into(),
            camera: "c".into(),
            zone: "z".into(),
            rule: RuleKind::AbandonedVehicle,
            said,
            reason: reason.map(Into::into),
            embedding: unit(v),
            at,
            plate: None,
        }
    }

    fn candidate(v: &[f32]) -> Candidate {
        let mut c = crate::ratelimit::sample_capture(1, 1000.0).candidate;
        c.embedding = Some(unit(v));
        c
    }

    #[test]
    fn a_vehicle_rejected_once_is_known_by_its_plate_whatever_its_look() {
        let mut m = VerdictMemory::new(settings());
        let mut rejected = entry(
            "r",
            Said::Rejected,
            Some("not_a_problem"),
            &[1.0, 0.0, 0.0],
            1.0,
        );
        rejected.plate = Some("京A12345".into());
        rejected.zone = "other_zone".into();
        m.remember(rejected);
        let plated = |text: &str| {
            let mut c = candidate(&[0.0, 1.0, 0.0]);
            c.plate = Some(crate::model::plate::VotedPlate {
                text: text.into(),
                confidence: 0.9,
                agree: 2,
                reads: 2,
                bbox: None,
            });
            c
        };
        let r = m
            .judge("c", &plated("京A12345"))
            .expect("known by its plate");
        assert_eq!((r.capture.as_str(), r.similarity), ("r", 1.0));
        assert_eq!(m.judge("c", &plated("京A99999")), None, "another plate");
        assert_eq!(
            m.judge("other_camera", &plated("京A12345")),
            None,
            "within a camera"
        );
        // A later confirmation of the same plate wins.
        let mut confirmed = entry("k", Said::Confirmed, None, &[1.0, 0.0, 0.0], 2.0);
        confirmed.plate = Some("京A12345".into());
        m.remember(confirmed);
        assert_eq!(m.judge("c", &plated("京A12345")), None);
    }

    #[test]
    fn a_lookalike_of_a_rejection_is_suppressed_and_a_different_look_is_not() {
        let mut m = VerdictMemory::new(settings());
        m.remember(entry(
            "a",
            Said::Rejected,
            Some("not_a_problem"),
            &[1.0, 0.1, 0.0],
            1.0,
        ));
        let r = m.judge("c", &candidate(&[1.0, 0.12, 0.02])).unwrap();
        assert_eq!(r.capture, "a");
        assert!(r.similarity > 0.99);
        assert!(m.judge("c", &candidate(&[0.0, 1.0, 0.3])).is_none());
        // Another camera's memory is not this one's.
        assert!(m.judge("d", &candidate(&[1.0, 0.12, 0.02])).is_none());
    }

    #[test]
    fn a_confirmation_as_close_is_never_overridden() {
        let mut m = VerdictMemory::new(settings());
        m.remember(entry(
            "r",
            Said::Rejected,
            Some("false_detection"),
            &[1.0, 0.0, 0.0],
            1.0,
        ));
        m.remember(entry("k", Said::Confirmed, None, &[1.0, 0.05, 0.0], 2.0));
        assert!(m.judge("c", &candidate(&[1.0, 0.05, 0.0])).is_none());
    }

    #[test]
    fn duplicates_teach_nothing_the_oldest_age_out_and_forgetting_works() {
        let mut m = VerdictMemory::new(settings());
        m.remember(entry(
            "d",
            Said::Rejected,
            Some("duplicate"),
            &[1.0, 0.0],
            1.0,
        ));
        assert!(m.is_empty());
        for (i, id) in ["a", "b", "c", "e"].iter().enumerate() {
            m.remember(entry(
                id,
                Said::Rejected,
                Some("other"),
                &[1.0, i as f32],
                i as f64,
            ));
        }
        assert_eq!(m.len(), 3);
        assert!(m.entries().all(|e| e.capture != "a"));
        assert!(m.forget("b"));
        assert!(!m.forget("b"));
        assert_eq!(m.len(), 2);
    }
}
