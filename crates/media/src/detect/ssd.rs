//! SSD post-processing in Rust, for graphs cut before TensorFlow's own (`layout = "ssd_raw"`):
//! the grid anchors, box decoding, score conversion and per-class NMS that the TensorFlow
//! Object Detection API builds into its graphs as `Loop`s of small ops.
//!
//! What it reproduces, from the API's published behaviour and checked against the shipped
//! whole graphs (`models/convert/make_raw.py` compares the anchors; the integration test
//! `detect::ssd_raw_matches_the_whole_graph` compares the detections):
//! - anchors: a grid per feature map, cell centres at `(i + 0.5) / size`, one box per
//!   (scale, aspect ratio) with height `scale / sqrt(ar)` and width `scale * sqrt(ar)`; scales
//!   spaced linearly from `min_scale` to `max_scale`, plus the geometric mean with the next
//!   layer's scale at `interpolated_scale_aspect_ratio`; the lowest layer reduced to three
//!   boxes (0.1 at 1:1, its scale at 2:1 and 1:2);
//! - boxes: Faster R-CNN coding, `(ty, tx, th, tw)` divided by `box_scale`, relative to the
//!   anchor's centre and size; clipped to the image before NMS, empty boxes dropped;
//! - scores: a sigmoid (or softmax) of the logits, the background column skipped;
//! - NMS: greedy per class (or across classes), a box suppressed when its IoU with a kept
//!   one exceeds `nms_iou`, at most `max_per_class` per class and `max_total` in all, highest
//!   score first, ties in anchor order.
//!
//! Candidates below `min_score` are dropped before NMS: in greedy NMS only a higher-scoring
//! box suppresses another, so the kept set above `min_score` is the same as if the graph had
//! run NMS on everything and the caller had filtered afterwards.

use serde::Deserialize;

use super::decode::{BBox, DecodeError, RawDet, Tensor, iou};

/// `[output.anchors]`: TensorFlow's multiple-grid SSD anchor generator.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AnchorSpec {
    /// Side of each square feature map, finest first (SSD-MobileNetV2 at 300: 19, 10, 5, 3, 2, 1).
    pub feature_maps: Vec<u32>,
    pub min_scale: f32,
    pub max_scale: f32,
    pub aspect_ratios: Vec<f32>,
    /// Aspect ratio of the extra box at the interpolated scale; 0 leaves it out.
    #[serde(default = "one")]
    pub interpolated_scale_aspect_ratio: f32,
    /// Three boxes only on the lowest layer.
    #[serde(default = "yes")]
    pub reduce_boxes_in_lowest_layer: bool,
}

fn one() -> f32 {
    1.0
}
fn yes() -> bool {
    true
}

/// How logits become scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ScoreFn {
    #[default]
    Sigmoid,
    Softmax,
}

/// An anchor as centre and size, normalised to the input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Anchor {
    pub cy: f32,
    pub cx: f32,
    pub h: f32,
    pub w: f32,
}

impl AnchorSpec {
    /// Checks the parameters; the message names the field under `output.anchors`.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let bad = |f: &str, m: String| Err((format!("output.anchors.{f}"), m));
        if self.feature_maps.len() < 2 || self.feature_maps.contains(&0) {
            return bad(
                "feature_maps",
                "needs at least two positive sizes".to_string(),
            );
        }
        if !(self.min_scale > 0.0 && self.min_scale <= self.max_scale) {
            return bad(
                "min_scale",
                format!(
                    "must be positive and at most max_scale ({}), got {}",
                    self.max_scale, self.min_scale
                ),
            );
        }
        if self.aspect_ratios.is_empty() || self.aspect_ratios.iter().any(|a| *a <= 0.0) {
            return bad(
                "aspect_ratios",
                "needs at least one positive ratio".to_string(),
            );
        }
        Ok(())
    }

    /// The anchors, in the order the network's heads emit them: layer, row, column, box.
    pub fn generate(&self) -> Vec<Anchor> {
        let n = self.feature_maps.len();
        let mut scales: Vec<f64> = (0..n)
            .map(|i| {
                self.min_scale as f64
                    + (self.max_scale as f64 - self.min_scale as f64) * i as f64 / (n as f64 - 1.0)
            })
            .collect();
        scales.push(1.0);
        let mut out = Vec::new();
        for (layer, &size) in self.feature_maps.iter().enumerate() {
            let (s, next) = (scales[layer], scales[layer + 1]);
            let specs: Vec<(f64, f64)> = if layer == 0 && self.reduce_boxes_in_lowest_layer {
                vec![(0.1, 1.0), (s, 2.0), (s, 0.5)]
            } else {
                let mut v: Vec<(f64, f64)> =
                    self.aspect_ratios.iter().map(|&a| (s, a as f64)).collect();
                if self.interpolated_scale_aspect_ratio > 0.0 {
                    v.push((
                        (s * next).sqrt(),
                        self.interpolated_scale_aspect_ratio as f64,
                    ));
                }
                v
            };
            let size = size as f64;
            for y in 0..size as u32 {
                for x in 0..size as u32 {
                    let (cy, cx) = ((y as f64 + 0.5) / size, (x as f64 + 0.5) / size);
                    for &(scale, ar) in &specs {
                        let r = ar.sqrt();
                        out.push(Anchor {
                            cy: cy as f32,
                            cx: cx as f32,
                            h: (scale / r) as f32,
                            w: (scale * r) as f32,
                        });
                    }
                }
            }
        }
        out
    }
}

/// The `ssd_raw` parameters a decoder needs, with the anchors generated once.
#[derive(Debug, Clone)]
pub struct RawSsd {
    pub anchors: Vec<Anchor>,
    pub class_offset: usize,
    pub score: ScoreFn,
    pub box_scale: [f32; 4],
    pub nms_iou: f32,
    pub class_agnostic: bool,
    pub max_per_class: usize,
    pub max_total: usize,
}

impl RawSsd {
    /// Decodes batch item `b` of the box encodings `[N, A, 4]` and logits `[N, A, C]`.
    pub fn decode(
        &self,
        names: (&str, &str),
        boxes: &Tensor<'_>,
        logits: &Tensor<'_>,
        b: usize,
        n_labels: usize,
        min_score: f32,
    ) -> Result<Vec<RawDet>, DecodeError> {
        let a = self.anchors.len();
        if boxes.shape.len() != 3 || boxes.shape[1] != a || boxes.shape[2] != 4 {
            return Err(shape(names.0, &format!("[N, {a}, 4]"), boxes.shape));
        }
        let c = self.class_offset + n_labels;
        if logits.shape.len() != 3 || logits.shape[1] != a || logits.shape[2] != c {
            return Err(shape(names.1, &format!("[N, {a}, {c}]"), logits.shape));
        }
        let enc = &boxes.data[b * a * 4..(b + 1) * a * 4];
        let lg = &logits.data[b * a * c..(b + 1) * a * c];
        // Sigmoid is monotonic: compare logits against the threshold's logit.
        let floor = min_score.clamp(1e-6, 1.0 - 1e-6);
        let logit_floor = (floor / (1.0 - floor)).ln();
        let mut cands: Vec<RawDet> = Vec::new();
        for (i, anchor) in self.anchors.iter().enumerate() {
            let row = &lg[i * c..(i + 1) * c];
            let mut bbox: Option<BBox> = None;
            let mut push = |class: usize, score: f32, cands: &mut Vec<RawDet>| {
                let bb = *bbox.get_or_insert_with(|| self.box_of(anchor, &enc[i * 4..i * 4 + 4]));
                if bb[2] > bb[0] && bb[3] > bb[1] {
                    cands.push(RawDet {
                        class,
                        score,
                        bbox: bb,
                    });
                }
            };
            match self.score {
                ScoreFn::Sigmoid => {
                    for (k, &l) in row[self.class_offset..].iter().enumerate() {
                        if l >= logit_floor {
                            let s = 1.0 / (1.0 + (-l).exp());
                            if s >= min_score {
                                push(k, s, &mut cands);
                            }
                        }
                    }
                }
                ScoreFn::Softmax => {
                    let max = row.iter().copied().fold(f32::MIN, f32::max);
                    let sum: f32 = row.iter().map(|&l| (l - max).exp()).sum();
                    for (k, &l) in row[self.class_offset..].iter().enumerate() {
                        let s = (l - max).exp() / sum;
                        if s >= min_score {
                            push(k, s, &mut cands);
                        }
                    }
                }
            }
        }
        Ok(self.suppress(cands))
    }

    /// Faster R-CNN box decoding, clipped to the image: (x0, y0, x1, y1).
    fn box_of(&self, a: &Anchor, t: &[f32]) -> BBox {
        let [sy, sx, sh, sw] = self.box_scale;
        let cy = t[0] / sy * a.h + a.cy;
        let cx = t[1] / sx * a.w + a.cx;
        let h = (t[2] / sh).exp() * a.h;
        let w = (t[3] / sw).exp() * a.w;
        let c = |v: f32| v.clamp(0.0, 1.0);
        [
            c(cx - w / 2.0),
            c(cy - h / 2.0),
            c(cx + w / 2.0),
            c(cy + h / 2.0),
        ]
    }

    /// Greedy NMS per class (or across classes), then the overall cap.
    fn suppress(&self, mut cands: Vec<RawDet>) -> Vec<RawDet> {
        // Stable: equal scores keep anchor order.
        cands.sort_by(|x, y| y.score.total_cmp(&x.score));
        let mut kept: Vec<RawDet> = Vec::new();
        let mut per_class: Vec<usize> = Vec::new();
        for d in cands {
            if per_class.len() <= d.class {
                per_class.resize(d.class + 1, 0);
            }
            if !self.class_agnostic && per_class[d.class] >= self.max_per_class {
                continue;
            }
            let clash = kept.iter().any(|k| {
                (self.class_agnostic || k.class == d.class) && iou(&k.bbox, &d.bbox) > self.nms_iou
            });
            if !clash {
                per_class[d.class] += 1;
                kept.push(d);
                if kept.len() == self.max_total
                    || (self.class_agnostic && kept.len() == self.max_per_class)
                {
                    break;
                }
            }
        }
        kept
    }
}

fn shape(name: &str, expected: &str, got: &[usize]) -> DecodeError {
    DecodeError::Shape {
        name: name.to_string(),
        expected: expected.to_string(),
        shape: got.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mobilenet() -> AnchorSpec {
        AnchorSpec {
            feature_maps: vec![19, 10, 5, 3, 2, 1],
            min_scale: 0.2,
            max_scale: 0.95,
            aspect_ratios: vec![1.0, 2.0, 0.5, 3.0, 0.3333],
            interpolated_scale_aspect_ratio: 1.0,
            reduce_boxes_in_lowest_layer: true,
        }
    }

    fn corners(a: &Anchor) -> [f32; 4] {
        [
            a.cy - a.h / 2.0,
            a.cx - a.w / 2.0,
            a.cy + a.h / 2.0,
            a.cx + a.w / 2.0,
        ]
    }

    #[test]
    fn anchors_match_the_constant_in_the_tensorflow_graph() {
        let a = mobilenet().generate();
        assert_eq!(a.len(), 1917);
        // Values read off `Postprocessor/ExpandDims:0` of ssd_mobilenet_v2_coco.onnx.
        let want: [(usize, [f32; 4]); 5] = [
            (0, [-0.02368421, -0.02368421, 0.07631579, 0.07631579]),
            (1, [-0.04439489, -0.11510557, 0.09702647, 0.16773716]),
            (2, [-0.11510557, -0.04439489, 0.16773716, 0.09702647]),
            (3, [-0.02368421, 0.02894736, 0.07631579, 0.12894736]),
            // The last anchor: the 1×1 map's interpolated box, sqrt(0.95 * 1.0) square.
            (
                1916,
                [
                    0.5 - 0.974_679_4 / 2.0,
                    0.5 - 0.974_679_4 / 2.0,
                    0.5 + 0.974_679_4 / 2.0,
                    0.5 + 0.974_679_4 / 2.0,
                ],
            ),
        ];
        for (i, w) in want {
            let got = corners(&a[i]);
            for k in 0..4 {
                assert!((got[k] - w[k]).abs() < 1e-6, "anchor {i}: {got:?} vs {w:?}");
            }
        }
    }

    #[test]
    fn bad_anchor_parameters_name_the_field() {
        let mut s = mobilenet();
        s.min_scale = 2.0;
        assert_eq!(s.validate().unwrap_err().0, "output.anchors.min_scale");
        let mut s = mobilenet();
        s.feature_maps = vec![19];
        assert_eq!(s.validate().unwrap_err().0, "output.anchors.feature_maps");
    }

    fn two_anchor_decoder(class_agnostic: bool) -> RawSsd {
        RawSsd {
            anchors: vec![
                Anchor {
                    cy: 0.5,
                    cx: 0.5,
                    h: 0.2,
                    w: 0.2,
                },
                Anchor {
                    cy: 0.5,
                    cx: 0.52,
                    h: 0.2,
                    w: 0.2,
                },
                Anchor {
                    cy: 0.1,
                    cx: 0.1,
                    h: 0.1,
                    w: 0.1,
                },
            ],
            class_offset: 1,
            score: ScoreFn::Sigmoid,
            box_scale: [10.0, 10.0, 5.0, 5.0],
            nms_iou: 0.6,
            class_agnostic,
            max_per_class: 100,
            max_total: 100,
        }
    }

    #[test]
    fn decodes_offsets_scores_and_suppresses_per_class() {
        let d = two_anchor_decoder(false);
        // Anchor 0 moved right by 0.1 of its width (tx = 1.0 / 10), doubled in height
        // (th = 5 ln 2).
        #[rustfmt::skip]
        let enc = [
            0.0, 1.0, 5.0 * 2f32.ln(), 0.0,
            0.0, 0.0, 5.0 * 2f32.ln(), 0.0,
            0.0, 0.0, 0.0, 0.0,
        ];
        // Columns: background, class 0, class 1. Logit 2 → 0.881, 1 → 0.731, -3 → 0.047.
        #[rustfmt::skip]
        let logits = [
            5.0, 2.0, -3.0,
            5.0, 1.0, 1.0,
            5.0, -3.0, 2.0,
        ];
        let bt = Tensor {
            shape: &[1, 3, 4],
            data: &enc,
        };
        let lt = Tensor {
            shape: &[1, 3, 3],
            data: &logits,
        };
        let out = d.decode(("b", "s"), &bt, &lt, 0, 2, 0.3).unwrap();
        // Anchor 1 decodes to the same box as anchor 0: its class 0 goes, its class 1 stays.
        assert_eq!(out.len(), 3, "{out:?}");
        assert_eq!(out[0].class, 0);
        assert!((out[0].score - 0.880_797).abs() < 1e-5);
        let b = out[0].bbox;
        let want = [0.42, 0.3, 0.62, 0.7];
        assert!(
            b.iter().zip(want).all(|(x, y)| (x - y).abs() < 1e-5),
            "{b:?}"
        );
        assert_eq!((out[1].class, out[2].class), (1, 1));
        // Across classes, anchor 1 goes entirely; the far anchor stays.
        let out = two_anchor_decoder(true)
            .decode(("b", "s"), &bt, &lt, 0, 2, 0.3)
            .unwrap();
        assert_eq!(out.len(), 2, "{out:?}");
        // A wrong anchor count is a shape error naming the output.
        let e = d
            .decode(
                ("b", "s"),
                &Tensor {
                    shape: &[1, 2, 4],
                    data: &enc[..8],
                },
                &lt,
                0,
                2,
                0.3,
            )
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "output b: expected [N, 3, 4], got shape [1, 2, 4]"
        );
    }
}
