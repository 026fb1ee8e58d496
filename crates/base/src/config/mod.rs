//! The pipeline config (`pipelines/*.toml`): strict parsing and up-front validation.
//!
//! Every problem names its field path (`cameras[2].url: ...`), and all problems are
//! reported at once. Unknown fields are errors. `docs/config.md` lists every field with
//! its default; keep it in step with these files.
//!
//! One file per section: its settings, their defaults and their validation. This file
//! holds the whole config, its problems, and `parse`, which reads each section on its own
//! so that every section's problems are reported together.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::core::redact_url;
use crate::model::BBox;
use crate::model::categories::CategoryTable;
use crate::model::zones::{ActiveHours, Polygon, ZoneKind, parse_utc_offset};
pub use crate::model::{FilingMode, Location, RuleKind};

mod cameras;
mod cases;
mod detect;
mod episodes;
mod evidence;
mod gate;
mod ingest;
mod learning;
mod limits;
mod patrol;
mod replay;
mod settings;
mod view;
mod web;
mod workers;

pub use cameras::*;
pub use cases::*;
pub use detect::*;
pub use episodes::*;
pub use evidence::*;
pub use gate::*;
pub use ingest::*;
pub use learning::*;
pub use limits::*;
pub use patrol::*;
pub use replay::*;
pub use settings::*;
pub use view::*;
pub use web::*;
pub use workers::*;

/// The whole pipeline config.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    pub settings: Settings,
    pub ingest: IngestDefaults,
    /// Detection; absent means ingest only.
    pub detect: Option<DetectSettings>,
    pub gate: GateSettings,
    pub episodes: EpisodeSettings,
    pub view: ViewSettings,
    pub limits: LimitSettings,
    pub learning: LearnSettings,
    pub replay: ReplaySettings,
    /// Case filing; absent means captures are printed and logged only.
    pub cases: Option<CasesSettings>,
    /// Evidence packages; absent means captures carry no evidence files.
    pub evidence: Option<EvidenceSettings>,
    /// The review UI and API; absent means no HTTP server.
    pub web: Option<WebSettings>,
    /// Patrol under a stream cap; absent means every camera streams continuously.
    pub patrol: Option<PatrolSettings>,
    /// Camera leases for `citywatch run --worker`; defaults apply when absent.
    pub workers: WorkerSettings,
    pub cameras: Vec<CameraConfig>,
}

fn default_true() -> bool {
    true
}

/// One problem in a config, with the path of the field it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub path: String,
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Every problem found in a config file.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigError {
    pub file: String,
    pub problems: Vec<ConfigProblem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} problem{} in the config",
            self.file,
            self.problems.len(),
            if self.problems.len() == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            write!(f, "\n  {p}")?;
        }
        Ok(())
    }
}

impl PipelineConfig {
    /// For a camera the patrol visits in turn: the longest time between two of its frames
    /// that a patrol plans (its revisit period plus one visit, for a late slot). Grace
    /// periods follow it: an object is never taken for gone between two visits.
    pub fn patrol_gap(&self, cam: &CameraConfig) -> Option<f64> {
        let pt = self.patrol.as_ref()?;
        if !cam.enabled || cam.continuous {
            return None;
        }
        let visit = cam.visit_s.unwrap_or(pt.visit_s);
        Some(cam.revisit_s.unwrap_or(pt.revisit_s) + visit)
    }

    /// Reads and validates a config file. Relative `file://` paths resolve against the
    /// config file's folder.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.display().to_string(),
            problems: vec![ConfigProblem {
                path: String::new(),
                message: format!("cannot read the file: {e}"),
            }],
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, base).map_err(|problems| ConfigError {
            file: path.display().to_string(),
            problems,
        })
    }

    /// Parses and validates config text; `base` resolves relative file paths.
    pub fn parse(text: &str, base: &Path) -> Result<Self, Vec<ConfigProblem>> {
        let mut problems = Vec::new();
        let table = toml_table(text).map_err(|p| vec![p])?;

        unknown_sections(&table, &mut problems);
        let settings: Settings = section(&table, "settings", &mut problems).unwrap_or_default();
        let ingest: IngestDefaults = section(&table, "ingest", &mut problems).unwrap_or_default();
        let mut detect: Option<DetectSettings> = section(&table, "detect", &mut problems);
        if let Some(d) = detect.as_mut() {
            validate_detect(d, &mut problems);
            resolve_detect_paths(d, base);
        }
        let gate: GateSettings = section(&table, "gate", &mut problems).unwrap_or_default();
        validate_gate(&gate, &mut problems);
        let mut episodes: EpisodeSettings =
            section(&table, "episodes", &mut problems).unwrap_or_default();
        validate_episodes(&episodes, &mut problems);
        let view: ViewSettings = section(&table, "view", &mut problems).unwrap_or_default();
        validate_view(&view, &mut problems);
        let limits: LimitSettings = section(&table, "limits", &mut problems).unwrap_or_default();
        validate_limits(&limits, &mut problems);
        let learning: LearnSettings =
            section(&table, "learning", &mut problems).unwrap_or_default();
        validate_learning(&learning, &mut problems);
        let replay: ReplaySettings = section(&table, "replay", &mut problems).unwrap_or_default();
        if let Err(message) = replay.start_unix() {
            problems.push(ConfigProblem {
                path: "replay.start".into(),
                message,
            });
        }

        let raw_cameras = raw_cameras(&table, &mut problems);

        validate_settings(&settings, &mut problems);
        validate_ingest(&ingest, &mut problems);
        let mut cases: Option<CasesSettings> = section(&table, "cases", &mut problems);
        let mut seen = HashSet::new();
        let mut cameras = Vec::new();
        for (i, raw) in raw_cameras {
            if let Some(c) = validate_camera(i, raw, &ingest, &gate, base, &mut seen, &mut problems)
            {
                cameras.push(c);
            }
        }

        let mut evidence: Option<EvidenceSettings> = section(&table, "evidence", &mut problems);
        if let Some(e) = evidence.as_mut() {
            resolve_evidence(e, base, &mut problems);
        }
        let mut web: Option<WebSettings> = section(&table, "web", &mut problems);
        if let Some(w) = &mut web {
            resolve_web(w, cases.is_some(), base, &mut problems);
        }
        resolve_keep(&mut episodes, cases.is_some(), base, &mut problems);
        if let Some(c) = cases.as_mut() {
            resolve_cases(c, &cameras, base, &mut problems);
        }
        let patrol: Option<PatrolSettings> = section(&table, "patrol", &mut problems);
        if let Some(pt) = &patrol {
            validate_patrol(pt, &cameras, &mut problems);
        }
        let workers: WorkerSettings = section(&table, "workers", &mut problems).unwrap_or_default();
        validate_workers(&workers, &mut problems);
        if problems.is_empty() {
            Ok(Self {
                settings,
                ingest,
                detect,
                gate,
                episodes,
                view,
                limits,
                learning,
                replay,
                cases,
                evidence,
                web,
                patrol,
                workers,
                cameras,
            })
        } else {
            Err(problems)
        }
    }

    /// Backoff settings shared by every camera.
    pub fn backoff(&self) -> crate::core::BackoffPolicy {
        crate::core::BackoffPolicy {
            initial: secs(self.ingest.backoff_initial_s),
            max: secs(self.ingest.backoff_max_s),
            multiplier: self.ingest.backoff_multiplier,
            jitter: self.ingest.backoff_jitter,
        }
    }
}

pub fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

/// The config's sections as written. `parse` reads each one on its own, so that one
/// section's problems do not hide another's; which sections there are comes from this
/// struct (`deny_unknown_fields`), not from a list of names.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Read only for which keys it accepts.
struct Sections {
    settings: Option<toml::Value>,
    ingest: Option<toml::Value>,
    detect: Option<toml::Value>,
    gate: Option<toml::Value>,
    episodes: Option<toml::Value>,
    view: Option<toml::Value>,
    limits: Option<toml::Value>,
    learning: Option<toml::Value>,
    replay: Option<toml::Value>,
    cases: Option<toml::Value>,
    evidence: Option<toml::Value>,
    web: Option<toml::Value>,
    patrol: Option<toml::Value>,
    workers: Option<toml::Value>,
    cameras: Option<toml::Value>,
}

/// Reports every top-level key that is not a section of [`Sections`], each with serde's
/// message (which lists the sections).
/// The config text as a TOML table, or where it stops being TOML.
fn toml_table(text: &str) -> Result<toml::Table, ConfigProblem> {
    text.parse().map_err(|e: toml::de::Error| {
        let at = e
            .span()
            .map(|s| {
                let line = text[..s.start].matches('\n').count() + 1;
                format!(" (line {line})")
            })
            .unwrap_or_default();
        ConfigProblem {
            path: String::new(),
            message: format!("not valid TOML{at}: {}", redact_url(e.message())),
        }
    })
}

fn unknown_sections(table: &toml::Table, problems: &mut Vec<ConfigProblem>) {
    let mut rest = table.clone();
    while let Err(e) = Sections::deserialize(toml::Value::Table(rest.clone())) {
        let message = e.to_string();
        // serde names the unknown field first: "unknown field `x`, expected one of ...".
        let named = message.split('`').nth(1).unwrap_or_default();
        let Some(key) = rest.keys().find(|k| k.as_str() == named).cloned() else {
            problems.push(ConfigProblem {
                path: String::new(),
                message: redact_url(message.trim()),
            });
            return;
        };
        problems.push(ConfigProblem {
            path: key.clone(),
            message: redact_url(message.trim()),
        });
        rest.remove(&key);
    }
}

fn section<T: DeserializeOwned>(
    table: &toml::Table,
    key: &str,
    problems: &mut Vec<ConfigProblem>,
) -> Option<T> {
    let value = table.get(key)?;
    typed(value.clone(), key, problems)
}

/// Deserialises one value, turning a serde error into a problem with the full field path.
fn typed<T: DeserializeOwned>(
    value: toml::Value,
    prefix: &str,
    problems: &mut Vec<ConfigProblem>,
) -> Option<T> {
    match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(v) => Some(v),
        Err(e) => {
            let inner = e.path().to_string();
            let message = redact_url(e.inner().to_string().trim());
            // An unknown field's own name is in the message; the path names its parent.
            let path = if inner == "." || inner.is_empty() {
                prefix.to_string()
            } else if inner.starts_with('[') {
                format!("{prefix}{inner}")
            } else {
                format!("{prefix}.{inner}")
            };
            problems.push(ConfigProblem { path, message });
            None
        }
    }
}

fn positive(path: &str, v: f64, problems: &mut Vec<ConfigProblem>) {
    if !(v.is_finite() && v > 0.0) {
        problems.push(ConfigProblem {
            path: path.into(),
            message: format!("must be a positive number of seconds, got {v}"),
        });
    }
}

/// The name serde gives an enum value (`no_parking`).
fn serde_name<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<PipelineConfig, Vec<String>> {
        PipelineConfig::parse(text, Path::new("/base"))
            .map_err(|ps| ps.into_iter().map(|p| p.to_string()).collect())
    }

    #[test]
    fn state_is_kept_by_default_and_forgotten_only_when_asked() {
        let cam = "[[cameras]]\nid = \"a\"\nurl = \"rtsp://h/a\"\n";
        // No case database: a state folder beside the config.
        let c = parse(cam).unwrap();
        assert_eq!(c.episodes.state_dir, Some(PathBuf::from("/base/state")));
        assert!(!c.episodes.in_database);
        // An explicit folder wins.
        let c = parse(&format!("[episodes]\nstate_dir = \"s\"\n{cam}")).unwrap();
        assert_eq!(c.episodes.state_dir, Some(PathBuf::from("/base/s")));
        // Off: nothing kept.
        let c = parse(&format!("[episodes]\nkeep = \"off\"\n{cam}")).unwrap();
        assert_eq!(
            (c.episodes.state_dir, c.episodes.in_database),
            (None, false)
        );
        // Off and a place to keep it: which one was meant?
        let e = parse(&format!(
            "[episodes]\nkeep = \"off\"\nstate_dir = \"s\"\n{cam}"
        ))
        .unwrap_err();
        assert!(e[0].starts_with("episodes.keep: is \"off\" but"), "{e:?}");
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let c = parse("[[cameras]]\nid = \"a\"\nurl = \"rtsp://127.0.0.1:8554/a\"\n").unwrap();
        let cam = &c.cameras[0];
        assert_eq!(cam.name, "a");
        assert_eq!(cam.analysis_fps, 1.0);
        assert_eq!(cam.analysis_width, 640);
        assert_eq!(cam.keyframe_only, KeyframeMode::Auto);
        assert_eq!(cam.watchdog, Duration::from_secs(10));
        assert_eq!(
            cam.source,
            SourceKind::Rtsp {
                transport: Transport::Tcp
            }
        );
        assert_eq!(c.settings.status_interval_s, 10.0);
    }

    #[test]
    fn patrol_settings_are_checked_against_the_cameras() {
        let errs = parse(
            r#"
[patrol]
caps = { police = 1, city = 0 }
visit_s = 30
revisit_s = 10
[[cameras]]
id = "a"
url = "rtsp://h/a"
platform = "police"
continuous = true
[[cameras]]
id = "b"
url = "rtsp://h/b"
platform = "police"
continuous = true
[[cameras]]
id = "c"
url = "rtsp://h/c"
platform = "traffic"
"#,
        )
        .unwrap_err();
        assert_eq!(
            errs,
            vec![
                "patrol.caps.city: must be at least 1",
                "patrol.revisit_s: must be at least visit_s (30), got 10",
                "cameras[0].revisit_s: must be at least the visit (30 s), got 10",
                "cameras[1].revisit_s: must be at least the visit (30 s), got 10",
                "cameras[2].platform: \"traffic\" has no cap in [patrol] caps",
                "cameras[2].revisit_s: must be at least the visit (30 s), got 10",
                "patrol.caps.police: 2 continuous cameras need more than the cap of 1",
            ]
        );
        let c = parse(
            "[patrol]\ncaps = { default = 2 }\n[[cameras]]\nid = \"a\"\nurl = \"rtsp://h/a\"\nvisit_s = 5\n",
        )
        .unwrap();
        let p = c.patrol.unwrap();
        assert_eq!((p.visit_s, p.revisit_s, p.hot_factor), (20.0, 300.0, 3.0));
        assert_eq!(c.cameras[0].platform, "default");
        assert_eq!(c.cameras[0].visit_s, Some(5.0));
    }

    #[test]
    fn worker_settings_have_defaults_and_are_checked() {
        let cam = "[[cameras]]\nid = \"a\"\nurl = \"rtsp://h/a\"\n";
        let c = parse(cam).unwrap();
        assert_eq!((c.workers.lease_ttl_s, c.workers.heartbeat_s), (15.0, 5.0));
        let errs = parse(&format!(
            "[workers]\nlease_ttl_s = 6\nheartbeat_s = 3\n{cam}"
        ))
        .unwrap_err();
        assert_eq!(
            errs,
            vec!["workers.heartbeat_s: must be > 0 and at most a third of lease_ttl_s (6), got 3"]
        );
        let errs = parse(&format!("[workers]\nlease_ttl_s = 0.5\n{cam}")).unwrap_err();
        assert_eq!(
            errs,
            vec!["workers.lease_ttl_s: must be at least 1 s, got 0.5"]
        );
        let errs = parse(&format!("[workers]\nttl = 5\n{cam}")).unwrap_err();
        assert!(
            errs[0].starts_with("workers.ttl: unknown field"),
            "{errs:?}"
        );
    }

    #[test]
    fn relative_file_paths_resolve_against_the_config_folder() {
        let c = parse("[[cameras]]\nid = \"f\"\nurl = \"file://../v.mp4\"\nloop = true\n").unwrap();
        assert_eq!(
            c.cameras[0].source,
            SourceKind::File {
                path: PathBuf::from("/base/../v.mp4"),
                realtime: false,
                looped: true,
                max_passes: None,
            }
        );
        let c = parse("[[cameras]]\nid = \"f\"\nurl = \"file:///abs/v.mp4\"\n").unwrap();
        assert!(
            matches!(&c.cameras[0].source, SourceKind::File { path, .. } if path == Path::new("/abs/v.mp4"))
        );
    }

    #[test]
    fn bad_scheme_names_the_field() {
        let errs = parse(
            r#"
[[cameras]]
id = "a"
url = "rtsp://h/a"
[[cameras]]
id = "b"
url = "rtsp://h/b"
[[cameras]]
id = "c"
url = "htp://user:pw@h/c"
"#,
        )
        .unwrap_err();
        assert_eq!(
            errs,
            vec![r#"cameras[2].url: unsupported scheme "htp" (expected "rtsp" or "file")"#]
        );
    }

    #[test]
    fn the_judgement_settings_parse_and_bad_ones_name_their_field() {
        let c = parse(
            r#"
[view]
tolerance = 0.05
[learning]
similarity = 0.85
[episodes]
clear_frames = 4
[limits]
deferred_max = 8
[patrol]
caps = { default = 1 }
revisit_s = 600
[[cameras]]
id = "a"
url = "rtsp://127.0.0.1:8554/a"
detect_crops = ["lawn"]
detect_crop_grid = 2
[[cameras.zones]]
id = "lawn"
kind = "no_vending"
polygon = [[0.0, 0.5], [0.5, 0.5], [0.5, 1.0], [0.0, 1.0]]
"#,
        )
        .unwrap();
        assert_eq!(c.view.tolerance, 0.05);
        assert!(c.view.guard);
        assert_eq!(c.learning.similarity, 0.85);
        assert_eq!(c.learning.max_per_zone, 200);
        assert_eq!(c.episodes.clear_frames, 4);
        assert_eq!(c.limits.deferred_max, 8);
        // Four overlapping tiles inside the lawn's bounds.
        let t = &c.cameras[0].detect_crops;
        assert_eq!(t.len(), 4);
        assert!(
            t.iter()
                .all(|b| b[0] >= 0.0 && b[2] <= 0.5 + 1e-6 && b[1] >= 0.5 - 1e-6)
        );
        assert!(t[1][0] < t[0][2], "tiles overlap");
        // The lawn is a quarter of the frame: the gate watches it; the detector sees the
        // whole frame unless told otherwise.
        assert_eq!(c.cameras[0].gate_regions, vec![[0.0, 0.5, 0.5, 1.0]]);
        assert_eq!(c.cameras[0].detect_region, None);
        let auto = PipelineConfig::parse(
            "[[cameras]]\nid = \"a\"\nurl = \"rtsp://127.0.0.1:8554/a\"\ndetect_region = \"auto\"\n\
             [[cameras.zones]]\nid = \"lawn\"\nkind = \"no_vending\"\n\
             polygon = [[0.0, 0.5], [0.5, 0.5], [0.5, 1.0], [0.0, 1.0]]\n",
            Path::new("."),
        )
        .unwrap();
        // "auto": the lawn and its margin (0.08) are a third of the frame, so it crops.
        let r = auto.cameras[0].detect_region.expect("a crop");
        for (x, y) in r.iter().zip([0.0, 0.42, 0.58, 1.0]) {
            assert!((x - y).abs() < 1e-6, "{r:?}");
        }
        // Grace follows the patrol: 600 s revisit + 20 s visit.
        assert_eq!(c.patrol_gap(&c.cameras[0]), Some(620.0));
        let errs = parse(
            r#"
[view]
tolerance = 0.5
frames = 0
[episodes]
clear_frames = 0
[learning]
similarity = 1.5
max_per_zone = 0
[[cameras]]
id = "a"
url = "rtsp://127.0.0.1:8554/a"
detect_crops = ["nowhere"]
"#,
        )
        .unwrap_err();
        for field in [
            "learning.similarity",
            "learning.max_per_zone",
            "view.tolerance",
            "view.frames",
            "episodes.clear_frames",
            "cameras[0].detect_crops",
        ] {
            assert!(
                errs.iter().any(|e| e.starts_with(field)),
                "{field}: {errs:?}"
            );
        }
    }

    #[test]
    fn all_problems_are_reported_at_once() {
        let errs = parse(
            r#"
colour = "red"
[settings]
status_interval_s = 0
[ingest]
backoff_jitter = 2.0
[[cameras]]
id = "a"
url = "rtsp://h/a"
fps = 3
[[cameras]]
id = "a2"
url = "rtsp://h/a2"
analysis_fps = 20
realtime = true
[[cameras]]
id = "bad id!"
url = "rtsp://u:topsecret@/x"
analysis_width = 33
"#,
        )
        .unwrap_err();
        let all = errs.join("\n");
        assert!(!all.contains("topsecret"), "{all}");
        assert_eq!(
            errs,
            vec![
                "colour: unknown field `colour`, expected one of `settings`, `ingest`, `detect`, `gate`, `episodes`, `view`, `limits`, `learning`, `replay`, `cases`, `evidence`, `web`, `patrol`, `workers`, `cameras`".to_string(),
                "cameras[0].fps: unknown field `fps`, expected one of `id`, `name`, `url`, `enabled`, `analysis_fps`, `analysis_width`, `keyframe_only`, `transport`, `realtime`, `loop`, `watchdog_s`, `timezone`, `preset`, `footage`, `location`, `platform`, `continuous`, `visit_s`, `revisit_s`, `detect_crops`, `detect_crop_grid`, `gate_scope`, `detect_region`, `zones`, `rules`".into(),
                "settings.status_interval_s: must be a positive number of seconds, got 0".into(),
                "ingest.backoff_jitter: must be between 0 and 1, got 2".into(),
                "cameras[1].analysis_fps: must be from 1/60 (one frame a minute) to 10, got 20".into(),
                "cameras[1].realtime: applies to file:// cameras only; RTSP is always live".into(),
                "cameras[2].id: must be 1-64 characters of letters, digits, '-' or '_', got \"bad id!\"".into(),
                "cameras[2].analysis_width: must be an even number of pixels from 32 to 7680, got 33".into(),
                "cameras[2].url: malformed RTSP URL \"rtsp://***@/x\": empty host".into(),
            ]
        );
    }

    #[test]
    fn zones_and_rules_are_checked_with_their_paths() {
        let errs = parse(
            r#"
[[cameras]]
id = "a"
url = "rtsp://h/a"
timezone = "UTC+8"
[[cameras.zones]]
id = "road"
kind = "no_parking"
polygon = [[0.1, 0.1], [0.9, 0.1]]
[[cameras.zones]]
id = "stall"
kind = "no_vending"
polygon = [[0.1, 0.1], [1.5, 0.1], [0.5, 0.9]]
active_hours = "8am-5pm"
[[cameras.zones]]
id = "bow"
kind = "bin"
polygon = [[0.0, 0.0], [1.0, 1.0], [1.0, 0.0], [0.0, 1.0]]
[[cameras.zones]]
id = "kerb"
kind = "no_parking"
polygon = [[0.1, 0.5], [0.9, 0.5], [0.9, 0.9], [0.1, 0.9]]
[[cameras.rules]]
rule = "abandoned_vehicle"
zones = ["kerb", "nowhere"]
dwell_s = 0
[[cameras.rules]]
rule = "illegal_vendor"
zones = ["kerb"]
active_hours = "25:00-26:00"
"#,
        )
        .unwrap_err();
        assert_eq!(
            errs,
            vec![
                "cameras[0].timezone: cannot parse \"UTC+8\": expected a UTC offset like +08:00",
                "cameras[0].zones[0].polygon: needs at least 3 points, got 2",
                "cameras[0].zones[1].polygon: point 1 (1.5, 0.1) is outside 0..1 (coordinates are normalised to the frame)",
                "cameras[0].zones[1].active_hours: cannot parse \"8am-5pm\": expected HH:MM-HH:MM[, HH:MM-HH:MM ...]",
                "cameras[0].zones[2].polygon: is self-intersecting: edge 0-1 crosses edge 2-3",
                "cameras[0].rules[0].zones: zone \"nowhere\" does not exist on camera \"a\"",
                "cameras[0].rules[0].dwell_s: must be a positive number of seconds, got 0",
                "cameras[0].rules[1].zones: zone \"kerb\" is a no_parking zone; illegal_vendor watches no_vending zones",
                "cameras[0].rules[1].active_hours: cannot parse \"25:00-26:00\": expected HH:MM-HH:MM[, HH:MM-HH:MM ...]",
            ]
        );
        let bad_kind = parse("[[cameras]]\nid = \"a\"\nurl = \"rtsp://h/a\"\n[[cameras.rules]]\nrule = \"jaywalking\"\nzones = []\n").unwrap_err();
        assert!(
            bad_kind[0].starts_with("cameras[0].rules[0].rule: unknown variant `jaywalking`"),
            "{bad_kind:?}"
        );
    }

    #[test]
    fn a_category_table_missing_a_used_rule_is_a_config_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("cats.toml"),
            "scheme = \"x\"\nsource = \"视频抓拍\"\nchannel = \"c\"\n[rules.illegal_vendor]\nmajor_code = \"05\"\nmajor_name = \"街面秩序\"\nminor_code = \"0501\"\nminor_name = \"无照经营游商\"\ntime_limit = \"2工作时\"\n",
        )
        .unwrap();
        let text = r#"
[cases]
database = "sqlite://cases.db"
categories = "cats.toml"
[cases.webhook]
url = "http://127.0.0.1:9/cases"
secret = "do-not-print-me"
[[cameras]]
id = "a"
url = "rtsp://h/a"
[[cameras.zones]]
id = "p"
kind = "no_parking"
polygon = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]]
[[cameras.rules]]
rule = "abandoned_vehicle"
zones = ["p"]
"#;
        let errs = PipelineConfig::parse(text, dir.path()).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].path, "cases.categories");
        assert!(
            errs[0].message.ends_with(
                "rules.abandoned_vehicle: no category for this rule, which the pipeline uses"
            ),
            "{errs:?}"
        );
        // With the shipped table it loads, and the secret stays out of debug output.
        let ok = text.replace(
            "cats.toml",
            &format!(
                "{}/pipelines/categories/default.toml",
                concat!(env!("CARGO_MANIFEST_DIR"), "/../..")
            ),
        );
        let c = PipelineConfig::parse(&ok, dir.path()).unwrap();
        let cases = c.cases.as_ref().unwrap();
        assert_eq!(
            cases.database,
            format!("sqlite://{}", dir.path().join("cases.db").display())
        );
        assert!(!format!("{c:?}").contains("do-not-print-me"));
    }

    #[test]
    fn evidence_and_episode_storage_are_checked_with_their_paths() {
        let cam = "[[cameras]]\nid = \"a\"\nurl = \"rtsp://h/1\"\n";
        let errs = parse(&format!(
            "[episodes]\nin_database = true\n[evidence]\nroot = \"ev\"\npre_s = -1\nalert_ratio = 2\nring_mb = 0\nfont = \"/no/such/font.ttc\"\n{cam}"
        ))
        .unwrap_err();
        assert_eq!(errs.len(), 5, "{errs:?}");
        for (field, words) in [
            ("evidence.pre_s", "between 0 and 600"),
            ("evidence.alert_ratio", "(0, 1]"),
            ("evidence.ring_mb", "1..=4096"),
            ("evidence.font", "fonts-wqy-microhei"),
            ("episodes.in_database", "needs a [cases] section"),
        ] {
            assert!(
                errs.iter()
                    .any(|e| e.starts_with(field) && e.contains(words)),
                "{field}: {errs:?}"
            );
        }
        let ok = parse(&format!("[evidence]\nroot = \"ev\"\n{cam}")).unwrap();
        let ev = ok.evidence.unwrap();
        assert_eq!(ev.root, Path::new("/base/ev"));
        assert_eq!((ev.pre_s, ev.post_s, ev.quota_gb), (10.0, 10.0, 50.0));
        let errs = parse(&format!("[evidence]\nroot = \"ev\"\nclip = true\n{cam}")).unwrap_err();
        assert!(
            errs[0].starts_with("evidence.clip: unknown field"),
            "{errs:?}"
        );
    }

    #[test]
    fn duplicate_ids_are_rejected() {
        let errs = parse("[[cameras]]\nid = \"a\"\nurl = \"rtsp://h/1\"\n[[cameras]]\nid = \"a\"\nurl = \"rtsp://h/2\"\n").unwrap_err();
        assert_eq!(errs, vec!["cameras[1].id: duplicate camera id \"a\""]);
    }

    #[test]
    fn type_errors_name_the_nested_field() {
        let errs = parse("[ingest]\nwatchdog_s = \"ten\"\n[[cameras]]\nid = \"a\"\nurl = \"rtsp://h/a\"\nkeyframe_only = \"sometimes\"\n").unwrap_err();
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(
            errs[0].starts_with("ingest.watchdog_s: invalid type: string \"ten\""),
            "{errs:?}"
        );
        assert!(
            errs[1].starts_with("cameras[0].keyframe_only: unknown variant `sometimes`"),
            "{errs:?}"
        );
    }

    #[test]
    fn syntax_errors_give_the_line() {
        let errs = parse("[[cameras]]\nid = \"a\"\nurl = \n").unwrap_err();
        assert_eq!(errs.len(), 1);
        assert!(errs[0].starts_with("not valid TOML (line 3)"), "{errs:?}");
    }

    #[test]
    fn missing_cameras_is_an_error() {
        assert_eq!(
            parse("[settings]\n").unwrap_err(),
            vec!["cameras: at least one camera is required"]
        );
    }

    #[test]
    fn shipped_pipelines_parse() {
        let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join("pipelines");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                PipelineConfig::load(&path).unwrap_or_else(|e| panic!("{e}"));
                n += 1;
            }
        }
        assert!(n >= 1);
    }
}
