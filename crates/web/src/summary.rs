//! The status summary: captures per day per rule, the confirmation rate per rule and
//! camera, and capture-to-filing latency, aggregated from the last 30 days of outcomes.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::store::query::Outcome;

#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct Rates {
    pub captures: u64,
    pub confirmed: u64,
    pub rejected: u64,
    /// confirmed / (confirmed + rejected), when anything was decided.
    pub confirmation_rate: Option<f64>,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// day (YYYY-MM-DD, reporting time zone) → rule → captures.
    pub per_day: BTreeMap<String, BTreeMap<String, u64>>,
    /// "rule / camera" → rates.
    pub per_rule_camera: BTreeMap<String, Rates>,
    /// rule → (p50, p90) seconds from confirmation to the case being filed.
    pub filing_latency_s: BTreeMap<String, (f64, f64)>,
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// Sums up the outcomes; days are days of the reporting time zone.
pub fn summarise(rows: &[Outcome], utc_offset_s: i32) -> Summary {
    let mut s = Summary::default();
    let mut latencies: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for r in rows {
        let day = crate::model::package::format_time(r.confirm_at, utc_offset_s)
            .get(..10)
            .unwrap_or("")
            .to_string();
        *s.per_day
            .entry(day)
            .or_default()
            .entry(r.rule.clone())
            .or_default() += 1;
        let rates = s
            .per_rule_camera
            .entry(format!("{} / {}", r.rule, r.camera))
            .or_default();
        rates.captures += 1;
        match r.status.as_str() {
            "filed" => rates.confirmed += 1,
            "rejected" => rates.rejected += 1,
            _ => {}
        }
        if let Some(f) = r.filed_at {
            latencies
                .entry(r.rule.clone())
                .or_default()
                .push((f - r.confirm_at).max(0.0));
        }
    }
    for rates in s.per_rule_camera.values_mut() {
        let decided = rates.confirmed + rates.rejected;
        rates.confirmation_rate = (decided > 0).then(|| rates.confirmed as f64 / decided as f64);
    }
    for (rule, mut v) in latencies {
        let p50 = pct(&mut v, 0.5);
        let p90 = pct(&mut v, 0.9);
        s.filing_latency_s.insert(rule, (p50, p90));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(rule: &str, cam: &str, t: f64, status: &str, filed: Option<f64>) -> Outcome {
        Outcome {
            rule: rule.into(),
            camera: cam.into(),
            confirm_at: t,
            status: status.into(),
            filed_at: filed,
        }
    }

    #[test]
    fn days_rates_and_latencies() {
        let d1 = 1_767_574_800.0; // 2026-01-05 09:00 +08:00
        let d2 = d1 + 86400.0;
        let s = summarise(
            &[
                o("abandoned_vehicle", "a", d1, "filed", Some(d1 + 60.0)),
                o("abandoned_vehicle", "a", d1 + 10.0, "rejected", None),
                o("abandoned_vehicle", "a", d2, "filed", Some(d2 + 600.0)),
                o("illegal_vendor", "b", d2, "pending_review", None),
            ],
            8 * 3600,
        );
        assert_eq!(s.per_day["2026-01-05"]["abandoned_vehicle"], 2);
        assert_eq!(s.per_day["2026-01-06"]["illegal_vendor"], 1);
        let r = &s.per_rule_camera["abandoned_vehicle / a"];
        assert_eq!((r.captures, r.confirmed, r.rejected), (3, 2, 1));
        assert!((r.confirmation_rate.unwrap() - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(
            s.per_rule_camera["illegal_vendor / b"].confirmation_rate,
            None
        );
        assert_eq!(s.filing_latency_s["abandoned_vehicle"], (600.0, 600.0));
    }
}
