//! Truth files (`docs/eval.md`): one JSON file per clip, naming its footage, the events a
//! perfect pipeline would capture, and optionally per-frame boxes (MOTChallenge CSV or COCO
//! JSON). Every error names the file and the field.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::RuleKind;

/// A truth file as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TruthFile {
    /// The clip, relative to the truth file's folder.
    pub footage: String,
    /// The pipeline camera whose zones and rules apply (default: the one whose `footage` has
    /// the same file name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub camera: Option<String>,
    pub events: Vec<TruthEvent>,
    /// Per-frame boxes: `.csv` (MOTChallenge) or `.json` (COCO), relative to the truth file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frames: Option<String>,
}

/// One event a perfect pipeline captures.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TruthEvent {
    pub rule: RuleKind,
    /// Seconds of the clip; negative when the event began before the clip.
    pub start_s: f64,
    pub end_s: f64,
    /// Where, normalised [x1, y1, x2, y2]; without it any place matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#box: Option<[f64; 4]>,
    /// Free text for the reader (what the event is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// A vehicle's plate (车牌号), as the store writes it: `eval` scores the plates read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plate: Option<String>,
}

impl TruthEvent {
    /// Checks the event: the error is (field, what is wrong).
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if !self.start_s.is_finite() || !self.end_s.is_finite() || self.end_s <= self.start_s {
            return Err((
                "end_s",
                format!("{} must be after start_s {}", self.end_s, self.start_s),
            ));
        }
        if let Some(b) = &self.r#box {
            check_box(b).map_err(|m| ("box", m))?;
        }
        if let Some(p) = &self.plate
            && crate::model::plate::validate(p).is_none()
        {
            return Err((
                "plate",
                format!("{p:?} is not a valid plate in the store's form (京A12345)"),
            ));
        }
        Ok(())
    }
}

fn check_box(b: &[f64; 4]) -> Result<(), String> {
    const SLACK: f64 = 1e-6;
    if b.iter()
        .any(|v| !v.is_finite() || *v < -SLACK || *v > 1.0 + SLACK)
    {
        return Err(format!(
            "{b:?} is out of range: boxes are normalised to 0..1"
        ));
    }
    if b[0] >= b[2] || b[1] >= b[3] {
        return Err(format!("{b:?} is not a box (x1 < x2 and y1 < y2)"));
    }
    Ok(())
}

/// A truth file loaded and checked, with its paths resolved.
#[derive(Debug, Clone)]
pub struct Truth {
    pub path: PathBuf,
    /// The clip's name in reports: the truth file's stem.
    pub clip: String,
    pub footage: PathBuf,
    pub camera: Option<String>,
    pub events: Vec<TruthEvent>,
    pub frames: Option<PathBuf>,
}

/// A truth error: the file, the field and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {field}: {message}")]
pub struct TruthError {
    pub file: String,
    pub field: String,
    pub message: String,
}

fn err(file: &Path, field: impl Into<String>, message: impl Into<String>) -> TruthError {
    TruthError {
        file: file.display().to_string(),
        field: field.into(),
        message: message.into(),
    }
}

impl Truth {
    pub fn load(path: &Path) -> Result<Self, TruthError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| err(path, "(file)", format!("cannot read: {e}")))?;
        let de = &mut serde_json::Deserializer::from_str(&text);
        let file: TruthFile = serde_path_to_error::deserialize(de).map_err(|e| {
            let field = e.path().to_string();
            let field = if field == "." {
                "(document)".to_string()
            } else {
                field
            };
            err(path, field, e.into_inner().to_string())
        })?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let footage = dir.join(&file.footage);
        if !footage.is_file() {
            return Err(err(
                path,
                "footage",
                format!("{:?}: no such file ({})", file.footage, footage.display()),
            ));
        }
        for (i, e) in file.events.iter().enumerate() {
            e.validate()
                .map_err(|(f, m)| err(path, format!("events[{i}].{f}"), m))?;
        }
        let frames = match &file.frames {
            None => None,
            Some(f) => {
                let p = dir.join(f);
                if !p.is_file() {
                    return Err(err(
                        path,
                        "frames",
                        format!("{f:?}: no such file ({})", p.display()),
                    ));
                }
                Some(p)
            }
        };
        let clip = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("clip")
            .to_string();
        Ok(Truth {
            path: path.to_path_buf(),
            clip,
            footage,
            camera: file.camera,
            events: file.events,
            frames,
        })
    }
}

/// One labelled box of a frame.
#[derive(Debug, Clone, PartialEq)]
pub struct GtBox {
    pub class: String,
    pub bbox: [f64; 4],
    /// Crowd or don't-care regions: detections on them count neither way.
    pub ignore: bool,
}

/// Per-frame boxes of one clip, frames numbered from 0.
#[derive(Debug, Clone, Default)]
pub struct FrameTruth {
    /// Every labelled frame, with its boxes (possibly none).
    pub frames: BTreeMap<u64, Vec<GtBox>>,
    /// The classes labelled; detections of other classes are not scored.
    pub classes: BTreeSet<String>,
}

/// The MOTChallenge classes (MOT16/17 ground truth), as detector label names.
fn mot_class(id: i64) -> Option<(&'static str, bool)> {
    // (label, ignore)
    match id {
        1 | 2 | 7 => Some(("person", false)),
        3 => Some(("car", false)),
        4 => Some(("bicycle", false)),
        5 => Some(("motorcycle", false)),
        6 => Some(("bicycle", true)),
        8 => Some(("person", true)),
        _ => None,
    }
}

impl FrameTruth {
    /// Loads per-frame boxes; `size` is the footage's (width, height), for pixel boxes.
    pub fn load(path: &Path, size: (u32, u32)) -> Result<Self, TruthError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| err(path, "(file)", format!("cannot read: {e}")))?;
        match path.extension().and_then(|e| e.to_str()) {
            Some("csv") | Some("txt") => Self::from_mot(path, &text, size),
            Some("json") => Self::from_coco(path, &text),
            _ => Err(err(
                path,
                "(file)",
                "per-frame boxes must be MOTChallenge .csv/.txt or COCO .json",
            )),
        }
    }

    /// MOTChallenge: `frame,id,x,y,w,h,conf,class,visibility` in pixels, frames from 1. Every
    /// frame from 1 to the last one named is labelled. Rows with conf 0 are ignored regions.
    fn from_mot(path: &Path, text: &str, (w, h): (u32, u32)) -> Result<Self, TruthError> {
        let mut out = FrameTruth::default();
        let mut last = 0u64;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let field = |f: &str| format!("line {}: {f}", n + 1);
            let cols: Vec<&str> = line.split(',').map(str::trim).collect();
            if cols.len() < 6 {
                return Err(err(
                    path,
                    field("(row)"),
                    format!(
                        "{} columns; need frame,id,x,y,w,h[,conf,class,visibility]",
                        cols.len()
                    ),
                ));
            }
            let num = |i: usize, name: &str| -> Result<f64, TruthError> {
                cols[i]
                    .parse::<f64>()
                    .map_err(|_| err(path, field(name), format!("{:?} is not a number", cols[i])))
            };
            let frame = num(0, "frame")?;
            if frame < 1.0 || frame.fract() != 0.0 {
                return Err(err(path, field("frame"), "frames are numbered from 1"));
            }
            let (x, y, bw, bh) = (num(2, "x")?, num(3, "y")?, num(4, "w")?, num(5, "h")?);
            let conf = if cols.len() > 6 { num(6, "conf")? } else { 1.0 };
            let class = if cols.len() > 7 {
                num(7, "class")? as i64
            } else {
                1
            };
            let idx = frame as u64 - 1;
            last = last.max(idx);
            let Some((label, ignored)) = mot_class(class) else {
                continue;
            };
            let b = [
                x / w as f64,
                y / h as f64,
                (x + bw) / w as f64,
                (y + bh) / h as f64,
            ];
            check_box(&b).map_err(|m| err(path, field("box"), m))?;
            out.classes.insert(label.to_string());
            out.frames.entry(idx).or_default().push(GtBox {
                class: label.to_string(),
                bbox: b.map(|v| v.clamp(0.0, 1.0)),
                ignore: ignored || conf == 0.0,
            });
        }
        for i in 0..=last {
            out.frames.entry(i).or_default();
        }
        Ok(out)
    }

    /// COCO: `images` (each with `frame_index`, from 0, and its `width`/`height`),
    /// `annotations` (`bbox` [x, y, w, h] in pixels, `iscrowd` 1 = ignored) and `categories`
    /// (whose names are the detector's labels). Every image listed is labelled.
    fn from_coco(path: &Path, text: &str) -> Result<Self, TruthError> {
        #[derive(Deserialize)]
        struct Coco {
            images: Vec<Image>,
            annotations: Vec<Ann>,
            categories: Vec<Cat>,
        }
        #[derive(Deserialize)]
        struct Image {
            id: u64,
            frame_index: u64,
            width: u32,
            height: u32,
        }
        #[derive(Deserialize)]
        struct Ann {
            image_id: u64,
            category_id: u64,
            bbox: [f64; 4],
            #[serde(default)]
            iscrowd: u8,
        }
        #[derive(Deserialize)]
        struct Cat {
            id: u64,
            name: String,
        }
        let de = &mut serde_json::Deserializer::from_str(text);
        let coco: Coco = serde_path_to_error::deserialize(de)
            .map_err(|e| err(path, e.path().to_string(), e.into_inner().to_string()))?;
        let cats: BTreeMap<u64, &str> = coco
            .categories
            .iter()
            .map(|c| (c.id, c.name.as_str()))
            .collect();
        let images: BTreeMap<u64, &Image> = coco.images.iter().map(|i| (i.id, i)).collect();
        let mut out = FrameTruth::default();
        for c in &coco.categories {
            out.classes.insert(c.name.clone());
        }
        for i in &coco.images {
            out.frames.entry(i.frame_index).or_default();
        }
        for (k, a) in coco.annotations.iter().enumerate() {
            let field = |f: &str| format!("annotations[{k}].{f}");
            let img = images
                .get(&a.image_id)
                .ok_or_else(|| err(path, field("image_id"), format!("no image {}", a.image_id)))?;
            let class = cats.get(&a.category_id).ok_or_else(|| {
                err(
                    path,
                    field("category_id"),
                    format!("no category {}", a.category_id),
                )
            })?;
            let (w, h) = (img.width.max(1) as f64, img.height.max(1) as f64);
            let [x, y, bw, bh] = a.bbox;
            let b = [x / w, y / h, (x + bw) / w, (y + bh) / h];
            check_box(&b).map_err(|m| err(path, field("bbox"), m))?;
            out.frames.entry(img.frame_index).or_default().push(GtBox {
                class: class.to_string(),
                bbox: b.map(|v| v.clamp(0.0, 1.0)),
                ignore: a.iscrowd == 1,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn errors_name_the_file_and_the_field() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "clip.mp4", "x");
        let cases = [
            (r#"{"footage": "nope.mp4", "events": []}"#, "footage"),
            (r#"{"footage": "clip.mp4", "events": [}"#, "events[0]"),
            (
                r#"{"footage": "clip.mp4", "events": [{"rule": "parking", "start_s": 0, "end_s": 1}]}"#,
                "events[0].rule",
            ),
            (
                r#"{"footage": "clip.mp4", "events": [{"rule": "illegal_vendor", "start_s": 0, "end_s": 1, "box": [0.1, 0.1, 1.4, 0.5]}]}"#,
                "events[0].box",
            ),
            (
                r#"{"footage": "clip.mp4", "events": [{"rule": "illegal_vendor", "start_s": 5, "end_s": 1}]}"#,
                "events[0].end_s",
            ),
            (
                r#"{"footage": "clip.mp4", "events": [], "colour": 1}"#,
                "colour",
            ),
        ];
        for (i, (text, field)) in cases.iter().enumerate() {
            let p = write(d.path(), &format!("t{i}.json"), text);
            let e = Truth::load(&p).unwrap_err();
            assert_eq!(e.field, *field, "{text}: {e}");
            assert!(e.to_string().contains(&format!("t{i}.json")), "{e}");
        }
        let ok = write(
            d.path(),
            "good.json",
            r#"{"footage": "clip.mp4", "events": [{"rule": "abandoned_vehicle", "start_s": -30, "end_s": 10, "box": [0, 0, 1, 1]}]}"#,
        );
        let t = Truth::load(&ok).unwrap();
        assert_eq!(t.clip, "good");
        assert_eq!(t.events[0].start_s, -30.0);
    }

    #[test]
    fn mot_and_coco_boxes_are_normalised() {
        let d = tempfile::tempdir().unwrap();
        let mot = write(
            d.path(),
            "f.csv",
            "1,1,10,20,30,40,1,1,1\n3,2,0,0,100,50,1,3,1\n3,3,5,5,5,5,0,1,1\n",
        );
        let t = FrameTruth::load(&mot, (100, 100)).unwrap();
        assert_eq!(t.frames.len(), 3, "frames 1..3 all labelled");
        assert!(t.frames[&1].is_empty());
        assert_eq!(t.frames[&0][0].bbox, [0.1, 0.2, 0.4, 0.6]);
        assert_eq!(t.frames[&2][0].class, "car");
        assert!(t.frames[&2][1].ignore);
        let bad = write(d.path(), "g.csv", "1,1,90,20,30,40,1,1,1\n");
        let e = FrameTruth::load(&bad, (100, 100)).unwrap_err();
        assert_eq!(e.field, "line 1: box");

        let coco = write(
            d.path(),
            "c.json",
            r#"{"images": [{"id": 7, "frame_index": 40, "width": 200, "height": 100}, {"id": 8, "frame_index": 50, "width": 200, "height": 100}],
                "annotations": [{"image_id": 7, "category_id": 3, "bbox": [20, 10, 100, 50]}],
                "categories": [{"id": 3, "name": "car"}]}"#,
        );
        let t = FrameTruth::load(&coco, (1, 1)).unwrap();
        assert_eq!(t.frames[&40][0].bbox, [0.1, 0.1, 0.6, 0.6]);
        assert!(t.frames[&50].is_empty());
        let bad = write(
            d.path(),
            "d.json",
            r#"{"images": [{"id": 7, "frame_index": 0, "width": 200, "height": 100}],
                "annotations": [{"image_id": 7, "category_id": 3, "bbox": [150, 10, 100, 50]}],
                "categories": [{"id": 3, "name": "car"}]}"#,
        );
        let e = FrameTruth::load(&bad, (1, 1)).unwrap_err();
        assert_eq!(e.field, "annotations[0].bbox");
    }
}
