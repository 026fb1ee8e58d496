//! `[patrol]`: cameras visited in turn under each platform's stream cap, and its validation.

use super::*;

/// `[patrol]`: visiting cameras in turn under each video platform's cap on concurrent pulls.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatrolSettings {
    /// Most concurrent stream pulls per platform; every camera's `platform` must be listed.
    pub caps: std::collections::BTreeMap<String, usize>,
    /// Default visit length. Default 20 s.
    #[serde(default = "default_visit_s")]
    pub visit_s: f64,
    /// Default revisit period (from one visit's start to the next). Default 300 s.
    #[serde(default = "default_revisit_s")]
    pub revisit_s: f64,
    /// Cameras with open episodes are due after `revisit_s / hot_factor`. Default 3.
    #[serde(default = "default_hot_factor")]
    pub hot_factor: f64,
}

pub(crate) fn default_visit_s() -> f64 {
    20.0
}

pub(crate) fn default_revisit_s() -> f64 {
    300.0
}

pub(crate) fn default_hot_factor() -> f64 {
    3.0
}

/// `[patrol]` against the cameras: caps, periods, and continuous cameras within their caps.
pub(crate) fn validate_patrol(
    pt: &PatrolSettings,
    cameras: &[CameraConfig],
    problems: &mut Vec<ConfigProblem>,
) {
    let mut bad = |path: String, message: String| problems.push(ConfigProblem { path, message });
    for (k, cap) in &pt.caps {
        if *cap == 0 {
            bad(format!("patrol.caps.{k}"), "must be at least 1".into());
        }
    }
    if !(pt.visit_s.is_finite() && pt.visit_s > 0.0) {
        bad(
            "patrol.visit_s".into(),
            format!("must be > 0, got {}", pt.visit_s),
        );
    }
    if !(pt.revisit_s.is_finite() && pt.revisit_s >= pt.visit_s) {
        bad(
            "patrol.revisit_s".into(),
            format!(
                "must be at least visit_s ({}), got {}",
                pt.visit_s, pt.revisit_s
            ),
        );
    }
    if !(pt.hot_factor.is_finite() && pt.hot_factor >= 1.0) {
        bad(
            "patrol.hot_factor".into(),
            format!("must be ≥ 1, got {}", pt.hot_factor),
        );
    }
    let mut continuous: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, c) in cameras.iter().enumerate().filter(|(_, c)| c.enabled) {
        if !pt.caps.contains_key(&c.platform) {
            bad(
                format!("cameras[{i}].platform"),
                format!("{:?} has no cap in [patrol] caps", c.platform),
            );
        }
        let visit = c.visit_s.unwrap_or(pt.visit_s);
        let revisit = c.revisit_s.unwrap_or(pt.revisit_s);
        if !(visit.is_finite() && visit > 0.0) {
            bad(
                format!("cameras[{i}].visit_s"),
                format!("must be > 0, got {visit}"),
            );
        }
        if !(revisit.is_finite() && revisit >= visit) {
            bad(
                format!("cameras[{i}].revisit_s"),
                format!("must be at least the visit ({visit} s), got {revisit}"),
            );
        }
        if c.continuous {
            *continuous.entry(&c.platform).or_default() += 1;
        }
    }
    for (platform, n) in continuous {
        if let Some(cap) = pt.caps.get(platform)
            && n > *cap
        {
            bad(
                format!("patrol.caps.{platform}"),
                format!("{n} continuous cameras need more than the cap of {cap}"),
            );
        }
    }
}
