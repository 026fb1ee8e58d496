//! Zones (polygons in normalised coordinates, so they survive resolution changes) and active
//! hours (in the camera's time zone).

use serde::{Deserialize, Serialize};

use super::geometry::BBox;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ZoneKind {
    /// No vending allowed (占道经营 enforcement area).
    NoVending,
    /// No parking (enforcement area for abandoned vehicles).
    NoParking,
    /// A bin and its surroundings.
    Bin,
    /// A whitelisted vending point (疏导点): excluded from illegal_vendor.
    VendingAllowed,
    /// Ignored entirely.
    Mask,
}

/// Masks an admin draws on a camera's picture beyond the config's zones are named
/// `drawn-mask-<n>`: masks (ignored by every rule) that live only in the case database.
pub const DRAWN_MASK: &str = "drawn-mask-";

/// Whether `id` names a mask drawn on the picture (`drawn-mask-` and up to six digits).
pub fn is_drawn_mask(id: &str) -> bool {
    id.strip_prefix(DRAWN_MASK)
        .is_some_and(|n| (1..=6).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_digit()))
}

/// A simple polygon, points in 0..1.
#[derive(Debug, Clone, PartialEq)]
pub struct Polygon(pub Vec<[f32; 2]>);

impl Polygon {
    /// Checks shape; the message says what is wrong.
    pub fn validate(points: &[[f32; 2]]) -> Result<Polygon, String> {
        if points.len() < 3 {
            return Err(format!("needs at least 3 points, got {}", points.len()));
        }
        for (i, p) in points.iter().enumerate() {
            if !(0.0..=1.0).contains(&p[0]) || !(0.0..=1.0).contains(&p[1]) {
                return Err(format!(
                    "point {i} ({}, {}) is outside 0..1 (coordinates are normalised to the frame)",
                    p[0], p[1]
                ));
            }
        }
        let n = points.len();
        for i in 0..n {
            for j in i + 1..n {
                // Adjacent edges share a point; skip them.
                if j == i + 1 || (i == 0 && j == n - 1) {
                    continue;
                }
                let (a, b) = (points[i], points[(i + 1) % n]);
                let (c, d) = (points[j], points[(j + 1) % n]);
                if segments_cross(a, b, c, d) {
                    return Err(format!(
                        "is self-intersecting: edge {i}-{} crosses edge {j}-{}",
                        (i + 1) % n,
                        (j + 1) % n
                    ));
                }
            }
        }
        let area = shoelace(points).abs();
        if area < 1e-6 {
            return Err("has no area".into());
        }
        Ok(Polygon(points.to_vec()))
    }

    /// Even-odd rule.
    pub fn contains(&self, x: f32, y: f32) -> bool {
        let pts = &self.0;
        let mut inside = false;
        let mut j = pts.len() - 1;
        for i in 0..pts.len() {
            let (xi, yi) = (pts[i][0], pts[i][1]);
            let (xj, yj) = (pts[j][0], pts[j][1]);
            if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
                inside = !inside;
            }
            j = i;
        }
        inside
    }

    /// The smallest box around the polygon.
    pub fn bounds(&self) -> BBox {
        let mut b = [1.0f32, 1.0, 0.0, 0.0];
        for p in &self.0 {
            b[0] = b[0].min(p[0]);
            b[1] = b[1].min(p[1]);
            b[2] = b[2].max(p[0]);
            b[3] = b[3].max(p[1]);
        }
        b
    }
}

fn shoelace(p: &[[f32; 2]]) -> f32 {
    let n = p.len();
    (0..n)
        .map(|i| p[i][0] * p[(i + 1) % n][1] - p[(i + 1) % n][0] * p[i][1])
        .sum::<f32>()
        / 2.0
}

fn orient(a: [f32; 2], b: [f32; 2], c: [f32; 2]) -> f32 {
    (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
}

/// Proper crossing, or touching/collinear overlap.
fn segments_cross(a: [f32; 2], b: [f32; 2], c: [f32; 2], d: [f32; 2]) -> bool {
    let (d1, d2) = (orient(c, d, a), orient(c, d, b));
    let (d3, d4) = (orient(a, b, c), orient(a, b, d));
    if ((d1 > 0.0 && d2 < 0.0) || (d1 < 0.0 && d2 > 0.0))
        && ((d3 > 0.0 && d4 < 0.0) || (d3 < 0.0 && d4 > 0.0))
    {
        return true;
    }
    let on = |p: [f32; 2], q: [f32; 2], r: [f32; 2]| {
        orient(p, q, r).abs() < 1e-9
            && r[0] >= p[0].min(q[0])
            && r[0] <= p[0].max(q[0])
            && r[1] >= p[1].min(q[1])
            && r[1] <= p[1].max(q[1])
    };
    on(c, d, a) || on(c, d, b) || on(a, b, c) || on(a, b, d)
}

/// The point of a box that says where the object stands: the bottom centre for things on
/// the ground (vehicles, people), the centre for the rest.
pub fn anchor_point(b: &BBox, ground: bool) -> (f32, f32) {
    let x = (b[0] + b[2]) / 2.0;
    let y = if ground { b[3] } else { (b[1] + b[3]) / 2.0 };
    (x, y)
}

/// Daily active hours: one or more `HH:MM-HH:MM` ranges (a range may cross midnight;
/// `00:00-24:00` is all day).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveHours(Vec<(u32, u32)>);

impl ActiveHours {
    pub fn always() -> Self {
        ActiveHours(vec![(0, 24 * 60)])
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || format!("cannot parse {s:?}: expected HH:MM-HH:MM[, HH:MM-HH:MM ...]");
        let mut ranges = Vec::new();
        for part in s.split(',') {
            let (a, b) = part.trim().split_once('-').ok_or_else(bad)?;
            let (a, b) = (minutes(a).ok_or_else(bad)?, minutes(b).ok_or_else(bad)?);
            if a == b || a == 24 * 60 {
                return Err(bad());
            }
            ranges.push((a, b));
        }
        Ok(ActiveHours(ranges))
    }

    /// Whether minute-of-day `m` (0..1440) is inside.
    pub fn contains_minute(&self, m: u32) -> bool {
        self.0.iter().any(|&(a, b)| {
            if a < b {
                (a..b).contains(&m)
            } else {
                m >= a || m < b
            }
        })
    }

    /// Whether a Unix time (seconds) is inside, for a UTC offset in seconds.
    pub fn contains(&self, unix_s: f64, utc_offset_s: i32) -> bool {
        let local = unix_s.floor() as i64 + utc_offset_s as i64;
        let m = local.rem_euclid(86_400) / 60;
        self.contains_minute(m as u32)
    }
}

fn minutes(s: &str) -> Option<u32> {
    let (h, m) = s.trim().split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    if m >= 60 || h > 24 || (h == 24 && m != 0) {
        return None;
    }
    Some(h * 60 + m)
}

/// Parses a fixed UTC offset such as `+08:00`.
pub fn parse_utc_offset(s: &str) -> Result<i32, String> {
    let bad = || format!("cannot parse {s:?}: expected a UTC offset like +08:00");
    let (sign, rest) = match s.as_bytes().first() {
        Some(b'+') => (1, &s[1..]),
        Some(b'-') => (-1, &s[1..]),
        _ => return Err(bad()),
    };
    let m = minutes(rest).ok_or_else(bad)?;
    if m > 14 * 60 {
        return Err(bad());
    }
    Ok(sign * m as i32 * 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polygons_are_checked() {
        assert!(
            Polygon::validate(&[[0.0, 0.0], [1.0, 0.0]])
                .unwrap_err()
                .contains("at least 3")
        );
        assert!(
            Polygon::validate(&[[0.0, 0.0], [1.2, 0.0], [0.5, 0.5]])
                .unwrap_err()
                .contains("outside 0..1")
        );
        // A bow tie.
        let e = Polygon::validate(&[[0.0, 0.0], [1.0, 1.0], [1.0, 0.0], [0.0, 1.0]]).unwrap_err();
        assert!(
            e.contains("self-intersecting: edge 0-1 crosses edge 2-3"),
            "{e}"
        );
        let sq = Polygon::validate(&[[0.2, 0.2], [0.6, 0.2], [0.6, 0.6], [0.2, 0.6]]).unwrap();
        assert!(sq.contains(0.4, 0.4));
        assert!(!sq.contains(0.7, 0.4));
        assert_eq!(sq.bounds(), [0.2, 0.2, 0.6, 0.6]);
    }

    #[test]
    fn active_hours_cross_midnight_and_use_the_offset() {
        let h = ActiveHours::parse("22:00-06:00, 12:00-13:00").unwrap();
        assert!(h.contains_minute(23 * 60));
        assert!(h.contains_minute(5 * 60 + 59));
        assert!(!h.contains_minute(6 * 60));
        assert!(h.contains_minute(12 * 60 + 30));
        assert!(
            ActiveHours::parse("00:00-24:00")
                .unwrap()
                .contains_minute(1439)
        );
        for bad in ["7-9", "25:00-26:00", "09:00", "09:00-09:00", "9:00-10:00"] {
            assert!(ActiveHours::parse(bad).is_err(), "{bad}");
        }
        // 2026-01-01T00:30:00Z is 08:30 in +08:00.
        let t = 1_767_227_400.0;
        let day = ActiveHours::parse("08:00-09:00").unwrap();
        assert!(day.contains(t, 8 * 3600));
        assert!(!day.contains(t, 0));
        assert_eq!(parse_utc_offset("+08:00"), Ok(28_800));
        assert_eq!(parse_utc_offset("-03:30"), Ok(-12_600));
        assert!(parse_utc_offset("08:00").is_err());
    }
}
