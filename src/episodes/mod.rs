//! Stage 3, episodes: stationary objects keyed by place (IoU with an anchor box) and, for
//! vehicles, appearance, never by tracker id. An episode tolerates missed detections and
//! occlusion up to a grace period, and is kept in a store so a restart resumes its dwell.
//!
//! Times are seconds on the pipeline's clock (Unix seconds: wall time live, replay start +
//! stream time for recorded footage), so dwell survives restarts and replays repeat exactly.

pub mod signature;
pub mod store;

use serde::{Deserialize, Serialize};

use crate::config::{EpisodeSettings, RuleKind};
use crate::detect::decode::iou;
use crate::detect::{BBox, Detection, ObjectKind};
use crate::ingest::Frame;
use signature::Signature;

/// Two detections of one kind overlapping this much are one object.
const SAME_OBJECT_IOU: f32 = 0.7;

/// Kinds that become episodes: things that stay put.
pub fn is_stationary_kind(kind: ObjectKind) -> bool {
    matches!(
        kind,
        ObjectKind::Vehicle | ObjectKind::StallPart | ObjectKind::BinOverflow | ObjectKind::Garbage
    )
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Episode {
    pub id: u64,
    pub kind: ObjectKind,
    pub label: String,
    /// The place: a slowly smoothed box; what new detections are matched against.
    pub anchor: BBox,
    pub last_box: BBox,
    pub signature: Option<Signature>,
    pub first_seen: f64,
    pub last_seen: f64,
    pub hits: u32,
    pub best_score: f32,
    pub last_score: f32,
    /// Rules already resolved for this episode (one capture or one suppression each).
    #[serde(default)]
    pub resolved: Vec<RuleKind>,
    /// Last time a person was seen next to it (stall evidence).
    #[serde(default)]
    pub person_near: Option<f64>,
}

impl Episode {
    pub fn dwell(&self) -> f64 {
        self.last_seen - self.first_seen
    }
}

/// Why an episode ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    /// Not seen for longer than its grace period.
    Gone,
    /// A different-looking vehicle now stands in the same place.
    Replaced,
}

#[derive(Debug, Default)]
pub struct Update {
    pub opened: Vec<u64>,
    pub closed: Vec<(Episode, CloseReason)>,
}

/// The matching parameters.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    pub iou: f32,
    pub grace: f64,
    pub vehicle_grace: f64,
    pub signature_distance: f32,
}

impl From<&EpisodeSettings> for Params {
    fn from(s: &EpisodeSettings) -> Self {
        Self {
            iou: s.iou,
            grace: s.grace_s,
            vehicle_grace: s.vehicle_grace_s,
            signature_distance: s.signature_distance,
        }
    }
}

/// What a tracker keeps, and what the store saves.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrackerState {
    pub next_id: u64,
    pub open: Vec<Episode>,
}

/// One camera's episodes.
pub struct EpisodeTracker {
    params: Params,
    pub state: TrackerState,
}

impl EpisodeTracker {
    pub fn new(params: Params, state: TrackerState) -> Self {
        Self { params, state }
    }

    fn grace(&self, kind: ObjectKind) -> f64 {
        if kind == ObjectKind::Vehicle {
            self.params.vehicle_grace
        } else {
            self.params.grace
        }
    }

    pub fn open(&self) -> &[Episode] {
        &self.state.open
    }

    pub fn get_mut(&mut self, id: u64) -> Option<&mut Episode> {
        self.state.open.iter_mut().find(|e| e.id == id)
    }

    /// Feeds one analysed frame's detections at time `t`. `frame` gives vehicle signatures.
    pub fn update(&mut self, t: f64, dets: &[Detection], frame: Option<&Frame>) -> Update {
        let mut up = Update::default();
        // First close what has been away longer than its grace period: evidence must be
        // continuous within the grace, also when no frames came at all (camera offline).
        let mut i = 0;
        while i < self.state.open.len() {
            let e = &self.state.open[i];
            if t - e.last_seen > self.grace(e.kind) {
                let e = self.state.open.remove(i);
                up.closed.push((e, CloseReason::Gone));
            } else {
                i += 1;
            }
        }
        // Strongest first, so the result does not depend on detector output order.
        let mut order: Vec<&Detection> =
            dets.iter().filter(|d| is_stationary_kind(d.kind)).collect();
        order.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then(a.bbox[0].total_cmp(&b.bbox[0]))
                .then(a.bbox[1].total_cmp(&b.bbox[1]))
        });
        // One object, several labels of one kind (a van as "car" and as "truck"): keep the
        // strongest, so one object is one episode.
        let mut kept: Vec<&Detection> = Vec::with_capacity(order.len());
        for d in order {
            if !kept
                .iter()
                .any(|k| k.kind == d.kind && iou(&k.bbox, &d.bbox) >= SAME_OBJECT_IOU)
            {
                kept.push(d);
            }
        }
        let order = kept;
        let mut matched = vec![false; self.state.open.len()];
        for d in order {
            let sig = match (d.kind, frame) {
                (ObjectKind::Vehicle, Some(f)) => Some(Signature::of(f, &d.bbox)),
                _ => None,
            };
            let best = self
                .state
                .open
                .iter()
                .enumerate()
                .filter(|(i, e)| !matched[*i] && e.kind == d.kind)
                .map(|(i, e)| (i, iou(&e.anchor, &d.bbox)))
                .filter(|(_, v)| *v >= self.params.iou)
                .max_by(|a, b| a.1.total_cmp(&b.1));
            if let Some((i, _)) = best {
                let same_look = match (&self.state.open[i].signature, &sig) {
                    (Some(a), Some(b)) => a.distance(b) <= self.params.signature_distance,
                    _ => true,
                };
                if same_look {
                    matched[i] = true;
                    let e = &mut self.state.open[i];
                    e.last_seen = t;
                    e.hits += 1;
                    e.last_box = d.bbox;
                    e.last_score = d.score;
                    e.best_score = e.best_score.max(d.score);
                    e.label = d.label.to_string();
                    for k in 0..4 {
                        e.anchor[k] = 0.9 * e.anchor[k] + 0.1 * d.bbox[k];
                    }
                    if let (Some(a), Some(b)) = (e.signature.as_mut(), &sig) {
                        a.blend(b, 0.1);
                    }
                    continue;
                }
                // Same place, different vehicle: the old one has gone.
                let old = self.state.open.remove(i);
                matched.remove(i);
                up.closed.push((old, CloseReason::Replaced));
            }
            let id = self.state.next_id;
            self.state.next_id += 1;
            self.state.open.push(Episode {
                id,
                kind: d.kind,
                label: d.label.to_string(),
                anchor: d.bbox,
                last_box: d.bbox,
                signature: sig,
                first_seen: t,
                last_seen: t,
                hits: 1,
                best_score: d.score,
                last_score: d.score,
                resolved: Vec::new(),
                person_near: None,
            });
            matched.push(true);
            up.opened.push(id);
        }
        up
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> Params {
        Params {
            iou: 0.4,
            grace: 30.0,
            vehicle_grace: 60.0,
            signature_distance: 0.35,
        }
    }

    fn det(kind: ObjectKind, b: BBox) -> Detection {
        Detection {
            label: "x".into(),
            kind,
            score: 0.8,
            bbox: b,
        }
    }

    const STALL: BBox = [0.1, 0.1, 0.3, 0.3];

    #[test]
    fn jittery_boxes_stay_one_episode_and_gaps_within_grace_keep_it() {
        let mut t = EpisodeTracker::new(params(), TrackerState::default());
        let up = t.update(0.0, &[det(ObjectKind::StallPart, STALL)], None);
        assert_eq!(up.opened, vec![0]);
        // Small shifts, then a 25 s gap (under the 30 s grace).
        t.update(
            5.0,
            &[det(ObjectKind::StallPart, [0.11, 0.1, 0.31, 0.3])],
            None,
        );
        let up = t.update(
            30.0,
            &[det(ObjectKind::StallPart, [0.1, 0.12, 0.3, 0.31])],
            None,
        );
        assert!(up.opened.is_empty() && up.closed.is_empty());
        assert_eq!(t.open()[0].dwell(), 30.0);
        assert_eq!(t.open()[0].hits, 3);
        // People are not episodes.
        t.update(31.0, &[det(ObjectKind::Person, STALL)], None);
        assert_eq!(t.open().len(), 1);
        // 31 s without it: closed as gone.
        let up = t.update(61.5, &[], None);
        assert_eq!(up.closed.len(), 1);
        assert_eq!(up.closed[0].1, CloseReason::Gone);
        // Back at the same place: a new episode, dwell from zero.
        let up = t.update(62.0, &[det(ObjectKind::StallPart, STALL)], None);
        assert_eq!(up.opened, vec![1]);
    }

    #[test]
    fn one_object_with_two_labels_is_one_episode() {
        let mut t = EpisodeTracker::new(params(), TrackerState::default());
        let mut truck = det(ObjectKind::Vehicle, [0.5, 0.5, 0.7, 0.7]);
        truck.score = 0.4;
        let up = t.update(
            0.0,
            &[det(ObjectKind::Vehicle, [0.5, 0.5, 0.7, 0.7]), truck],
            None,
        );
        assert_eq!(up.opened.len(), 1);
    }

    #[test]
    fn another_place_or_kind_is_another_episode() {
        let mut t = EpisodeTracker::new(params(), TrackerState::default());
        t.update(
            0.0,
            &[
                det(ObjectKind::StallPart, STALL),
                det(ObjectKind::StallPart, [0.6, 0.6, 0.8, 0.8]),
                det(ObjectKind::Garbage, STALL),
            ],
            None,
        );
        assert_eq!(t.open().len(), 3);
    }
}
