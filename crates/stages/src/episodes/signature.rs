//! A small appearance signature of an object's crop, for telling two vehicles in the same
//! place apart. Lighting-tolerant: a 4×4 chromaticity histogram (colour without brightness)
//! plus a 4-bin histogram of brightness relative to the crop's own mean.

use serde::{Deserialize, Serialize};

use crate::detect::BBox;
use crate::ingest::Frame;

const CHROMA: usize = 16;
const BRIGHT: usize = 4;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signature {
    pub chroma: Vec<f32>,
    pub bright: Vec<f32>,
}

impl Signature {
    pub fn of(frame: &Frame, b: &BBox) -> Self {
        let (w, h) = (frame.width as f32, frame.height as f32);
        let x0 = (b[0] * w).floor().clamp(0.0, w - 1.0) as u32;
        let x1 = (b[2] * w).ceil().clamp(x0 as f32 + 1.0, w) as u32;
        let y0 = (b[1] * h).floor().clamp(0.0, h - 1.0) as u32;
        let y1 = (b[3] * h).ceil().clamp(y0 as f32 + 1.0, h) as u32;
        let mut chroma = vec![0f32; CHROMA];
        let mut lum = Vec::with_capacity(((x1 - x0) * (y1 - y0)) as usize);
        for y in y0..y1 {
            let row = frame.row(y);
            for x in x0..x1 {
                let p = &row[x as usize * 3..x as usize * 3 + 3];
                let (r, g, bl) = (p[0] as f32, p[1] as f32, p[2] as f32);
                let s = r + g + bl;
                lum.push(s / 3.0);
                if s < 30.0 {
                    continue; // too dark for a meaningful colour
                }
                let (cr, cg) = (r / s, g / s);
                let i = ((cr * 4.0) as usize).min(3) * 4 + ((cg * 4.0) as usize).min(3);
                chroma[i] += 1.0;
            }
        }
        let mean = lum.iter().sum::<f32>() / lum.len().max(1) as f32;
        let mut bright = vec![0f32; BRIGHT];
        for l in &lum {
            let rel = if mean > 0.0 { l / mean } else { 1.0 };
            let i = if rel < 0.6 {
                0
            } else if rel < 0.9 {
                1
            } else if rel < 1.2 {
                2
            } else {
                3
            };
            bright[i] += 1.0;
        }
        normalise(&mut chroma);
        normalise(&mut bright);
        Self { chroma, bright }
    }

    /// 0 (identical) to 1 (nothing in common).
    pub fn distance(&self, other: &Signature) -> f32 {
        let l1 =
            |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f32>() / 2.0;
        0.7 * l1(&self.chroma, &other.chroma) + 0.3 * l1(&self.bright, &other.bright)
    }

    /// Moves this signature a fraction `alpha` towards `other`.
    pub fn blend(&mut self, other: &Signature, alpha: f32) {
        for (a, b) in self.chroma.iter_mut().zip(&other.chroma) {
            *a = (1.0 - alpha) * *a + alpha * b;
        }
        for (a, b) in self.bright.iter_mut().zip(&other.bright) {
            *a = (1.0 - alpha) * *a + alpha * b;
        }
    }
}

fn normalise(v: &mut [f32]) {
    let s: f32 = v.iter().sum();
    if s > 0.0 {
        v.iter_mut().for_each(|x| *x /= s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solid(rgb: [u8; 3]) -> Frame {
        let mut v = Vec::new();
        for i in 0..(16 * 16) {
            // A little texture so the brightness histogram is not degenerate.
            let k = if i % 3 == 0 { 0.8 } else { 1.0 };
            v.extend(rgb.iter().map(|c| (*c as f32 * k) as u8));
        }
        Frame::from_rgb("c".into(), 16, 16, v)
    }

    #[test]
    fn colour_tells_cars_apart_and_light_does_not() {
        let all = [0.0, 0.0, 1.0, 1.0];
        let teal = Signature::of(&solid([40, 140, 150]), &all);
        let teal_dusk = Signature::of(&solid([20, 70, 75]), &all);
        let red = Signature::of(&solid([180, 30, 30]), &all);
        assert!(
            teal.distance(&teal_dusk) < 0.1,
            "{}",
            teal.distance(&teal_dusk)
        );
        assert!(teal.distance(&red) > 0.5, "{}", teal.distance(&red));
        assert_eq!(teal.distance(&teal), 0.0);
    }
}
