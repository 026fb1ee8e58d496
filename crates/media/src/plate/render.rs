//! Plates drawn as they look on the road, for the reader's tests and for `citywatch scenario`:
//! each character stretched into its cell of a 440 × 140 mm plate (characters 45 × 90 mm,
//! 12 mm apart, a dot after the second), in the colours of the plate's kind:
//! - ordinary: white on blue;
//! - new energy: black on green;
//! - 挂 and 学 (and large vehicles): black on yellow;
//! - 警: black on white, the 警 in red.

use ab_glyph::{Font, FontArc, PxScale, ScaleFont};

use super::image::RgbImage;
use crate::model::plate::{PlateKind, validate};

/// Background and character colours of a plate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlateColours {
    pub background: [u8; 3],
    pub text: [u8; 3],
    /// The suffix's colour (警 is red).
    pub suffix: [u8; 3],
}

impl PlateColours {
    pub fn for_text(text: &str) -> Self {
        let blue = Self {
            background: [18, 62, 168],
            text: [245, 245, 245],
            suffix: [245, 245, 245],
        };
        match validate(text) {
            Some(PlateKind::NewEnergy) => Self {
                background: [118, 204, 120],
                text: [16, 16, 16],
                suffix: [16, 16, 16],
            },
            Some(PlateKind::Suffixed) if text.ends_with('警') => Self {
                background: [240, 240, 240],
                text: [16, 16, 16],
                suffix: [200, 20, 20],
            },
            Some(PlateKind::Suffixed) if text.ends_with('挂') || text.ends_with('学') => Self {
                background: [236, 184, 30],
                text: [16, 16, 16],
                suffix: [16, 16, 16],
            },
            _ => blue,
        }
    }
}

/// Draws `text` as a plate whose characters are `char_height` pixels tall.
pub fn render_plate(font: &FontArc, text: &str, char_height: u32) -> RgbImage {
    let colours = PlateColours::for_text(text);
    let chars: Vec<char> = text.chars().collect();
    let h = char_height.max(8) as f32;
    let mm = h / 90.0;
    let (cell_w, gap, dot) = (45.0 * mm, 12.0 * mm, 22.0 * mm);
    let n = chars.len() as f32;
    let margin_x = 15.5 * mm;
    let width = (2.0 * margin_x + n * cell_w + (n - 1.0) * gap + dot).round() as u32;
    let height = (140.0 * mm).round() as u32;
    let mut img = RgbImage::filled(width, height, colours.background);
    // The frame line a few millimetres inside the edge.
    let inset = (3.0 * mm).round().max(1.0) as u32;
    let line = (1.5 * mm).round().max(1.0) as u32;
    for y in 0..height {
        for x in 0..width {
            let d = x.min(y).min(width - 1 - x).min(height - 1 - y);
            if d >= inset && d < inset + line {
                img.put(x, y, colours.text);
            }
        }
    }
    let top = ((height as f32 - h) / 2.0).round() as u32;
    let mut x = margin_x;
    for (i, &c) in chars.iter().enumerate() {
        let colour = if i + 1 == chars.len() && crate::model::plate::SUFFIXES.contains(c) {
            colours.suffix
        } else {
            colours.text
        };
        draw_char(
            &mut img,
            font,
            c,
            x.round() as u32,
            top,
            cell_w.round() as u32,
            h as u32,
            colour,
        );
        x += cell_w + gap;
        if i == 1 {
            // The separating dot, centred in its space.
            let r = (2.5 * mm).max(1.0);
            let (cx, cy) = (x - gap / 2.0 + dot / 2.0, height as f32 / 2.0);
            for py in (cy - r) as u32..=(cy + r) as u32 {
                for px in (cx - r) as u32..=(cx + r) as u32 {
                    let (dx, dy) = (px as f32 + 0.5 - cx, py as f32 + 0.5 - cy);
                    if dx * dx + dy * dy <= r * r && px < width && py < height {
                        img.put(px, py, colours.text);
                    }
                }
            }
            x += dot;
        }
    }
    img
}

/// Rasterises `c` and stretches its ink to fill the cell `w × h` at (x, y), blending by
/// coverage.
#[allow(clippy::too_many_arguments)]
fn draw_char(
    img: &mut RgbImage,
    font: &FontArc,
    c: char,
    x: u32,
    y: u32,
    w: u32,
    h: u32,
    colour: [u8; 3],
) {
    let scaled = font.as_scaled(PxScale::from(h as f32 * 2.0));
    let glyph = scaled.scaled_glyph(c);
    let Some(outline) = font.outline_glyph(glyph) else {
        return;
    };
    let b = outline.px_bounds();
    let (gw, gh) = (b.width().ceil() as usize, b.height().ceil() as usize);
    if gw == 0 || gh == 0 {
        return;
    }
    let mut cov = vec![0f32; gw * gh];
    outline.draw(|px, py, v| {
        let (px, py) = (px as usize, py as usize);
        if px < gw && py < gh {
            cov[py * gw + px] = v;
        }
    });
    for cy in 0..h {
        for cx in 0..w {
            // Box-sample the glyph's coverage under this cell pixel.
            let sx0 = cx as f32 * gw as f32 / w as f32;
            let sx1 = (cx + 1) as f32 * gw as f32 / w as f32;
            let sy0 = cy as f32 * gh as f32 / h as f32;
            let sy1 = (cy + 1) as f32 * gh as f32 / h as f32;
            let (mut sum, mut n) = (0f32, 0f32);
            let mut sy = sy0.floor() as usize;
            while (sy as f32) < sy1 && sy < gh {
                let mut sx = sx0.floor() as usize;
                while (sx as f32) < sx1 && sx < gw {
                    sum += cov[sy * gw + sx];
                    n += 1.0;
                    sx += 1;
                }
                sy += 1;
            }
            let a = if n > 0.0 {
                (sum / n).clamp(0.0, 1.0)
            } else {
                0.0
            };
            if a <= 0.0 {
                continue;
            }
            let (tx, ty) = (x + cx, y + cy);
            if tx >= img.width || ty >= img.height {
                continue;
            }
            let bg = img.pixel(tx, ty);
            let mix = |i: usize| (bg[i] as f32 * (1.0 - a) + colour[i] as f32 * a).round() as u8;
            img.put(tx, ty, [mix(0), mix(1), mix(2)]);
        }
    }
}

/// A random valid plate of each kind in turn, from `rng` (tests and scenarios).
pub fn random_plate(rng: &mut fastrand::Rng, i: usize) -> String {
    let provinces: Vec<char> = crate::model::plate::PROVINCES.chars().collect();
    let letters: Vec<char> = ('A'..='Z').filter(|&c| c != 'I' && c != 'O').collect();
    let serial = |rng: &mut fastrand::Rng| {
        if rng.u8(0..3) == 0 {
            letters[rng.usize(0..letters.len())]
        } else {
            char::from(b'0' + rng.u8(0..10))
        }
    };
    let mut s = String::new();
    s.push(provinces[rng.usize(0..provinces.len())]);
    s.push(letters[rng.usize(0..letters.len())]);
    match i % 6 {
        4 => {
            s.push(if rng.bool() { 'D' } else { 'F' });
            for _ in 0..5 {
                s.push(char::from(b'0' + rng.u8(0..10)));
            }
        }
        5 => {
            for _ in 0..4 {
                s.push(serial(rng));
            }
            s.push(['警', '学', '挂'][rng.usize(0..3)]);
        }
        _ => {
            for _ in 0..5 {
                s.push(serial(rng));
            }
        }
    }
    debug_assert!(validate(&s).is_some(), "{s}");
    s
}
