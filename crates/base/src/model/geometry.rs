//! Boxes: (x1, y1, x2, y2), normalised to the frame (0..1) once they leave the detector.

/// A box as (x1, y1, x2, y2).
pub type BBox = [f32; 4];

/// Intersection over union of two boxes (0 when they do not overlap or are empty).
/// Share (0..1) of box `a` that lies inside box `b`.
pub fn overlap_share(a: &BBox, b: &BBox) -> f32 {
    let ix = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let iy = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let area = (a[2] - a[0]).max(1e-9) * (a[3] - a[1]).max(1e-9);
    ix * iy / area
}

pub fn iou(a: &BBox, b: &BBox) -> f32 {
    let ix = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let iy = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = ix * iy;
    let area = |r: &BBox| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
    let union = area(a) + area(b) - inter;
    if union <= 0.0 { 0.0 } else { inter / union }
}

/// The smallest box around all of `boxes`; None when there are none.
pub fn enclosing(boxes: impl IntoIterator<Item = BBox>) -> Option<BBox> {
    boxes.into_iter().reduce(|a, b| {
        [
            a[0].min(b[0]),
            a[1].min(b[1]),
            a[2].max(b[2]),
            a[3].max(b[3]),
        ]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iou_by_hand() {
        let a = [0.0, 0.0, 2.0, 2.0];
        let b = [1.0, 1.0, 3.0, 3.0];
        assert!((iou(&a, &b) - 1.0 / 7.0).abs() < 1e-6);
        assert_eq!(iou(&a, &[5.0, 5.0, 6.0, 6.0]), 0.0);
        assert_eq!(iou(&a, &a), 1.0);
    }
}
