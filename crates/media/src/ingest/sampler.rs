//! Per-camera sampling inside the GStreamer pipeline.
//!
//! Two pad probes consult one [`Sampler`]:
//! - before the decoder ([`Sampler::on_encoded`]): in keyframe-only mode, delta frames and the
//!   keyframes that are not due are dropped there, so they are never decoded;
//! - after the decoder ([`Sampler::on_decoded`]): in full-decode mode, frames that are not due
//!   are dropped there, before scaling and colour conversion.
//!
//! A frame is due on a fixed grid of `1 / analysis_fps` in stream time, so the delivered rate
//! matches the configured one on average, whatever the stream's frame rate.
//!
//! A session starts at a keyframe: a camera that joins a stream between keyframes (any
//! second camera on a shared stream, every reconnect) gets delta frames whose reference
//! pictures it never had, and a decoder turns them into grey or smeared pictures. Those
//! never reach analysis, where they would become a view reference, a "cleared" place or a
//! false detection: the pre-decoder probe drops every delta frame before the session's
//! first keyframe. A stream that sends no keyframe for [`KEYFRAME_WAIT`] of stream time (or
//! [`KEYFRAME_WAIT_FRAMES`] frames without timestamps; periodic intra refresh, say) is let
//! through as it is, with a warning, rather than never seen.

use std::collections::VecDeque;

use crate::config::KeyframeMode;

/// Nanoseconds of stream time.
pub type Nanos = u64;

/// Stream time a session waits for its first keyframe before it lets delta frames through.
pub const KEYFRAME_WAIT: Nanos = 20_000_000_000;
/// Frames without timestamps a session waits for its first keyframe.
pub const KEYFRAME_WAIT_FRAMES: u64 = 600;

#[derive(Debug)]
pub struct Sampler {
    interval: Nanos,
    slack: Nanos,
    mode: KeyframeMode,
    next_due: Option<Nanos>,
    last_keyframe: Option<Nanos>,
    /// Measured distance between the last two keyframes.
    keyframe_interval: Option<Nanos>,
    /// Whether keyframe-only decoding is in force (decided at each keyframe).
    keyframe_only: bool,
    /// Keyframes let through by the pre-decoder probe, already sampled: the post-decoder
    /// probe lets them pass.
    presampled: VecDeque<Nanos>,
    /// Fair shedding under overload (live cameras); None: every due frame is kept.
    shed: Option<std::sync::Arc<super::shed::CameraShed>>,
    /// A due slot came without room for its frame: the next frame that finds room is kept.
    waiting_for_room: bool,
    /// Until the session's first keyframe (or the wait runs out): the stream time of its
    /// first frame, if it had one.
    awaiting_keyframe: Option<Option<Nanos>>,
    pub stats: SamplerStats,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SamplerStats {
    /// Encoded frames dropped before the decoder.
    pub skipped_before_decode: u64,
    /// Decoded frames dropped before scaling and conversion.
    pub skipped_after_decode: u64,
    /// Frames let through to the application.
    pub passed: u64,
    /// Of the skipped: due frames shed because analysis was behind.
    pub shed: u64,
    /// Of the skipped: delta frames before the session's first keyframe (undecodable).
    pub before_keyframe: u64,
    /// The session gave up waiting for a keyframe and let delta frames through.
    pub keyframe_wait_expired: bool,
}

impl Sampler {
    pub fn new(analysis_fps: f64, mode: KeyframeMode) -> Self {
        let interval = (1e9 / analysis_fps).round() as Nanos;
        Self {
            interval,
            // Tolerates timestamp rounding (RTP clocks, container timebases) without
            // picking a frame that is a whole frame early: 10% of the interval, at most 5 ms.
            slack: (interval / 10).min(5_000_000),
            mode,
            next_due: None,
            last_keyframe: None,
            keyframe_interval: None,
            keyframe_only: mode == KeyframeMode::On,
            presampled: VecDeque::new(),
            shed: None,
            waiting_for_room: false,
            awaiting_keyframe: Some(None),
            stats: SamplerStats::default(),
        }
    }

    /// Sheds due frames as `shed` says while analysis is behind.
    pub fn set_shed(&mut self, shed: Option<std::sync::Arc<super::shed::CameraShed>>) {
        self.shed = shed;
    }

    /// Whether the frame at `pts` is kept: a frame due on the grid, unless its camera has no
    /// room for it (shedding); or, while an earlier due slot waits for room, the first
    /// frame that finds it, from which the grid moves on.
    fn sample(&mut self, pts: Nanos) -> bool {
        if self.due(pts) {
            let Some(s) = &self.shed else {
                return true;
            };
            if self.waiting_for_room {
                // The previous slot passed without a frame.
                self.stats.shed += 1;
                s.missed();
            }
            self.waiting_for_room = !s.due();
            return !self.waiting_for_room;
        }
        match &self.shed {
            Some(s) if self.waiting_for_room && s.late() => {
                self.waiting_for_room = false;
                self.next_due = Some(pts + self.interval);
                true
            }
            _ => false,
        }
    }

    pub fn keyframe_only(&self) -> bool {
        self.keyframe_only
    }

    pub fn keyframe_interval(&self) -> Option<Nanos> {
        self.keyframe_interval
    }

    /// Whether the session is still waiting for its first keyframe after this frame: a
    /// delta frame then is dropped.
    fn awaits_keyframe(&mut self, pts: Option<Nanos>, is_keyframe: bool) -> bool {
        let Some(first) = self.awaiting_keyframe else {
            return false;
        };
        if is_keyframe {
            self.awaiting_keyframe = None;
            return false;
        }
        let first = *self.awaiting_keyframe.insert(first.or(pts));
        let waited_out = match (first, pts) {
            (Some(f), Some(p)) => p.saturating_sub(f) >= KEYFRAME_WAIT,
            _ => self.stats.before_keyframe >= KEYFRAME_WAIT_FRAMES,
        };
        if waited_out {
            tracing::warn!(
                dropped = self.stats.before_keyframe,
                "no keyframe yet in this session: delta frames go to the decoder anyway (its first pictures may be smeared)"
            );
            self.awaiting_keyframe = None;
            self.stats.keyframe_wait_expired = true;
            return false;
        }
        self.stats.before_keyframe += 1;
        self.stats.skipped_before_decode += 1;
        true
    }

    /// Decides whether an encoded frame goes to the decoder.
    pub fn on_encoded(&mut self, pts: Option<Nanos>, is_keyframe: bool) -> bool {
        if self.awaits_keyframe(pts, is_keyframe) {
            return false;
        }
        if is_keyframe {
            if let (Some(p), Some(last)) = (pts, self.last_keyframe)
                && p > last
            {
                self.keyframe_interval = Some(p - last);
            }
            if pts.is_some() {
                self.last_keyframe = pts;
            }
            self.keyframe_only = match self.mode {
                KeyframeMode::On => true,
                KeyframeMode::Off => false,
                // Keyframes alone are enough when they come at least as often as analysis
                // needs frames.
                KeyframeMode::Auto => self
                    .keyframe_interval
                    .is_some_and(|k| k <= self.interval + self.slack),
            };
        }
        if !self.keyframe_only {
            return true;
        }
        if !is_keyframe {
            self.stats.skipped_before_decode += 1;
            return false;
        }
        let Some(p) = pts else {
            return true;
        };
        if self.sample(p) {
            self.presampled.push_back(p);
            if self.presampled.len() > 64 {
                self.presampled.pop_front();
            }
            true
        } else {
            self.stats.skipped_before_decode += 1;
            false
        }
    }

    /// Decides whether a decoded frame goes on to scaling, conversion and the application.
    pub fn on_decoded(&mut self, pts: Option<Nanos>) -> bool {
        let Some(p) = pts else {
            self.stats.passed += 1;
            return true;
        };
        if let Some(i) = self.presampled.iter().position(|&q| q == p) {
            self.presampled.drain(..=i);
            self.stats.passed += 1;
            return true;
        }
        if self.sample(p) {
            self.stats.passed += 1;
            true
        } else {
            self.stats.skipped_after_decode += 1;
            false
        }
    }

    fn due(&mut self, pts: Nanos) -> bool {
        match self.next_due {
            None => {
                self.next_due = Some(pts + self.interval);
                true
            }
            Some(due) if pts + self.slack >= due => {
                // Stay on the grid, unless the stream jumped ahead (a gap): restart from here.
                let next = due + self.interval;
                self.next_due = Some(if next + self.slack <= pts {
                    pts + self.interval
                } else {
                    next
                });
                true
            }
            Some(due) if due > pts + 2 * self.interval => {
                // Time went backwards (a new stream): start a new grid.
                self.next_due = Some(pts + self.interval);
                true
            }
            Some(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Nanos = 1_000_000;

    /// Feeds a stream of `n` frames at `fps` with a keyframe every `gop` frames; returns the
    /// pts (ms) of the frames that reach the application and how many were decoded.
    fn run(sampler: &mut Sampler, n: u64, fps: u64, gop: u64) -> (Vec<u64>, u64) {
        let mut out = Vec::new();
        let mut decoded = 0;
        for i in 0..n {
            let pts = i * 1000 / fps * MS;
            if sampler.on_encoded(Some(pts), i % gop == 0) {
                decoded += 1;
                if sampler.on_decoded(Some(pts)) {
                    out.push(pts / MS);
                }
            }
        }
        (out, decoded)
    }

    #[test]
    fn a_session_that_joins_between_keyframes_starts_at_the_first_keyframe() {
        // 10 fps, a keyframe every 10 frames, joined 4 frames into a group: the 6 delta
        // frames before the next keyframe cannot be decoded and are never decoded.
        for mode in [KeyframeMode::Off, KeyframeMode::Auto, KeyframeMode::On] {
            let mut s = Sampler::new(10.0, mode);
            let mut first = None;
            for i in 4..40u64 {
                let pts = i * 100 * MS;
                if s.on_encoded(Some(pts), i % 10 == 0) && s.on_decoded(Some(pts)) {
                    first.get_or_insert(i);
                }
            }
            assert_eq!(first, Some(10), "{mode:?}");
            assert_eq!(s.stats.before_keyframe, 6, "{mode:?}");
            assert!(!s.stats.keyframe_wait_expired);
        }
    }

    #[test]
    fn a_stream_without_keyframes_is_let_through_after_the_wait() {
        // Periodic intra refresh: no frame is a keyframe. After 20 s of stream time the
        // frames go to the decoder rather than never.
        let mut s = Sampler::new(1.0, KeyframeMode::Off);
        let mut passed = Vec::new();
        for i in 0..300u64 {
            let pts = i * 100 * MS;
            if s.on_encoded(Some(pts), false) && s.on_decoded(Some(pts)) {
                passed.push(pts / MS);
            }
        }
        assert!(s.stats.keyframe_wait_expired);
        assert_eq!(s.stats.before_keyframe, 200);
        assert_eq!(passed.first(), Some(&20_000));
        // Without timestamps, a frame count bounds the wait.
        let mut s = Sampler::new(1.0, KeyframeMode::Off);
        let passed = (0..KEYFRAME_WAIT_FRAMES + 5)
            .filter(|_| s.on_encoded(None, false))
            .count();
        assert_eq!(passed, 5);
    }

    #[test]
    fn full_decode_samples_at_the_configured_rate() {
        // 25 fps for 10 s, analysed at 2 fps, keyframes every 2 s: no keyframe mode in auto.
        let mut s = Sampler::new(2.0, KeyframeMode::Auto);
        let (out, decoded) = run(&mut s, 250, 25, 50);
        assert!(!s.keyframe_only());
        assert_eq!(decoded, 250);
        assert_eq!(out.len(), 20);
        assert_eq!(&out[..4], &[0, 520, 1000, 1520]);
    }

    #[test]
    fn auto_switches_to_keyframes_once_the_gop_is_known() {
        // 25 fps, keyframe every second, analysed at 0.5 fps.
        let mut s = Sampler::new(0.5, KeyframeMode::Auto);
        let (out, decoded) = run(&mut s, 25 * 20, 25, 25);
        assert!(s.keyframe_only());
        assert_eq!(s.keyframe_interval(), Some(1000 * MS));
        assert_eq!(
            out,
            vec![0, 2000, 4000, 6000, 8000, 10000, 12000, 14000, 16000, 18000]
        );
        // The first GOP is decoded in full while the keyframe interval is measured; after
        // that only the due keyframes.
        assert_eq!(decoded, 25 + 9);
    }

    #[test]
    fn forced_keyframe_mode_decodes_only_keyframes() {
        let mut s = Sampler::new(10.0, KeyframeMode::On);
        let (out, decoded) = run(&mut s, 100, 10, 10);
        assert_eq!(decoded, 10);
        assert_eq!(out, (0..10).map(|i| i * 1000).collect::<Vec<_>>());
    }

    #[test]
    fn forced_off_never_skips_before_the_decoder() {
        let mut s = Sampler::new(1.0 / 60.0, KeyframeMode::Off);
        let (out, decoded) = run(&mut s, 25 * 130, 25, 25);
        assert_eq!(decoded, 25 * 130);
        assert_eq!(out, vec![0, 60_000, 120_000]);
    }

    #[test]
    fn a_camera_without_room_skips_its_due_keyframe_undecoded_and_takes_the_next_with_room() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let cam = crate::ingest::shed::CameraShed::new();
        let waiting = std::sync::Arc::new(AtomicUsize::new(0));
        let w = waiting.clone();
        cam.watch(Box::new(move || w.load(Ordering::Relaxed)), 4);
        // A keyframe every second, analysed every 2 s.
        let mut s = Sampler::new(0.5, KeyframeMode::On);
        s.set_shed(Some(cam.clone()));
        let feed = |s: &mut Sampler, sec: u64| {
            let pts = sec * 1000 * MS;
            s.on_encoded(Some(pts), true) && s.on_decoded(Some(pts))
        };
        assert!(feed(&mut s, 0));
        assert!(!feed(&mut s, 1), "not due");
        waiting.store(1, Ordering::Relaxed);
        assert!(!feed(&mut s, 2), "due, but a frame still waits");
        assert!(cam.degraded());
        assert!(!feed(&mut s, 3), "still no room");
        waiting.store(0, Ordering::Relaxed);
        assert!(feed(&mut s, 4), "the next slot, with room");
        assert_eq!(s.stats.shed, 1, "the slot at 2 s passed without a frame");
        waiting.store(1, Ordering::Relaxed);
        assert!(!feed(&mut s, 6));
        waiting.store(0, Ordering::Relaxed);
        assert!(feed(&mut s, 7), "late, as soon as there is room");
        assert!(!feed(&mut s, 8), "the grid moved on from 7 s");
        assert!(feed(&mut s, 9));
        assert_eq!(s.stats.shed, 1);
        assert_eq!(cam.shed(), 1);
        // Shed and skipped keyframes were never decoded: only the kept ones reached it.
        assert_eq!(s.stats.passed, 4);
        assert_eq!(s.stats.skipped_before_decode, 5);
    }

    #[test]
    fn a_gap_restarts_the_grid_and_a_reset_stream_is_followed() {
        let mut s = Sampler::new(1.0, KeyframeMode::Off);
        assert!(s.on_decoded(Some(0)));
        assert!(!s.on_decoded(Some(500 * MS)));
        assert!(s.on_decoded(Some(10_000 * MS)));
        assert!(!s.on_decoded(Some(10_500 * MS)));
        assert!(s.on_decoded(Some(11_000 * MS)));
        // Timestamps start again from zero (a reconnect or a new loop).
        assert!(s.on_decoded(Some(0)));
        assert!(s.on_decoded(Some(1_000 * MS)));
    }
}
