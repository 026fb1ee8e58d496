//! Appearance embeddings from the detector itself: a manifest's `[features]` names an
//! intermediate feature map of the network (for SSD-MobileNetV2, the 19×19×576 expansion of
//! block 13, the map SSD's first head reads). The model file is left as shipped: at load the
//! map is added to the graph's outputs in memory, so the same file runs with or without it.
//! Each detection's box pools the map into one L2-normalised vector, its embedding.

use std::sync::Arc;

use serde::Deserialize;

use super::decode::{BBox, Tensor};
use super::manifest::Layout;

/// An appearance embedding: L2-normalised, so the dot product is the cosine similarity.
pub type Embedding = Arc<[f32]>;

/// `[features]` of a manifest.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FeatureSpec {
    /// The graph tensor to expose, by name.
    pub output: String,
    /// Its layout: [N, C, H, W] (`nchw`) or [N, H, W, C] (`nhwc`).
    pub layout: Layout,
}

pub use crate::model::embedding::{normalise, similarity};

/// Mean of the feature map over the cells whose centres lie in `bbox` (normalised to the
/// model input), at least the cell under the box's centre; L2-normalised.
pub fn pool(map: &Tensor<'_>, item: usize, layout: Layout, bbox: &BBox) -> Option<Vec<f32>> {
    if map.shape.len() != 4 {
        return None;
    }
    let (c, h, w) = match layout {
        Layout::Nchw => (map.shape[1], map.shape[2], map.shape[3]),
        Layout::Nhwc => (map.shape[3], map.shape[1], map.shape[2]),
    };
    if c == 0 || h == 0 || w == 0 {
        return None;
    }
    let per = c * h * w;
    let data = map.data.get(item * per..(item + 1) * per)?;
    // Cell i covers [i/w, (i+1)/w); its centre is (i + 0.5)/w.
    let span = |lo: f32, hi: f32, n: usize| {
        let a = ((lo * n as f32 - 0.5).ceil().max(0.0) as usize).min(n - 1);
        let b = ((hi * n as f32 - 0.5).floor().max(0.0) as usize).min(n - 1);
        if a <= b {
            (a, b)
        } else {
            let m = ((((lo + hi) / 2.0) * n as f32) as usize).min(n - 1);
            (m, m)
        }
    };
    let (x0, x1) = span(bbox[0], bbox[2], w);
    let (y0, y1) = span(bbox[1], bbox[3], h);
    let mut out = vec![0f32; c];
    for y in y0..=y1 {
        for x in x0..=x1 {
            match layout {
                Layout::Nchw => {
                    for (k, o) in out.iter_mut().enumerate() {
                        *o += data[k * h * w + y * w + x];
                    }
                }
                Layout::Nhwc => {
                    let cell = &data[(y * w + x) * c..(y * w + x + 1) * c];
                    for (o, v) in out.iter_mut().zip(cell) {
                        *o += v;
                    }
                }
            }
        }
    }
    normalise(&mut out);
    Some(out)
}

/// Reads one protobuf varint at `*at`, moving past it.
fn varint(b: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*at)?;
        *at += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The ONNX model `model` (a serialised `ModelProto`) with the float tensor `name` added to
/// its graph's outputs. Only the graph message's length and one appended `ValueInfoProto`
/// change; every weight is copied as it is.
pub fn add_graph_output(model: &[u8], name: &str) -> Result<Vec<u8>, String> {
    const GRAPH: u64 = 7; // ModelProto.graph
    const OUTPUT: u64 = 12; // GraphProto.output
    let needle = name.as_bytes();
    if needle.is_empty() || !model.windows(needle.len()).any(|w| w == needle) {
        return Err(format!("the graph has no tensor named {name:?}"));
    }
    let mut at = 0;
    while at < model.len() {
        let field_start = at;
        let tag = varint(model, &mut at).ok_or("a truncated field tag")?;
        let (field, wire) = (tag >> 3, tag & 7);
        match wire {
            0 => {
                varint(model, &mut at).ok_or("a truncated varint")?;
            }
            1 => at += 8,
            5 => at += 4,
            2 => {
                let len = varint(model, &mut at).ok_or("a truncated length")? as usize;
                let body = at;
                at += len;
                if at > model.len() {
                    return Err("a field runs past the end of the file".into());
                }
                if field == GRAPH {
                    // ValueInfoProto { name: 1, type: 2 { tensor_type: 1 { elem_type: 1 = FLOAT } } }
                    let mut info = vec![0x0a];
                    put_varint(&mut info, needle.len() as u64);
                    info.extend_from_slice(needle);
                    info.extend_from_slice(&[0x12, 0x04, 0x0a, 0x02, 0x08, 0x01]);
                    let mut entry = Vec::new();
                    put_varint(&mut entry, (OUTPUT << 3) | 2);
                    put_varint(&mut entry, info.len() as u64);
                    entry.extend_from_slice(&info);
                    let mut out = Vec::with_capacity(model.len() + entry.len() + 8);
                    out.extend_from_slice(&model[..field_start]);
                    put_varint(&mut out, tag);
                    put_varint(&mut out, (len + entry.len()) as u64);
                    out.extend_from_slice(&model[body..at]);
                    out.extend_from_slice(&entry);
                    out.extend_from_slice(&model[at..]);
                    return Ok(out);
                }
            }
            w => return Err(format!("unexpected wire type {w}: not an ONNX model")),
        }
    }
    Err("no graph in the file".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooling_averages_the_cells_under_the_box_and_normalises() {
        // 2 channels, 2×2 map, NCHW: channel 0 is 1 on the left column, channel 1 on the right.
        let data = [1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0];
        let t = Tensor {
            shape: &[1, 2, 2, 2],
            data: &data,
        };
        let left = pool(&t, 0, Layout::Nchw, &[0.0, 0.0, 0.5, 1.0]).unwrap();
        assert_eq!(left, vec![1.0, 0.0]);
        let all = pool(&t, 0, Layout::Nchw, &[0.0, 0.0, 1.0, 1.0]).unwrap();
        assert!((all[0] - all[1]).abs() < 1e-6 && (similarity(&all, &all) - 1.0).abs() < 1e-6);
        // A box smaller than a cell takes the cell under its centre.
        let tiny = pool(&t, 0, Layout::Nchw, &[0.7, 0.1, 0.72, 0.12]).unwrap();
        assert_eq!(tiny, vec![0.0, 1.0]);
        assert_eq!(similarity(&left, &tiny), 0.0);
    }

    #[test]
    fn an_output_is_appended_to_the_graph_and_nothing_else_moves() {
        // ModelProto { ir_version: 7 (field 1), graph: 7 { name: 2 "g", node output "t" } , opset 8 }
        let graph = [0x12, 0x01, b'g', 0x0a, 0x03, 0x1a, 0x01, b't'];
        let mut model = vec![0x08, 0x07, 0x3a, graph.len() as u8];
        model.extend_from_slice(&graph);
        model.extend_from_slice(&[0x42, 0x00]);
        let out = add_graph_output(&model, "t").unwrap();
        assert_eq!(&out[..2], &model[..2]);
        assert_eq!(out[3] as usize, graph.len() + 2 + 9);
        assert_eq!(&out[4..4 + graph.len()], &graph);
        assert_eq!(
            &out[4 + graph.len()..out.len() - 2],
            &[
                0x62, 0x09, 0x0a, 0x01, b't', 0x12, 0x04, 0x0a, 0x02, 0x08, 0x01
            ]
        );
        assert_eq!(&out[out.len() - 2..], &[0x42, 0x00]);
        assert!(add_graph_output(&model, "missing").is_err());
    }
}
