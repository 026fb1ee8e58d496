//! Scene-change gating, per camera: when a frame looks like the last one sent to the
//! detector, reuse that frame's detections instead of running the model. Stationary things
//! stay "seen" at no inference cost; a real inference is forced every `max_reuse`.
//!
//! The comparison is a 32×24 grey thumbnail (block means, so sensor noise averages out):
//! the share of cells whose brightness moved by more than `cell_delta` must exceed
//! `changed_share` to count as a change. Time is the frame's own stream time.

use std::time::Duration;

use super::Detection;
use crate::ingest::Frame;
use crate::model::BBox;

pub const THUMB_W: usize = 32;
pub const THUMB_H: usize = 24;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GateConfig {
    pub enabled: bool,
    /// Brightness change of one thumbnail cell that counts (0..1 of full scale).
    pub cell_delta: f32,
    /// Share of cells that must change for a new inference (0..1).
    pub changed_share: f32,
    /// Longest time detections are reused without a real inference.
    pub max_reuse: Duration,
}

impl Default for GateConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            cell_delta: 0.06,
            changed_share: 0.01,
            max_reuse: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Run,
    Reuse,
}

/// Counters of one camera.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct GateStats {
    pub inferences: u64,
    pub reused: u64,
}

pub struct SceneGate {
    cfg: GateConfig,
    reference: Option<[f32; THUMB_W * THUMB_H]>,
    reference_time: Duration,
    /// The reference before the last `Run`, so a run that did not happen can be undone.
    previous: Option<(Option<[f32; THUMB_W * THUMB_H]>, Duration)>,
    last: Vec<Detection>,
    current: [f32; THUMB_W * THUMB_H],
    /// The thumbnail cells compared (the rule zones and their margin); None: all of them.
    cells: Option<Vec<usize>>,
    pub stats: GateStats,
}

/// Block-mean grey thumbnail of a frame, 0..1.
pub fn thumbnail(frame: &Frame, out: &mut [f32; THUMB_W * THUMB_H]) {
    let (w, h) = (frame.width as usize, frame.height as usize);
    let mut sums = [0u32; THUMB_W * THUMB_H];
    let mut counts = [0u32; THUMB_W * THUMB_H];
    // Every other row and column is plenty for block means, at a quarter of the cost.
    for y in (0..h).step_by(2) {
        let ty = y * THUMB_H / h;
        let row = frame.row(y as u32);
        for x in (0..w).step_by(2) {
            let tx = x * THUMB_W / w;
            let p = &row[x * 3..x * 3 + 3];
            // Integer luma (BT.601).
            let l = (77 * p[0] as u32 + 150 * p[1] as u32 + 29 * p[2] as u32) >> 8;
            sums[ty * THUMB_W + tx] += l;
            counts[ty * THUMB_W + tx] += 1;
        }
    }
    for i in 0..out.len() {
        out[i] = if counts[i] == 0 {
            0.0
        } else {
            sums[i] as f32 / counts[i] as f32 / 255.0
        };
    }
}

/// Share of cells that moved by more than `delta`.
pub fn changed_share(a: &[f32], b: &[f32], delta: f32) -> f32 {
    let n = a
        .iter()
        .zip(b)
        .filter(|(x, y)| (*x - *y).abs() > delta)
        .count();
    n as f32 / a.len() as f32
}

/// Share of the listed cells that moved by more than `delta`.
fn changed_share_of(cells: &[usize], a: &[f32], b: &[f32], delta: f32) -> f32 {
    if cells.is_empty() {
        return 0.0;
    }
    let n = cells
        .iter()
        .filter(|&&i| (a[i] - b[i]).abs() > delta)
        .count();
    n as f32 / cells.len() as f32
}

/// The thumbnail cells that overlap any of `regions` (normalised boxes) grown by `margin`
/// (a share of the frame's width and height).
pub fn cells_of(regions: &[BBox], margin: f32) -> Vec<usize> {
    let mut out = Vec::new();
    for ty in 0..THUMB_H {
        for tx in 0..THUMB_W {
            let (x0, x1) = (tx as f32 / THUMB_W as f32, (tx + 1) as f32 / THUMB_W as f32);
            let (y0, y1) = (ty as f32 / THUMB_H as f32, (ty + 1) as f32 / THUMB_H as f32);
            if regions.iter().any(|r| {
                x1 > r[0] - margin && x0 < r[2] + margin && y1 > r[1] - margin && y0 < r[3] + margin
            }) {
                out.push(ty * THUMB_W + tx);
            }
        }
    }
    out
}

impl SceneGate {
    pub fn new(cfg: GateConfig) -> Self {
        Self {
            cfg,
            reference: None,
            reference_time: Duration::ZERO,
            previous: None,
            last: Vec::new(),
            current: [0.0; THUMB_W * THUMB_H],
            cells: None,
            stats: GateStats::default(),
        }
    }

    /// Compares only the cells of these regions (the camera's rule zones) grown by `margin`:
    /// motion elsewhere in the frame does not force an inference. No regions: the whole frame.
    pub fn watching(mut self, regions: &[BBox], margin: f32) -> Self {
        self.watch(regions, margin);
        self
    }

    /// [`Self::watching`] on a gate in place.
    pub fn watch(&mut self, regions: &[BBox], margin: f32) {
        self.cells = (!regions.is_empty()).then(|| cells_of(regions, margin));
    }

    fn time(frame: &Frame) -> Duration {
        frame.pts.unwrap_or_else(|| {
            frame
                .wall
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
        })
    }

    /// Decides for one frame; on `Reuse` the detections are in [`SceneGate::reused`].
    pub fn decide(&mut self, frame: &Frame) -> Decision {
        if !self.cfg.enabled {
            self.stats.inferences += 1;
            return Decision::Run;
        }
        thumbnail(frame, &mut self.current);
        let now = Self::time(frame);
        let decision = match &self.reference {
            None => Decision::Run,
            Some(r) => {
                let stale = now.saturating_sub(self.reference_time) >= self.cfg.max_reuse
                    || now < self.reference_time;
                let changed = match &self.cells {
                    Some(cells) => changed_share_of(cells, r, &self.current, self.cfg.cell_delta),
                    None => changed_share(r, &self.current, self.cfg.cell_delta),
                };
                if stale || changed > self.cfg.changed_share {
                    Decision::Run
                } else {
                    Decision::Reuse
                }
            }
        };
        match decision {
            Decision::Run => {
                self.stats.inferences += 1;
                self.previous = Some((self.reference, self.reference_time));
                self.reference = Some(self.current);
                self.reference_time = now;
            }
            Decision::Reuse => self.stats.reused += 1,
        }
        decision
    }

    /// The last `Run` did not happen (the inference budget said no): the reference stays the
    /// last frame really sent to the detector, and the frame counts as reused.
    pub fn undo_run(&mut self) {
        if let Some((reference, time)) = self.previous.take() {
            self.reference = reference;
            self.reference_time = time;
            self.stats.inferences -= 1;
            self.stats.reused += 1;
        }
    }

    /// Records the detections of the frame that was just run.
    pub fn record(&mut self, detections: &[Detection]) {
        self.last = detections.to_vec();
    }

    pub fn reused(&self) -> &[Detection] {
        &self.last
    }
}

impl From<&crate::config::GateSettings> for GateConfig {
    fn from(s: &crate::config::GateSettings) -> Self {
        Self {
            enabled: s.enabled,
            cell_delta: s.cell_delta,
            changed_share: s.changed_share,
            max_reuse: crate::config::secs(s.max_reuse_s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(pts_s: f64, paint: impl Fn(usize, usize) -> [u8; 3]) -> Frame {
        let (w, h) = (64usize, 48usize);
        let mut rgb = Vec::with_capacity(w * h * 3);
        for y in 0..h {
            for x in 0..w {
                rgb.extend_from_slice(&paint(x, y));
            }
        }
        let mut f = Frame::from_rgb("cam".into(), w as u32, h as u32, rgb);
        f.pts = Some(Duration::from_secs_f64(pts_s));
        f
    }

    fn grey(_: usize, _: usize) -> [u8; 3] {
        [100, 100, 100]
    }

    #[test]
    fn unchanged_scene_reuses_a_change_runs_and_staleness_forces() {
        let cfg = GateConfig {
            max_reuse: Duration::from_secs(10),
            ..GateConfig::default()
        };
        let mut g = SceneGate::new(cfg);
        assert_eq!(g.decide(&frame(0.0, grey)), Decision::Run);
        // Sensor noise of ±2 levels everywhere: still the same scene.
        let noisy = |x: usize, y: usize| {
            let v = 100 + ((x * 7 + y * 13) % 5) as u8 - 2;
            [v, v, v]
        };
        assert_eq!(g.decide(&frame(1.0, noisy)), Decision::Reuse);
        assert_eq!(g.decide(&frame(2.0, grey)), Decision::Reuse);
        // A bright object of 16x12 pixels (about 6% of the frame) appears.
        let object = |x: usize, y: usize| {
            if (20..36).contains(&x) && (10..22).contains(&y) {
                [250, 250, 250]
            } else {
                [100, 100, 100]
            }
        };
        assert_eq!(g.decide(&frame(3.0, object)), Decision::Run);
        assert_eq!(g.decide(&frame(4.0, object)), Decision::Reuse);
        // 10 s after the last real inference: forced, even though nothing changed.
        assert_eq!(g.decide(&frame(12.9, object)), Decision::Reuse);
        assert_eq!(g.decide(&frame(13.0, object)), Decision::Run);
        assert_eq!(
            g.stats,
            GateStats {
                inferences: 3,
                reused: 4
            }
        );
    }

    #[test]
    fn an_undone_run_keeps_the_old_reference() {
        let mut g = SceneGate::new(GateConfig::default());
        assert_eq!(g.decide(&frame(0.0, grey)), Decision::Run);
        let bright = |_: usize, _: usize| [250, 250, 250];
        assert_eq!(g.decide(&frame(1.0, bright)), Decision::Run);
        g.undo_run();
        // Still compared with the grey frame the detector saw, so it still wants to run.
        assert_eq!(g.decide(&frame(2.0, bright)), Decision::Run);
        assert_eq!(
            g.stats,
            GateStats {
                inferences: 2,
                reused: 1
            }
        );
    }

    #[test]
    fn a_gate_watching_the_zones_ignores_motion_elsewhere() {
        // The zone is the left third of the frame; people cross the right half.
        let zone = [0.0, 0.0, 0.33, 1.0];
        let mut g = SceneGate::new(GateConfig::default()).watching(&[zone], 0.05);
        let mut whole = SceneGate::new(GateConfig::default());
        let walker = |at: usize| {
            move |x: usize, y: usize| {
                if (at..at + 6).contains(&x) && (10..30).contains(&y) {
                    [240, 240, 240]
                } else {
                    [100, 100, 100]
                }
            }
        };
        assert_eq!(g.decide(&frame(0.0, walker(40))), Decision::Run);
        assert_eq!(whole.decide(&frame(0.0, walker(40))), Decision::Run);
        for (t, x) in [(1.0, 46), (2.0, 52), (3.0, 57)] {
            assert_eq!(g.decide(&frame(t, walker(x))), Decision::Reuse);
            assert_eq!(whole.decide(&frame(t, walker(x))), Decision::Run);
        }
        // Into the zone (its margin starts at x = 24.3 of 64): the gate runs.
        assert_eq!(g.decide(&frame(4.0, walker(18))), Decision::Run);
        // The cells cover the zone and its margin, nothing more.
        let cells = cells_of(&[zone], 0.05);
        assert!(cells.iter().all(|&i| i % THUMB_W < 13), "{cells:?}");
        assert_eq!(cells.len(), 13 * THUMB_H);
    }

    #[test]
    fn disabled_gate_always_runs() {
        let mut g = SceneGate::new(GateConfig {
            enabled: false,
            ..GateConfig::default()
        });
        for t in 0..3 {
            assert_eq!(g.decide(&frame(t as f64, grey)), Decision::Run);
        }
        assert_eq!(g.stats.inferences, 3);
    }

    #[test]
    fn a_reset_stream_time_forces_a_run() {
        let mut g = SceneGate::new(GateConfig::default());
        assert_eq!(g.decide(&frame(50.0, grey)), Decision::Run);
        assert_eq!(g.decide(&frame(0.0, grey)), Decision::Run);
    }
}
