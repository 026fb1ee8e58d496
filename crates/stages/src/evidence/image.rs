//! Evidence images: a packed RGB picture, with the detection box, the zone and the visible
//! watermark ("AI 线索", camera, time) drawn in, encoded as JPEG.
//!
//! Text is rendered with `ab_glyph` from a CJK-capable system font (Debian's
//! `fonts-wqy-microhei`, installed by `scripts/deps.sh`); JPEG encoding is `jpeg-encoder`.

use std::path::Path;
use std::sync::Arc;

use ab_glyph::{Font, FontArc, PxScale, ScaleFont};

use crate::detect::BBox;

pub use crate::core::font::{DEFAULT_FONTS, FontError};

/// A loaded watermark font.
#[derive(Clone)]
pub struct Watermarker {
    font: FontArc,
}

impl std::fmt::Debug for Watermarker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Watermarker")
    }
}

impl Watermarker {
    /// Loads `path`, or the first default font that exists. The font must draw 线索.
    pub fn load(path: Option<&Path>) -> Result<Self, FontError> {
        Ok(Self {
            font: crate::core::font::load(path)?,
        })
    }
}

/// A packed RGB picture (no row padding).
#[derive(Debug, Clone)]
pub struct Picture {
    pub width: u32,
    pub height: u32,
    pub rgb: Arc<Vec<u8>>,
}

impl Picture {
    pub fn from_frame(frame: &crate::ingest::Frame) -> Self {
        Self {
            width: frame.width,
            height: frame.height,
            rgb: Arc::new(frame.to_packed_rgb()),
        }
    }

    /// The part of the picture inside `b` (normalised), widened by `pad` of its size on every
    /// side and at least `min_px` square, clamped to the picture.
    pub fn crop(&self, b: &BBox, pad: f32, min_px: u32) -> Picture {
        let (w, h) = (self.width as f32, self.height as f32);
        let (bw, bh) = ((b[2] - b[0]) * w, (b[3] - b[1]) * h);
        let cx = (b[0] + b[2]) / 2.0 * w;
        let cy = (b[1] + b[3]) / 2.0 * h;
        let hw = (bw * (1.0 + 2.0 * pad)).max(min_px as f32) / 2.0;
        let hh = (bh * (1.0 + 2.0 * pad)).max(min_px as f32) / 2.0;
        let x0 = (cx - hw).clamp(0.0, w - 1.0) as u32;
        let y0 = (cy - hh).clamp(0.0, h - 1.0) as u32;
        let x1 = ((cx + hw).ceil() as u32).clamp(x0 + 1, self.width);
        let y1 = ((cy + hh).ceil() as u32).clamp(y0 + 1, self.height);
        let (cw, ch) = (x1 - x0, y1 - y0);
        let mut rgb = Vec::with_capacity((cw * ch * 3) as usize);
        for y in y0..y1 {
            let row = (y * self.width * 3) as usize;
            rgb.extend_from_slice(&self.rgb[row + (x0 * 3) as usize..row + (x1 * 3) as usize]);
        }
        Picture {
            width: cw,
            height: ch,
            rgb: Arc::new(rgb),
        }
    }
}

/// What is drawn on an evidence picture.
#[derive(Debug, Clone, Default)]
pub struct Overlay {
    /// The object's box (normalised), drawn in red.
    pub bbox: Option<BBox>,
    /// Zone outlines (normalised points), drawn in yellow.
    pub zones: Vec<Vec<[f32; 2]>>,
    /// The watermark's lines, drawn at the bottom left on a dark band.
    pub text: Vec<String>,
}

const RED: [u8; 3] = [230, 30, 30];
const YELLOW: [u8; 3] = [250, 210, 0];
const WHITE: [u8; 3] = [255, 255, 255];

struct Canvas<'a> {
    w: i64,
    h: i64,
    px: &'a mut [u8],
}

impl Canvas<'_> {
    fn put(&mut self, x: i64, y: i64, c: [u8; 3]) {
        if x >= 0 && y >= 0 && x < self.w && y < self.h {
            let i = ((y * self.w + x) * 3) as usize;
            self.px[i..i + 3].copy_from_slice(&c);
        }
    }

    fn blend(&mut self, x: i64, y: i64, c: [u8; 3], a: f32) {
        if x >= 0 && y >= 0 && x < self.w && y < self.h && a > 0.0 {
            let i = ((y * self.w + x) * 3) as usize;
            for (px, &to) in self.px[i..i + 3].iter_mut().zip(&c) {
                let old = *px as f32;
                *px = (old + (to as f32 - old) * a.min(1.0)).round() as u8;
            }
        }
    }

    /// A line `thick` pixels wide (Bresenham, thickened with a square brush).
    fn line(&mut self, (x0, y0): (i64, i64), (x1, y1): (i64, i64), thick: i64, c: [u8; 3]) {
        let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
        let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
        let (mut x, mut y, mut err) = (x0, y0, dx + dy);
        let r = thick / 2;
        loop {
            for oy in -r..=r {
                for ox in -r..=r {
                    self.put(x + ox, y + oy, c);
                }
            }
            if x == x1 && y == y1 {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
        }
    }

    fn to_px(&self, p: [f32; 2]) -> (i64, i64) {
        (
            (p[0] * (self.w - 1) as f32).round() as i64,
            (p[1] * (self.h - 1) as f32).round() as i64,
        )
    }
}

/// Draws `overlay` onto a copy of `pic` and encodes it as JPEG (quality 85).
pub fn render_jpeg(pic: &Picture, overlay: &Overlay, font: &Watermarker) -> Vec<u8> {
    let mut px = pic.rgb.as_ref().clone();
    let mut cv = Canvas {
        w: pic.width as i64,
        h: pic.height as i64,
        px: &mut px,
    };
    let thick = (pic.width.min(pic.height) as i64 / 240).max(1) * 2 + 1;
    for zone in &overlay.zones {
        for i in 0..zone.len() {
            let (a, b) = (cv.to_px(zone[i]), cv.to_px(zone[(i + 1) % zone.len()]));
            cv.line(a, b, thick.max(3) - 2, YELLOW);
        }
    }
    if let Some(b) = overlay.bbox {
        let corners = [[b[0], b[1]], [b[2], b[1]], [b[2], b[3]], [b[0], b[3]]];
        for i in 0..4 {
            let (a, c) = (cv.to_px(corners[i]), cv.to_px(corners[(i + 1) % 4]));
            cv.line(a, c, thick, RED);
        }
    }
    draw_text(&mut cv, &overlay.text, font);
    encode_jpeg(&px, pic.width, pic.height)
}

/// Plain JPEG of packed RGB.
pub fn encode_jpeg(rgb: &[u8], width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let enc = jpeg_encoder::Encoder::new(&mut out, 85);
    enc.encode(
        rgb,
        width.min(u16::MAX as u32) as u16,
        height.min(u16::MAX as u32) as u16,
        jpeg_encoder::ColorType::Rgb,
    )
    .expect("encoding RGB into memory cannot fail");
    out
}

fn draw_text(cv: &mut Canvas, lines: &[String], font: &Watermarker) {
    if lines.is_empty() {
        return;
    }
    let size = (cv.h as f32 / 24.0).clamp(12.0, 40.0);
    let font = font.font.as_scaled(PxScale::from(size));
    let line_h = (font.height() + font.line_gap()).ceil() as i64;
    let margin = (size / 3.0).ceil() as i64;
    let band = line_h * lines.len() as i64 + 2 * margin;
    let widest = lines
        .iter()
        .map(|l| {
            l.chars()
                .map(|c| font.h_advance(font.glyph_id(c)))
                .sum::<f32>()
        })
        .fold(0.0f32, f32::max)
        .ceil() as i64;
    let top = cv.h - band;
    for y in top.max(0)..cv.h {
        for x in 0..(widest + 2 * margin).min(cv.w) {
            cv.blend(x, y, [0, 0, 0], 0.55);
        }
    }
    for (i, line) in lines.iter().enumerate() {
        let baseline = top + margin + line_h * i as i64 + font.ascent().ceil() as i64;
        let mut pen = margin as f32;
        for c in line.chars() {
            let id = font.glyph_id(c);
            let glyph = id.with_scale_and_position(
                PxScale::from(size),
                ab_glyph::point(pen, baseline as f32),
            );
            pen += font.h_advance(id);
            if let Some(outlined) = font.outline_glyph(glyph) {
                let bounds = outlined.px_bounds();
                outlined.draw(|gx, gy, cov| {
                    cv.blend(
                        bounds.min.x as i64 + gx as i64,
                        bounds.min.y as i64 + gy as i64,
                        WHITE,
                        cov,
                    );
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grey(w: u32, h: u32) -> Picture {
        Picture {
            width: w,
            height: h,
            rgb: Arc::new(vec![128; (w * h * 3) as usize]),
        }
    }

    #[test]
    fn crop_is_padded_clamped_and_at_least_the_minimum() {
        let p = grey(200, 100);
        let c = p.crop(&[0.4, 0.4, 0.5, 0.6], 0.25, 8);
        assert_eq!((c.width, c.height), (30, 30));
        assert_eq!(c.rgb.len(), (30 * 30 * 3) as usize);
        let edge = p.crop(&[0.95, 0.9, 1.0, 1.0], 0.0, 64);
        assert!(edge.width <= 200 && edge.height <= 100 && edge.width >= 1);
        let tiny = p.crop(&[0.5, 0.5, 0.5, 0.5], 0.0, 16);
        assert_eq!((tiny.width, tiny.height), (16, 16));
    }

    #[test]
    fn the_box_zone_and_watermark_change_the_picture() {
        let font = match Watermarker::load(None) {
            Ok(f) => f,
            Err(e) => panic!("{e}"),
        };
        let p = grey(320, 240);
        let plain = render_jpeg(&p, &Overlay::default(), &font);
        let marked = render_jpeg(
            &p,
            &Overlay {
                bbox: Some([0.2, 0.2, 0.6, 0.7]),
                zones: vec![vec![[0.1, 0.1], [0.9, 0.1], [0.9, 0.9]]],
                text: vec!["AI 线索 · cam-1".into(), "2026-11-27 08:00:00+08:00".into()],
            },
            &font,
        );
        assert_eq!(&plain[..2], &[0xFF, 0xD8], "a JPEG starts with SOI");
        assert_ne!(plain, marked);
        assert!(marked.len() > plain.len());
    }

    #[test]
    fn a_missing_font_is_a_clear_error() {
        let e = Watermarker::load(Some(Path::new("/nonexistent/font.ttc"))).unwrap_err();
        assert!(e.to_string().contains("fonts-wqy-microhei"), "{e}");
    }
}
