//! The view-drift guard. City cameras are often PTZ domes that an operator turns and forgets
//! to return; the zones drawn for the preset then cover the wrong ground. Each camera keeps a
//! reference view (per light) as an edge map; every analysed frame's edge map is registered to
//! it by the best normalised correlation over shifts. When the best shift is beyond the
//! tolerance, or no shift correlates well enough (zoom, rotation, another scene), for a few
//! frames in a row the camera is off its view: rules pause until it registers again.
//!
//! Edge maps are gradient magnitudes divided by the frame's mean grey, so falling light does
//! not move them; people and cars crossing move a small part of them.
//!
//! A reference is never one frame's word: the first view becomes a candidate, and it is
//! kept only once the frames that follow register to it (as many in a row as it takes to
//! go off view). A smeared picture from a decoder that lost its reference frame, or a truck
//! passing right in front of the lens at start, would otherwise be the view every later
//! frame is judged against, and the camera would stay off view for good.

use serde::{Deserialize, Serialize};

use super::{Light, cells};
use crate::ingest::Frame;

/// The edge map's size in cells (4:3; other aspects stretch, as the reference did).
pub const W: usize = 64;
pub const H: usize = 48;

/// What the guard is told to do (`[view]` in the config).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ViewParams {
    /// Largest shift, as a share of the width (and the same number of cells vertically), that
    /// still counts as the same view.
    pub tolerance: f32,
    /// Least correlation (0..1) of the best shift for the view to register.
    pub min_match: f32,
    /// Frames in a row before the state flips either way.
    pub frames: u32,
}

/// One frame's registration to the reference.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Registration {
    /// The best shift, in cells of the 64×48 map.
    pub dx: i32,
    pub dy: i32,
    /// Its normalised correlation.
    pub score: f32,
}

/// The reference views: what the store keeps.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ViewMemory {
    #[serde(default)]
    pub day: Option<Vec<f32>>,
    #[serde(default)]
    pub night: Option<Vec<f32>>,
}

/// The edge map of a frame and its mean grey.
pub fn edge_map(frame: &Frame) -> (Vec<f32>, f32) {
    let g = cells(frame, &[0.0, 0.0, 1.0, 1.0], W, H);
    let mean = g.iter().sum::<f32>() / g.len() as f32;
    let mut e = vec![0f32; W * H];
    let norm = mean.max(1e-3);
    for y in 1..H - 1 {
        for x in 1..W - 1 {
            let gx = g[y * W + x + 1] - g[y * W + x - 1];
            let gy = g[(y + 1) * W + x] - g[(y - 1) * W + x];
            e[y * W + x] = (gx * gx + gy * gy).sqrt() / norm;
        }
    }
    (e, mean)
}

/// The best shift of `cur` onto `reference` within ±`max` cells, by normalised correlation
/// over the overlap, on the cells where the reference has structure.
pub fn register(reference: &[f32], cur: &[f32], max: i32) -> Registration {
    // The reference's structured cells: edge strength above its median.
    let mut sorted: Vec<f32> = reference.to_vec();
    sorted.sort_by(f32::total_cmp);
    let median = sorted[sorted.len() / 2];
    let structured: Vec<bool> = reference.iter().map(|v| *v > median).collect();
    let mut best = Registration {
        dx: 0,
        dy: 0,
        score: -1.0,
    };
    for dy in -max..=max {
        for dx in -max..=max {
            let s = ncc(reference, cur, dx, dy, &structured);
            // Ties go to the smaller shift (deterministic, and no drift from nothing).
            let better = s > best.score + 1e-6
                || ((s - best.score).abs() <= 1e-6
                    && dx.abs() + dy.abs() < best.dx.abs() + best.dy.abs());
            if better {
                best = Registration { dx, dy, score: s };
            }
        }
    }
    best
}

/// Blocks per side of the correlation: the score is the median block's, so an occluder over
/// a few blocks (a truck parked near the camera, a market stall) does not hide that the rest
/// of the view is in place.
const BLOCKS_X: i32 = 4;
const BLOCKS_Y: i32 = 3;

fn ncc(a: &[f32], b: &[f32], dx: i32, dy: i32, structured: &[bool]) -> f32 {
    // Compare a(x, y) with b(x + dx, y + dy), skipping the 1-cell border edge maps leave 0,
    // over the cells where the reference has structure: new edges on flat ground (litter,
    // people, a parked car) do not hide that the reference's own edges are still in place.
    let (bw, bh) = (W as i32 / BLOCKS_X, H as i32 / BLOCKS_Y);
    let mut scores = Vec::with_capacity((BLOCKS_X * BLOCKS_Y) as usize);
    for by in 0..BLOCKS_Y {
        for bx in 0..BLOCKS_X {
            let (mut sa, mut sb, mut saa, mut sbb, mut sab, mut n) =
                (0f64, 0f64, 0f64, 0f64, 0f64, 0f64);
            for y in (by * bh).max(1)..((by + 1) * bh).min(H as i32 - 1) {
                let yb = y + dy;
                if yb < 1 || yb >= H as i32 - 1 {
                    continue;
                }
                for x in (bx * bw).max(1)..((bx + 1) * bw).min(W as i32 - 1) {
                    let xb = x + dx;
                    if xb < 1 || xb >= W as i32 - 1 || !structured[(y * W as i32 + x) as usize] {
                        continue;
                    }
                    let p = a[(y * W as i32 + x) as usize] as f64;
                    let q = b[(yb * W as i32 + xb) as usize] as f64;
                    sa += p;
                    sb += q;
                    saa += p * p;
                    sbb += q * q;
                    sab += p * q;
                    n += 1.0;
                }
            }
            if n < 8.0 {
                continue; // a block without structure says nothing
            }
            let cov = sab / n - (sa / n) * (sb / n);
            let va = saa / n - (sa / n).powi(2);
            let vb = sbb / n - (sb / n).powi(2);
            if va <= 1e-12 {
                continue;
            }
            scores.push(if vb <= 1e-12 {
                0.0
            } else {
                (cov / (va.sqrt() * vb.sqrt())) as f32
            });
        }
    }
    if scores.len() < 3 {
        return -1.0;
    }
    scores.sort_by(f32::total_cmp);
    scores[scores.len() / 2]
}

/// Whether the camera is on the view its zones were drawn for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ViewState {
    OnView,
    OffView,
}

/// One camera's guard; its references live in a [`ViewMemory`] the caller keeps.
#[derive(Debug, Clone)]
pub struct ViewGuard {
    params: ViewParams,
    state: ViewState,
    streak: u32,
    pub last: Option<Registration>,
    /// A view waiting to become the reference for its light: its edge map, and how many
    /// frames in a row (itself included) registered to it.
    candidate: Option<(Light, Vec<f32>, u32)>,
}

/// Mean edge strength below which a view has too little structure to judge.
const MIN_EDGE: f32 = 0.005;
/// How fast a reference follows a registered, unshifted view (seasons, parked cars).
const ADAPT: f32 = 0.02;

impl ViewGuard {
    pub fn new(params: ViewParams) -> Self {
        Self {
            params,
            state: ViewState::OnView,
            streak: 0,
            last: None,
            candidate: None,
        }
    }

    /// Whether a registration counts as the same view: a good enough match within the
    /// tolerance.
    fn registers(&self, r: &Registration) -> bool {
        let tol = (self.params.tolerance * W as f32).max(1.0);
        r.score >= self.params.min_match && (r.dx.abs() as f32) <= tol && (r.dy.abs() as f32) <= tol
    }

    /// No reference yet for any light: `map` confirms the candidate, or replaces it. The
    /// candidate becomes the reference (as its latest frame) once `frames` frames in a row
    /// agree on it.
    fn propose(&mut self, memory: &mut ViewMemory, light: Light, map: Vec<f32>) {
        let agreed = match self.candidate.take() {
            Some((l, c, n))
                if l == light && self.registers(&register(&c, &map, self.max_shift())) =>
            {
                n + 1
            }
            _ => 1,
        };
        if agreed >= self.params.frames.max(1) {
            store(memory, light, map);
        } else {
            self.candidate = Some((light, map, agreed));
        }
    }

    pub fn state(&self) -> ViewState {
        self.state
    }

    /// Starts over with no reference (the caller drops its [`ViewMemory`]): on view, and the
    /// next steady view becomes the reference.
    pub fn reset(&mut self) {
        self.state = ViewState::OnView;
        self.streak = 0;
        self.last = None;
        self.candidate = None;
    }

    fn max_shift(&self) -> i32 {
        // Search twice the tolerance, so a turned camera shows as a shift, not just as a
        // poor match.
        ((self.params.tolerance * W as f32 * 2.0).ceil() as i32).clamp(2, 16)
    }

    /// Checks one frame; returns the state after it.
    pub fn check(&mut self, memory: &mut ViewMemory, frame: &Frame) -> ViewState {
        let (map, mean) = edge_map(frame);
        let light = Light::of_mean(mean);
        // A view without edges (fog, a lens cap, a blank test frame) registers to nothing and
        // proves nothing.
        if map.iter().sum::<f32>() / ((W * H) as f32) < MIN_EDGE {
            return self.state;
        }
        let reference = match light {
            Light::Dark => return self.state, // nothing to judge by
            Light::Day => memory.day.as_ref().or(memory.night.as_ref()),
            Light::Night => memory.night.as_ref().or(memory.day.as_ref()),
        };
        let Some(reference) = reference.filter(|r| r.len() == W * H) else {
            // The first steady view is the reference: the preset the zones were drawn on.
            self.propose(memory, light, map);
            return self.state;
        };
        let r = register(reference, &map, self.max_shift());
        self.last = Some(r);
        let registered = self.registers(&r);
        let own = match light {
            Light::Day => memory.day.is_some(),
            _ => memory.night.is_some(),
        };
        if registered {
            if !own {
                // The first night (or day) view that matches the other light's reference.
                store(memory, light, map.clone());
            } else if r.dx == 0 && r.dy == 0 && self.state == ViewState::OnView {
                let slot = match light {
                    Light::Day => memory.day.as_mut(),
                    _ => memory.night.as_mut(),
                };
                if let Some(s) = slot {
                    for (a, b) in s.iter_mut().zip(&map) {
                        *a = (1.0 - ADAPT) * *a + ADAPT * b;
                    }
                }
            }
        }
        let wants = if registered {
            ViewState::OnView
        } else {
            ViewState::OffView
        };
        if wants == self.state {
            self.streak = 0;
        } else {
            self.streak += 1;
            if self.streak >= self.params.frames.max(1) {
                self.state = wants;
                self.streak = 0;
            }
        }
        self.state
    }
}

fn store(memory: &mut ViewMemory, light: Light, map: Vec<f32>) {
    match light {
        Light::Day => memory.day = Some(map),
        Light::Night => memory.night = Some(map),
        Light::Dark => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scene::testing::scene;

    fn params() -> ViewParams {
        ViewParams {
            tolerance: 0.04,
            min_match: 0.45,
            frames: 3,
        }
    }

    #[test]
    fn a_turned_camera_goes_off_view_after_a_few_frames_and_comes_back() {
        let mut mem = ViewMemory::default();
        let mut g = ViewGuard::new(params());
        let home = scene(320, 240, 1.0, &[], 0);
        // The reference is the view once three frames in a row agree on it.
        for n in 1..=3 {
            assert!(mem.day.is_none(), "a reference after {} frames", n - 1);
            assert_eq!(g.check(&mut mem, &home), ViewState::OnView);
        }
        assert!(mem.day.is_some());
        // A person walks by and the light falls: still the same view.
        let walker = ([0.3, 0.3, 0.36, 0.6], [30, 60, 90]);
        for gain in [1.0, 0.7, 0.5] {
            let f = scene(320, 240, gain, &[walker], 0);
            assert_eq!(g.check(&mut mem, &f), ViewState::OnView);
            assert!(g.last.unwrap().score > 0.6, "{:?}", g.last);
        }
        // Turned 40 px (12 % of the width): two frames are not enough, the third is.
        let turned = scene(320, 240, 1.0, &[], 40);
        assert_eq!(g.check(&mut mem, &turned), ViewState::OnView);
        assert_eq!(g.check(&mut mem, &turned), ViewState::OnView);
        assert_eq!(g.check(&mut mem, &turned), ViewState::OffView);
        let r = g.last.unwrap();
        assert!(r.dx.abs() > 2 || r.dy.abs() > 2 || r.score < 0.45, "{r:?}");
        // Back home.
        for _ in 0..2 {
            assert_eq!(g.check(&mut mem, &home), ViewState::OffView);
        }
        assert_eq!(g.check(&mut mem, &home), ViewState::OnView);
    }

    #[test]
    fn a_smeared_first_picture_never_becomes_the_reference() {
        // The first picture a camera gets is not its view (a decoder that joined between
        // keyframes smears it; here, the view shifted and half of it blanked): the frames
        // after it do not agree with it, so the steady view becomes the reference, and the
        // camera stays on it.
        let mut mem = ViewMemory::default();
        let mut g = ViewGuard::new(params());
        let blank = ([0.0, 0.0, 1.0, 0.5], [128, 128, 128]);
        let smeared = scene(320, 240, 1.0, &[blank], 70);
        assert_eq!(g.check(&mut mem, &smeared), ViewState::OnView);
        let home = scene(320, 240, 1.0, &[], 0);
        for _ in 0..10 {
            assert_eq!(g.check(&mut mem, &home), ViewState::OnView, "{:?}", g.last);
        }
        let day = mem.day.clone().expect("a reference");
        let r = register(&day, &edge_map(&home).0, 4);
        assert!(r.score > 0.9 && r.dx == 0 && r.dy == 0, "{r:?}");
        // ...and a turned camera still goes off it.
        let turned = scene(320, 240, 1.0, &[], 40);
        for _ in 0..3 {
            g.check(&mut mem, &turned);
        }
        assert_eq!(g.state(), ViewState::OffView);
    }

    #[test]
    fn a_small_wobble_is_within_tolerance_and_darkness_changes_nothing() {
        let mut mem = ViewMemory::default();
        let mut g = ViewGuard::new(params());
        for _ in 0..3 {
            g.check(&mut mem, &scene(320, 240, 1.0, &[], 0));
        }
        assert!(mem.day.is_some());
        for _ in 0..5 {
            assert_eq!(
                g.check(&mut mem, &scene(320, 240, 1.0, &[], 5)),
                ViewState::OnView
            );
        }
        for _ in 0..5 {
            assert_eq!(
                g.check(&mut mem, &scene(320, 240, 0.01, &[], 60)),
                ViewState::OnView
            );
        }
    }

    #[test]
    fn a_big_object_in_front_of_the_camera_is_not_a_turned_camera() {
        let mut mem = ViewMemory::default();
        let mut g = ViewGuard::new(params());
        for _ in 0..3 {
            g.check(&mut mem, &scene(320, 240, 1.0, &[], 0));
        }
        assert!(mem.day.is_some());
        // A truck parks near the camera and covers a third of the view, for good.
        let truck = ([0.0, 0.35, 0.45, 1.0], [200, 60, 40]);
        for _ in 0..6 {
            assert_eq!(
                g.check(&mut mem, &scene(320, 240, 1.0, &[truck], 0)),
                ViewState::OnView,
                "{:?}",
                g.last
            );
        }
    }
}
