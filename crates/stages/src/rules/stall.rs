//! Stalls: a vendor's goods, table, umbrella or cart are one thing, not one episode per
//! orange. The vendor rule judges stalls, which this module forms from the camera's open
//! stall-part episodes by place and by time:
//!
//! - two parts are *linked* when the gap between their places is at most [`LINK_GAP`] times
//!   the stall's scale (the larger part, or the height of the person last seen tending
//!   either, whichever is larger: a person is about 1.7 m, so parts within about 0.7 m are
//!   one stall and stalls a metre or more apart stay two), and when both have stood
//!   together for a while (their lives overlap by the co-occurrence time), so a passer-by's
//!   bag or one frame's stray label does not bridge two stalls;
//! - a stall is a set of parts joined by links, however far the chain reaches (the two
//!   halves of a table that a tile seam cut abut, and so link).
//!
//! Distances are measured in units of the frame's width (y is scaled by the frame's aspect),
//! so a gap means the same across and down the picture.

use crate::detect::BBox;
use crate::episodes::Episode;

/// Parts whose gap is at most this share of the stall's scale are one stall.
pub const LINK_GAP: f32 = 0.4;
/// Parts must have stood together this long (or half the rule's dwell, if shorter) to link.
pub const CO_OCCUR_S: f64 = 10.0;

/// A box in units of the frame's width: x as is, y divided by the aspect (width / height).
fn square(b: &BBox, aspect: f32) -> BBox {
    [b[0], b[1] / aspect, b[2], b[3] / aspect]
}

/// The larger side of a box.
fn side(b: &BBox) -> f32 {
    (b[2] - b[0]).max(b[3] - b[1]).max(0.0)
}

/// The gap between two boxes (0 when they touch or overlap).
fn gap(a: &BBox, b: &BBox) -> f32 {
    let gx = (a[0] - b[2]).max(b[0] - a[2]).max(0.0);
    let gy = (a[1] - b[3]).max(b[1] - a[3]).max(0.0);
    (gx * gx + gy * gy).sqrt()
}

/// The last time an episode's place showed its object.
fn last(e: &Episode) -> f64 {
    e.last_present.max(e.last_seen)
}

/// Whether two parts are of one stall: near for the stall's scale, and standing together
/// for `co_occur_s`.
pub fn linked(a: &Episode, b: &Episode, aspect: f32, co_occur_s: f64) -> bool {
    let together = last(a).min(last(b)) - a.first_seen.max(b.first_seen);
    if together < co_occur_s {
        return false;
    }
    let (pa, pb) = (square(&a.anchor, aspect), square(&b.anchor, aspect));
    let tending = |e: &Episode| e.attendant_h.unwrap_or(0.0) / aspect;
    let scale = side(&pa).max(side(&pb)).max(tending(a)).max(tending(b));
    gap(&pa, &pb) <= LINK_GAP * scale
}

/// Groups the parts `members` (indexes into `open`) into stalls: each stall is a list of
/// indexes into `open`, in the order given; stalls come in the order of their first part.
pub fn group(open: &[Episode], members: &[usize], aspect: f32, co_occur_s: f64) -> Vec<Vec<usize>> {
    // Union-find over `members`' positions.
    let n = members.len();
    let mut parent: Vec<usize> = (0..n).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for i in 0..n {
        for j in i + 1..n {
            if linked(&open[members[i]], &open[members[j]], aspect, co_occur_s) {
                let (a, b) = (root(&mut parent, i), root(&mut parent, j));
                if a != b {
                    parent[a.max(b)] = a.min(b);
                }
            }
        }
    }
    let mut stalls: Vec<(usize, Vec<usize>)> = Vec::new();
    for (i, &m) in members.iter().enumerate() {
        let r = root(&mut parent, i);
        match stalls.iter_mut().find(|(k, _)| *k == r) {
            Some((_, v)) => v.push(m),
            None => stalls.push((r, vec![m])),
        }
    }
    stalls.into_iter().map(|(_, v)| v).collect()
}

/// What was seen in a stall, for operators: each label once with its count, most first
/// (`orange×3`, `dining table`).
pub fn inventory<'a>(labels: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for l in labels {
        match counts.iter_mut().find(|(k, _)| *k == l) {
            Some((_, n)) => *n += 1,
            None => counts.push((l, 1)),
        }
    }
    counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    counts
        .into_iter()
        .map(|(l, n)| {
            if n > 1 {
                format!("{l}×{n}")
            } else {
                l.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::ObjectKind;
    use proptest::prelude::*;

    fn part(id: u64, label: &str, b: BBox, from: f64, to: f64) -> Episode {
        Episode {
            id,
            kind: ObjectKind::StallPart,
            label: label.into(),
            anchor: b,
            last_box: b,
            signature: None,
            first_seen: from,
            last_seen: to,
            hits: 5,
            best_score: 0.6,
            last_score: 0.6,
            resolved: Vec::new(),
            deferred: Vec::new(),
            person_near: None,
            person_since: None,
            attendant_h: None,
            held: to,
            last_present: to,
            clear_frames: 0,
            patch: None,
            embedding: None,
            plate: None,
        }
    }

    const ASPECT: f32 = 16.0 / 9.0;

    fn all(open: &[Episode]) -> Vec<Vec<usize>> {
        let idx: Vec<usize> = (0..open.len()).collect();
        group(open, &idx, ASPECT, CO_OCCUR_S)
    }

    #[test]
    fn the_fruit_of_one_stall_is_one_stall() {
        // Four piles of fruit on a far stall (each a tenth of the stall), with its table.
        let open = vec![
            part(1, "orange", [0.100, 0.60, 0.115, 0.62], 0.0, 100.0),
            part(2, "orange", [0.120, 0.60, 0.135, 0.62], 2.0, 100.0),
            part(3, "donut", [0.150, 0.605, 0.162, 0.62], 5.0, 100.0),
            part(4, "dining table", [0.095, 0.61, 0.19, 0.68], 1.0, 100.0),
        ];
        assert_eq!(all(&open), vec![vec![0, 1, 2, 3]]);
    }

    #[test]
    fn piles_without_a_table_are_one_stall_through_the_person_tending_them() {
        // Goods spread along a kerb with gaps of twice their size: alone they do not link,
        // but the vendor beside them (a person ~0.15 of the frame's height) gives the scale.
        let mut open = vec![
            part(1, "orange", [0.10, 0.60, 0.11, 0.615], 0.0, 100.0),
            part(2, "banana", [0.13, 0.60, 0.14, 0.615], 0.0, 100.0),
            part(3, "apple", [0.16, 0.60, 0.17, 0.615], 0.0, 100.0),
        ];
        assert_eq!(all(&open).len(), 3);
        for e in &mut open {
            e.attendant_h = Some(0.15);
        }
        assert_eq!(all(&open), vec![vec![0, 1, 2]]);
    }

    #[test]
    fn a_table_cut_by_a_tile_seam_is_one_stall() {
        // The left and right halves of one table, each found in its own tile.
        let open = vec![
            part(1, "dining table", [0.30, 0.60, 0.375, 0.70], 0.0, 60.0),
            part(2, "dining table", [0.376, 0.61, 0.44, 0.70], 3.0, 60.0),
        ];
        assert_eq!(all(&open), vec![vec![0, 1]]);
    }

    #[test]
    fn two_stalls_a_few_metres_apart_stay_two() {
        // Two tables, each with its vendor (0.3 of the frame's height), with two tables'
        // widths between them.
        let mut open = vec![
            part(1, "dining table", [0.10, 0.60, 0.20, 0.70], 0.0, 100.0),
            part(2, "orange", [0.12, 0.58, 0.15, 0.61], 0.0, 100.0),
            part(3, "dining table", [0.40, 0.60, 0.50, 0.70], 0.0, 100.0),
            part(4, "banana", [0.42, 0.58, 0.45, 0.61], 0.0, 100.0),
        ];
        for e in &mut open {
            e.attendant_h = Some(0.3);
        }
        assert_eq!(all(&open), vec![vec![0, 1], vec![2, 3]]);
    }

    #[test]
    fn parts_that_never_stood_together_are_not_linked() {
        // A bag put down for 5 s beside a stall that has stood for a minute: not yet part of
        // it; after standing with it for 10 s it is.
        let mut open = vec![
            part(1, "dining table", [0.10, 0.60, 0.20, 0.70], 0.0, 60.0),
            part(2, "handbag", [0.20, 0.62, 0.23, 0.68], 55.0, 60.0),
        ];
        assert_eq!(all(&open).len(), 2);
        open[0].last_present = 70.0;
        open[1].last_present = 70.0;
        assert_eq!(all(&open).len(), 1);
    }

    #[test]
    fn the_inventory_counts_each_label() {
        assert_eq!(
            inventory(["orange", "donut", "orange", "orange"]),
            vec!["orange×3".to_string(), "donut".to_string()]
        );
    }

    proptest! {
        /// However a stall's box is cut into tiles (the parts the detector finds in each),
        /// the pieces form one stall, and a second stall far to its right stays apart.
        #[test]
        fn a_stall_cut_into_tiles_is_one_stall_and_a_far_one_stays_apart(
            x0 in 0.0f32..0.3, y0 in 0.2f32..0.7, w in 0.03f32..0.2, h in 0.03f32..0.2,
            cuts in proptest::collection::vec(0.05f32..0.95, 0..4),
            starts in proptest::collection::vec(0.0f64..20.0, 5),
        ) {
            let mut xs: Vec<f32> = cuts.iter().map(|c| x0 + c * w).collect();
            xs.push(x0);
            xs.push(x0 + w);
            xs.sort_by(f32::total_cmp);
            xs.dedup();
            let mut open = Vec::new();
            for (i, p) in xs.windows(2).enumerate() {
                let s = starts[i % starts.len()];
                open.push(part(i as u64, "dining table", [p[0], y0, p[1], y0 + h], s, 120.0));
            }
            let n = open.len();
            // Another stall of the same size, three of its widths to the right.
            let far = x0 + w * 4.0;
            open.push(part(99, "umbrella", [far, y0, far + w, y0 + h], 0.0, 120.0));
            let stalls = all(&open);
            prop_assert_eq!(stalls.len(), 2, "{:?}", stalls);
            prop_assert_eq!(stalls[0].len(), n);
            prop_assert_eq!(&stalls[1], &vec![n]);
        }
    }
}
