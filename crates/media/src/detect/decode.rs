//! Output decoding: a pure function of (tensor data, shape, layout), plus NMS where the
//! layout needs it. Boxes come out normalised to the model input (0..1 of its width and
//! height); [`super::preprocess::Fit`] maps them back onto the frame.

use super::manifest::OutputLayout;

pub use crate::model::geometry::{BBox, iou};

/// One decoded candidate, before labels and kinds are attached.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RawDet {
    pub class: usize,
    pub score: f32,
    pub bbox: BBox,
}

/// An output tensor: shape and data, row-major.
#[derive(Debug, Clone, Copy)]
pub struct Tensor<'a> {
    pub shape: &'a [usize],
    pub data: &'a [f32],
}

impl Tensor<'_> {
    /// The slice of batch item `b` (the first dimension is the batch).
    fn item(&self, b: usize) -> &[f32] {
        let per: usize = self.shape[1..].iter().product();
        &self.data[b * per..(b + 1) * per]
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    #[error("output {name}: expected {expected}, got shape {shape:?}")]
    Shape {
        name: String,
        expected: String,
        shape: Vec<usize>,
    },
}

/// Greedy per-class non-maximum suppression; ties keep the earlier candidate.
pub fn nms(mut dets: Vec<RawDet>, iou_threshold: f32) -> Vec<RawDet> {
    // Stable sort: equal scores keep their input order, so the result is deterministic.
    dets.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<RawDet> = Vec::with_capacity(dets.len());
    for d in dets {
        if kept
            .iter()
            .all(|k| k.class != d.class || iou(&k.bbox, &d.bbox) <= iou_threshold)
        {
            kept.push(d);
        }
    }
    kept
}

fn shape_err(name: &str, expected: &str, shape: &[usize]) -> DecodeError {
    DecodeError::Shape {
        name: name.to_string(),
        expected: expected.to_string(),
        shape: shape.to_vec(),
    }
}

/// A layout's decoder, with whatever it precomputes once per model (SSD anchors).
#[derive(Debug, Clone)]
pub struct Decoder {
    layout: OutputLayout,
    ssd: Option<super::ssd::RawSsd>,
}

impl Decoder {
    pub fn new(layout: &OutputLayout) -> Self {
        let ssd = match layout {
            OutputLayout::SsdRaw {
                class_offset,
                score,
                box_scale,
                nms_iou,
                class_agnostic,
                max_per_class,
                max_total,
                anchors,
                ..
            } => Some(super::ssd::RawSsd {
                anchors: anchors.generate(),
                class_offset: *class_offset,
                score: *score,
                box_scale: *box_scale,
                nms_iou: *nms_iou,
                class_agnostic: *class_agnostic,
                max_per_class: *max_per_class,
                max_total: *max_total,
            }),
            _ => None,
        };
        Self {
            layout: layout.clone(),
            ssd,
        }
    }

    /// Decodes batch item `b`; see [`decode`].
    pub fn decode(
        &self,
        tensors: &[Tensor<'_>],
        b: usize,
        input_size: (f32, f32),
        n_labels: usize,
        min_score: f32,
    ) -> Result<Vec<RawDet>, DecodeError> {
        match (&self.layout, &self.ssd) {
            (OutputLayout::SsdRaw { boxes, scores, .. }, Some(ssd)) => ssd.decode(
                (boxes, scores),
                &tensors[0],
                &tensors[1],
                b,
                n_labels,
                min_score,
            ),
            (layout, _) => decode(layout, tensors, b, input_size, n_labels, min_score),
        }
    }
}

/// Decodes batch item `b`. `tensors` are in the order of [`OutputLayout::output_names`];
/// `input_size` is (width, height) of the model input; `n_labels` the label count. For
/// `ssd_raw` this generates the anchors on every call: use a [`Decoder`], which keeps them.
pub fn decode(
    layout: &OutputLayout,
    tensors: &[Tensor<'_>],
    b: usize,
    input_size: (f32, f32),
    n_labels: usize,
    min_score: f32,
) -> Result<Vec<RawDet>, DecodeError> {
    let (iw, ih) = input_size;
    let clamp = |v: f32| v.clamp(0.0, 1.0);
    match layout {
        OutputLayout::SsdRaw { .. } => {
            Decoder::new(layout).decode(tensors, b, input_size, n_labels, min_score)
        }
        OutputLayout::SsdTf {
            boxes,
            class_offset,
            ..
        } => {
            let (bx, sc, cl) = (&tensors[0], &tensors[1], &tensors[2]);
            if bx.shape.len() != 3 || bx.shape[2] != 4 {
                return Err(shape_err(boxes, "[N, K, 4]", bx.shape));
            }
            let k = bx.shape[1];
            let count = tensors
                .get(3)
                .map(|c| c.item(b)[0].max(0.0) as usize)
                .unwrap_or(k)
                .min(k);
            let (bxs, scs, cls) = (bx.item(b), sc.item(b), cl.item(b));
            let mut out = Vec::new();
            for i in 0..count {
                let score = scs[i];
                let id = cls[i].round() as i64 - class_offset;
                if score < min_score || id < 0 || id as usize >= n_labels {
                    continue;
                }
                let r = &bxs[i * 4..i * 4 + 4];
                out.push(RawDet {
                    class: id as usize,
                    score,
                    bbox: [clamp(r[1]), clamp(r[0]), clamp(r[3]), clamp(r[2])],
                });
            }
            Ok(out)
        }
        OutputLayout::Yolov5 { name, nms_iou } => {
            let t = &tensors[0];
            if t.shape.len() != 3 || t.shape[2] != 5 + n_labels {
                return Err(shape_err(
                    name,
                    &format!("[N, B, {}]", 5 + n_labels),
                    t.shape,
                ));
            }
            let stride = t.shape[2];
            let mut out = Vec::new();
            for row in t.item(b).chunks_exact(stride) {
                let obj = row[4];
                if obj < min_score {
                    continue;
                }
                let (class, cls_score) = best(&row[5..]);
                let score = obj * cls_score;
                if score >= min_score {
                    out.push(RawDet {
                        class,
                        score,
                        bbox: cxcywh(row, iw, ih),
                    });
                }
            }
            Ok(nms(out, *nms_iou))
        }
        OutputLayout::Yolov8 { name, nms_iou } => {
            let t = &tensors[0];
            if t.shape.len() != 3 || t.shape[1] != 4 + n_labels {
                return Err(shape_err(
                    name,
                    &format!("[N, {}, B]", 4 + n_labels),
                    t.shape,
                ));
            }
            let n = t.shape[2];
            let item = t.item(b);
            let at = |row: usize, i: usize| item[row * n + i];
            let mut out = Vec::new();
            for i in 0..n {
                let mut class = 0;
                let mut score = f32::MIN;
                for c in 0..n_labels {
                    let s = at(4 + c, i);
                    if s > score {
                        score = s;
                        class = c;
                    }
                }
                if score >= min_score {
                    let row = [at(0, i), at(1, i), at(2, i), at(3, i)];
                    out.push(RawDet {
                        class,
                        score,
                        bbox: cxcywh(&row, iw, ih),
                    });
                }
            }
            Ok(nms(out, *nms_iou))
        }
        OutputLayout::CenternetTopk { name } => {
            let t = &tensors[0];
            if t.shape.len() != 3 || t.shape[2] != 6 {
                return Err(shape_err(name, "[N, K, 6]", t.shape));
            }
            let mut out = Vec::new();
            for row in t.item(b).chunks_exact(6) {
                let (score, class) = (row[4], row[5].round());
                if score < min_score || class < 0.0 || class as usize >= n_labels {
                    continue;
                }
                out.push(RawDet {
                    class: class as usize,
                    score,
                    bbox: [
                        clamp(row[0] / iw),
                        clamp(row[1] / ih),
                        clamp(row[2] / iw),
                        clamp(row[3] / ih),
                    ],
                });
            }
            Ok(out)
        }
    }
}

fn best(scores: &[f32]) -> (usize, f32) {
    scores.iter().enumerate().fold(
        (0, f32::MIN),
        |acc, (i, &s)| if s > acc.1 { (i, s) } else { acc },
    )
}

fn cxcywh(r: &[f32], iw: f32, ih: f32) -> BBox {
    let (cx, cy, w, h) = (r[0], r[1], r[2], r[3]);
    [
        ((cx - w / 2.0) / iw).clamp(0.0, 1.0),
        ((cy - h / 2.0) / ih).clamp(0.0, 1.0),
        ((cx + w / 2.0) / iw).clamp(0.0, 1.0),
        ((cy + h / 2.0) / ih).clamp(0.0, 1.0),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &BBox, b: &BBox) -> bool {
        a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5)
    }

    #[test]
    fn nms_is_per_class_and_keeps_the_first_of_a_tie() {
        let d = |class, score, x| RawDet {
            class,
            score,
            bbox: [x, 0.0, x + 1.0, 1.0],
        };
        let out = nms(
            vec![
                d(0, 0.8, 0.0),
                d(0, 0.9, 0.1),
                d(1, 0.7, 0.0),
                d(0, 0.5, 5.0),
            ],
            0.5,
        );
        assert_eq!(out, vec![d(0, 0.9, 0.1), d(1, 0.7, 0.0), d(0, 0.5, 5.0)]);
        let tie = nms(vec![d(0, 0.6, 0.0), d(0, 0.6, 0.05)], 0.5);
        assert_eq!(tie, vec![d(0, 0.6, 0.0)]);
    }

    #[test]
    fn yolov5_rows_decode_with_objectness_and_nms() {
        // Input 100x50; 3 candidates, 2 classes.
        #[rustfmt::skip]
        let data = [
            50.0, 25.0, 20.0, 10.0, 0.9, 0.1, 0.8, // class 1, 0.72
            51.0, 25.0, 20.0, 10.0, 0.8, 0.1, 0.9, // class 1, 0.72 overlapping: suppressed (tie, later)
            10.0, 10.0, 10.0, 10.0, 0.2, 0.9, 0.1, // objectness below min
        ];
        let layout = OutputLayout::Yolov5 {
            name: "out".into(),
            nms_iou: 0.45,
        };
        let t = Tensor {
            shape: &[1, 3, 7],
            data: &data,
        };
        let out = decode(&layout, &[t], 0, (100.0, 50.0), 2, 0.3).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].class, 1);
        assert!((out[0].score - 0.72).abs() < 1e-6);
        assert!(close(&out[0].bbox, &[0.4, 0.4, 0.6, 0.6]));
    }

    #[test]
    fn yolov8_is_transposed_and_has_no_objectness() {
        // [1, 4+2, 3]: rows are cx, cy, w, h, class0, class1; columns are candidates.
        #[rustfmt::skip]
        let data = [
            32.0, 10.0, 60.0, // cx
            32.0, 10.0, 60.0, // cy
            16.0,  4.0,  8.0, // w
            16.0,  4.0,  8.0, // h
            0.10, 0.95, 0.20, // class 0
            0.85, 0.05, 0.25, // class 1
        ];
        let layout = OutputLayout::Yolov8 {
            name: "output0".into(),
            nms_iou: 0.45,
        };
        let t = Tensor {
            shape: &[1, 6, 3],
            data: &data,
        };
        let out = decode(&layout, &[t], 0, (64.0, 64.0), 2, 0.3).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!((out[0].class, out[0].score), (0, 0.95));
        assert!(close(
            &out[0].bbox,
            &[8.0 / 64.0, 8.0 / 64.0, 12.0 / 64.0, 12.0 / 64.0]
        ));
        assert_eq!((out[1].class, out[1].score), (1, 0.85));
        assert!(close(&out[1].bbox, &[0.375, 0.375, 0.625, 0.625]));
        // A wrong class count is a clear shape error.
        let e = decode(&layout, &[t], 0, (64.0, 64.0), 3, 0.3).unwrap_err();
        assert_eq!(
            e.to_string(),
            "output output0: expected [N, 7, B], got shape [1, 6, 3]"
        );
    }

    #[test]
    fn centernet_topk_rows_and_the_second_batch_item() {
        #[rustfmt::skip]
        let data = [
            // item 0
            0.0, 0.0, 10.0, 10.0, 0.9, 0.0,
            0.0, 0.0, 10.0, 10.0, 0.1, 1.0,
            // item 1
            20.0, 10.0, 40.0, 30.0, 0.7, 1.0,
            0.0, 0.0, 1.0, 1.0, 0.8, 7.0, // class out of range
        ];
        let layout = OutputLayout::CenternetTopk {
            name: "dets".into(),
        };
        let t = Tensor {
            shape: &[2, 2, 6],
            data: &data,
        };
        let out = decode(&layout, &[t], 1, (40.0, 40.0), 2, 0.3).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].class, out[0].score), (1, 0.7));
        assert!(close(&out[0].bbox, &[0.5, 0.25, 1.0, 0.75]));
    }

    #[test]
    fn ssd_tf_swaps_axes_applies_the_offset_and_the_count() {
        let boxes = [0.1, 0.2, 0.3, 0.4, 0.5, 0.5, 0.6, 0.6, 0.0, 0.0, 1.0, 1.0];
        let scores = [0.9, 0.8, 0.95];
        let classes = [1.0, 3.0, 1.0];
        let count = [2.0];
        let layout = OutputLayout::SsdTf {
            boxes: "b".into(),
            scores: "s".into(),
            classes: "c".into(),
            count: Some("n".into()),
            class_offset: 1,
        };
        let ts = [
            Tensor {
                shape: &[1, 3, 4],
                data: &boxes,
            },
            Tensor {
                shape: &[1, 3],
                data: &scores,
            },
            Tensor {
                shape: &[1, 3],
                data: &classes,
            },
            Tensor {
                shape: &[1],
                data: &count,
            },
        ];
        let out = decode(&layout, &ts, 0, (300.0, 300.0), 90, 0.3).unwrap();
        // The third row is beyond num_detections.
        assert_eq!(out.len(), 2);
        assert_eq!((out[0].class, out[0].score), (0, 0.9));
        assert!(close(&out[0].bbox, &[0.2, 0.1, 0.4, 0.3]));
        assert_eq!(out[1].class, 2);
    }
}
