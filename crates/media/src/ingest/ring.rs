//! A per-camera ring buffer of the encoded stream, for evidence clips.
//!
//! The ingest pipeline's pre-decoder probe pushes every encoded packet here, before the
//! sampler drops the ones analysis skips, so a clip has the whole stream even when only
//! keyframes are decoded. Packets are GStreamer buffers: keeping one is a reference count,
//! never a copy. The ring keeps `keep` of stream time (trimmed a whole GOP at a time, so it
//! always starts at a keyframe) and at most `max_bytes`.

use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use gstreamer as gst;
use tokio::sync::watch;

/// One encoded packet, on the camera's stream timeline (loop offsets included).
#[derive(Debug, Clone)]
pub struct Packet {
    pub pts: u64,
    pub dts: Option<u64>,
    pub key: bool,
    pub buffer: gst::Buffer,
    pub caps: gst::Caps,
}

impl Packet {
    /// Decode-order time.
    fn order(&self) -> u64 {
        self.dts.unwrap_or(self.pts)
    }
}

/// How far the ring has got: what clip cutters wait on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// The latest presentation time seen, in nanoseconds.
    pub newest: Option<u64>,
    /// Bumped whenever the timeline restarts (a reconnect); older cut requests are void.
    pub generation: u64,
    /// The camera stopped: nothing more will come.
    pub ended: bool,
}

struct Inner {
    packets: VecDeque<Packet>,
    bytes: usize,
    caps: Option<gst::Caps>,
}

/// The shared handle: the camera thread writes, the evidence stage cuts.
#[derive(Clone)]
pub struct PacketRing {
    inner: Arc<Mutex<Inner>>,
    progress: Arc<watch::Sender<Progress>>,
    keep_ns: u64,
    max_bytes: usize,
}

impl std::fmt::Debug for PacketRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PacketRing")
            .field("progress", &*self.progress.borrow())
            .finish()
    }
}

impl PacketRing {
    pub fn new(keep: Duration, max_bytes: usize) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                packets: VecDeque::new(),
                bytes: 0,
                caps: None,
            })),
            progress: Arc::new(watch::channel(Progress::default()).0),
            keep_ns: keep.as_nanos() as u64,
            max_bytes,
        }
    }

    pub fn progress(&self) -> Progress {
        *self.progress.borrow()
    }

    /// The caps of the packets that follow (set when the decoder's input is negotiated).
    pub fn set_caps(&self, caps: gst::Caps) {
        self.inner.lock().caps = Some(caps);
    }

    /// Records one encoded buffer, shifted by `offset` (a looped file's earlier passes).
    pub fn push(&self, buffer: &gst::Buffer, offset: Duration) {
        let off = offset.as_nanos() as u64;
        let Some(pts) = buffer.pts().or(buffer.dts()).map(|t| t.nseconds() + off) else {
            return;
        };
        let dts = buffer.dts().map(|t| t.nseconds() + off);
        let key = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
        let mut g = self.inner.lock();
        let Some(caps) = g.caps.clone() else {
            return;
        };
        let mut progress = *self.progress.borrow();
        // A timeline that jumps back (a reconnect) starts a new generation.
        if progress.newest.is_some_and(|n| pts + 1_000_000_000 < n) {
            g.packets.clear();
            g.bytes = 0;
            progress.generation += 1;
            progress.newest = None;
        }
        // Never start the ring mid-GOP.
        if g.packets.is_empty() && !key {
            return;
        }
        g.bytes += buffer.size();
        g.packets.push_back(Packet {
            pts,
            dts,
            key,
            buffer: buffer.clone(),
            caps,
        });
        let newest = progress.newest.map_or(pts, |n| n.max(pts));
        progress.newest = Some(newest);
        // Drop whole GOPs from the front while the next GOP still covers `keep`, or while
        // over the byte budget (keeping at least the newest GOP).
        loop {
            let next_key = g.packets.iter().skip(1).position(|p| p.key).map(|i| i + 1);
            let Some(k) = next_key else { break };
            let old_enough = g.packets[k].pts + self.keep_ns <= newest;
            if !(old_enough || g.bytes > self.max_bytes) {
                break;
            }
            let freed: usize = g.packets.drain(..k).map(|p| p.buffer.size()).sum();
            g.bytes -= freed;
        }
        drop(g);
        self.progress.send_replace(progress);
    }

    /// The camera stopped for good: waiting cutters take what there is.
    pub fn end(&self) {
        self.progress.send_modify(|p| p.ended = true);
    }

    /// Packets from the last keyframe at or before `from` up to `to` (nanoseconds, stream
    /// time), in decode order, all of one caps. Empty when the ring no longer reaches back.
    pub fn cut(&self, from: u64, to: u64) -> Vec<Packet> {
        let g = self.inner.lock();
        let start = g
            .packets
            .iter()
            .rposition(|p| p.key && p.pts <= from)
            .or_else(|| g.packets.iter().position(|p| p.key && p.pts <= to));
        let Some(start) = start else {
            return Vec::new();
        };
        let caps = g.packets[start].caps.clone();
        g.packets
            .iter()
            .skip(start)
            .take_while(|p| p.order() <= to && p.caps == caps)
            .cloned()
            .collect()
    }

    /// Waits until the ring has reached `until` (ns), the camera ended, the timeline restarted,
    /// or `timeout` passed. Returns the progress it stopped at.
    pub async fn reached(&self, until: u64, generation: u64, timeout: Duration) -> Progress {
        let mut rx = self.progress.subscribe();
        let wait = rx.wait_for(|p| {
            p.ended || p.generation != generation || p.newest.is_some_and(|n| n >= until)
        });
        match tokio::time::timeout(timeout, wait).await {
            Ok(Ok(p)) => *p,
            _ => self.progress(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buf(pts_ms: u64, key: bool, size: usize) -> gst::Buffer {
        let mut b = gst::Buffer::with_size(size).unwrap();
        {
            let b = b.get_mut().unwrap();
            b.set_pts(gst::ClockTime::from_mseconds(pts_ms));
            b.set_dts(gst::ClockTime::from_mseconds(pts_ms));
            if !key {
                b.set_flags(gst::BufferFlags::DELTA_UNIT);
            }
        }
        b
    }

    fn ring(keep_s: u64, max_bytes: usize) -> PacketRing {
        gst::init().unwrap();
        let r = PacketRing::new(Duration::from_secs(keep_s), max_bytes);
        r.set_caps(gst::Caps::builder("video/x-h264").build());
        r
    }

    /// 10 fps, a keyframe every second.
    fn feed(r: &PacketRing, from_ms: u64, to_ms: u64, offset: Duration) {
        for t in (from_ms..to_ms).step_by(100) {
            r.push(&buf(t, t % 1000 == 0, 100), offset);
        }
    }

    #[test]
    fn keeps_whole_gops_covering_the_window() {
        let r = ring(5, usize::MAX);
        feed(&r, 0, 20_000, Duration::ZERO);
        let g = r.inner.lock();
        assert!(g.packets.front().unwrap().key);
        let first = g.packets.front().unwrap().pts;
        assert_eq!(
            first, 14_000_000_000,
            "the newest is 19.9 s: keep from 14 s"
        );
        assert_eq!(r.progress().newest, Some(19_900_000_000));
    }

    #[test]
    fn cut_starts_at_a_keyframe_and_stops_at_the_end_time() {
        let r = ring(30, usize::MAX);
        feed(&r, 0, 20_000, Duration::ZERO);
        let c = r.cut(3_500_000_000, 8_000_000_000);
        assert!(c[0].key);
        assert_eq!(c[0].pts, 3_000_000_000);
        assert_eq!(c.last().unwrap().pts, 8_000_000_000);
        assert_eq!(c.len(), 51);
    }

    #[test]
    fn never_starts_mid_gop_and_honours_the_byte_budget() {
        let r = ring(60, 2_500);
        feed(&r, 500, 5_000, Duration::ZERO);
        let g = r.inner.lock();
        assert!(g.packets.front().unwrap().key);
        assert!(g.bytes <= 2_500 || g.packets.iter().filter(|p| p.key).count() == 1);
    }

    #[test]
    fn a_timeline_that_restarts_is_a_new_generation_and_loops_continue() {
        let r = ring(30, usize::MAX);
        feed(&r, 0, 3_000, Duration::ZERO);
        feed(&r, 0, 3_000, Duration::from_secs(3));
        assert_eq!(
            r.progress().generation,
            0,
            "a looped file continues the timeline"
        );
        assert_eq!(r.progress().newest, Some(5_900_000_000));
        feed(&r, 0, 1_000, Duration::ZERO);
        assert_eq!(r.progress().generation, 1);
        assert!(r.cut(0, 10_000_000_000).len() <= 10);
    }

    #[tokio::test]
    async fn waiters_wake_when_the_ring_reaches_their_time_or_the_camera_ends() {
        let r = ring(30, usize::MAX);
        let w = {
            let r = r.clone();
            tokio::spawn(async move { r.reached(2_000_000_000, 0, Duration::from_secs(60)).await })
        };
        let r2 = r.clone();
        std::thread::spawn(move || feed(&r2, 0, 2_500, Duration::ZERO))
            .join()
            .unwrap();
        assert!(w.await.unwrap().newest.unwrap() >= 2_000_000_000);
        let w = {
            let r = r.clone();
            tokio::spawn(async move { r.reached(u64::MAX, 0, Duration::from_secs(60)).await })
        };
        r.end();
        assert!(w.await.unwrap().ended);
    }
}
