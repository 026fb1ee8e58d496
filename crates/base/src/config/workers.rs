//! `[workers]`: several processes sharing the cameras by lease.

use super::*;

/// `[workers]`: camera leases when several `citywatch run --worker` processes share one
/// database.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerSettings {
    /// A lease (and a worker's heartbeat) lasts this long unless renewed. A dead worker's
    /// cameras move after at most `lease_ttl_s + heartbeat_s`. Default 15 s.
    pub lease_ttl_s: f64,
    /// How often a worker renews its leases and rebalances. Default 5 s; at most a third of
    /// `lease_ttl_s`, so one late heartbeat does not lose the leases.
    pub heartbeat_s: f64,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            lease_ttl_s: 15.0,
            heartbeat_s: 5.0,
        }
    }
}

/// The lease's time to live and the heartbeat within it.
pub(super) fn validate_workers(workers: &WorkerSettings, problems: &mut Vec<ConfigProblem>) {
    if !(workers.lease_ttl_s.is_finite() && workers.lease_ttl_s >= 1.0) {
        problems.push(ConfigProblem {
            path: "workers.lease_ttl_s".into(),
            message: format!("must be at least 1 s, got {}", workers.lease_ttl_s),
        });
    } else if !(workers.heartbeat_s.is_finite()
        && workers.heartbeat_s > 0.0
        && workers.heartbeat_s * 3.0 <= workers.lease_ttl_s)
    {
        problems.push(ConfigProblem {
            path: "workers.heartbeat_s".into(),
            message: format!(
                "must be > 0 and at most a third of lease_ttl_s ({}), got {}",
                workers.lease_ttl_s, workers.heartbeat_s
            ),
        });
    }
}
