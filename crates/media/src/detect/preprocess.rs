//! Frame → input tensor, with no allocation in steady state: the packing, resize and output
//! buffers are kept and reused from call to call.

use fast_image_resize as fir;

use super::decode::BBox;
use super::manifest::{DType, InputSpec, Layout, ResizeMode};
use crate::ingest::Frame;

/// How a frame was fitted into the model input, to map boxes back.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fit {
    pub input_w: u32,
    pub input_h: u32,
    /// Scale from frame pixels to input pixels, per axis.
    pub sx: f32,
    pub sy: f32,
    /// Padding in input pixels (letterbox).
    pub pad_x: f32,
    pub pad_y: f32,
    pub frame_w: u32,
    pub frame_h: u32,
}

impl Fit {
    /// A box normalised to the model input → normalised to the frame.
    pub fn to_frame(&self, b: BBox) -> BBox {
        let x = |v: f32| {
            ((v * self.input_w as f32 - self.pad_x) / self.sx / self.frame_w as f32).clamp(0.0, 1.0)
        };
        let y = |v: f32| {
            ((v * self.input_h as f32 - self.pad_y) / self.sy / self.frame_h as f32).clamp(0.0, 1.0)
        };
        [x(b[0]), y(b[1]), x(b[2]), y(b[3])]
    }

    /// The input size as (width, height).
    pub fn input_size(&self) -> (f32, f32) {
        (self.input_w as f32, self.input_h as f32)
    }
}

/// The input size a frame of `w`×`h` gets.
pub fn input_size(spec: &InputSpec, w: u32, h: u32) -> (u32, u32) {
    spec.size.map(|[iw, ih]| (iw, ih)).unwrap_or((w, h))
}

/// Reusable buffers for one model.
pub struct Preprocessor {
    spec: InputSpec,
    packed: Vec<u8>,
    resized: Vec<u8>,
    resizer: fir::Resizer,
}

impl Preprocessor {
    pub fn new(spec: &InputSpec) -> Self {
        Self {
            spec: spec.clone(),
            packed: Vec::new(),
            resized: Vec::new(),
            resizer: fir::Resizer::new(),
        }
    }

    /// Elements of one batch item for a frame of this size.
    pub fn item_len(&self, w: u32, h: u32) -> usize {
        let (iw, ih) = input_size(&self.spec, w, h);
        iw as usize * ih as usize * 3
    }

    /// Fits `frame` into one batch item of a u8 tensor.
    pub fn write_u8(&mut self, frame: &Frame, out: &mut [u8]) -> Fit {
        let (layout, pad_value) = (self.spec.layout, self.spec.pad_value);
        let (fit, rgb) = self.fit(frame);
        let (iw, ih) = (fit.input_w as usize, fit.input_h as usize);
        let (rw, rh, ox, oy) = placed(&fit);
        match layout {
            Layout::Nhwc => {
                if rw != iw || rh != ih {
                    out.fill(pad_value);
                }
                for y in 0..rh {
                    let dst = ((y + oy) * iw + ox) * 3;
                    out[dst..dst + rw * 3].copy_from_slice(&rgb[y * rw * 3..(y + 1) * rw * 3]);
                }
            }
            Layout::Nchw => {
                out.fill(pad_value);
                let plane = iw * ih;
                for y in 0..rh {
                    for x in 0..rw {
                        let s = (y * rw + x) * 3;
                        let d = (y + oy) * iw + x + ox;
                        out[d] = rgb[s];
                        out[plane + d] = rgb[s + 1];
                        out[2 * plane + d] = rgb[s + 2];
                    }
                }
            }
        }
        fit
    }

    /// Fits `frame` into one batch item of an f32 tensor, normalised.
    pub fn write_f32(&mut self, frame: &Frame, out: &mut [f32]) -> Fit {
        let s = &self.spec;
        // Per channel: value = (px * scale - mean) / std = px * a + b.
        let a: [f32; 3] = std::array::from_fn(|c| s.scale / s.std[c]);
        let b: [f32; 3] = std::array::from_fn(|c| -s.mean[c] / s.std[c]);
        let padv: [f32; 3] = std::array::from_fn(|c| s.pad_value as f32 * a[c] + b[c]);
        let layout = s.layout;
        let (fit, rgb) = self.fit(frame);
        let (iw, ih) = (fit.input_w as usize, fit.input_h as usize);
        let (rw, rh, ox, oy) = placed(&fit);
        let plane = iw * ih;
        let (cs, ps) = match layout {
            Layout::Nhwc => (1, 3),
            Layout::Nchw => (plane, 1),
        };
        if rw != iw || rh != ih {
            for p in 0..plane {
                for c in 0..3 {
                    out[p * ps + c * cs] = padv[c];
                }
            }
        }
        match layout {
            Layout::Nchw => {
                // One contiguous run per channel and row: no index arithmetic in the loop.
                let (r_plane, rest) = out.split_at_mut(plane);
                let (g_plane, b_plane) = rest.split_at_mut(plane);
                for y in 0..rh {
                    let row = &rgb[y * rw * 3..(y + 1) * rw * 3];
                    let base = (y + oy) * iw + ox;
                    let (r, g, bl) = (
                        &mut r_plane[base..base + rw],
                        &mut g_plane[base..base + rw],
                        &mut b_plane[base..base + rw],
                    );
                    for (((px, r), g), bl) in row.chunks_exact(3).zip(r).zip(g).zip(bl) {
                        *r = px[0] as f32 * a[0] + b[0];
                        *g = px[1] as f32 * a[1] + b[1];
                        *bl = px[2] as f32 * a[2] + b[2];
                    }
                }
            }
            Layout::Nhwc => {
                for y in 0..rh {
                    let row = &rgb[y * rw * 3..(y + 1) * rw * 3];
                    let base = ((y + oy) * iw + ox) * 3;
                    let dst = &mut out[base..base + rw * 3];
                    for (px, d) in row.chunks_exact(3).zip(dst.chunks_exact_mut(3)) {
                        d[0] = px[0] as f32 * a[0] + b[0];
                        d[1] = px[1] as f32 * a[1] + b[1];
                        d[2] = px[2] as f32 * a[2] + b[2];
                    }
                }
            }
        }
        fit
    }

    /// Resizes the frame as the spec says; returns the fit and the packed RGB it placed.
    fn fit(&mut self, frame: &Frame) -> (Fit, &[u8]) {
        let (fw, fh) = (frame.width, frame.height);
        let (iw, ih) = input_size(&self.spec, fw, fh);
        let (rw, rh, sx, sy, px, py) = match self.spec.resize {
            ResizeMode::Stretch => (
                iw,
                ih,
                iw as f32 / fw as f32,
                ih as f32 / fh as f32,
                0.0,
                0.0,
            ),
            ResizeMode::Letterbox => {
                let s = (iw as f32 / fw as f32).min(ih as f32 / fh as f32);
                let rw = ((fw as f32 * s).round() as u32).clamp(1, iw);
                let rh = ((fh as f32 * s).round() as u32).clamp(1, ih);
                let (px, py) = ((iw - rw) / 2, (ih - rh) / 2);
                (rw, rh, s, s, px as f32, py as f32)
            }
        };
        let fit = Fit {
            input_w: iw,
            input_h: ih,
            sx,
            sy,
            pad_x: px,
            pad_y: py,
            frame_w: fw,
            frame_h: fh,
        };
        // Packed source rows: borrow the frame when it has no row padding.
        let row = fw as usize * 3;
        let src: &[u8] = if frame.stride == row {
            &frame.raw()[..row * fh as usize]
        } else {
            self.packed.clear();
            for y in 0..fh {
                self.packed.extend_from_slice(frame.row(y));
            }
            &self.packed
        };
        if (rw, rh) == (fw, fh) {
            // No resize: one copy into the reused buffer.
            let n = src.len();
            self.resized.resize(n, 0);
            self.resized.copy_from_slice(src);
            return (fit, &self.resized);
        }
        self.resized.resize(rw as usize * rh as usize * 3, 0);
        let src_img = fir::images::ImageRef::new(fw, fh, src, fir::PixelType::U8x3)
            .expect("source image matches its size");
        let mut dst_img =
            fir::images::Image::from_slice_u8(rw, rh, &mut self.resized, fir::PixelType::U8x3)
                .expect("destination buffer matches its size");
        let opts = fir::ResizeOptions::new()
            .resize_alg(fir::ResizeAlg::Convolution(fir::FilterType::Bilinear));
        self.resizer
            .resize(&src_img, &mut dst_img, &opts)
            .expect("same pixel types");
        (fit, &self.resized)
    }

    pub fn dtype(&self) -> DType {
        self.spec.dtype
    }
}

/// (resized width, resized height, x offset, y offset) in input pixels.
fn placed(fit: &Fit) -> (usize, usize, usize, usize) {
    let rw = (fit.frame_w as f32 * fit.sx).round() as usize;
    let rh = (fit.frame_h as f32 * fit.sy).round() as usize;
    (
        rw.min(fit.input_w as usize),
        rh.min(fit.input_h as usize),
        fit.pad_x as usize,
        fit.pad_y as usize,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::manifest::InputSpec;

    fn spec(layout: Layout, dtype: DType, size: Option<[u32; 2]>, resize: ResizeMode) -> InputSpec {
        InputSpec {
            name: "x".into(),
            layout,
            dtype,
            size,
            resize,
            scale: 1.0 / 255.0,
            mean: [0.0; 3],
            std: [1.0; 3],
            pad_value: 114,
            max_batch: 1,
        }
    }

    /// A 4x2 frame: left half red, right half blue.
    fn frame() -> Frame {
        let mut rgb = Vec::new();
        for _y in 0..2 {
            for x in 0..4 {
                rgb.extend_from_slice(if x < 2 { &[255, 0, 0] } else { &[0, 0, 255] });
            }
        }
        Frame::from_rgb("c".into(), 4, 2, rgb)
    }

    #[test]
    fn dynamic_nhwc_u8_is_a_plain_copy() {
        let mut p = Preprocessor::new(&spec(Layout::Nhwc, DType::U8, None, ResizeMode::Stretch));
        let mut out = vec![0u8; p.item_len(4, 2)];
        let fit = p.write_u8(&frame(), &mut out);
        assert_eq!(out, frame().to_packed_rgb());
        assert_eq!(fit.to_frame([0.25, 0.5, 0.75, 1.0]), [0.25, 0.5, 0.75, 1.0]);
    }

    #[test]
    fn letterbox_pads_and_maps_boxes_back() {
        // 4x2 into 4x4: scale 1, 1 row of padding above and below.
        let mut p = Preprocessor::new(&spec(
            Layout::Nchw,
            DType::F32,
            Some([4, 4]),
            ResizeMode::Letterbox,
        ));
        let mut out = vec![0f32; p.item_len(4, 2)];
        let fit = p.write_f32(&frame(), &mut out);
        assert_eq!((fit.pad_x, fit.pad_y), (0.0, 1.0));
        let near =
            |got: &[f32], want: [f32; 4]| got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-6);
        let pad = 114.0 / 255.0;
        // Red plane: padding row, then the two red pixels of row 1 (input row 1).
        assert!(near(&out[0..4], [pad; 4]), "{:?}", &out[0..4]);
        assert!(near(&out[4..8], [1.0, 1.0, 0.0, 0.0]));
        // Blue plane, input row 2.
        assert!(near(&out[32 + 8..32 + 12], [0.0, 0.0, 1.0, 1.0]));
        // The box covering the picture area maps to the whole frame.
        let b = fit.to_frame([0.0, 0.25, 1.0, 0.75]);
        assert_eq!(b, [0.0, 0.0, 1.0, 1.0]);
    }

    #[test]
    fn stretch_resizes_with_a_filter() {
        let mut p = Preprocessor::new(&spec(
            Layout::Nhwc,
            DType::U8,
            Some([2, 1]),
            ResizeMode::Stretch,
        ));
        let mut out = vec![0u8; p.item_len(4, 2)];
        p.write_u8(&frame(), &mut out);
        // Bilinear blends neighbours a little: left stays mostly red, right mostly blue.
        assert!(out[0] > 200 && out[2] < 55, "{out:?}");
        assert!(out[3] < 55 && out[5] > 200, "{out:?}");
        assert_eq!((out[1], out[4]), (0, 0));
    }
}
