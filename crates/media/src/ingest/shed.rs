//! Fair shedding when analysis cannot keep up with every live camera.
//!
//! Each live camera admits a due frame only while it has room: fewer than
//! [`WAITING_LIMIT`] of its frames wait in its queue for analysis (one more frame may be in
//! analysis already). A camera whose previous frame still waits skips its due frame before
//! the frame is decoded (keyframe-only decoding) or before it is scaled and converted (full
//! decoding), and takes the next frame that comes once its queue has room, so it loses no
//! more of its schedule than it must. The grid moves on from the frame it took.
//!
//! Why this is fair and keeps analysis busy:
//! - every camera holds at most two frames in the system, and the detector serves frames in
//!   the order they come (one FIFO queue for every camera), so under overload the cameras
//!   take turns, round robin, and each gets the same share of the detector;
//! - a camera sheds only while its own earlier frame waits, so the detector has work
//!   whenever anything is shed: shedding never leaves analysis idle;
//! - no frame is decoded and then dropped from a full queue.
//!
//! A camera with an open episode in one of its rule zones (a dwell running) is favoured:
//! it may keep one more frame waiting, so it sheds less. None starves: every camera's frame
//! gets its turn in the queue.
//!
//! Each due slot of the grid that passes without a frame kept counts as one frame shed.
//! A camera that had to skip any of its last [`DEGRADED_SLOTS`] due slots is shown
//! `degraded`. Recorded files are never shed: they play as fast as analysis takes them.

use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

/// A camera admits a due frame while fewer of its frames than this wait for analysis.
pub const WAITING_LIMIT: usize = 1;
/// The same for a favoured camera (a dwell running).
pub const FAVOURED_WAITING_LIMIT: usize = 2;
/// A camera is degraded while any of its last this many due slots had to be skipped.
pub const DEGRADED_SLOTS: u32 = 8;

/// How many of a camera's frames wait in its queue now.
pub type Waiting = Box<dyn Fn() -> usize + Send + Sync>;

/// One live camera's part of the shedding: asked by its sampler, told by its analysis.
#[derive(Default)]
pub struct CameraShed {
    /// The queue's depth now, and how many frames it holds at most.
    waiting: Mutex<Option<(Waiting, usize)>>,
    favoured: AtomicBool,
    /// The last due slots, newest in bit 0: 1 where the slot came without room.
    slots: AtomicU32,
    shed: AtomicU64,
    kept: AtomicU64,
}

impl std::fmt::Debug for CameraShed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CameraShed")
            .field("shed", &self.shed())
            .field("kept", &self.kept())
            .field("degraded", &self.degraded())
            .finish()
    }
}

impl CameraShed {
    /// A live camera's part in the shedding.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Tells the camera how to count its frames waiting for analysis (its queue's depth)
    /// and how many its queue holds. Until then it always has room.
    pub fn watch(&self, waiting: Waiting, capacity: usize) {
        *self.waiting.lock() = Some((waiting, capacity));
    }

    /// Whether the camera may send a frame to analysis now.
    fn room(&self) -> bool {
        let limit = if self.favoured.load(Ordering::Relaxed) {
            FAVOURED_WAITING_LIMIT
        } else {
            WAITING_LIMIT
        };
        // Never more than the queue holds: a frame admitted to a full queue would push out
        // one already decoded (a favoured camera with `queue_frames = 1`).
        self.waiting
            .lock()
            .as_ref()
            .is_none_or(|(w, capacity)| w() < limit.min(*capacity))
    }

    /// A due slot of the camera's grid has come: whether to keep its frame. A slot without
    /// room leaves the camera waiting for room ([`CameraShed::late`]).
    pub fn due(&self) -> bool {
        let room = self.room();
        let _ = self
            .slots
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| {
                Some((s << 1) | u32::from(!room))
            });
        if room {
            self.kept.fetch_add(1, Ordering::Relaxed);
        }
        room
    }

    /// A frame between due slots, while the camera waits for room: whether to keep it.
    pub fn late(&self) -> bool {
        let room = self.room();
        if room {
            self.kept.fetch_add(1, Ordering::Relaxed);
        }
        room
    }

    /// A due slot passed without a frame kept.
    pub fn missed(&self) {
        self.shed.fetch_add(1, Ordering::Relaxed);
    }

    /// Due slots shed so far.
    pub fn shed(&self) -> u64 {
        self.shed.load(Ordering::Relaxed)
    }

    /// Frames kept so far.
    pub fn kept(&self) -> u64 {
        self.kept.load(Ordering::Relaxed)
    }

    /// Whether the camera is shedding now: one of its recent due slots came without room.
    pub fn degraded(&self) -> bool {
        self.slots.load(Ordering::Relaxed) & ((1 << DEGRADED_SLOTS) - 1) != 0
    }

    /// A camera with a dwell running (an open episode in a rule zone) may keep one more
    /// frame waiting.
    pub fn set_favoured(&self, favoured: bool) {
        self.favoured.store(favoured, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// A camera whose queue holds `capacity` frames, and the depth it reads.
    fn watched_with(capacity: usize) -> (Arc<CameraShed>, Arc<AtomicUsize>) {
        let cam = CameraShed::new();
        let depth = Arc::new(AtomicUsize::new(0));
        let d = depth.clone();
        cam.watch(Box::new(move || d.load(Ordering::Relaxed)), capacity);
        (cam, depth)
    }

    fn watched() -> (Arc<CameraShed>, Arc<AtomicUsize>) {
        watched_with(4)
    }

    #[test]
    fn a_camera_keeps_its_due_frames_while_nothing_waits_and_skips_them_while_one_does() {
        let (cam, depth) = watched();
        for _ in 0..20 {
            assert!(cam.due());
        }
        assert!(!cam.degraded());
        depth.store(1, Ordering::Relaxed);
        assert!(!cam.due());
        assert!(!cam.late());
        assert!(cam.degraded());
        depth.store(0, Ordering::Relaxed);
        assert!(cam.late(), "the next frame once there is room");
        assert_eq!(cam.kept(), 21);
        // Degraded until DEGRADED_SLOTS due slots in a row had room.
        for i in 0..DEGRADED_SLOTS {
            assert!(cam.degraded(), "slot {i}");
            assert!(cam.due());
        }
        assert!(!cam.degraded());
    }

    #[test]
    fn a_favoured_camera_may_keep_one_more_frame_waiting() {
        let (a, da) = watched();
        let (b, db) = watched();
        b.set_favoured(true);
        da.store(1, Ordering::Relaxed);
        db.store(1, Ordering::Relaxed);
        assert!(!a.due());
        assert!(b.due());
        db.store(2, Ordering::Relaxed);
        assert!(!b.due());
        // Never past a full queue: with room for one frame, favour cannot push one out.
        let (c, dc) = watched_with(1);
        c.set_favoured(true);
        assert!(c.due());
        dc.store(1, Ordering::Relaxed);
        assert!(!c.due() && !c.late());
    }

    #[test]
    fn a_camera_without_a_queue_to_watch_always_has_room() {
        let cam = CameraShed::new();
        assert!(cam.due() && cam.late());
        let (other, depth) = watched();
        depth.store(5, Ordering::Relaxed);
        assert!(!other.due());
        assert!(other.degraded() && !cam.degraded());
    }
}
