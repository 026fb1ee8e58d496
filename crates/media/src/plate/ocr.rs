//! The OCR plate reader: PP-OCRv4 text detection (a DB-style probability map) finds text lines
//! in a vehicle's crop, PP-OCRv4 recognition reads each line (CTC, greedy), and the best line
//! that is a valid plate wins. Two stacked lines (the two-row plates of large vehicles) are
//! also tried joined. A crop where no line is a valid plate reads as "unreadable".
//!
//! Both models take BGR, scaled to -1..1 (`(v / 255 - 0.5) / 0.5`), channels first, as
//! PaddleOCR trained them. The recogniser's character set is its own ONNX metadata
//! (`character`, one per line), with CTC's blank before it and a space after it.

use parking_lot::Mutex;
use std::path::Path;

use ort::session::Session;
use ort::value::TensorRef;

use super::image::RgbImage;
use super::manifest::PlateManifest;
use super::{PlateReader, PlateReading};
use crate::detect::ModelError;
use crate::model::plate::{self, PlateRead};

/// A text line found by detection, in crop pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TextBox {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
    /// Mean text probability inside the line.
    pub score: f32,
}

pub struct OcrPlateReader {
    manifest: PlateManifest,
    det: Mutex<Session>,
    rec: Mutex<Session>,
    det_input: String,
    rec_input: String,
    /// Index = the recogniser's class; 0 is CTC's blank.
    charset: Vec<String>,
}

impl std::fmt::Debug for OcrPlateReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OcrPlateReader({})", self.manifest.name)
    }
}

/// Lines narrower than this (pixels, in the detection input) are noise.
const MIN_LINE_SIDE: u32 = 3;
/// Lines tried per crop, largest first: a car shows few text lines, and each costs a
/// recognition.
const MAX_LINES: usize = 6;

impl OcrPlateReader {
    /// Loads both models, checks their files against the manifest and the recogniser's
    /// character set against its output. `intra_threads` per session.
    pub fn load(
        manifest: PlateManifest,
        ort_lib: &Path,
        intra_threads: usize,
    ) -> Result<Self, ModelError> {
        manifest.verify_files()?;
        let name = manifest.name.clone();
        let env = crate::detect::runtime::environment(ort_lib).map_err(|mut e| {
            e.model = name.clone();
            e
        })?;
        let open = |field: &str, path: &Path| -> Result<Session, ModelError> {
            Session::builder(&env)
                .and_then(|b| {
                    b.with_intra_threads(intra_threads.max(1))
                        .map_err(Into::into)
                })
                .and_then(|b| b.with_intra_op_spinning(false).map_err(Into::into))
                .and_then(|mut b| b.commit_from_file(path))
                .map_err(|e| {
                    ModelError::new(&name, field, format!("ONNX Runtime cannot load it: {e}"))
                })
        };
        let det = open("det.file", &manifest.det.path)?;
        let rec = open("rec.file", &manifest.rec.path)?;
        let err = |field: &str, m: String| ModelError::new(&name, field, m);
        let first_input = |s: &Session, field: &str| -> Result<String, ModelError> {
            let i = s
                .inputs()
                .first()
                .ok_or_else(|| err(field, "the model has no input".into()))?;
            let rank = i.dtype().tensor_shape().map(|s| s.len()).unwrap_or(0);
            if rank != 4 {
                return Err(err(
                    field,
                    format!("expected a 4-dimensional image input, the model's has {rank}"),
                ));
            }
            Ok(i.name().to_string())
        };
        let det_input = first_input(&det, "det.file")?;
        let rec_input = first_input(&rec, "rec.file")?;
        let chars = rec
            .metadata()
            .ok()
            .and_then(|m| m.custom("character"))
            .ok_or_else(|| {
                err(
                    "rec.file",
                    "the recognition model has no `character` metadata (its character set)".into(),
                )
            })?;
        let mut charset: Vec<String> = vec![String::new()];
        charset.extend(chars.lines().map(str::to_string));
        charset.push(" ".into());
        let classes = rec
            .outputs()
            .first()
            .and_then(|o| o.dtype().tensor_shape().and_then(|s| s.last().copied()))
            .unwrap_or(-1);
        if classes > 0 && classes as usize != charset.len() {
            return Err(err(
                "rec.file",
                format!(
                    "the character set has {} entries with blank and space, the output has {classes} classes",
                    charset.len()
                ),
            ));
        }
        Ok(Self {
            manifest,
            det: Mutex::new(det),
            rec: Mutex::new(rec),
            det_input,
            rec_input,
            charset,
        })
    }

    pub fn manifest(&self) -> &PlateManifest {
        &self.manifest
    }

    /// Text lines in `img`, in its pixels, best first.
    pub fn lines(&self, img: &RgbImage) -> Result<Vec<TextBox>, ModelError> {
        let m = &self.manifest;
        let err = |field: &str, msg: String| ModelError::new(&m.name, field, msg);
        // Scale so the long side is max_side at most (and small crops are enlarged towards
        // it, up to 3×), each side a multiple of 32.
        let long = img.width.max(img.height) as f32;
        let scale = (m.max_side as f32 / long).min(3.0);
        let round32 = |v: f32| (((v / 32.0).round() as u32).max(1)) * 32;
        let (dw, dh) = (
            round32(img.width as f32 * scale),
            round32(img.height as f32 * scale),
        );
        let resized = img.resize(dw, dh);
        let input = bgr_chw(&resized);
        let shape = [1usize, 3, dh as usize, dw as usize];
        let mut session = self.det.lock();
        let t = TensorRef::from_array_view((shape, &input[..]))
            .map_err(|e| err("det.file", format!("cannot make the input tensor: {e}")))?;
        let out = session
            .run(ort::inputs![self.det_input.as_str() => t])
            .map_err(|e| err("runtime", format!("text detection failed: {e}")))?;
        let (oshape, prob) = out[0]
            .try_extract_tensor::<f32>()
            .map_err(|e| err("det.file", format!("output is not f32: {e}")))?;
        let (ph, pw) = match oshape[..] {
            [_, _, h, w] => (h as usize, w as usize),
            _ => {
                return Err(err(
                    "det.file",
                    format!("unexpected output shape {oshape:?}"),
                ));
            }
        };
        let boxes = find_lines(prob, pw, ph, m.pixel_threshold, m.box_threshold, m.unclip);
        let (sx, sy) = (img.width as f32 / pw as f32, img.height as f32 / ph as f32);
        let mut found: Vec<TextBox> = boxes
            .into_iter()
            .map(|b| {
                let x0 = (b.0 * sx).clamp(0.0, img.width as f32 - 1.0);
                let y0 = (b.1 * sy).clamp(0.0, img.height as f32 - 1.0);
                let x1 = (b.2 * sx).clamp(x0 + 1.0, img.width as f32);
                let y1 = (b.3 * sy).clamp(y0 + 1.0, img.height as f32);
                TextBox {
                    x: x0 as u32,
                    y: y0 as u32,
                    w: (x1 - x0).round().max(1.0) as u32,
                    h: (y1 - y0).round().max(1.0) as u32,
                    score: b.4,
                }
            })
            .collect();
        found.sort_by(|a, b| {
            (b.w * b.h)
                .cmp(&(a.w * a.h))
                .then(b.score.total_cmp(&a.score))
        });
        found.truncate(MAX_LINES);
        Ok(found)
    }

    /// Reads one line image: its text and the mean probability of the characters kept.
    pub fn recognise(&self, line: &RgbImage) -> Result<(String, f32), ModelError> {
        let m = &self.manifest;
        let err = |field: &str, msg: String| ModelError::new(&m.name, field, msg);
        let h = m.rec_height;
        let w = ((h as f32 * line.width as f32 / line.height.max(1) as f32).ceil() as u32)
            .clamp(8, 40 * h);
        // Padded to at least PaddleOCR's 320-wide canvas with the mid value (0 after scaling).
        let canvas = w.max(h * 320 / 48);
        let resized = line.resize(w, h);
        let plane = (canvas * h) as usize;
        let mut input = vec![0f32; 3 * plane];
        for y in 0..h {
            for x in 0..w {
                let [r, g, b] = resized.pixel(x, y);
                let i = (y * canvas + x) as usize;
                for (c, v) in [b, g, r].into_iter().enumerate() {
                    input[c * plane + i] = v as f32 / 127.5 - 1.0;
                }
            }
        }
        let shape = [1usize, 3, h as usize, canvas as usize];
        let mut session = self.rec.lock();
        let t = TensorRef::from_array_view((shape, &input[..]))
            .map_err(|e| err("rec.file", format!("cannot make the input tensor: {e}")))?;
        let out = session
            .run(ort::inputs![self.rec_input.as_str() => t])
            .map_err(|e| err("runtime", format!("text recognition failed: {e}")))?;
        let (oshape, probs) = out[0]
            .try_extract_tensor::<f32>()
            .map_err(|e| err("rec.file", format!("output is not f32: {e}")))?;
        let (steps, classes) = match oshape[..] {
            [_, t, c] => (t as usize, c as usize),
            _ => {
                return Err(err(
                    "rec.file",
                    format!("unexpected output shape {oshape:?}"),
                ));
            }
        };
        Ok(ctc_greedy(probs, steps, classes, &self.charset))
    }

    fn read_image(&self, crop: &RgbImage) -> Result<PlateReading, ModelError> {
        let lines = self.lines(crop)?;
        let mut texts = Vec::with_capacity(lines.len());
        let mut reads: Vec<(String, f32, TextBox)> = Vec::with_capacity(lines.len());
        for b in &lines {
            let img = crop.crop(b.x, b.y, b.w, b.h);
            let (text, conf) = self.recognise(&img)?;
            texts.push(text.clone());
            reads.push((text, conf, *b));
        }
        let mut best: Option<(String, f32, TextBox)> = None;
        let mut consider = |text: &str, conf: f32, b: TextBox| {
            let t = plate::normalise(text);
            if plate::validate(&t).is_some() && best.as_ref().is_none_or(|(_, c, _)| conf > *c) {
                best = Some((t, conf, b));
            }
        };
        for (text, conf, b) in &reads {
            consider(text, *conf, *b);
        }
        // Two-row plates: a short upper line (province and letter) above a longer one.
        for (ta, ca, a) in &reads {
            for (tb, cb, b) in &reads {
                let below = b.y >= a.y + a.h / 2 && b.y <= a.y + a.h * 2;
                let overlap = a.x.max(b.x) < (a.x + a.w).min(b.x + b.w);
                if a != b && below && overlap {
                    let joined = TextBox {
                        x: a.x.min(b.x),
                        y: a.y,
                        w: (a.x + a.w).max(b.x + b.w) - a.x.min(b.x),
                        h: b.y + b.h - a.y,
                        score: a.score.min(b.score),
                    };
                    consider(&format!("{ta}{tb}"), ca.min(*cb), joined);
                }
            }
        }
        Ok(match best {
            Some((text, confidence, b)) => PlateReading {
                read: PlateRead {
                    text: Some(text),
                    confidence,
                },
                region: Some([b.x, b.y, b.w, b.h]),
                lines: texts,
            },
            None => PlateReading {
                read: PlateRead {
                    text: None,
                    confidence: 0.0,
                },
                region: None,
                lines: texts,
            },
        })
    }
}

impl PlateReader for OcrPlateReader {
    fn read(&self, crop: &RgbImage) -> Result<PlateReading, ModelError> {
        self.read_image(crop)
    }
}

/// Packed RGB → planar BGR scaled to -1..1.
fn bgr_chw(img: &RgbImage) -> Vec<f32> {
    let plane = (img.width * img.height) as usize;
    let mut out = vec![0f32; 3 * plane];
    for (i, px) in img.data.chunks_exact(3).enumerate() {
        out[i] = px[2] as f32 / 127.5 - 1.0;
        out[plane + i] = px[1] as f32 / 127.5 - 1.0;
        out[2 * plane + i] = px[0] as f32 / 127.5 - 1.0;
    }
    out
}

/// CTC greedy decoding: the best class per step, repeats collapsed, blanks dropped. The
/// confidence is the mean probability of the characters kept (0 when none).
pub fn ctc_greedy(
    probs: &[f32],
    steps: usize,
    classes: usize,
    charset: &[String],
) -> (String, f32) {
    let mut text = String::new();
    let (mut sum, mut n) = (0f32, 0u32);
    let mut prev = usize::MAX;
    for t in 0..steps {
        let row = &probs[t * classes..(t + 1) * classes];
        let (best, p) =
            row.iter().enumerate().fold(
                (0, f32::MIN),
                |acc, (i, &v)| if v > acc.1 { (i, v) } else { acc },
            );
        if best != 0
            && best != prev
            && let Some(c) = charset.get(best)
        {
            text.push_str(c);
            sum += p;
            n += 1;
        }
        prev = best;
    }
    (text, if n > 0 { sum / n as f32 } else { 0.0 })
}

/// Text lines in a probability map (`w × h`): pixels above `pixel` are text, dilated by one
/// pixel right and down, joined 8-connected; each component's box is kept when the mean
/// probability inside it reaches `keep`, and grown by `area × unclip / perimeter` on each
/// side. Returns (x0, y0, x1, y1, score) in map pixels.
pub fn find_lines(
    prob: &[f32],
    w: usize,
    h: usize,
    pixel: f32,
    keep: f32,
    unclip: f32,
) -> Vec<(f32, f32, f32, f32, f32)> {
    let mut mask = vec![false; w * h];
    for y in 0..h {
        for x in 0..w {
            if prob[y * w + x] > pixel {
                for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                    let (nx, ny) = (x + dx, y + dy);
                    if nx < w && ny < h {
                        mask[ny * w + nx] = true;
                    }
                }
            }
        }
    }
    let mut seen = vec![false; w * h];
    let mut stack = Vec::new();
    let mut out = Vec::new();
    for start in 0..w * h {
        if !mask[start] || seen[start] {
            continue;
        }
        seen[start] = true;
        stack.push(start);
        let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
        while let Some(i) = stack.pop() {
            let (x, y) = (i % w, i / w);
            x0 = x0.min(x);
            y0 = y0.min(y);
            x1 = x1.max(x);
            y1 = y1.max(y);
            for dy in -1i64..=1 {
                for dx in -1i64..=1 {
                    let (nx, ny) = (x as i64 + dx, y as i64 + dy);
                    if nx < 0 || ny < 0 || nx >= w as i64 || ny >= h as i64 {
                        continue;
                    }
                    let j = ny as usize * w + nx as usize;
                    if mask[j] && !seen[j] {
                        seen[j] = true;
                        stack.push(j);
                    }
                }
            }
        }
        let (bw, bh) = ((x1 - x0 + 1) as u32, (y1 - y0 + 1) as u32);
        if bw.min(bh) < MIN_LINE_SIDE {
            continue;
        }
        let mut sum = 0f32;
        for y in y0..=y1 {
            sum += prob[y * w + x0..=y * w + x1].iter().sum::<f32>();
        }
        let score = sum / (bw * bh) as f32;
        if score < keep {
            continue;
        }
        let (fw, fh) = (bw as f32, bh as f32);
        let d = fw * fh * unclip / (2.0 * (fw + fh));
        out.push((
            (x0 as f32 - d).max(0.0),
            (y0 as f32 - d).max(0.0),
            ((x1 + 1) as f32 + d).min(w as f32),
            ((y1 + 1) as f32 + d).min(h as f32),
            score,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctc_collapses_repeats_and_drops_blanks() {
        let charset: Vec<String> = ["", "京", "A", "1"].iter().map(|s| s.to_string()).collect();
        // Steps: 京 京 blank A 1 blank 1 → 京A11.
        let best = [1, 1, 0, 2, 3, 0, 3];
        let mut probs = vec![0.0f32; best.len() * 4];
        for (t, &c) in best.iter().enumerate() {
            probs[t * 4 + c] = 0.9;
        }
        let (text, conf) = ctc_greedy(&probs, best.len(), 4, &charset);
        assert_eq!(text, "京A11");
        assert!((conf - 0.9).abs() < 1e-6);
    }

    #[test]
    fn lines_are_components_grown_by_unclip() {
        let (w, h) = (40, 20);
        let mut prob = vec![0.0f32; w * h];
        for y in 5..10 {
            for x in 4..24 {
                prob[y * w + x] = 0.9;
            }
        }
        // A speck too small to be a line.
        prob[15 * w + 35] = 0.9;
        let lines = find_lines(&prob, w, h, 0.3, 0.5, 1.6);
        assert_eq!(lines.len(), 1, "{lines:?}");
        let (x0, y0, x1, y1, s) = lines[0];
        assert!(
            x0 < 4.0 && y0 < 5.0 && x1 > 25.0 && y1 > 11.0,
            "{:?}",
            lines[0]
        );
        assert!(s > 0.5);
    }
}
