//! `[episodes]`: stationary objects by place, where their state is kept, and its validation.

use super::*;

/// Whether cameras' state survives a restart (`[episodes] keep`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Keep {
    /// In the case database with `[cases]`, else in `state_dir` (default `state` beside
    /// the config).
    #[default]
    Auto,
    /// Forgotten at every stop: a restart starts every dwell again.
    Off,
}

/// The folder a camera's state goes to by default when there is no case database, beside
/// the config file.
pub const DEFAULT_STATE_DIR: &str = "state";

/// `[episodes]`: how detections become stationary-object episodes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EpisodeSettings {
    /// IoU with an episode's anchor box for a detection to join it. Default 0.4.
    pub iou: f32,
    /// Missed detections and occlusion up to this long keep an episode open. Default 60.
    pub grace_s: f64,
    /// The same for vehicles, which are often hidden by traffic for longer. Default 300.
    pub vehicle_grace_s: f64,
    /// Largest colour-histogram distance (0..1) for a vehicle to count as the same vehicle.
    /// Default 0.35.
    pub signature_distance: f32,
    /// Whether each camera's state (open episodes, fixtures, zone references, the reference
    /// view, deferred candidates) survives a restart. Default `auto`: in the case database
    /// with `[cases]`, else in `state_dir`. `off` forgets it at every stop.
    pub keep: Keep,
    /// Folder where each camera's state is kept across restarts, relative to the config
    /// file. Default: `state` beside the config, when there is no case database.
    pub state_dir: Option<PathBuf>,
    /// Keep each camera's state in the case database's `episodes` table (needs `[cases]`;
    /// not with `state_dir`). Default: true with `[cases]` (unless `state_dir` is set).
    pub in_database: bool,
    /// Analysed frames in a row that must see an episode's place empty (visible, nothing
    /// detected, the object's structure gone) to end it. Default 3.
    pub clear_frames: u32,
    /// Stall parts standing in the first this-many seconds of a camera's first run (no saved
    /// state) are proposed as fixtures, for an operator to accept or dismiss. Default 120.
    pub fixture_learn_s: f64,
    /// Stall parts that stand this long are proposed as fixtures (a kiosk, a shop's
    /// chairs). Default 172800 (two days).
    pub fixture_after_s: f64,
}

impl Default for EpisodeSettings {
    fn default() -> Self {
        Self {
            iou: 0.4,
            grace_s: 60.0,
            vehicle_grace_s: 300.0,
            signature_distance: 0.35,
            keep: Keep::Auto,
            state_dir: None,
            in_database: false,
            clear_frames: 3,
            fixture_learn_s: 120.0,
            fixture_after_s: 172_800.0,
        }
    }
}

pub(crate) fn validate_episodes(e: &EpisodeSettings, problems: &mut Vec<ConfigProblem>) {
    for (path, v) in [
        ("episodes.iou", e.iou),
        ("episodes.signature_distance", e.signature_distance),
    ] {
        if !(v > 0.0 && v <= 1.0) {
            problems.push(ConfigProblem {
                path: path.into(),
                message: format!("must be above 0 and at most 1, got {v}"),
            });
        }
    }
    positive("episodes.grace_s", e.grace_s, problems);
    positive("episodes.vehicle_grace_s", e.vehicle_grace_s, problems);
    positive("episodes.fixture_after_s", e.fixture_after_s, problems);
    if !(e.fixture_learn_s.is_finite() && e.fixture_learn_s >= 0.0) {
        problems.push(ConfigProblem {
            path: "episodes.fixture_learn_s".into(),
            message: format!("must be 0 or more, got {}", e.fixture_learn_s),
        });
    }
    if e.clear_frames == 0 {
        problems.push(ConfigProblem {
            path: "episodes.clear_frames".into(),
            message: "must be at least 1".into(),
        });
    }
}

/// Where episode state is kept: checks the choice, and with `keep = "auto"` and no place
/// given picks the case database, else a folder beside the config.
pub(super) fn resolve_keep(
    episodes: &mut EpisodeSettings,
    has_cases: bool,
    base: &Path,
    problems: &mut Vec<ConfigProblem>,
) {
    if let Some(dir) = episodes.state_dir.as_mut()
        && dir.is_relative()
    {
        *dir = base.join(&*dir);
    }
    if episodes.in_database {
        if !has_cases {
            problems.push(ConfigProblem {
                path: "episodes.in_database".into(),
                message: "needs a [cases] section: episodes are kept in its database".into(),
            });
        }
        if episodes.state_dir.is_some() {
            problems.push(ConfigProblem {
                path: "episodes.in_database".into(),
                message: "choose one place for episodes: state_dir or in_database".into(),
            });
        }
    }
    match episodes.keep {
        Keep::Off => {
            if episodes.in_database || episodes.state_dir.is_some() {
                problems.push(ConfigProblem {
                    path: "episodes.keep".into(),
                    message: "is \"off\" but state_dir or in_database says where to keep the state: choose one".into(),
                });
            }
        }
        Keep::Auto if !episodes.in_database && episodes.state_dir.is_none() => {
            if has_cases {
                episodes.in_database = true;
            } else {
                episodes.state_dir = Some(base.join(DEFAULT_STATE_DIR));
            }
        }
        Keep::Auto => {}
    }
}
