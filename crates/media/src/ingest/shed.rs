//! Fair shedding when analysis cannot keep up with every live camera.
//!
//! One [`Shedder`] is shared by the live cameras of a process. It holds a single *stretch*
//! factor, 1 while analysis keeps up. Each camera's sampler asks its [`CameraShed`] about
//! every frame that is due on its own grid, before the frame is decoded (keyframe-only
//! decoding) or before it is scaled and converted (full decoding): with a stretch of `s`, a
//! camera keeps `1 / s` of its due frames, evenly spaced (a running credit, so no camera is
//! ever starved and none gets a burst), and sheds the rest. A camera with an open episode
//! in one of its rule zones (a dwell running) sheds half as much.
//!
//! The stretch follows how late analysis is. After each analysed frame the camera reports
//! how long the frame waited between reaching the application and its analysis ending, as
//! a share of the camera's own sampling interval. Once per window (as many reports as
//! there are live cameras, at least [`MIN_WINDOW`]) the window's 90th percentile decides:
//! above [`LATE`], unless the waits are already falling (a backlog draining), the stretch
//! grows by [`GROW`]; below [`EARLY`] it shrinks halfway (in ratio) to where the waits
//! would meet [`EARLY`] (they shorten as fewer frames come at once), between [`SHRINK`] and
//! [`FAST_SHRINK`], never under 1; in between it holds. Holding while frames wait one to two intervals keeps
//! a short standing queue, so analysis never idles while cameras shed, and no queue fills
//! to the point of dropping frames.
//!
//! Frames that are shed are counted per camera, and a camera with a stretch above 1 is
//! shown `degraded`. Recorded files are never shed: they play as fast as analysis takes
//! them.

use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// Late: the 90th percentile wait is over three sampling intervals (a camera's queue holds
/// four frames: past three, a growing wait is close to dropping them).
pub const LATE: f64 = 3.0;
/// Early: under one and a half intervals. Cameras whose keyframes come at the same moments
/// wait up to about an interval at a load the machine sustains.
pub const EARLY: f64 = 1.5;
/// Stretch change per window when late, and when early.
pub const GROW: f64 = 1.15;
/// The least and the most the stretch shrinks by in a window when early.
pub const SHRINK: f64 = 1.02;
pub const FAST_SHRINK: f64 = 1.25;
/// The most a camera's frames are thinned: one in this many kept.
pub const MAX_STRETCH: f64 = 16.0;
/// Fewest reports in a window.
pub const MIN_WINDOW: usize = 8;

/// The process-wide shedding state.
#[derive(Debug)]
pub struct Shedder {
    /// The stretch, as f64 bits (read on every due frame, written once per window).
    stretch: AtomicU64,
    cameras: AtomicUsize,
    window: Mutex<Window>,
}

impl Default for Shedder {
    fn default() -> Self {
        Self {
            stretch: AtomicU64::new(1f64.to_bits()),
            cameras: AtomicUsize::new(0),
            window: Mutex::default(),
        }
    }
}

impl Shedder {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The current stretch: 1 when nothing is shed.
    pub fn stretch(&self) -> f64 {
        f64::from_bits(self.stretch.load(Ordering::Relaxed))
    }

    fn set_stretch(&self, s: f64) {
        self.stretch
            .store(s.clamp(1.0, MAX_STRETCH).to_bits(), Ordering::Relaxed);
    }

    /// A camera's handle; `interval_s` is its sampling interval (1 / analysis_fps).
    pub fn camera(self: &Arc<Self>, interval_s: f64) -> Arc<CameraShed> {
        self.cameras.fetch_add(1, Ordering::Relaxed);
        Arc::new(CameraShed {
            shedder: self.clone(),
            interval_s: interval_s.max(1e-3),
            credit: Mutex::new(0.0),
            favoured: AtomicBool::new(false),
            shed: AtomicU64::new(0),
            kept: AtomicU64::new(0),
        })
    }

    /// One analysed frame's wait, as a share of its camera's sampling interval.
    fn report(&self, late: f64) {
        let window_len = self.cameras.load(Ordering::Relaxed).clamp(MIN_WINDOW, 256);
        let mut w = self.window.lock();
        w.waits.push(late);
        if w.waits.len() < window_len {
            return;
        }
        w.waits.sort_by(f64::total_cmp);
        let p90 = w.waits[(w.waits.len() * 9 / 10).min(w.waits.len() - 1)];
        w.waits.clear();
        // A backlog that is already draining needs no more shedding: growing on it would
        // wind the stretch up while the queues empty.
        let rising = p90 >= 0.9 * w.last;
        w.last = p90;
        drop(w);
        let s = self.stretch();
        if p90 > LATE && rising {
            self.set_stretch(s * GROW);
        } else if p90 < EARLY {
            // Waits that are not a backlog shorten as the stretch grows: halfway (in ratio)
            // to where they would meet EARLY, at least SHRINK, at most FAST_SHRINK.
            let f = (p90 / EARLY).max(1e-6).sqrt();
            self.set_stretch(s * f.clamp(1.0 / FAST_SHRINK, 1.0 / SHRINK));
        }
    }
}

#[derive(Debug, Default)]
struct Window {
    waits: Vec<f64>,
    /// The last window's 90th percentile.
    last: f64,
}

/// One live camera's part of the shedding: asked by its sampler, told by its analysis.
#[derive(Debug)]
pub struct CameraShed {
    shedder: Arc<Shedder>,
    interval_s: f64,
    credit: Mutex<f64>,
    favoured: AtomicBool,
    shed: AtomicU64,
    kept: AtomicU64,
}

impl Drop for CameraShed {
    fn drop(&mut self) {
        self.shedder.cameras.fetch_sub(1, Ordering::Relaxed);
    }
}

impl CameraShed {
    /// This camera's stretch: the global one, halfway back to 1 while it is favoured.
    pub fn stretch(&self) -> f64 {
        let s = self.shedder.stretch();
        if self.favoured.load(Ordering::Relaxed) {
            1.0 + (s - 1.0) / 2.0
        } else {
            s
        }
    }

    /// A frame is due on the camera's grid: whether to keep it (else it is shed and
    /// counted).
    pub fn admit(&self) -> bool {
        let s = self.stretch();
        let mut credit = self.credit.lock();
        *credit += 1.0 / s;
        let keep = *credit >= 1.0 - 1e-9;
        if keep {
            *credit -= 1.0;
        }
        // The credit never holds a whole frame over: a lower stretch later brings no burst.
        *credit = credit.min(1.0);
        drop(credit);
        if keep {
            self.kept.fetch_add(1, Ordering::Relaxed);
        } else {
            self.shed.fetch_add(1, Ordering::Relaxed);
        }
        keep
    }

    /// Due frames shed so far.
    pub fn shed(&self) -> u64 {
        self.shed.load(Ordering::Relaxed)
    }

    /// Due frames kept so far.
    pub fn kept(&self) -> u64 {
        self.kept.load(Ordering::Relaxed)
    }

    /// Whether the camera is shedding now: analysis is behind and its frames are thinned.
    pub fn degraded(&self) -> bool {
        self.stretch() > 1.0 + 1e-6
    }

    /// A camera with a dwell running (an open episode in a rule zone) sheds half as much.
    pub fn set_favoured(&self, favoured: bool) {
        self.favoured.store(favoured, Ordering::Relaxed);
    }

    /// A frame's analysis ended `waited_s` after the frame reached the application.
    pub fn analysed(&self, waited_s: f64) {
        self.shedder.report(waited_s.max(0.0) / self.interval_s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One window's worth of reports, each `late` intervals late.
    fn window(cams: &[Arc<CameraShed>], late: f64) {
        for _ in 0..MIN_WINDOW.max(cams.len()) {
            cams[0].analysed(late * cams[0].interval_s);
        }
    }

    #[test]
    fn the_stretch_grows_when_late_holds_in_between_and_returns_to_one() {
        let s = Shedder::new();
        let cams: Vec<_> = (0..4).map(|_| s.camera(5.0)).collect();
        assert_eq!(s.stretch(), 1.0);
        window(&cams, 3.5);
        assert!((s.stretch() - GROW).abs() < 1e-9);
        window(&cams, 3.5);
        assert!((s.stretch() - GROW * GROW).abs() < 1e-9);
        window(&cams, 2.0);
        assert!((s.stretch() - GROW * GROW).abs() < 1e-9, "held");
        for _ in 0..100 {
            window(&cams, 0.5);
        }
        assert_eq!(s.stretch(), 1.0);
        for _ in 0..100 {
            window(&cams, 5.0);
        }
        assert_eq!(s.stretch(), MAX_STRETCH);
        assert!(cams.iter().all(|c| c.degraded()));
    }

    #[test]
    fn every_camera_keeps_the_same_share_evenly_spaced_and_none_starves() {
        let s = Shedder::new();
        s.set_stretch(1.5);
        let cams: Vec<_> = (0..10).map(|_| s.camera(5.0)).collect();
        let mut kept = vec![Vec::new(); cams.len()];
        for t in 0..300 {
            for (i, c) in cams.iter().enumerate() {
                if c.admit() {
                    kept[i].push(t);
                }
            }
        }
        for (i, k) in kept.iter().enumerate() {
            assert_eq!(k.len(), 200, "camera {i}");
            // Never more than two due frames in a row shed.
            assert!(k.windows(2).all(|w| w[1] - w[0] <= 2), "camera {i}: {k:?}");
            assert_eq!(cams[i].shed(), 100);
        }
    }

    #[test]
    fn a_favoured_camera_sheds_half_as_much_and_nothing_is_shed_at_stretch_one() {
        let s = Shedder::new();
        let (a, b) = (s.camera(1.0), s.camera(1.0));
        for _ in 0..100 {
            assert!(a.admit() && b.admit());
        }
        assert!(!a.degraded());
        s.set_stretch(3.0);
        b.set_favoured(true);
        let (mut ka, mut kb) = (0, 0);
        for _ in 0..600 {
            ka += a.admit() as u32;
            kb += b.admit() as u32;
        }
        assert_eq!(ka, 200);
        assert_eq!(kb, 300);
    }

    #[test]
    fn a_backlog_that_is_draining_holds_the_stretch_instead_of_winding_it_up() {
        let s = Shedder::new();
        let cams: Vec<_> = (0..2).map(|_| s.camera(1.0)).collect();
        // Late and getting later: grows.
        for wait in [5.0, 6.0] {
            for _ in 0..MIN_WINDOW {
                cams[0].analysed(wait);
            }
        }
        let grown = s.stretch();
        assert!((grown - GROW * GROW).abs() < 1e-9, "{grown}");
        // Still late, but each window's waits a fifth shorter: the queues drain, it holds.
        for wait in [5.2, 4.5, 3.8] {
            for _ in 0..MIN_WINDOW {
                cams[0].analysed(wait);
            }
        }
        assert_eq!(s.stretch(), grown);
    }

    #[test]
    fn a_dropped_camera_leaves_the_window_size() {
        let s = Shedder::new();
        let cams: Vec<_> = (0..20).map(|_| s.camera(1.0)).collect();
        assert_eq!(s.cameras.load(Ordering::Relaxed), 20);
        drop(cams);
        assert_eq!(s.cameras.load(Ordering::Relaxed), 0);
    }
}
