//! Blocking work (file writes with fsync, JPEG encoding) reached from code that runs on an
//! async task: it must not stall the runtime's worker thread, and with it every other
//! camera's task scheduled there.

/// Runs `f`, which blocks, from synchronous code that may be running on a tokio worker. On
/// a multi-threaded runtime the worker hands its other tasks to the rest first
/// (`block_in_place`); elsewhere (a plain thread, a current-thread runtime in a unit test)
/// it simply runs.
pub fn blocking<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// Runs `f`, which blocks, off the async tasks when a runtime is there to take it
/// (`spawn_blocking`, not awaited: for work whose result goes to a shared board), else on
/// the calling thread.
pub fn detach(f: impl FnOnce() + Send + 'static) {
    match tokio::runtime::Handle::try_current() {
        Ok(h) => {
            h.spawn_blocking(f);
        }
        Err(_) => f(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_on_a_plain_thread() {
        assert_eq!(blocking(|| 7), 7);
        let (tx, rx) = std::sync::mpsc::channel();
        detach(move || tx.send(1).unwrap());
        assert_eq!(rx.recv().unwrap(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_a_worker_the_runtime_keeps_serving_other_tasks() {
        // A task that needs a worker while this one blocks: with block_in_place the
        // runtime moves it, so the blocking closure can wait for it.
        let (tx, rx) = std::sync::mpsc::channel();
        let other = tokio::spawn(async move { tx.send(()).unwrap() });
        blocking(|| rx.recv_timeout(std::time::Duration::from_secs(30)).unwrap());
        other.await.unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel();
        detach(move || tx.send(5).unwrap());
        assert_eq!(rx.await.unwrap(), 5);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn on_a_current_thread_runtime_it_runs_in_place() {
        assert_eq!(blocking(|| 3), 3);
    }
}
