//! The status summary: captures per day per rule, the confirmation rate per rule and
//! camera, rejection reasons, and the time from a capture to its filing and to an
//! operator's first decision (wall time), over the last 30 days up to the newest capture.
//! It is read from the store's tallies (`store::tally`), so it costs the same at a year's
//! volume as on the first day.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::store::tally::{Recent, Tally};

/// The days the summary covers.
pub const WINDOW_DAYS: i64 = 30;

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
    /// "rule / camera" → rates (the last 30 UTC days).
    pub per_rule_camera: BTreeMap<String, Rates>,
    /// rule → (p50, p90) seconds from the capture being recorded to its case being filed,
    /// both wall time (never stream time, which is a replay's own date). Each figure is
    /// the upper bound of its latency bin (`store::tally::LATENCY_BINS`); infinite past
    /// the last bin.
    pub filing_latency_s: BTreeMap<String, (f64, f64)>,
    /// rule → (p50, p90) seconds from the capture being recorded to an operator's first
    /// decision, likewise.
    pub decision_latency_s: BTreeMap<String, (f64, f64)>,
    /// rejection reason → how many.
    pub rejection_reasons: BTreeMap<String, u64>,
    /// Captures of recorded footage (replay, eval): their stream time is more than a day from
    /// when they were recorded, so their days are the footage's days.
    pub replayed: u64,
}

/// A latency bin's upper bound in seconds ("inf": infinite).
fn bin_bound(label: &str) -> f64 {
    label.parse().unwrap_or(f64::INFINITY)
}

/// The p-quantile of binned latencies: the bound of the bin that holds the
/// `round((n - 1) p)`-th latency in order.
fn pct(bins: &BTreeMap<u64, u64>, p: f64) -> f64 {
    let n: u64 = bins.values().sum();
    let k = ((n.saturating_sub(1)) as f64 * p).round() as u64;
    let mut seen = 0;
    for (bound, count) in bins {
        seen += count;
        if seen > k {
            return if *bound == u64::MAX {
                f64::INFINITY
            } else {
                *bound as f64
            };
        }
    }
    f64::INFINITY
}

/// Per rule, (p50, p90) of the binned latencies.
fn quantiles(rows: &[Tally]) -> BTreeMap<String, (f64, f64)> {
    let mut by: BTreeMap<String, BTreeMap<u64, u64>> = BTreeMap::new();
    for t in rows {
        let bound = bin_bound(&t.status);
        let key = if bound.is_finite() {
            bound as u64
        } else {
            u64::MAX
        };
        *by.entry(t.rule.clone())
            .or_default()
            .entry(key)
            .or_default() += t.n.max(0) as u64;
    }
    by.into_iter()
        .filter(|(_, b)| b.values().sum::<u64>() > 0)
        .map(|(rule, b)| (rule, (pct(&b, 0.5), pct(&b, 0.9))))
        .collect()
}

/// Sums up the window's tallies; days are days of the reporting time zone (hours are
/// grouped into them, exact for the whole-hour offsets of China and most zones).
pub fn summarise(r: &Recent, utc_offset_s: i32) -> Summary {
    let mut s = Summary::default();
    for t in &r.hours {
        let day = crate::model::package::format_time(t.bucket as f64 * 3600.0, utc_offset_s)
            .get(..10)
            .unwrap_or("")
            .to_string();
        *s.per_day
            .entry(day)
            .or_default()
            .entry(t.rule.clone())
            .or_default() += t.n.max(0) as u64;
    }
    for t in &r.days {
        let rates = s
            .per_rule_camera
            .entry(format!("{} / {}", t.rule, t.camera))
            .or_default();
        let n = t.n.max(0) as u64;
        rates.captures += n;
        match t.status.as_str() {
            "filed" => rates.confirmed += n,
            "rejected" => rates.rejected += n,
            _ => {}
        }
    }
    s.per_rule_camera.retain(|_, r| r.captures > 0);
    for rates in s.per_rule_camera.values_mut() {
        let decided = rates.confirmed + rates.rejected;
        rates.confirmation_rate = (decided > 0).then(|| rates.confirmed as f64 / decided as f64);
    }
    s.per_day.retain(|_, m| {
        m.retain(|_, n| *n > 0);
        !m.is_empty()
    });
    s.replayed = r.replayed.iter().map(|t| t.n.max(0) as u64).sum();
    for t in &r.reasons {
        *s.rejection_reasons.entry(t.status.clone()).or_default() += t.n.max(0) as u64;
    }
    s.filing_latency_s = quantiles(&r.filing);
    s.decision_latency_s = quantiles(&r.decision);
    s
}

/// The last day's capacity and health, per hour of the reporting time zone: the mean over
/// the hour's samples of each sample time's sum over the processes that sampled.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct LastDay {
    /// "HH:00" of each hour with samples, oldest first.
    pub hours: Vec<String>,
    pub streaming: Vec<f64>,
    pub unhealthy: Vec<f64>,
    pub off_view: Vec<f64>,
    /// Frames analysed per minute, and of those the detector ran on.
    pub analysed_per_min: Vec<f64>,
    pub inferences_per_min: Vec<f64>,
}

/// Groups the samples of the last day by hour (see [`LastDay`]).
pub fn last_day(samples: &[crate::store::samples::HealthSample], utc_offset_s: i32) -> LastDay {
    // Each sample time's sum over the sources, then each hour's mean of those.
    let mut at: BTreeMap<i64, [f64; 5]> = BTreeMap::new();
    for s in samples {
        let v = at.entry(s.at.round() as i64).or_default();
        for (i, x) in [
            s.streaming,
            s.unhealthy,
            s.off_view,
            s.analysed_per_min,
            s.inferences_per_min,
        ]
        .into_iter()
        .enumerate()
        {
            v[i] += x as f64;
        }
    }
    let mut hours: BTreeMap<i64, ([f64; 5], f64)> = BTreeMap::new();
    for (t, v) in at {
        let h = hours.entry(t.div_euclid(3600)).or_default();
        for (sum, x) in h.0.iter_mut().zip(v) {
            *sum += x;
        }
        h.1 += 1.0;
    }
    let mut d = LastDay::default();
    for (h, (sum, n)) in hours {
        let label = crate::model::package::format_time(h as f64 * 3600.0, utc_offset_s);
        d.hours
            .push(format!("{}:00", label.get(11..13).unwrap_or("??")));
        d.streaming.push(sum[0] / n);
        d.unhealthy.push(sum[1] / n);
        d.off_view.push(sum[2] / n);
        d.analysed_per_min.push(sum[3] / n);
        d.inferences_per_min.push(sum[4] / n);
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tally::{hour, latency_bin};

    fn t(bucket: i64, rule: &str, camera: &str, status: &str, n: i64) -> Tally {
        Tally {
            bucket,
            rule: rule.into(),
            camera: camera.into(),
            status: status.into(),
            n,
        }
    }

    #[test]
    fn days_rates_reasons_and_binned_latencies() {
        let d1 = 1_767_574_800.0; // 2026-01-05 09:00 +08:00
        let d2 = d1 + 86400.0;
        // 2026-01-05 23:30 +08:00 is still the 5th there, though the 5th's 15:30 UTC.
        let late = d1 + 14.5 * 3600.0;
        let r = Recent {
            hours: vec![
                t(hour(d1), "abandoned_vehicle", "", "filed", 1),
                t(hour(d1), "abandoned_vehicle", "", "rejected", 1),
                t(hour(late), "abandoned_vehicle", "", "filed", 1),
                t(hour(d2), "abandoned_vehicle", "", "filed", 1),
                t(hour(d2), "illegal_vendor", "", "pending_review", 1),
                // A status moved away leaves a zero behind: not a day with captures.
                t(hour(d2) + 30, "overflowing_bin", "", "pending_review", 0),
            ],
            days: vec![
                t(20458, "abandoned_vehicle", "a", "filed", 2),
                t(20458, "abandoned_vehicle", "a", "rejected", 1),
                t(20459, "illegal_vendor", "b", "pending_review", 1),
            ],
            replayed: vec![],
            reasons: vec![t(hour(d1), "", "", "duplicate", 1)],
            filing: vec![
                t(hour(d1), "abandoned_vehicle", "", &latency_bin(55.0), 1),
                t(hour(d2), "abandoned_vehicle", "", &latency_bin(595.0), 1),
                t(hour(d2), "abandoned_vehicle", "", &latency_bin(9e6), 1),
            ],
            decision: vec![t(hour(d1), "abandoned_vehicle", "", &latency_bin(120.0), 2)],
        };
        let s = summarise(&r, 8 * 3600);
        assert_eq!(s.per_day["2026-01-05"]["abandoned_vehicle"], 3);
        assert_eq!(s.per_day["2026-01-06"]["abandoned_vehicle"], 1);
        assert_eq!(s.per_day["2026-01-06"]["illegal_vendor"], 1);
        assert_eq!(s.per_day.len(), 2);
        let a = &s.per_rule_camera["abandoned_vehicle / a"];
        assert_eq!((a.captures, a.confirmed, a.rejected), (3, 2, 1));
        assert!((a.confirmation_rate.unwrap() - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(
            s.per_rule_camera["illegal_vendor / b"].confirmation_rate,
            None
        );
        // Bins: 55 s in "60", 595 s in "600", 9e6 s past the last bin. The median is the
        // second of three, the 90th percentile the third.
        assert_eq!(latency_bin(55.0), "60");
        assert_eq!(latency_bin(595.0), "600");
        assert_eq!(latency_bin(60.0), "60");
        assert_eq!(latency_bin(9e6), "inf");
        assert_eq!(s.filing_latency_s["abandoned_vehicle"].0, 600.0);
        assert!(s.filing_latency_s["abandoned_vehicle"].1.is_infinite());
        assert_eq!(s.decision_latency_s["abandoned_vehicle"], (120.0, 120.0));
        assert_eq!(s.rejection_reasons["duplicate"], 1);
        assert_eq!(s.replayed, 0);
    }

    #[test]
    fn the_last_day_sums_the_processes_and_averages_each_hour() {
        use crate::store::samples::HealthSample;
        let s =
            |at: f64, source: &str, streaming: i64, unhealthy: i64, analysed: i64| HealthSample {
                at,
                source: source.into(),
                cameras: streaming + unhealthy,
                streaming,
                unhealthy,
                off_view: 0,
                analysed_per_min: analysed,
                inferences_per_min: analysed / 2,
            };
        // 2026-01-05 09:00 +08:00, two workers; then 09:05 one camera down; then 10:00.
        let h9 = 1_767_574_800.0;
        let d = last_day(
            &[
                s(h9, "w1", 3, 0, 30),
                s(h9, "w2", 2, 0, 20),
                s(h9 + 300.0, "w1", 2, 1, 20),
                s(h9 + 300.0, "w2", 2, 0, 20),
                s(h9 + 3600.0, "w1", 3, 0, 30),
            ],
            8 * 3600,
        );
        assert_eq!(d.hours, ["09:00", "10:00"]);
        assert_eq!(d.streaming, [4.5, 3.0]);
        assert_eq!(d.unhealthy, [0.5, 0.0]);
        assert_eq!(d.analysed_per_min, [45.0, 30.0]);
        assert_eq!(d.inferences_per_min, [22.5, 15.0]);
    }

    #[test]
    fn recorded_footage_is_counted_as_replayed() {
        let r = Recent {
            replayed: vec![t(hour(1_735_689_600.0), "abandoned_vehicle", "", "", 2)],
            ..Default::default()
        };
        assert_eq!(summarise(&r, 8 * 3600).replayed, 2);
    }
}
