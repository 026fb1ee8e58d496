//! The one shutdown signal. Async loops await [`Shutdown::triggered`]; the camera threads
//! (which run GStreamer's blocking calls) poll [`Shutdown::is_triggered`] or sleep with
//! [`Shutdown::sleep`], which wakes early when shutdown starts.

use parking_lot::{Condvar, Mutex};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;

#[derive(Clone)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

struct Inner {
    flag: AtomicBool,
    lock: Mutex<()>,
    cv: Condvar,
    tx: watch::Sender<bool>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    pub fn new() -> Self {
        let (tx, _rx) = watch::channel(false);
        Self {
            inner: Arc::new(Inner {
                flag: AtomicBool::new(false),
                lock: Mutex::new(()),
                cv: Condvar::new(),
                tx,
            }),
        }
    }

    /// Starts shutdown. Idempotent.
    pub fn trigger(&self) {
        let _guard = self.inner.lock.lock();
        self.inner.flag.store(true, Ordering::SeqCst);
        self.inner.cv.notify_all();
        self.inner.tx.send_replace(true);
    }

    pub fn is_triggered(&self) -> bool {
        self.inner.flag.load(Ordering::SeqCst)
    }

    /// Blocks the calling thread for `dur`, or until shutdown. Returns true on shutdown.
    pub fn sleep(&self, dur: Duration) -> bool {
        let deadline = Instant::now() + dur;
        let mut guard = self.inner.lock.lock();
        loop {
            if self.is_triggered() {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            self.inner.cv.wait_for(&mut guard, deadline - now);
        }
    }

    /// Completes once shutdown has been triggered.
    pub async fn triggered(&self) {
        let mut rx = self.inner.tx.subscribe();
        // The sender lives as long as `self`, so this cannot fail.
        let _ = rx.wait_for(|v| *v).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleep_wakes_early_on_trigger() {
        let s = Shutdown::new();
        let s2 = s.clone();
        let t = std::thread::spawn(move || s2.sleep(Duration::from_secs(60)));
        s.trigger();
        assert!(t.join().unwrap());
        assert!(!Shutdown::new().sleep(Duration::from_millis(1)));
    }

    #[tokio::test]
    async fn triggered_completes_after_trigger() {
        let s = Shutdown::new();
        let s2 = s.clone();
        let waiter = tokio::spawn(async move { s2.triggered().await });
        s.trigger();
        waiter.await.unwrap();
        // A late waiter completes at once.
        s.triggered().await;
    }
}
