//! `[[cameras]]`: each camera, its source URL, zones and rules, as written and as validated.

use super::*;

/// `[[cameras]]`, as written in the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCamera {
    id: String,
    #[serde(default)]
    name: Option<String>,
    url: String,
    #[serde(default = "default_true")]
    enabled: bool,
    #[serde(default = "default_fps")]
    analysis_fps: f64,
    #[serde(default)]
    analysis_width: Option<u32>,
    #[serde(default)]
    keyframe_only: KeyframeMode,
    #[serde(default)]
    transport: Option<Transport>,
    #[serde(default)]
    realtime: Option<bool>,
    #[serde(default, rename = "loop")]
    looped: Option<bool>,
    #[serde(default)]
    watchdog_s: Option<f64>,
    /// UTC offset of the camera's local time, for active hours. Default "+08:00".
    #[serde(default)]
    timezone: Option<String>,
    /// The PTZ preset the camera watches; zones with a preset apply only to it.
    #[serde(default)]
    preset: Option<u32>,
    /// Recorded footage of this camera (file://), which `citywatch replay` plays instead
    /// of connecting to the live URL.
    #[serde(default)]
    footage: Option<String>,
    /// Where the camera (or its preset) looks: for cases.
    #[serde(default)]
    location: Location,
    /// The video platform the stream is pulled from (its cap applies). Default "default".
    #[serde(default)]
    platform: Option<String>,
    /// With [patrol]: stay connected instead of being visited in turn.
    #[serde(default)]
    continuous: bool,
    /// With [patrol]: this camera's visit length and revisit period.
    #[serde(default)]
    visit_s: Option<f64>,
    #[serde(default)]
    revisit_s: Option<f64>,
    /// Zones whose bounds the detector also runs on, for objects too small in the whole
    /// frame (a stall 20 m away). Each costs one more inference per analysed frame. Absent:
    /// the camera decides itself where to look closer (`detect::closer`); `[]`: nowhere.
    #[serde(default)]
    detect_crops: Option<Vec<String>>,
    /// Each crop is cut into this many tiles per side (overlapping by a quarter), so small
    /// objects reach the detector larger. Default 1.
    #[serde(default)]
    detect_crop_grid: Option<u32>,
    /// What the scene gate compares: "zones" (the rule zones and a margin: motion elsewhere
    /// does not force an inference) or "frame". Default "zones"; a camera without zones
    /// compares the frame.
    #[serde(default)]
    gate_scope: Option<GateScope>,
    /// What the detector looks at: "frame", "zones" (a crop around the rule zones, mapped
    /// back to the frame: far objects reach the model larger, at no extra cost) or "auto"
    /// (the crop when it covers at most `[gate] crop_max_share` of the frame). Default
    /// "frame": on the scenario set the crop split one stall into two captures
    /// (docs/benchmarks.md).
    #[serde(default)]
    detect_region: Option<DetectRegion>,
    #[serde(default)]
    zones: Vec<RawZone>,
    #[serde(default)]
    rules: Vec<RawRule>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawZone {
    id: String,
    kind: ZoneKind,
    polygon: Vec<[f32; 2]>,
    #[serde(default)]
    active_hours: Option<String>,
    #[serde(default)]
    preset: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRule {
    rule: RuleKind,
    zones: Vec<String>,
    #[serde(default)]
    dwell_s: Option<f64>,
    #[serde(default)]
    active_hours: Option<String>,
    #[serde(default)]
    min_score: Option<f32>,
    #[serde(default)]
    change_share: Option<f32>,
}

/// The rules citywatch knows.
/// A validated zone.
#[derive(Debug, Clone)]
pub struct Zone {
    pub id: String,
    pub kind: ZoneKind,
    pub polygon: Polygon,
    pub active: ActiveHours,
    pub preset: Option<u32>,
}

impl Zone {
    /// A mask an admin drew on the camera's picture (see [`crate::model::zones::DRAWN_MASK`]):
    /// always active, on every preset.
    pub fn drawn_mask(id: &str, polygon: Polygon) -> Self {
        Zone {
            id: id.to_string(),
            kind: ZoneKind::Mask,
            polygon,
            active: ActiveHours::always(),
            preset: None,
        }
    }
}

/// A validated rule of one camera.
#[derive(Debug, Clone)]
pub struct RuleConfig {
    pub kind: RuleKind,
    pub zones: Vec<String>,
    pub dwell: Duration,
    pub active: ActiveHours,
    pub min_score: f32,
    /// overflowing_bin without a model class: share of the zone that must differ from the
    /// clean reference. Default 0.25.
    pub change_share: f32,
}

pub(crate) fn default_fps() -> f64 {
    1.0
}

/// Where a camera's frames come from.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceKind {
    /// A live RTSP camera. The URL keeps its credentials; display it only redacted.
    Rtsp { transport: Transport },
    /// Recorded footage.
    File {
        path: PathBuf,
        realtime: bool,
        looped: bool,
        /// With `looped`: stop after this many passes (None: loop forever).
        max_passes: Option<u32>,
    },
}

/// One validated camera.
#[derive(Debug, Clone)]
pub struct CameraConfig {
    pub id: String,
    pub name: String,
    /// The URL as configured, credentials included. Never print it: use [`Self::redacted_url`].
    pub url: String,
    pub source: SourceKind,
    pub enabled: bool,
    pub analysis_fps: f64,
    pub analysis_width: u32,
    pub keyframe_only: KeyframeMode,
    pub watchdog: Duration,
    /// UTC offset in seconds.
    pub utc_offset_s: i32,
    pub preset: Option<u32>,
    /// Recorded footage for replays.
    pub footage: Option<PathBuf>,
    pub location: Location,
    /// The video platform (for patrol caps).
    pub platform: String,
    pub continuous: bool,
    pub visit_s: Option<f64>,
    pub revisit_s: Option<f64>,
    /// The bounds of the zones the detector also runs on (`detect_crops`).
    pub detect_crops: Vec<BBox>,
    /// No `detect_crops` set: the camera looks closer at its small rule zones by itself.
    pub look_closer: bool,
    /// The regions the scene gate compares (empty: the whole frame).
    pub gate_regions: Vec<BBox>,
    /// The part of the frame the detector runs on (None: the whole frame).
    pub detect_region: Option<BBox>,
    pub zones: Vec<Zone>,
    pub rules: Vec<RuleConfig>,
}

impl CameraConfig {
    /// A camera that plays one file once, at full size, for tools (`citywatch detect`, the
    /// docs' figures): no zones, no rules.
    pub fn for_file(id: &str, path: &Path, analysis_fps: f64) -> Self {
        Self {
            id: id.into(),
            name: id.into(),
            url: format!("file://{}", path.display()),
            source: SourceKind::File {
                path: path.to_path_buf(),
                realtime: false,
                looped: false,
                max_passes: None,
            },
            enabled: true,
            analysis_fps,
            analysis_width: 0,
            keyframe_only: KeyframeMode::Off,
            watchdog: Duration::from_secs(30),
            utc_offset_s: 0,
            preset: None,
            footage: None,
            location: Default::default(),
            platform: "default".into(),
            continuous: false,
            visit_s: None,
            revisit_s: None,
            detect_crops: Vec::new(),
            look_closer: true,
            gate_regions: Vec::new(),
            detect_region: None,
            zones: Vec::new(),
            rules: Vec::new(),
        }
    }

    pub fn redacted_url(&self) -> String {
        redact_url(&self.url)
    }

    /// The recorded footage replays and evaluations play: `footage`, else a file:// URL.
    pub fn footage_path(&self) -> Option<&PathBuf> {
        match (&self.footage, &self.source) {
            (Some(p), _) => Some(p),
            (None, SourceKind::File { path, .. }) => Some(path),
            (None, SourceKind::Rtsp { .. }) => None,
        }
    }
}

pub(crate) fn validate_camera(
    i: usize,
    raw: RawCamera,
    ingest: &IngestDefaults,
    gate: &GateSettings,
    base: &Path,
    seen: &mut HashSet<String>,
    problems: &mut Vec<ConfigProblem>,
) -> Option<CameraConfig> {
    let before = problems.len();
    let p = |f: &str| format!("cameras[{i}].{f}");
    // A macro rather than a closure, so `problems` stays readable in between.
    macro_rules! bad {
        ($field:expr, $message:expr $(,)?) => {
            problems.push(ConfigProblem {
                path: p($field),
                message: $message,
            })
        };
    }

    let id_ok = !raw.id.is_empty()
        && raw.id.len() <= 64
        && raw
            .id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !id_ok {
        bad!(
            "id",
            format!(
                "must be 1-64 characters of letters, digits, '-' or '_', got {:?}",
                raw.id
            ),
        );
    } else if !seen.insert(raw.id.clone()) {
        bad!("id", format!("duplicate camera id {:?}", raw.id));
    }

    if !(raw.analysis_fps.is_finite()
        && raw.analysis_fps >= MIN_ANALYSIS_FPS - 1e-9
        && raw.analysis_fps <= MAX_ANALYSIS_FPS)
    {
        bad!(
            "analysis_fps",
            format!(
                "must be from 1/60 (one frame a minute) to 10, got {}",
                raw.analysis_fps
            ),
        );
    }
    if let Some(message) = raw.analysis_width.and_then(width_problem) {
        bad!("analysis_width", message);
    }
    if let Some(lat) = raw.location.lat
        && !(lat.is_finite() && (-90.0..=90.0).contains(&lat))
    {
        bad!(
            "location.lat",
            format!("must be a latitude from -90 to 90, got {lat}")
        );
    }
    if let Some(lon) = raw.location.lon
        && !(lon.is_finite() && (-180.0..=180.0).contains(&lon))
    {
        bad!(
            "location.lon",
            format!("must be a longitude from -180 to 180, got {lon}")
        );
    }
    if let Some(w) = raw.watchdog_s
        && !(w.is_finite() && w > 0.0)
    {
        bad!(
            "watchdog_s",
            format!("must be a positive number of seconds, got {w}"),
        );
    }

    let source = match parse_source_url(&raw.url, base) {
        Ok(UrlKind::Rtsp) => {
            if raw.realtime.is_some() {
                bad!(
                    "realtime",
                    "applies to file:// cameras only; RTSP is always live".into(),
                );
            }
            if raw.looped.is_some() {
                bad!("loop", "applies to file:// cameras only".into());
            }
            Some(SourceKind::Rtsp {
                transport: raw.transport.unwrap_or_default(),
            })
        }
        Ok(UrlKind::File(path)) => {
            if raw.transport.is_some() {
                bad!("transport", "applies to rtsp:// cameras only".into());
            }
            Some(SourceKind::File {
                path,
                realtime: raw.realtime.unwrap_or(false),
                looped: raw.looped.unwrap_or(false),
                max_passes: None,
            })
        }
        Err(msg) => {
            bad!("url", msg);
            None
        }
    };

    let footage = match raw.footage.as_deref().map(|f| parse_source_url(f, base)) {
        None => None,
        Some(Ok(UrlKind::File(p))) => Some(p),
        Some(Ok(UrlKind::Rtsp)) => {
            bad!("footage", "must be a file:// URL".into());
            None
        }
        Some(Err(m)) => {
            bad!("footage", m);
            None
        }
    };
    let utc_offset_s = match raw.timezone.as_deref().map(parse_utc_offset) {
        None => 8 * 3600,
        Some(Ok(o)) => o,
        Some(Err(m)) => {
            bad!("timezone", m);
            0
        }
    };
    let mut zones = Vec::new();
    let mut zone_ids = HashSet::new();
    for (z, rz) in raw.zones.iter().enumerate() {
        let zp = |f: &str| format!("zones[{z}].{f}");
        if rz.id.is_empty() || !zone_ids.insert(rz.id.clone()) {
            bad!(
                &zp("id"),
                format!("must be a unique, non-empty zone id, got {:?}", rz.id)
            );
        }
        let polygon = match Polygon::validate(&rz.polygon) {
            Ok(p) => Some(p),
            Err(m) => {
                bad!(&zp("polygon"), m);
                None
            }
        };
        let active = match rz.active_hours.as_deref().map(ActiveHours::parse) {
            None => Some(ActiveHours::always()),
            Some(Ok(a)) => Some(a),
            Some(Err(m)) => {
                bad!(&zp("active_hours"), m);
                None
            }
        };
        if let (Some(polygon), Some(active)) = (polygon, active) {
            zones.push(Zone {
                id: rz.id.clone(),
                kind: rz.kind,
                polygon,
                active,
                preset: rz.preset,
            });
        }
    }
    let mut detect_crops = Vec::new();
    let grid = raw.detect_crop_grid.unwrap_or(1);
    if !(1..=4).contains(&grid) {
        bad!("detect_crop_grid", format!("must be 1 to 4, got {grid}"));
    }
    for zid in raw.detect_crops.iter().flatten() {
        match zones.iter().find(|z: &&Zone| &z.id == zid) {
            Some(z) => detect_crops.extend(tiles(&z.polygon.bounds(), grid.clamp(1, 4))),
            None => bad!(
                "detect_crops",
                format!("zone {zid:?} does not exist on camera {:?}", raw.id),
            ),
        }
    }
    let mut rules = Vec::new();
    for (r, rr) in raw.rules.iter().enumerate() {
        let rp = |f: &str| format!("rules[{r}].{f}");
        let before_rule = problems.len();
        if rr.zones.is_empty() {
            bad!(&rp("zones"), "must name at least one zone".into());
        }
        for zid in &rr.zones {
            match raw.zones.iter().find(|z| &z.id == zid) {
                None => bad!(
                    &rp("zones"),
                    format!("zone {zid:?} does not exist on camera {:?}", raw.id),
                ),
                Some(z) if z.kind != rr.rule.zone_kind() => bad!(
                    &rp("zones"),
                    format!(
                        "zone {zid:?} is a {} zone; {} watches {} zones",
                        serde_name(&z.kind),
                        rr.rule.as_str(),
                        serde_name(&rr.rule.zone_kind())
                    ),
                ),
                Some(_) => {}
            }
        }
        if let Some(d) = rr.dwell_s
            && !(d.is_finite() && d > 0.0)
        {
            bad!(
                &rp("dwell_s"),
                format!("must be a positive number of seconds, got {d}")
            );
        }
        let active = match rr.active_hours.as_deref().map(ActiveHours::parse) {
            None => ActiveHours::always(),
            Some(Ok(a)) => a,
            Some(Err(m)) => {
                bad!(&rp("active_hours"), m);
                ActiveHours::always()
            }
        };
        for (f, v) in [
            ("min_score", rr.min_score),
            ("change_share", rr.change_share),
        ] {
            if let Some(v) = v
                && !(0.0..=1.0).contains(&v)
            {
                bad!(&rp(f), format!("must be between 0 and 1, got {v}"));
            }
        }
        if problems.len() == before_rule {
            rules.push(RuleConfig {
                kind: rr.rule,
                zones: rr.zones.clone(),
                dwell: rr.dwell_s.map(secs).unwrap_or(rr.rule.default_dwell()),
                active,
                min_score: rr.min_score.unwrap_or(0.3),
                change_share: rr.change_share.unwrap_or(0.25),
            });
        }
    }

    if problems.len() > before {
        return None;
    }
    Some(CameraConfig {
        name: raw.name.clone().unwrap_or_else(|| raw.id.clone()),
        id: raw.id,
        url: raw.url,
        source: source?,
        enabled: raw.enabled,
        analysis_fps: raw.analysis_fps,
        analysis_width: raw.analysis_width.unwrap_or(ingest.analysis_width),
        keyframe_only: raw.keyframe_only,
        watchdog: secs(raw.watchdog_s.unwrap_or(ingest.watchdog_s)),
        utc_offset_s,
        preset: raw.preset,
        footage,
        location: raw.location.clone(),
        platform: raw.platform.clone().unwrap_or_else(|| "default".into()),
        continuous: raw.continuous,
        visit_s: raw.visit_s,
        revisit_s: raw.revisit_s,
        detect_crops,
        look_closer: raw.detect_crops.is_none(),
        gate_regions: match raw.gate_scope.unwrap_or(GateScope::Zones) {
            GateScope::Zones => zones.iter().map(|z| z.polygon.bounds()).collect(),
            GateScope::Frame => Vec::new(),
        },
        detect_region: match raw.detect_region.unwrap_or(DetectRegion::Frame) {
            DetectRegion::Frame => None,
            DetectRegion::Zones => zones_region(&zones, gate.zone_margin),
            DetectRegion::Auto => zones_region(&zones, gate.zone_margin)
                .filter(|r| (r[2] - r[0]) * (r[3] - r[1]) <= gate.crop_max_share),
        },
        zones,
        rules,
    })
}

/// A box cut into `n`×`n` tiles that overlap by a quarter of a tile.
pub(crate) fn tiles(b: &BBox, n: u32) -> Vec<BBox> {
    let n = n as f32;
    // Tile size t with n tiles stepping 3/4 t: t (1 + 3/4 (n - 1)) = size.
    let (w, h) = (b[2] - b[0], b[3] - b[1]);
    let (tw, th) = (w / (1.0 + 0.75 * (n - 1.0)), h / (1.0 + 0.75 * (n - 1.0)));
    let mut out = Vec::new();
    for j in 0..n as u32 {
        for i in 0..n as u32 {
            let (x, y) = (b[0] + i as f32 * 0.75 * tw, b[1] + j as f32 * 0.75 * th);
            out.push([x, y, (x + tw).min(b[2]), (y + th).min(b[3])]);
        }
    }
    out
}

pub(crate) enum UrlKind {
    Rtsp,
    File(PathBuf),
}

/// Checks a camera URL. The error message never contains the URL's credentials.
pub(crate) fn parse_source_url(raw: &str, base: &Path) -> Result<UrlKind, String> {
    let Some((scheme, rest)) = raw.split_once("://") else {
        return Err(format!(
            "not a URL (expected rtsp://host/path or file://path), got {:?}",
            redact_url(raw)
        ));
    };
    match scheme.to_ascii_lowercase().as_str() {
        "rtsp" => {
            let parsed = url::Url::parse(raw)
                .map_err(|e| format!("malformed RTSP URL {:?}: {e}", redact_url(raw)))?;
            if parsed.host_str().is_none_or(str::is_empty) {
                return Err(format!("RTSP URL has no host: {:?}", redact_url(raw)));
            }
            Ok(UrlKind::Rtsp)
        }
        "file" => {
            if rest.is_empty() {
                return Err("file URL has no path".into());
            }
            let path = Path::new(rest);
            let path = if path.is_absolute() {
                path.to_path_buf()
            } else {
                base.join(path)
            };
            Ok(UrlKind::File(path))
        }
        other => Err(format!(
            "unsupported scheme {other:?} (expected \"rtsp\" or \"file\")"
        )),
    }
}

/// The `[[cameras]]` array, each entry read on its own so one bad camera does not hide the
/// others' problems: (index, camera) for each that parsed.
pub(super) fn raw_cameras(
    table: &toml::Table,
    problems: &mut Vec<ConfigProblem>,
) -> Vec<(usize, RawCamera)> {
    let mut raw_cameras = Vec::new();
    match table.get("cameras") {
        None => problems.push(ConfigProblem {
            path: "cameras".into(),
            message: "at least one camera is required".into(),
        }),
        Some(toml::Value::Array(items)) => {
            if items.is_empty() {
                problems.push(ConfigProblem {
                    path: "cameras".into(),
                    message: "at least one camera is required".into(),
                });
            }
            for (i, item) in items.iter().enumerate() {
                let p = format!("cameras[{i}]");
                if let Some(c) = typed::<RawCamera>(item.clone(), &p, problems) {
                    raw_cameras.push((i, c));
                }
            }
        }
        Some(_) => problems.push(ConfigProblem {
            path: "cameras".into(),
            message: "must be an array of tables ([[cameras]])".into(),
        }),
    }
    raw_cameras
}
