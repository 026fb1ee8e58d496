//! The status summary: captures per day per rule, the confirmation rate per rule and
//! camera, rejection reasons, and the time from a capture to its filing and to an
//! operator's decision (wall time), aggregated from the last 30 days of outcomes.

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
    /// rule → (p50, p90) seconds from the capture being recorded to its case being filed,
    /// both wall time (never stream time, which is a replay's own date).
    pub filing_latency_s: BTreeMap<String, (f64, f64)>,
    /// rule → (p50, p90) seconds from the capture being recorded to an operator's decision.
    pub decision_latency_s: BTreeMap<String, (f64, f64)>,
    /// rejection reason → how many.
    pub rejection_reasons: BTreeMap<String, u64>,
    /// Captures of recorded footage (replay, eval): their stream time is more than a day from
    /// when they were recorded, so their days are the footage's days.
    pub replayed: u64,
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// A capture whose stream time is this far from its recording time came from recorded
/// footage, not a live camera.
const REPLAYED_S: f64 = 86_400.0;

/// Sums up the outcomes; days are days of the reporting time zone.
pub fn summarise(rows: &[Outcome], utc_offset_s: i32) -> Summary {
    let mut s = Summary::default();
    let mut filing: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut deciding: BTreeMap<String, Vec<f64>> = BTreeMap::new();
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
        if (r.created_at - r.confirm_at).abs() > REPLAYED_S {
            s.replayed += 1;
        }
        if let Some(f) = r.filed_at {
            filing
                .entry(r.rule.clone())
                .or_default()
                .push((f - r.created_at).max(0.0));
        }
        if let Some(d) = r.decided_at {
            deciding
                .entry(r.rule.clone())
                .or_default()
                .push((d - r.created_at).max(0.0));
        }
        if let Some(reason) = &r.reason {
            *s.rejection_reasons.entry(reason.clone()).or_default() += 1;
        }
    }
    for rates in s.per_rule_camera.values_mut() {
        let decided = rates.confirmed + rates.rejected;
        rates.confirmation_rate = (decided > 0).then(|| rates.confirmed as f64 / decided as f64);
    }
    for (into, from) in [
        (&mut s.filing_latency_s, filing),
        (&mut s.decision_latency_s, deciding),
    ] {
        for (rule, mut v) in from {
            let p50 = pct(&mut v, 0.5);
            let p90 = pct(&mut v, 0.9);
            into.insert(rule, (p50, p90));
        }
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
            // Recorded 5 s after the rule was met, decided 2 minutes later.
            created_at: t + 5.0,
            decided_at: (status != "pending_review").then_some(t + 125.0),
            reason: (status == "rejected").then(|| "duplicate".into()),
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
        // Wall time from recording to filing: 55 s and 595 s.
        assert_eq!(s.filing_latency_s["abandoned_vehicle"], (595.0, 595.0));
        assert_eq!(s.decision_latency_s["abandoned_vehicle"], (120.0, 120.0));
        assert_eq!(s.rejection_reasons["duplicate"], 1);
        assert_eq!(s.replayed, 0);
    }

    #[test]
    fn recorded_footage_is_counted_as_replayed_and_its_latency_is_wall_time() {
        // Footage from a year ago, replayed today: confirmed (stream time) long before it
        // was recorded; filing 3 s after recording.
        let stream = 1_735_689_600.0;
        let now = stream + 365.0 * 86400.0;
        let mut r = o("abandoned_vehicle", "a", stream, "filed", Some(now + 3.0));
        r.created_at = now;
        let s = summarise(&[r], 8 * 3600);
        assert_eq!(s.replayed, 1);
        assert_eq!(s.filing_latency_s["abandoned_vehicle"], (3.0, 3.0));
    }
}
