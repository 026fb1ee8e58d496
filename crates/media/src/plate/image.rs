//! A packed RGB image owned by the plate reader: crops of frames, resized line images.

use fast_image_resize as fir;

#[derive(Clone, PartialEq, Eq)]
pub struct RgbImage {
    pub width: u32,
    pub height: u32,
    /// `width * height * 3` bytes, rows packed.
    pub data: Vec<u8>,
}

impl std::fmt::Debug for RgbImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RgbImage({}x{})", self.width, self.height)
    }
}

impl RgbImage {
    pub fn filled(width: u32, height: u32, rgb: [u8; 3]) -> Self {
        let n = width as usize * height as usize;
        let mut data = Vec::with_capacity(n * 3);
        for _ in 0..n {
            data.extend_from_slice(&rgb);
        }
        Self {
            width,
            height,
            data,
        }
    }

    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let i = (y as usize * self.width as usize + x as usize) * 3;
        [self.data[i], self.data[i + 1], self.data[i + 2]]
    }

    pub fn put(&mut self, x: u32, y: u32, rgb: [u8; 3]) {
        let i = (y as usize * self.width as usize + x as usize) * 3;
        self.data[i..i + 3].copy_from_slice(&rgb);
    }

    /// The part `[x, y, w, h]`, clamped to the image (at least 1×1).
    pub fn crop(&self, x: u32, y: u32, w: u32, h: u32) -> RgbImage {
        let x = x.min(self.width.saturating_sub(1));
        let y = y.min(self.height.saturating_sub(1));
        let w = w.clamp(1, self.width - x);
        let h = h.clamp(1, self.height - y);
        let mut data = Vec::with_capacity(w as usize * h as usize * 3);
        for row in y..y + h {
            let start = (row as usize * self.width as usize + x as usize) * 3;
            data.extend_from_slice(&self.data[start..start + w as usize * 3]);
        }
        RgbImage {
            width: w,
            height: h,
            data,
        }
    }

    /// The part inside `bbox` (normalised), grown by `margin` of its size on each side, of a
    /// picture `width × height` whose rows are `stride` bytes apart; with where its top-left
    /// corner lies in the picture (pixels).
    pub fn region_at(
        width: u32,
        height: u32,
        rgb: &[u8],
        stride: usize,
        bbox: [f32; 4],
        margin: f32,
    ) -> (RgbImage, (u32, u32)) {
        let row = |y: u32| &rgb[y as usize * stride..y as usize * stride + width as usize * 3];
        let (fw, fh) = (width as f32, height as f32);
        let (bw, bh) = (bbox[2] - bbox[0], bbox[3] - bbox[1]);
        let x0 = ((bbox[0] - bw * margin) * fw).clamp(0.0, fw - 1.0) as u32;
        let y0 = ((bbox[1] - bh * margin) * fh).clamp(0.0, fh - 1.0) as u32;
        let x1 = ((bbox[2] + bw * margin) * fw).clamp(x0 as f32 + 1.0, fw) as u32;
        let y1 = ((bbox[3] + bh * margin) * fh).clamp(y0 as f32 + 1.0, fh) as u32;
        let mut data = Vec::with_capacity(((x1 - x0) * (y1 - y0) * 3) as usize);
        for y in y0..y1 {
            data.extend_from_slice(&row(y)[x0 as usize * 3..x1 as usize * 3]);
        }
        (
            RgbImage {
                width: x1 - x0,
                height: y1 - y0,
                data,
            },
            (x0, y0),
        )
    }

    /// Bilinear resize (fast_image_resize).
    pub fn resize(&self, width: u32, height: u32) -> RgbImage {
        let (width, height) = (width.max(1), height.max(1));
        if (width, height) == (self.width, self.height) {
            return self.clone();
        }
        let src =
            fir::images::ImageRef::new(self.width, self.height, &self.data, fir::PixelType::U8x3)
                .expect("an RgbImage's buffer matches its size");
        let mut dst = fir::images::Image::new(width, height, fir::PixelType::U8x3);
        let opts = fir::ResizeOptions::new()
            .resize_alg(fir::ResizeAlg::Convolution(fir::FilterType::Bilinear));
        fir::Resizer::new()
            .resize(&src, &mut dst, &opts)
            .expect("same pixel types");
        RgbImage {
            width,
            height,
            data: dst.into_vec(),
        }
    }

    /// Copies `other` onto this image with its top-left corner at (x, y), clipped.
    pub fn paste(&mut self, other: &RgbImage, x: u32, y: u32) {
        for oy in 0..other.height {
            let ty = y + oy;
            if ty >= self.height {
                break;
            }
            let w = other.width.min(self.width.saturating_sub(x));
            if w == 0 {
                break;
            }
            let src = (oy * other.width) as usize * 3;
            let dst = (ty as usize * self.width as usize + x as usize) * 3;
            self.data[dst..dst + w as usize * 3]
                .copy_from_slice(&other.data[src..src + w as usize * 3]);
        }
    }
}
