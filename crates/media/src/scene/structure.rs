//! A zone's structure, compared across light: the bin rule's scene comparison.
//!
//! A zone is sampled on its polygon (cells outside it are masked) as a grid of `SIDE`×`SIDE`
//! area-mean grey cells over its bounds. Each cell is related to four neighbours by their
//! normalised difference (difference over mean brightness, a soft census). Halving the light
//! halves both cells, so the relations stay: the comparison is gain-compensated. A cell
//! changed when one of its relations moved by more than a margin from the reference's, or
//! its brightness relative to the zone's mean moved (the smooth inside of a bag), and it counts only with changed neighbours (a bag of rubbish is a blob,
//! compression noise is speckle). The result is the changed share of the zone.

use serde::{Deserialize, Serialize};

use super::{Light, cells};
use crate::ingest::Frame;
use crate::model::{BBox, Polygon};

/// Cells per side of a zone's grid: a bag of rubbish in a 150-px bin zone covers a few.
pub const SIDE: usize = 40;
/// A neighbour relation changed when the normalised difference of the two cells moved by
/// more than this.
const REL_CHANGE: f32 = 0.2;
/// A cell changed when its brightness relative to the patch's mean moved by more than this.
const LEVEL_CHANGE: f32 = 0.3;
/// Added to a pair's mean grey, so the noise of dark cells does not count.
const ABS_MARGIN: f32 = 0.008;
/// A change is a removal when the changed cells' structure now is below this share of what
/// the reference had there.
pub const REMOVED_BELOW: f32 = 0.7;
/// A change is a person when its blob is at least this much taller than wide on the picture
/// (a standing person is about three times taller than wide; the zone cuts them off)...
pub const PERSON_ASPECT: f32 = 1.6;
/// ...fills at least this share of its bounding box...
const PERSON_FILL: f32 = 0.5;
/// ...and covers at least this share of the zone.
const PERSON_MIN_SHARE: f32 = 0.03;
/// Neighbours compared: right, down, down-right, down-left (each pair once).
const NEIGHBOURS: [(i32, i32); 4] = [(1, 0), (0, 1), (1, 1), (-1, 1)];

/// A zone against its reference ([`Patch::compare`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Comparison {
    /// Share (0..1) of the zone whose structure differs from the reference.
    pub changed: f32,
    /// `changed`, one-sided: 0 when the change took stuff away.
    pub added: f32,
    /// The change took stuff away (the reference had clearly more structure there).
    pub removal: bool,
    /// The change is shaped like a standing person: the zone is hidden, not judged.
    pub person: bool,
}

/// One zone seen in one frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Patch {
    /// Cells per side.
    pub side: usize,
    pub grey: Vec<f32>,
    pub mask: Vec<bool>,
}

/// Mean grey of the masked cells.
fn masked_mean(grey: &[f32], mask: &[bool]) -> f32 {
    let (s, n) = grey
        .iter()
        .zip(mask)
        .filter(|(_, m)| **m)
        .fold((0.0, 0usize), |(s, n), (g, _)| (s + g, n + 1));
    if n == 0 { 0.0 } else { s / n as f32 }
}

/// The normalised difference of cells `i` and `j`: their difference over their mean. Halving
/// the light halves both, so it stays.
fn rel(grey: &[f32], i: usize, j: usize) -> f32 {
    let (a, b) = (grey[i], grey[j]);
    (b - a) / ((a + b) / 2.0 + ABS_MARGIN)
}

/// The mask of a polygon's grid: cells whose centre lies inside it.
pub fn mask_of(poly: &Polygon) -> Vec<bool> {
    mask_of_side(poly, SIDE)
}

/// The mask of a polygon's `side`×`side` grid.
pub fn mask_of_side(poly: &Polygon, side: usize) -> Vec<bool> {
    let b = poly.bounds();
    let mut m = vec![false; side * side];
    for cy in 0..side {
        for cx in 0..side {
            let x = b[0] + (b[2] - b[0]) * (cx as f32 + 0.5) / side as f32;
            let y = b[1] + (b[3] - b[1]) * (cy as f32 + 0.5) / side as f32;
            m[cy * side + cx] = poly.contains(x, y);
        }
    }
    m
}

/// One 4-connected blob of changed cells ([`Patch::blobs`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Blob {
    /// Its cells' indices.
    pub cells: Vec<usize>,
    /// Its bounds in cells: first column, first row, last column, last row.
    pub bounds: [usize; 4],
}

impl Blob {
    /// Whether it is shaped like a standing person on the picture: solid (at least
    /// `PERSON_FILL` of its bounds) and at least [`PERSON_ASPECT`] times taller than wide.
    pub fn person_shaped(&self, cell_aspect: f32) -> bool {
        let b = self.bounds;
        let (w, h) = ((b[2] - b[0] + 1) as f32, (b[3] - b[1] + 1) as f32);
        self.cells.len() as f32 >= PERSON_FILL * w * h && h * cell_aspect >= PERSON_ASPECT * w
    }
}

impl Patch {
    pub fn of(frame: &Frame, poly: &Polygon) -> Self {
        Self::of_side(frame, poly, SIDE)
    }

    /// A zone at `side`×`side` cells.
    pub fn of_side(frame: &Frame, poly: &Polygon, side: usize) -> Self {
        Self {
            side,
            grey: cells(frame, &poly.bounds(), side, side),
            mask: mask_of_side(poly, side),
        }
    }

    /// A whole box at `side`×`side` cells (an object's place).
    pub fn of_box(frame: &Frame, b: &BBox, side: usize) -> Self {
        Self {
            side,
            grey: cells(frame, b, side, side),
            mask: vec![true; side * side],
        }
    }

    /// Mean grey inside the polygon.
    pub fn mean(&self) -> f32 {
        masked_mean(&self.grey, &self.mask)
    }

    pub fn light(&self) -> Light {
        Light::of_mean(self.mean())
    }

    /// Per cell: whether its structure differs from `reference`'s (before the blob filter).
    fn raw_changes(&self, reference: &[f32]) -> Vec<bool> {
        let side = self.side as i32;
        let mut out = vec![false; self.grey.len()];
        if reference.len() != self.grey.len() {
            return out;
        }
        let (now, r) = (&self.grey, reference);
        let m_now = self.mean() + ABS_MARGIN;
        let m_ref = masked_mean(r, &self.mask) + ABS_MARGIN;
        for y in 0..side {
            for x in 0..side {
                let i = (y * side + x) as usize;
                if !self.mask[i] {
                    continue;
                }
                let mut differ = 0;
                for (dx, dy) in NEIGHBOURS {
                    let (nx, ny) = (x + dx, y + dy);
                    if nx < 0 || ny < 0 || nx >= side || ny >= side {
                        continue;
                    }
                    let j = (ny * side + nx) as usize;
                    if self.mask[j] && (rel(now, i, j) - rel(r, i, j)).abs() > REL_CHANGE {
                        differ += 1;
                    }
                }
                // Gain-compensated brightness: each cell over its patch's mean. Catches the
                // smooth inside of what was added, where relations to neighbours stay alike.
                let level = (now[i] / m_now - r[i] / m_ref).abs() > LEVEL_CHANGE;
                out[i] = differ >= 1 || level;
            }
        }
        out
    }

    /// Cells whose structure differs from the reference grey grid, kept only where at least
    /// two of their eight neighbours changed too.
    pub fn changes(&self, reference: &[f32]) -> Vec<bool> {
        let raw = self.raw_changes(reference);
        let side = self.side as i32;
        let mut out = vec![false; self.grey.len()];
        for y in 0..side {
            for x in 0..side {
                let i = (y * side + x) as usize;
                if !raw[i] {
                    continue;
                }
                let mut n = 0;
                for dy in -1..=1 {
                    for dx in -1..=1 {
                        let (nx, ny) = (x + dx, y + dy);
                        if (dx, dy) != (0, 0)
                            && nx >= 0
                            && ny >= 0
                            && nx < side
                            && ny < side
                            && raw[(ny * side + nx) as usize]
                        {
                            n += 1;
                        }
                    }
                }
                out[i] = n >= 2;
            }
        }
        out
    }

    /// Share (0..1) of the zone whose structure differs from the reference.
    pub fn changed_share(&self, reference: &[f32]) -> f32 {
        let n = self.mask.iter().filter(|m| **m).count().max(1);
        self.changes(reference).iter().filter(|c| **c).count() as f32 / n as f32
    }

    /// The zone against `reference`, from one pass over its changed cells:
    /// - `changed`: the changed share ([`Self::changed_share`]);
    /// - `removal`: the change took stuff away. What was added brings edges of its own (a
    ///   bag's outline, the clutter of a heap); what was taken away takes the reference's
    ///   edges with it. So the changed cells' structure (the sum of their neighbour
    ///   relations) is weighed now and in the reference: when the reference had clearly more
    ///   ([`REMOVED_BELOW`]), the change is a removal (a cleaner emptied a bin that was full
    ///   when the reference was taken);
    /// - `added`: the one-sided share, where only *more* stuff than the reference counts
    ///   (`changed`, or 0 for a removal);
    /// - `person`: the change is a standing person the detector missed: its largest blob is
    ///   solid, reaches the top of the zone (a person stands taller than a bin), and is tall
    ///   and narrow on the picture (height over width at least [`PERSON_ASPECT`]). Such a
    ///   change says nothing about the zone: it is judged as hidden.
    ///
    /// `cell_aspect` is a cell's height over its width in pixels (the zone's pixel height
    /// over its pixel width).
    pub fn compare(&self, reference: &[f32], cell_aspect: f32) -> Comparison {
        if reference.len() != self.grey.len() {
            return Comparison::default();
        }
        let changes = self.changes(reference);
        let n = self.mask.iter().filter(|m| **m).count().max(1);
        let count = changes.iter().filter(|c| **c).count();
        let changed = count as f32 / n as f32;
        let removal = count > 0 && self.took_away(&changes, reference);
        Comparison {
            changed,
            added: if removal { 0.0 } else { changed },
            removal,
            person: self.person_blob(&changes, n, cell_aspect),
        }
    }

    /// Whether the changed cells had clearly more structure in `reference` than now.
    fn took_away(&self, changes: &[bool], reference: &[f32]) -> bool {
        let cells: Vec<usize> = (0..changes.len()).filter(|&i| changes[i]).collect();
        self.took_away_at(&cells, reference)
    }

    /// Whether `cells` had clearly more structure in `reference` than now (a removal).
    pub fn took_away_at(&self, cells: &[usize], reference: &[f32]) -> bool {
        let (mut now, mut then) = (0.0f32, 0.0f32);
        for &i in cells {
            now += self.texture(&self.grey, i);
            then += self.texture(reference, i);
        }
        now < then * REMOVED_BELOW
    }

    /// The 4-connected blobs of `changes`, largest first.
    pub fn blobs(&self, changes: &[bool]) -> Vec<Blob> {
        let side = self.side;
        let mut seen = vec![false; changes.len()];
        let mut out = Vec::new();
        for start in 0..changes.len() {
            if !changes[start] || seen[start] {
                continue;
            }
            let mut blob = Blob {
                cells: Vec::new(),
                bounds: [side, side, 0, 0],
            };
            let mut stack = vec![start];
            seen[start] = true;
            while let Some(i) = stack.pop() {
                let (x, y) = (i % side, i / side);
                blob.cells.push(i);
                let b = &mut blob.bounds;
                *b = [b[0].min(x), b[1].min(y), b[2].max(x), b[3].max(y)];
                let mut push = |j: usize| {
                    if changes[j] && !seen[j] {
                        seen[j] = true;
                        stack.push(j);
                    }
                };
                if x > 0 {
                    push(i - 1);
                }
                if x + 1 < side {
                    push(i + 1);
                }
                if y > 0 {
                    push(i - side);
                }
                if y + 1 < side {
                    push(i + side);
                }
            }
            out.push(blob);
        }
        // Largest first; ties keep the scan order.
        out.sort_by_key(|b| std::cmp::Reverse(b.cells.len()));
        out
    }

    /// Whether the largest 4-connected blob of `changes` is shaped like a standing person
    /// (see [`Self::compare`]); `masked` is the zone's cell count.
    fn person_blob(&self, changes: &[bool], masked: usize, cell_aspect: f32) -> bool {
        let side = self.side;
        let Some(top_row) = (0..side).find(|y| (0..side).any(|x| self.mask[y * side + x])) else {
            return false;
        };
        let Some(blob) = self.blobs(changes).into_iter().next() else {
            return false;
        };
        blob.cells.len() as f32 >= PERSON_MIN_SHARE * masked as f32
            && blob.bounds[1] <= top_row + 1
            && blob.person_shaped(cell_aspect)
    }

    /// A cell's structure in `grey`: the summed size of its relations to its masked
    /// neighbours (all eight).
    fn texture(&self, grey: &[f32], i: usize) -> f32 {
        let side = self.side as i32;
        let (x, y) = ((i % self.side) as i32, (i / self.side) as i32);
        let mut sum = 0.0;
        for dy in -1..=1 {
            for dx in -1..=1 {
                let (nx, ny) = (x + dx, y + dy);
                if (dx, dy) == (0, 0) || nx < 0 || ny < 0 || nx >= side || ny >= side {
                    continue;
                }
                let j = (ny * side + nx) as usize;
                if self.mask[j] {
                    sum += rel(grey, i, j).abs();
                }
            }
        }
        sum
    }

    /// What changed against `reference`, as a vector for the verdict memory: each masked
    /// cell's grey over the zone's mean minus the same of the reference, so a dimmer or
    /// brighter view of the same change looks the same; L2-normalised.
    pub fn change_embedding(&self, reference: &[f32]) -> Vec<f32> {
        let (a, b) = (
            masked_mean(&self.grey, &self.mask).max(1e-3),
            masked_mean(reference, &self.mask).max(1e-3),
        );
        let mut v: Vec<f32> = self
            .grey
            .iter()
            .zip(reference)
            .zip(&self.mask)
            .map(|((g, r), m)| if *m { g / a - r / b } else { 0.0 })
            .collect();
        crate::model::embedding::normalise(&mut v);
        v
    }

    /// The comparison this replaced, for the figure in docs/rules.md: share of the zone whose
    /// absolute brightness moved by more than `delta`.
    pub fn brightness_share(&self, reference: &[f32], delta: f32) -> f32 {
        let n = self.mask.iter().filter(|m| **m).count().max(1);
        self.grey
            .iter()
            .zip(reference)
            .zip(&self.mask)
            .filter(|((a, b), m)| **m && (*a - *b).abs() > delta)
            .count() as f32
            / n as f32
    }
}

/// A zone's clean references, one per light, as grey grids, and its condition (over the
/// reference since when, filed, deferred): what the store keeps, so a restart resumes a
/// bin's dwell instead of starting it again.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ZoneReferences {
    #[serde(default)]
    pub day: Option<Vec<f32>>,
    #[serde(default)]
    pub night: Option<Vec<f32>>,
    /// When an operator last marked the zone clean (pipeline clock).
    #[serde(default)]
    pub marked_clean: Option<f64>,
    /// Since when more stuff than the clean reference has been seen (the dwell's start).
    #[serde(default)]
    pub over_since: Option<f64>,
    /// The condition met the rule (filed or suppressed) and has not cleared since.
    #[serde(default)]
    pub resolved: bool,
    /// Met outside active hours, waiting for them to open.
    #[serde(default)]
    pub deferred: bool,
}

impl ZoneReferences {
    pub fn get(&self, light: Light) -> Option<&Vec<f32>> {
        let r = match light {
            Light::Day => self.day.as_ref(),
            Light::Night => self.night.as_ref(),
            Light::Dark => None,
        };
        r.filter(|g| g.len() == SIDE * SIDE)
    }

    /// The reference to compare with in `light`: its own, else the other light's (structure
    /// carries across light; a night reference is only ever taken from a frame that matched
    /// the day one, or the other way round).
    pub fn for_light(&self, light: Light) -> Option<(&Vec<f32>, bool)> {
        match (self.get(light), light) {
            (Some(r), _) => Some((r, true)),
            (None, Light::Day) => self.get(Light::Night).map(|r| (r, false)),
            (None, Light::Night) => self.get(Light::Day).map(|r| (r, false)),
            (None, Light::Dark) => None,
        }
    }

    pub fn set(&mut self, light: Light, grey: Vec<f32>) {
        match light {
            Light::Day => self.day = Some(grey),
            Light::Night => self.night = Some(grey),
            Light::Dark => {}
        }
    }

    /// Moves `light`'s reference a fraction `alpha` towards `grey` (slow adaptation while the
    /// zone is judged clean: leaves, shadows of the season).
    pub fn adapt(&mut self, light: Light, grey: &[f32], alpha: f32) {
        let r = match light {
            Light::Day => self.day.as_mut(),
            Light::Night => self.night.as_mut(),
            Light::Dark => None,
        };
        if let Some(r) = r.filter(|r| r.len() == grey.len()) {
            for (a, b) in r.iter_mut().zip(grey) {
                *a = (1.0 - alpha) * *a + alpha * b;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scene::testing::scene;

    fn zone() -> Polygon {
        Polygon(vec![[0.5, 0.5], [0.9, 0.5], [0.9, 0.9], [0.5, 0.9]])
    }

    #[test]
    fn dusk_moves_brightness_but_not_structure() {
        let day = Patch::of(&scene(320, 240, 1.0, &[], 0), &zone());
        for gain in [0.8, 0.6, 0.4, 0.25, 0.15] {
            let dusk = Patch::of(&scene(320, 240, gain, &[], 0), &zone());
            let s = dusk.changed_share(&day.grey);
            assert!(s < 0.03, "gain {gain}: structure changed on {s}");
            if gain <= 0.6 {
                assert!(dusk.brightness_share(&day.grey, 0.08) > 0.5);
            }
        }
    }

    #[test]
    fn a_bag_in_the_zone_changes_structure_in_any_light() {
        let day = Patch::of(&scene(320, 240, 1.0, &[], 0), &zone());
        let bag = ([0.6, 0.6, 0.75, 0.78], [40, 40, 45]);
        for gain in [1.0, 0.5, 0.2] {
            let now = Patch::of(&scene(320, 240, gain, &[bag], 0), &zone());
            let s = now.changed_share(&day.grey);
            assert!(s > 0.1, "gain {gain}: only {s}");
        }
    }

    #[test]
    fn only_more_stuff_counts_an_emptied_bin_is_no_overflow() {
        let clean = scene(320, 240, 1.0, &[], 0);
        let heap = [
            ([0.6, 0.6, 0.75, 0.78], [40, 40, 45]),
            ([0.7, 0.7, 0.85, 0.86], [200, 60, 40]),
        ];
        let full = scene(320, 240, 1.0, &heap, 0);
        for gain in [1.0, 0.5] {
            // Rubbish added to a clean reference: counted as before.
            let now = Patch::of(&scene(320, 240, gain, &heap, 0), &zone());
            let clean_ref = Patch::of(&clean, &zone());
            let added = now.compare(&clean_ref.grey, 1.0).added;
            assert!(added > 0.1, "gain {gain}: only {added}");
            assert_eq!(added, now.changed_share(&clean_ref.grey));
            // The reference taken while full, then the bin emptied: changed, but nothing
            // was added.
            let full_ref = Patch::of(&full, &zone());
            let emptied = Patch::of(&scene(320, 240, gain, &[], 0), &zone());
            assert!(emptied.changed_share(&full_ref.grey) > 0.1);
            assert_eq!(
                emptied.compare(&full_ref.grey, 1.0).added,
                0.0,
                "gain {gain}"
            );
        }
    }

    #[test]
    fn a_person_in_front_of_a_bin_is_told_from_a_heap() {
        // The zone is 0.4 × 0.4 of a 320 × 240 frame: a cell is 0.75 as high as wide.
        let cell_aspect = 240.0 / 320.0;
        let clean = Patch::of(&scene(320, 240, 1.0, &[], 0), &zone());
        // A standing person: taller than the zone, narrow, in dark clothes.
        let person = ([0.66, 0.45, 0.72, 0.95], [50, 45, 60]);
        let now = Patch::of(&scene(320, 240, 1.0, &[person], 0), &zone());
        assert!(now.changed_share(&clean.grey) > 0.05);
        assert!(now.compare(&clean.grey, cell_aspect).person);
        // A heap at the bin's foot, wider than high: not a person.
        let heap = ([0.55, 0.72, 0.85, 0.88], [40, 40, 45]);
        let now = Patch::of(&scene(320, 240, 1.0, &[heap], 0), &zone());
        assert!(!now.compare(&clean.grey, cell_aspect).person);
        // A bag in the middle that does not reach the top: not a person.
        let bag = ([0.66, 0.62, 0.72, 0.85], [40, 40, 45]);
        let now = Patch::of(&scene(320, 240, 1.0, &[bag], 0), &zone());
        assert!(!now.compare(&clean.grey, cell_aspect).person);
    }

    #[test]
    fn cells_outside_the_polygon_do_not_count() {
        let tri = Polygon(vec![[0.5, 0.5], [0.9, 0.5], [0.5, 0.9]]);
        let day = Patch::of(&scene(320, 240, 1.0, &[], 0), &tri);
        // Paint the corner of the bounds the triangle leaves out.
        let now = Patch::of(
            &scene(320, 240, 1.0, &[([0.78, 0.78, 0.9, 0.9], [10, 10, 10])], 0),
            &tri,
        );
        assert!(now.changed_share(&day.grey) < 0.01);
    }

    #[test]
    fn references_fall_back_across_light_and_adapt() {
        let mut r = ZoneReferences::default();
        assert!(r.for_light(Light::Day).is_none());
        r.set(Light::Day, vec![0.5; SIDE * SIDE]);
        assert_eq!(r.for_light(Light::Night).map(|x| x.1), Some(false));
        assert_eq!(r.for_light(Light::Day).map(|x| x.1), Some(true));
        assert!(r.for_light(Light::Dark).is_none());
        r.adapt(Light::Day, &vec![1.0; SIDE * SIDE], 0.1);
        assert!((r.day.as_ref().unwrap()[0] - 0.55).abs() < 1e-6);
    }
}
