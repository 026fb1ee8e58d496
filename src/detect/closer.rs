//! Where a camera looks closer, by default: a rule zone that the detector sees small is also
//! run on its own, cut from the analysis frame, so far stalls and far cars reach the model at
//! up to their full pixel size instead of shrunk with the whole view.
//!
//! The decision is made once per camera, from each zone's size in pixels against the model's
//! input: a zone gets a closer look when, cut out whole, it would come out at least
//! [`MIN_GAIN`] times larger (linearly) than in the detector's usual view. A look is the zone's bounds grown by
//! [`MARGIN`] (the person tending a stall stands at its edge), never smaller than the model's
//! input in pixels (cutting finer than the frame's own pixels shows nothing new), and split
//! into tiles when it is much larger than the input. A zone that fills most of the view gains
//! nothing and costs nothing. `detect_crops` in a camera's config overrides all this.

use crate::model::BBox;

/// A zone gets a closer look when its objects come out at least this many times larger.
pub const MIN_GAIN: f32 = 1.5;
/// Each side of a zone's bounds grows by this share of its size.
pub const MARGIN: f32 = 0.15;
/// A look larger than this many model inputs (per side) is split into tiles...
const TILE_OVER: f32 = 1.5;
/// ...of at most this many per side.
const MAX_TILES: u32 = 2;

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

/// The closer looks of a camera: for each zone's bounds (normalised to the frame), the
/// look(s) it gets, given the part of the frame the detector usually sees (`view`; None is
/// the whole frame), the analysis frame's size and the model's input size, in pixels.
/// A zone that lies within a look already taken needs no other; looks that lie within
/// another are dropped.
pub fn closer_looks(
    zones: &[BBox],
    view: Option<BBox>,
    frame: (u32, u32),
    input: (u32, u32),
) -> Vec<BBox> {
    let v = view.unwrap_or([0.0, 0.0, 1.0, 1.0]);
    let usual = scale(v[2] - v[0], v[3] - v[1], frame, input);
    let (min_w, min_h) = (
        input.0 as f32 / frame.0.max(1) as f32,
        input.1 as f32 / frame.1.max(1) as f32,
    );
    let within = |a: &BBox, b: &BBox| {
        a[0] >= b[0] - 1e-6 && a[1] >= b[1] - 1e-6 && a[2] <= b[2] + 1e-6 && a[3] <= b[3] + 1e-6
    };
    let mut out: Vec<BBox> = Vec::new();
    for z in zones {
        let clamped = [z[0].max(0.0), z[1].max(0.0), z[2].min(1.0), z[3].min(1.0)];
        if out.iter().any(|o| within(&clamped, o)) {
            continue;
        }
        let (mx, my) = ((z[2] - z[0]) * MARGIN, (z[3] - z[1]) * MARGIN);
        let (x0, x1) = at_least(z[0] - mx, z[2] + mx, min_w);
        let (y0, y1) = at_least(z[1] - my, z[3] + my, min_h);
        let (w, h) = (x1 - x0, y1 - y0);
        // A small zone: cut out whole, it already comes out larger.
        if scale(w, h, frame, input) < usual * MIN_GAIN {
            continue;
        }
        // Tiles, where the look is much larger than the model's input.
        let tiles =
            |len: f32, min: f32| ((len / (min * TILE_OVER)).ceil() as u32).clamp(1, MAX_TILES);
        let (nx, ny) = (tiles(w, min_w), tiles(h, min_h));
        let (tw, th) = (w / nx as f32, h / ny as f32);
        for j in 0..ny {
            for i in 0..nx {
                let t = [
                    x0 + tw * i as f32,
                    y0 + th * j as f32,
                    x0 + tw * (i + 1) as f32,
                    y0 + th * (j + 1) as f32,
                ];
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

    #[test]
    fn a_far_zone_gets_a_look_and_a_zone_filling_the_view_none() {
        // A lawn in the far left third: seen at about 0.54 in the whole view, about 1.0 cut out.
        let lawn = [0.0, 0.45, 0.45, 0.92];
        let looks = closer_looks(&[lawn], None, VGA, SSD);
        assert_eq!(looks.len(), 1);
        let l = looks[0];
        assert!(l[0] <= lawn[0] && l[1] <= lawn[1] && l[2] >= lawn[2] && l[3] >= lawn[3]);
        // The whole street: nothing to gain.
        assert!(closer_looks(&[[0.0, 0.3, 1.0, 1.0]], None, VGA, SSD).is_empty());
    }

    #[test]
    fn a_look_is_never_finer_than_the_frames_pixels() {
        // A tiny zone (40 × 30 px) is looked at as 300 × 300 px around it.
        let looks = closer_looks(&[[0.5, 0.5, 0.5625, 0.5625]], None, VGA, SSD);
        assert_eq!(looks.len(), 1);
        let l = looks[0];
        assert!(((l[2] - l[0]) * 640.0 - 300.0).abs() < 0.5, "{l:?}");
        assert!(((l[3] - l[1]) * 480.0 - 300.0).abs() < 0.5, "{l:?}");
        // At the frame's corner it shifts inside.
        let l = closer_looks(&[[0.95, 0.95, 1.0, 1.0]], None, VGA, SSD)[0];
        assert!(l[2] <= 1.0 && l[3] <= 1.0 && l[0] >= 0.0 && l[1] >= 0.0);
    }

    #[test]
    fn a_large_far_zone_on_a_large_frame_is_tiled() {
        // At 1920 × 1080 a zone half the frame wide is 960 px: two tiles across.
        let looks = closer_looks(&[[0.0, 0.5, 0.5, 0.8]], None, (1920, 1080), SSD);
        assert_eq!(looks.len(), 2, "{looks:?}");
        // The tiles abut: a stall on the seam is found in halves that touch.
        assert!((looks[0][2] - looks[1][0]).abs() < 1e-6);
    }

    #[test]
    fn a_view_already_cropped_to_the_zone_needs_no_closer_look() {
        let zone = [0.78, 0.04, 1.0, 0.26];
        assert_eq!(closer_looks(&[zone], None, (640, 360), SSD).len(), 1);
        assert!(closer_looks(&[zone], Some([0.7, 0.0, 1.0, 0.35]), (640, 360), SSD).is_empty());
    }

    #[test]
    fn looks_inside_other_looks_are_dropped() {
        let looks = closer_looks(
            &[[0.1, 0.5, 0.3, 0.7], [0.15, 0.55, 0.2, 0.6]],
            None,
            VGA,
            SSD,
        );
        assert_eq!(looks.len(), 1, "{looks:?}");
    }
}
