//! Several workers sharing one PostgreSQL (`citywatch run --worker`): who watches which
//! camera.
//!
//! Every heartbeat a worker records that it is alive, renews its leases, works out its fair
//! share of the cameras from the live workers ([`shares`]: an even split, capped by each
//! worker's capacity), gives back cameras above its share (a worker joined) and takes free or
//! expired ones below it (a worker died or left). Every worker computes the same split from
//! the same rows, so they agree without talking to each other. Singleton jobs (the outbox
//! forwarder) are leases too, held by at most one worker at a time.
//!
//! [`Leases`] is the bookkeeping; [`host`] starts and stops the cameras it decides on.

pub mod host;
pub mod slots;

use std::collections::BTreeMap;

use crate::store::leases::LiveWorker;
use crate::store::{Store, StoreError};

/// The singleton jobs: the outbox forwarder and the evidence sweep.
pub use crate::pipeline::setup::{OUTBOX_JOB, RETENTION_JOB};

/// What `--worker` needs from the config, as errors that name the field.
pub fn check_config(config: &crate::config::PipelineConfig) -> anyhow::Result<()> {
    let Some(cases) = &config.cases else {
        anyhow::bail!(
            "cases: --worker needs a [cases] database that every worker shares (PostgreSQL)"
        );
    };
    if config.detect.is_some() && !config.episodes.in_database {
        anyhow::bail!(
            "episodes.in_database: must be true with --worker, so a camera's episodes move \
             with it to the worker that takes it over"
        );
    }
    if cases.database.starts_with("sqlite:") {
        tracing::warn!(
            "cases.database is SQLite: workers can share it only on one machine; use PostgreSQL"
        );
    }
    Ok(())
}

/// How many cameras each live worker should hold: workers with the smallest capacity are
/// filled first, each with at most an even share of what is left, so the split is as even
/// as the capacities allow and adds up to `cameras` whenever they can hold that many.
/// Workers are ordered by id among equals, so every worker computes the same split.
pub fn shares(cameras: usize, workers: &[LiveWorker]) -> BTreeMap<String, usize> {
    let mut order: Vec<&LiveWorker> = workers.iter().collect();
    order.sort_by(|a, b| {
        let cap = |w: &LiveWorker| w.capacity.unwrap_or(u64::MAX);
        cap(a).cmp(&cap(b)).then_with(|| a.id.cmp(&b.id))
    });
    let mut left = cameras;
    let mut out = BTreeMap::new();
    for (i, w) in order.iter().enumerate() {
        let others = order.len() - i;
        let even = left.div_ceil(others);
        let give = even.min(w.capacity.map_or(usize::MAX, |c| c as usize));
        left -= give;
        out.insert(w.id.clone(), give);
    }
    out
}

/// What one heartbeat decided.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Round {
    /// Cameras taken this round: start them (resuming their episodes from the store).
    pub take: Vec<String>,
    /// Cameras another worker holds now: stop them at once, saving nothing.
    pub lost: Vec<String>,
    /// Cameras above this worker's share: stop them, save their episodes, then
    /// [`Leases::release`] them.
    pub give_back: Vec<String>,
    /// Singleton jobs taken and lost this round.
    pub jobs_taken: Vec<String>,
    pub jobs_lost: Vec<String>,
    pub live_workers: usize,
    pub share: usize,
    /// Back from a failed heartbeat: this round only renewed.
    pub renewed_only: bool,
}

/// This worker's leases: what it holds, and one heartbeat's decisions.
pub struct Leases {
    pub(crate) store: std::sync::Arc<Store>,
    pub id: String,
    started_at: f64,
    ttl: f64,
    /// A lease must have expired this long before it is taken (one heartbeat): after a
    /// short outage a peer's lease may have lapsed a moment before the peer renews it.
    grace: f64,
    capacity: Option<u64>,
    cameras: Vec<String>,
    jobs: Vec<String>,
    /// Held leases (cameras and jobs) with the generation this worker took them at.
    held: BTreeMap<String, i64>,
    /// The last heartbeat failed: the next one only renews. After a database outage every
    /// lease and heartbeat has expired; the first worker back would otherwise take every
    /// camera before its peers have renewed theirs.
    recovering: bool,
    /// When the last heartbeat was written, to tell one that waited out an outage.
    last_written: Option<f64>,
    /// After a heartbeat that only renewed, no take before this time (one TTL later): by
    /// then every live peer has renewed too.
    hold_until: f64,
    clock: std::sync::Arc<dyn crate::core::Clock>,
}

impl Leases {
    /// Makes sure every camera and job has a lease row.
    #[allow(clippy::too_many_arguments)]
    pub async fn new(
        store: std::sync::Arc<Store>,
        clock: std::sync::Arc<dyn crate::core::Clock>,
        id: String,
        started_at: f64,
        ttl: f64,
        heartbeat: f64,
        capacity: Option<u64>,
        mut cameras: Vec<String>,
        jobs: Vec<String>,
    ) -> Result<Self, StoreError> {
        cameras.sort();
        let mut names = cameras.clone();
        names.extend(jobs.iter().cloned());
        store.ensure_leases(&names).await?;
        Ok(Self {
            store,
            id,
            started_at,
            ttl,
            grace: heartbeat,
            capacity,
            cameras,
            jobs,
            held: BTreeMap::new(),
            recovering: false,
            last_written: None,
            hold_until: f64::MIN,
            clock,
        })
    }

    /// Cameras (not jobs) this worker holds.
    pub fn cameras_held(&self) -> Vec<String> {
        self.held
            .keys()
            .filter(|n| !self.jobs.contains(n))
            .cloned()
            .collect()
    }

    pub fn ttl(&self) -> f64 {
        self.ttl
    }

    /// The most cameras this worker takes (`--max-cameras`).
    pub fn capacity(&self) -> Option<u64> {
        self.capacity
    }

    /// One heartbeat.
    pub async fn round(&mut self) -> Result<Round, StoreError> {
        let may_take = !self.recovering;
        let r = self.round_inner(may_take).await;
        self.recovering = r.is_err();
        r
    }

    async fn round_inner(&mut self, may_take: bool) -> Result<Round, StoreError> {
        // The time is read once the database answers: a heartbeat that waited for a
        // connection through an outage must not write an expiry already in the past.
        self.store.ping().await?;
        let now = crate::core::unix_secs(self.clock.as_ref());
        self.store
            .worker_heartbeat(
                &self.id,
                self.started_at,
                now,
                self.ttl,
                self.capacity,
                self.cameras_held().len() as u64,
            )
            .await?;
        // A heartbeat that came more than two heartbeats after the previous one (it waited
        // for the database) may find peers' leases lapsed that they are about to renew: it
        // only renews, like one after a failure. (Peers wrote at most a heartbeat before
        // this worker's previous write, and the TTL is at least three heartbeats, so after
        // a timely heartbeat no live peer's lease has lapsed by more than the grace.)
        let previous = self.last_written.replace(now);
        let timely = |c: &dyn crate::core::Clock| {
            previous.is_none_or(|t| crate::core::unix_secs(c) - t <= 2.0 * self.grace)
        };
        let mut may_take = may_take && timely(self.clock.as_ref()) && now >= self.hold_until;
        let mut round = Round {
            renewed_only: !may_take,
            ..Round::default()
        };
        let renewed: BTreeMap<String, i64> = self
            .store
            .renew_leases(&self.id, now, self.ttl)
            .await?
            .into_iter()
            // Rows of cameras no longer configured are not this worker's business.
            .filter(|(n, _)| self.cameras.contains(n) || self.jobs.contains(n))
            .collect();
        for (name, generation) in &self.held {
            if renewed.get(name) != Some(generation) {
                if self.jobs.contains(name) {
                    round.jobs_lost.push(name.clone());
                } else {
                    round.lost.push(name.clone());
                }
            }
        }
        // A lease renewed at a generation this worker did not take (left over from an
        // earlier process with the same id) is adopted.
        let adopted: Vec<String> = renewed
            .keys()
            .filter(|n| !self.held.contains_key(*n))
            .cloned()
            .collect();
        self.held = renewed;
        for n in adopted {
            if self.jobs.contains(&n) {
                round.jobs_taken.push(n);
            } else {
                round.take.push(n);
            }
        }

        let live = self.store.live_workers(now).await?;
        round.live_workers = live.len();
        round.share = shares(self.cameras.len(), &live)
            .get(&self.id)
            .copied()
            .unwrap_or(0);
        // Checked again just before taking: the round itself may have waited for the
        // database after the heartbeat went in.
        may_take = may_take && timely(self.clock.as_ref());
        round.renewed_only = !may_take;
        if !may_take && now >= self.hold_until {
            self.hold_until = now + self.ttl;
        }
        tracing::debug!(worker = %self.id, now, ?previous, may_take, live = round.live_workers,
            share = round.share, held = self.cameras_held().len(), "lease round");
        let held = self.cameras_held();
        if held.len() > round.share {
            // Give back from the end of the name order; a newcomer takes from the start of
            // what is free.
            round.give_back = held[round.share..].to_vec();
        } else if held.len() < round.share && may_take {
            let free: Vec<String> = self
                .cameras
                .iter()
                .filter(|c| !self.held.contains_key(*c))
                .cloned()
                .collect();
            for (name, generation) in self
                .store
                .take_leases(
                    &self.id,
                    &free,
                    round.share - held.len(),
                    now,
                    self.ttl,
                    self.grace,
                )
                .await?
            {
                self.held.insert(name.clone(), generation);
                round.take.push(name);
            }
        }
        for job in self.jobs.clone() {
            if may_take && !self.held.contains_key(&job) {
                for (name, generation) in self
                    .store
                    .take_leases(
                        &self.id,
                        std::slice::from_ref(&job),
                        1,
                        now,
                        self.ttl,
                        self.grace,
                    )
                    .await?
                {
                    self.held.insert(name.clone(), generation);
                    round.jobs_taken.push(name);
                }
            }
        }
        Ok(round)
    }

    /// Gives a camera back (after its episodes were saved).
    pub async fn release(&mut self, name: &str) -> Result<(), StoreError> {
        self.store.release_lease(&self.id, name).await?;
        self.held.remove(name);
        Ok(())
    }

    /// Leaving cleanly: every lease freed, the heartbeat removed.
    pub async fn retire(&mut self) -> Result<(), StoreError> {
        self.store.retire_worker(&self.id).await?;
        self.held.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn w(id: &str, capacity: Option<u64>) -> LiveWorker {
        LiveWorker {
            id: id.into(),
            capacity,
            held: 0,
            heartbeat_at: 0.0,
        }
    }

    #[test]
    fn shares_are_even_and_add_up() {
        let s = shares(10, &[w("a", None), w("b", None), w("c", None)]);
        assert_eq!(s.values().copied().collect::<Vec<_>>(), vec![4, 3, 3]);
        let s = shares(2, &[w("a", None), w("b", None), w("c", None)]);
        assert_eq!(s.values().sum::<usize>(), 2);
        assert_eq!(shares(5, &[]).len(), 0);
    }

    #[test]
    fn shares_respect_capacity_and_give_the_rest_to_others() {
        // A web-only process (capacity 0) takes nothing; a small worker takes its capacity.
        let s = shares(
            10,
            &[w("web", Some(0)), w("small", Some(2)), w("big", None)],
        );
        assert_eq!(s["web"], 0);
        assert_eq!(s["small"], 2);
        assert_eq!(s["big"], 8);
        // Not enough capacity: everyone full, the rest unwatched.
        let s = shares(10, &[w("a", Some(3)), w("b", Some(3))]);
        assert_eq!(s.values().sum::<usize>(), 6);
    }

    async fn sqlite() -> (tempfile::TempDir, Arc<Store>) {
        let d = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", d.path().join("cw.db").display());
        let s = Arc::new(Store::connect(&url).await.unwrap());
        (d, s)
    }

    fn cams(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("cam{i}")).collect()
    }

    /// Every worker in a test shares one hand-driven clock; `at` sets it and runs a round.
    fn clock() -> Arc<crate::core::ManualClock> {
        Arc::new(crate::core::ManualClock::new(std::time::UNIX_EPOCH))
    }

    async fn at(w: &mut Leases, c: &crate::core::ManualClock, t: f64) -> Round {
        c.set(std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(t));
        w.round().await.unwrap()
    }

    async fn worker(
        store: &Arc<Store>,
        clock: &Arc<crate::core::ManualClock>,
        id: &str,
        n: usize,
    ) -> Leases {
        Leases::new(
            store.clone(),
            clock.clone(),
            id.into(),
            0.0,
            10.0,
            2.0,
            None,
            cams(n),
            vec![OUTBOX_JOB.into()],
        )
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn workers_split_the_cameras_take_over_the_dead_and_rebalance_on_join() {
        let (_d, store) = sqlite().await;
        let c = clock();
        let mut a = worker(&store, &c, "a", 6).await;
        // Alone: everything, and the outbox job.
        let r = at(&mut a, &c, 100.0).await;
        assert_eq!(r.take.len(), 6);
        assert_eq!(r.jobs_taken, vec![OUTBOX_JOB.to_string()]);

        // b joins: it sees two live workers, but a still holds everything.
        let mut b = worker(&store, &c, "b", 6).await;
        let r = at(&mut b, &c, 101.0).await;
        assert_eq!((r.share, r.take.len()), (3, 0));
        assert!(r.jobs_taken.is_empty());
        // a's next heartbeat gives back its surplus; b takes it at its next.
        let r = at(&mut a, &c, 102.0).await;
        assert_eq!(r.give_back, vec!["cam3", "cam4", "cam5"]);
        for c in &r.give_back {
            a.release(c).await.unwrap();
        }
        let r = at(&mut b, &c, 103.0).await;
        assert_eq!(r.take, vec!["cam3", "cam4", "cam5"]);
        let owners = |rows: Vec<crate::store::leases::LeaseRow>| {
            rows.into_iter()
                .map(|r| (r.name, r.worker.unwrap_or_default()))
                .collect::<BTreeMap<_, _>>()
        };
        let o = owners(store.leases().await.unwrap());
        assert_eq!(o["cam0"], "a");
        assert_eq!(o["cam5"], "b");

        // a dies (no more heartbeats); b goes on every 2 s. a's leases lapse at 112; b
        // waits one heartbeat more (the grace), then, the only live worker, takes
        // everything, the outbox included.
        let mut taken_at = None;
        for t in [105.0, 107.0, 109.0, 111.0, 113.0, 115.0] {
            let r = at(&mut b, &c, t).await;
            if !r.take.is_empty() {
                assert_eq!(r.take, vec!["cam0", "cam1", "cam2"]);
                assert_eq!(r.jobs_taken, vec![OUTBOX_JOB.to_string()]);
                assert_eq!(r.live_workers, 1);
                taken_at = Some(t);
            }
        }
        assert_eq!(taken_at, Some(115.0));

        // a comes back from a long pause: it learns it lost everything.
        let r = at(&mut a, &c, 116.0).await;
        assert_eq!(r.lost, vec!["cam0", "cam1", "cam2"]);
        assert_eq!(r.jobs_lost, vec![OUTBOX_JOB.to_string()]);
        assert!(a.cameras_held().is_empty());
        // Its stale episode saves are refused; b's are kept.
        assert!(
            !store
                .save_episodes_fenced("cam0", "{}", 116.0, "a")
                .await
                .unwrap()
        );
        assert!(
            store
                .save_episodes_fenced("cam0", "{\"x\":1}", 116.0, "b")
                .await
                .unwrap()
        );

        // b leaves cleanly: its leases are free at once, but a, back from its pause, first
        // holds off for a TTL (its peers may be renewing late too), then takes everything.
        b.retire().await.unwrap();
        let mut taken = 0;
        for t in [118.0, 120.0, 122.0, 124.0] {
            taken += at(&mut a, &c, t).await.take.len();
        }
        assert_eq!(taken, 0);
        assert_eq!(at(&mut a, &c, 126.0).await.take.len(), 6);
        assert_eq!(a.cameras_held().len(), 6);
    }

    #[tokio::test]
    async fn after_an_outage_the_first_worker_back_only_renews() {
        let (_d, store) = sqlite().await;
        let c = clock();
        let mut a = worker(&store, &c, "a", 4).await;
        let mut b = worker(&store, &c, "b", 4).await;
        at(&mut a, &c, 100.0).await;
        at(&mut b, &c, 100.5).await;
        let r = at(&mut a, &c, 101.0).await;
        for n in &r.give_back {
            a.release(n).await.unwrap();
        }
        at(&mut b, &c, 101.5).await;
        assert_eq!((a.cameras_held().len(), b.cameras_held().len()), (2, 2));
        // Nobody reached the database for 30 s: every lease and heartbeat has expired.
        let r = at(&mut a, &c, 131.0).await;
        assert!(
            r.renewed_only && r.take.is_empty() && r.lost.is_empty(),
            "{r:?}"
        );
        assert_eq!(r.live_workers, 1);
        let r = at(&mut b, &c, 131.5).await;
        assert!(r.take.is_empty() && r.lost.is_empty(), "{r:?}");
        // The next heartbeats see both again; nothing moved.
        let r = at(&mut a, &c, 133.0).await;
        assert_eq!((r.live_workers, r.share), (2, 2));
        assert!(r.take.is_empty() && r.give_back.is_empty(), "{r:?}");
        assert_eq!((a.cameras_held().len(), b.cameras_held().len()), (2, 2));
    }

    #[tokio::test]
    async fn concurrent_takes_never_hand_a_camera_to_two_workers() {
        let (_d, store) = sqlite().await;
        let c = clock();
        c.set(std::time::UNIX_EPOCH + std::time::Duration::from_secs(50));
        let mut ws = Vec::new();
        for id in ["a", "b", "c"] {
            ws.push(worker(&store, &c, id, 9).await);
        }
        // All three heartbeat first, so each sees three live workers and a share of 3.
        for w in &mut ws {
            store
                .worker_heartbeat(&w.id, 0.0, 50.0, 10.0, None, 0)
                .await
                .unwrap();
        }
        let rounds = futures_util::future::join_all(ws.iter_mut().map(|w| w.round())).await;
        let mut seen = std::collections::BTreeSet::new();
        for r in rounds {
            let r = r.unwrap();
            assert_eq!(r.share, 3);
            for c in r.take {
                assert!(seen.insert(c.clone()), "{c} taken twice");
            }
        }
        assert_eq!(seen.len(), 9);
    }
}
