//! Light-proof looks at the scene, below the rules: a zone's structure compared with its
//! clean references (the bin rule), and the whole view registered to the camera's reference
//! view (the drift guard).
//!
//! Both compare *structure*, not brightness: which of two neighbouring cells is brighter, and
//! where the edges are, do not change when the light falls or street lights come on; what
//! changes them is something added to or taken from the scene, or a camera that turned.

pub mod ground;
pub mod structure;
pub mod view;

use crate::ingest::Frame;

/// Grey level 0..1 of an RGB pixel (Rec. 601 weights).
pub fn grey(p: &[u8]) -> f32 {
    (0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32) / 255.0
}

/// A grey picture of `w`×`h` cells covering the normalised box `b` of the frame, each cell the
/// mean of a 3×3 grid of pixels inside it (an area mean, so a cell sees what it covers rather
/// than one point of it).
pub fn cells(frame: &Frame, b: &[f32; 4], w: usize, h: usize) -> Vec<f32> {
    let (fw, fh) = (frame.width as f32, frame.height as f32);
    let mut out = vec![0f32; w * h];
    for cy in 0..h {
        for cx in 0..w {
            let mut sum = 0.0;
            for sy in 0..3 {
                let v = b[1] + (b[3] - b[1]) * (cy as f32 + (sy as f32 + 0.5) / 3.0) / h as f32;
                let y = (v * fh).clamp(0.0, fh - 1.0) as u32;
                let row = frame.row(y);
                for sx in 0..3 {
                    let u = b[0] + (b[2] - b[0]) * (cx as f32 + (sx as f32 + 0.5) / 3.0) / w as f32;
                    let x = (u * fw).clamp(0.0, fw - 1.0) as usize;
                    sum += grey(&row[x * 3..x * 3 + 3]);
                }
            }
            out[cy * w + cx] = sum / 9.0;
        }
    }
    out
}

/// Which light a picture was taken in: references are kept for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Light {
    Day,
    Night,
    /// Too dark to judge anything.
    Dark,
}

/// Mean grey below this is night light (street lights, dusk).
pub const NIGHT_BELOW: f32 = 0.22;
/// Mean grey below this is too dark to judge.
pub const DARK_BELOW: f32 = 0.035;

impl Light {
    pub fn of_mean(mean: f32) -> Self {
        if mean < DARK_BELOW {
            Light::Dark
        } else if mean < NIGHT_BELOW {
            Light::Night
        } else {
            Light::Day
        }
    }
}

#[doc(hidden)]
pub mod testing {
    //! Synthetic frames for the scene tests: textured ground, a gain for the light. Test
    //! support for this crate and the ones above it (their scene and episode tests).
    use crate::ingest::Frame;

    /// A `w`×`h` frame: a deterministic texture of blocks and stripes, times `gain`, plus
    /// `paint` boxes filled with a colour (normalised boxes), all shifted right by `shift_px`.
    pub fn scene(w: u32, h: u32, gain: f32, paint: &[([f32; 4], [u8; 3])], shift_px: i32) -> Frame {
        let mut v = Vec::with_capacity((w * h * 3) as usize);
        for y in 0..h as i32 {
            for x in 0..w as i32 {
                let sx = x - shift_px;
                let (xf, yf) = (sx as f32 / w as f32, y as f32 / h as f32);
                let mut c = texture(sx, y);
                for (b, col) in paint {
                    if xf >= b[0] && xf < b[2] && yf >= b[1] && yf < b[3] {
                        // Things have texture of their own: folds, print, shade.
                        let k = if (x / 4 + y / 4) % 2 == 0 { 1.0 } else { 0.7 };
                        c = col.map(|v| (v as f32 * k) as u8);
                    }
                }
                v.extend(
                    c.iter()
                        .map(|&k| (k as f32 * gain).round().clamp(0.0, 255.0) as u8),
                );
            }
        }
        Frame::from_rgb("c".into(), w, h, v)
    }

    fn texture(x: i32, y: i32) -> [u8; 3] {
        // Paving: 24-px blocks of two shades with dark joints, and a kerb stripe.
        let bx = x.div_euclid(24);
        let by = y.div_euclid(24);
        let joint = x.rem_euclid(24) < 2 || y.rem_euclid(24) < 2;
        let hash = (bx.wrapping_mul(73_856_093) ^ by.wrapping_mul(19_349_663)).rem_euclid(7);
        let base: u8 = if hash < 3 { 150 } else { 185 };
        let g = if joint { 90 } else { base };
        if y.rem_euclid(97) < 6 {
            [200, 200, 90]
        } else {
            [g, g, (g as f32 * 0.95) as u8]
        }
    }
}
