//! Where a camera looks closer, by default: a rule zone that the detector sees small is also
//! run on its own, cut from the analysis frame, so far stalls and far cars reach the model
//! large enough to be found instead of shrunk with the whole view.
//!
//! The decision is made once per camera, from each zone's size in pixels against the model's
//! input and the detail its rule needs (the scale, model pixels per frame pixel, at which its
//! objects are found: a car is large, a stall's goods are small, so [`VEHICLE_DETAIL`] and
//! [`GOODS_DETAIL`]):
//! - the look is the zone's bounds grown by [`MARGIN`] a side (the person tending a stall
//!   stands at its edge), never smaller than the model's input at that detail;
//! - it is cut into as few tiles as bring it to that detail (at most [`MAX_TILES`] a side,
//!   each tile up to [`TILE_OVER`] times coarser than asked), overlapping by a quarter so
//!   that what one seam cuts the next tile holds whole;
//! - a zone gets its look only when, cut out whole, its objects come out at least
//!   [`MIN_GAIN`] times larger (linearly) than in the detector's usual view. A zone that fills
//!   most of the view gains nothing and costs nothing.
//!
//! `detect_crops` in a camera's config overrides all this.

use crate::model::BBox;

/// A zone gets a closer look when its objects come out at least this many times larger.
pub const MIN_GAIN: f32 = 1.5;
/// Each side of a zone's bounds grows by this share of its size.
pub const MARGIN: f32 = 0.05;
/// The detail (model pixels per frame pixel) vehicles need: a car is found at its own size.
pub const VEHICLE_DETAIL: f32 = 1.0;
/// The detail stalls and litter need: fruit, boxes and bags are a few pixels each, and the
/// detector's smallest anchors want them twice that.
pub const GOODS_DETAIL: f32 = 2.0;
/// A tile may be up to this many times coarser than the detail asked, before another is cut.
pub const TILE_OVER: f32 = 1.5;
/// At most this many tiles a side.
pub const MAX_TILES: u32 = 2;

/// Grows `lo..hi` about its centre to at least `min` (all within 0..1), shifting it inside.
fn at_least(lo: f32, hi: f32, min: f32) -> (f32, f32) {
    let min = min.min(1.0);
    let (mut lo, mut hi) = (lo.max(0.0), hi.min(1.0));
    if hi - lo < min {
        let c = (lo + hi) / 2.0;
        lo = c - min / 2.0;
        hi = c + min / 2.0;
    }
    if lo < 0.0 {
        hi -= lo;
        lo = 0.0;
    }
    if hi > 1.0 {
        lo -= hi - 1.0;
        hi = 1.0;
    }
    (lo.max(0.0), hi.min(1.0))
}

/// Linear scale (geometric mean of both axes) at which a part `w`×`h` (normalised) of a
/// `frame` of pixels reaches an `input` of pixels.
fn scale(w: f32, h: f32, frame: (u32, u32), input: (u32, u32)) -> f32 {
    let sx = input.0 as f32 / (w * frame.0 as f32).max(1.0);
    let sy = input.1 as f32 / (h * frame.1 as f32).max(1.0);
    (sx * sy).sqrt()
}

/// The closer looks of a camera: for each zone's bounds (normalised to the frame) with the
/// detail its rule needs, the look or tiles it gets, given the part of the frame the
/// detector usually sees (`view`; None is the whole frame), the analysis frame's size and the
/// model's input size, in pixels. A zone that lies within a look already taken needs no
/// other; looks that lie within another are dropped.
pub fn closer_looks(
    zones: &[(BBox, f32)],
    view: Option<BBox>,
    frame: (u32, u32),
    input: (u32, u32),
) -> Vec<BBox> {
    let v = view.unwrap_or([0.0, 0.0, 1.0, 1.0]);
    let usual = scale(v[2] - v[0], v[3] - v[1], frame, input);
    let within = |a: &BBox, b: &BBox| {
        a[0] >= b[0] - 1e-6 && a[1] >= b[1] - 1e-6 && a[2] <= b[2] + 1e-6 && a[3] <= b[3] + 1e-6
    };
    let mut out: Vec<BBox> = Vec::new();
    for (z, detail) in zones {
        let detail = detail.max(0.1);
        let clamped = [z[0].max(0.0), z[1].max(0.0), z[2].min(1.0), z[3].min(1.0)];
        if out.iter().any(|o| within(&clamped, o)) {
            continue;
        }
        // The smallest look, in frame shares: the model's input at the detail asked.
        let (min_w, min_h) = (
            input.0 as f32 / detail / frame.0.max(1) as f32,
            input.1 as f32 / detail / frame.1.max(1) as f32,
        );
        let (mx, my) = ((z[2] - z[0]) * MARGIN, (z[3] - z[1]) * MARGIN);
        let (x0, x1) = at_least(z[0] - mx, z[2] + mx, min_w);
        let (y0, y1) = at_least(z[1] - my, z[3] + my, min_h);
        let (w, h) = (x1 - x0, y1 - y0);
        // Only a small zone: cut out whole, it must already come out larger.
        if scale(w, h, frame, input) < usual * MIN_GAIN {
            continue;
        }
        let tiles =
            |len: f32, min: f32| ((len / (min * TILE_OVER)).ceil() as u32).clamp(1, MAX_TILES);
        let (nx, ny) = (tiles(w, min_w), tiles(h, min_h));
        // Tiles overlap by a quarter, so what one seam cuts the next tile holds whole: a tile
        // is t with t (1 + 3/4 (n - 1)) = the look's size, stepping 3/4 t.
        let size = |len: f32, n: u32| len / (1.0 + 0.75 * (n as f32 - 1.0));
        let (tw, th) = (size(w, nx), size(h, ny));
        for j in 0..ny {
            for i in 0..nx {
                let (tx, ty) = (x0 + 0.75 * tw * i as f32, y0 + 0.75 * th * j as f32);
                let t = [tx, ty, (tx + tw).min(x1), (ty + th).min(y1)];
                if out.iter().any(|o| within(&t, o)) {
                    continue;
                }
                out.retain(|o| !within(o, &t));
                out.push(t);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const VGA: (u32, u32) = (640, 480);
    const SSD: (u32, u32) = (300, 300);

    fn cut(l: &BBox) -> (f32, f32) {
        ((l[2] - l[0]) * 640.0, (l[3] - l[1]) * 480.0)
    }

    #[test]
    fn a_far_lawn_gets_tiles_fine_enough_for_goods_and_a_street_none() {
        // A lawn in the far left third (288 × 226 px): 2 × 2 tiles, each under 220 px, so
        // goods reach the model near 1.5 times their size; together they cover the lawn.
        let lawn = [0.0, 0.45, 0.45, 0.92];
        let looks = closer_looks(&[(lawn, GOODS_DETAIL)], None, VGA, SSD);
        assert_eq!(looks.len(), 4, "{looks:?}");
        for l in &looks {
            let (w, h) = cut(l);
            assert!(w <= 220.0 && h <= 220.0, "{w} × {h}");
        }
        let u = [
            looks.iter().map(|l| l[0]).fold(1.0, f32::min),
            looks.iter().map(|l| l[1]).fold(1.0, f32::min),
            looks.iter().map(|l| l[2]).fold(0.0, f32::max),
            looks.iter().map(|l| l[3]).fold(0.0, f32::max),
        ];
        assert!(u[0] <= lawn[0] && u[1] <= lawn[1] && u[2] >= lawn[2] && u[3] >= lawn[3]);
        // The same lawn for vehicles: one look at about the frame's own pixels.
        assert_eq!(
            closer_looks(&[(lawn, VEHICLE_DETAIL)], None, VGA, SSD).len(),
            1
        );
        // The whole street: nothing to gain.
        let street = [0.0, 0.3, 1.0, 1.0];
        assert!(closer_looks(&[(street, VEHICLE_DETAIL)], None, VGA, SSD).is_empty());
    }

    #[test]
    fn a_look_is_never_finer_than_its_detail_asks() {
        // A tiny zone (40 × 30 px) is looked at as the model's input at the detail: 300 px
        // for vehicles, 150 px for goods.
        let tiny = [0.5, 0.5, 0.5625, 0.5625];
        let l = closer_looks(&[(tiny, VEHICLE_DETAIL)], None, VGA, SSD)[0];
        let (w, h) = cut(&l);
        assert!((w - 300.0).abs() < 0.5 && (h - 300.0).abs() < 0.5, "{l:?}");
        let l = closer_looks(&[(tiny, GOODS_DETAIL)], None, VGA, SSD)[0];
        let (w, h) = cut(&l);
        assert!((w - 150.0).abs() < 0.5 && (h - 150.0).abs() < 0.5, "{l:?}");
        // At the frame's corner it shifts inside.
        let l = closer_looks(&[([0.95, 0.95, 1.0, 1.0], GOODS_DETAIL)], None, VGA, SSD)[0];
        assert!(l[2] <= 1.0 && l[3] <= 1.0 && l[0] >= 0.0 && l[1] >= 0.0);
    }

    #[test]
    fn the_tiles_of_a_look_overlap_by_a_quarter() {
        // A stall on one tile's seam lies whole in its neighbour.
        let looks = closer_looks(&[([0.0, 0.5, 0.5, 0.8], GOODS_DETAIL)], None, VGA, SSD);
        assert!(looks.len() >= 2, "{looks:?}");
        let (a, b) = (looks[0], looks[1]);
        let overlap = a[2] - b[0];
        assert!((overlap - 0.25 * (a[2] - a[0])).abs() < 1e-5, "{looks:?}");
    }

    #[test]
    fn a_view_already_cropped_to_the_zone_needs_no_closer_look() {
        // The capacity bench's car park: one look, in place of the usual view every third
        // run, so it costs no inference.
        let zone = [0.78, 0.04, 1.0, 0.26];
        assert_eq!(
            closer_looks(&[(zone, VEHICLE_DETAIL)], None, (640, 360), SSD).len(),
            1
        );
        let view = Some([0.7, 0.0, 1.0, 0.35]);
        assert!(closer_looks(&[(zone, VEHICLE_DETAIL)], view, (640, 360), SSD).is_empty());
    }

    #[test]
    fn zones_within_a_look_need_no_other() {
        let zones = [
            ([0.1, 0.5, 0.3, 0.7], VEHICLE_DETAIL),
            ([0.15, 0.55, 0.2, 0.6], VEHICLE_DETAIL),
        ];
        assert_eq!(closer_looks(&zones, None, VGA, SSD).len(), 1);
    }
}
