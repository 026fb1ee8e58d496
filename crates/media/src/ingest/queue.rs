//! The bounded hand-off between a camera thread and analysis, with a stated policy when full.
//!
//! - [`FullPolicy::DropOldest`] (live cameras): the newest frame wins; every dropped frame is
//!   counted. A slow consumer sees fresh frames, never a growing backlog.
//! - [`FullPolicy::Block`] (recorded files): the camera waits, so files play exactly as fast
//!   as analysis takes them and no frame is lost.

use parking_lot::{Condvar, Mutex};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use super::frame::Frame;
use crate::core::Shutdown;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FullPolicy {
    DropOldest,
    Block,
}

struct State {
    buf: VecDeque<Frame>,
    closed: bool,
    receiver_gone: bool,
    dropped: u64,
}

struct Inner {
    state: Mutex<State>,
    space: Condvar,
    ready: Notify,
    capacity: usize,
    policy: FullPolicy,
}

/// The camera's end.
pub struct FrameSender {
    inner: Arc<Inner>,
}

/// The analysis end.
pub struct FrameReceiver {
    inner: Arc<Inner>,
}

/// Why a push did not deliver.
#[derive(Debug, PartialEq, Eq)]
pub enum PushError {
    /// The receiver is gone; stop producing.
    Disconnected,
    /// Shutdown started while waiting for space.
    Shutdown,
}

pub fn frame_queue(capacity: usize, policy: FullPolicy) -> (FrameSender, FrameReceiver) {
    assert!(capacity > 0);
    let inner = Arc::new(Inner {
        state: Mutex::new(State {
            buf: VecDeque::with_capacity(capacity),
            closed: false,
            receiver_gone: false,
            dropped: 0,
        }),
        space: Condvar::new(),
        ready: Notify::new(),
        capacity,
        policy,
    });
    (
        FrameSender {
            inner: inner.clone(),
        },
        FrameReceiver { inner },
    )
}

impl FrameSender {
    /// Hands a frame over. Returns how many frames the policy dropped to make room (0 or 1).
    pub fn push(&self, frame: Frame, shutdown: &Shutdown) -> Result<u64, PushError> {
        let mut st = self.inner.state.lock();
        let mut dropped = 0;
        loop {
            if st.receiver_gone {
                return Err(PushError::Disconnected);
            }
            if st.buf.len() < self.inner.capacity {
                st.buf.push_back(frame);
                drop(st);
                self.inner.ready.notify_one();
                return Ok(dropped);
            }
            match self.inner.policy {
                FullPolicy::DropOldest => {
                    st.buf.pop_front();
                    st.dropped += 1;
                    dropped += 1;
                }
                FullPolicy::Block => {
                    if shutdown.is_triggered() {
                        return Err(PushError::Shutdown);
                    }
                    // Wake now and then to notice shutdown.
                    self.inner
                        .space
                        .wait_for(&mut st, Duration::from_millis(50));
                }
            }
        }
    }
}

impl Drop for FrameSender {
    fn drop(&mut self) {
        self.inner.state.lock().closed = true;
        self.inner.ready.notify_one();
    }
}

impl FrameReceiver {
    /// The next frame, or `None` once the camera has stopped and the queue is empty.
    pub async fn recv(&mut self) -> Option<Frame> {
        loop {
            let notified = self.inner.ready.notified();
            {
                let mut st = self.inner.state.lock();
                if let Some(f) = st.buf.pop_front() {
                    drop(st);
                    self.inner.space.notify_one();
                    return Some(f);
                }
                if st.closed {
                    return None;
                }
            }
            notified.await;
        }
    }

    /// Frames dropped so far because the queue was full (live policy only).
    pub fn dropped(&self) -> u64 {
        self.inner.state.lock().dropped
    }

    /// How many frames the queue holds at most.
    pub fn capacity(&self) -> usize {
        self.inner.capacity
    }

    /// Counts the frames waiting in the queue, from any thread (fair shedding asks it).
    pub fn waiting_probe(&self) -> Box<dyn Fn() -> usize + Send + Sync> {
        let inner = self.inner.clone();
        Box::new(move || inner.state.lock().buf.len())
    }
}

impl Drop for FrameReceiver {
    fn drop(&mut self) {
        self.inner.state.lock().receiver_gone = true;
        self.inner.space.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(seq: u64) -> Frame {
        let mut f = Frame::from_rgb("c".into(), 1, 1, vec![0, 0, 0]);
        f.seq = seq;
        f
    }

    #[tokio::test]
    async fn drop_oldest_keeps_the_newest() {
        let (tx, mut rx) = frame_queue(2, FullPolicy::DropOldest);
        let s = Shutdown::new();
        assert_eq!(tx.push(frame(0), &s), Ok(0));
        assert_eq!(tx.push(frame(1), &s), Ok(0));
        assert_eq!(tx.push(frame(2), &s), Ok(1));
        drop(tx);
        assert_eq!(rx.recv().await.unwrap().seq, 1);
        assert_eq!(rx.recv().await.unwrap().seq, 2);
        assert!(rx.recv().await.is_none());
        assert_eq!(rx.dropped(), 1);
    }

    #[tokio::test]
    async fn block_waits_for_the_consumer_and_loses_nothing() {
        let (tx, mut rx) = frame_queue(1, FullPolicy::Block);
        let s = Shutdown::new();
        let producer = std::thread::spawn(move || {
            for i in 0..50 {
                tx.push(frame(i), &s).unwrap();
            }
        });
        let mut got = Vec::new();
        while let Some(f) = rx.recv().await {
            got.push(f.seq);
        }
        producer.join().unwrap();
        assert_eq!(got, (0..50).collect::<Vec<_>>());
        assert_eq!(rx.dropped(), 0);
    }

    #[test]
    fn block_gives_up_on_shutdown_and_on_a_gone_receiver() {
        let (tx, rx) = frame_queue(1, FullPolicy::Block);
        let s = Shutdown::new();
        tx.push(frame(0), &s).unwrap();
        s.trigger();
        assert_eq!(tx.push(frame(1), &s), Err(PushError::Shutdown));
        drop(rx);
        assert_eq!(tx.push(frame(2), &s), Err(PushError::Disconnected));
    }
}
