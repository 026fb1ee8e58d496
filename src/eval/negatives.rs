//! `citywatch export-negatives`: the captures operators rejected, as a COCO-format dataset
//! for model teams; `citywatch export-dataset`: the confirmed ones too, each annotation with
//! its verdict, split by camera into train and val. Each image is the clean frame at the confirmation, decoded from the
//! package's clip at the camera's own resolution (the package's JPEGs carry the box, the zone
//! and the watermark); each annotation is the rejected box, with the rejection reason, note,
//! rule, camera, score and capture key as attributes. Packages that fail their manifest check
//! or have no clip are skipped and counted.

use std::path::Path;

use serde::Serialize;

use crate::store::Store;

#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct ExportReport {
    pub exported: usize,
    pub skipped_no_package: usize,
    pub skipped_invalid: usize,
    pub skipped_no_clip: usize,
    /// Images whose vehicle plate was masked.
    pub plates_masked: usize,
}

/// Which captures an export takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dataset {
    /// Rejected captures only (hard negatives).
    Negatives,
    /// Confirmed and rejected captures, with verdicts, split by camera.
    Reviewed,
}

/// The split a camera's images go to: about one camera in five is held out for validation,
/// chosen by a hash of its id, so a camera never straddles both and the split is stable.
pub fn split_of(camera: &str) -> &'static str {
    use sha2::Digest;
    let h = sha2::Sha256::digest(camera.as_bytes());
    if h[0] % 5 == 0 { "val" } else { "train" }
}

pub async fn export(store: &Store, root: &Path, out: &Path) -> anyhow::Result<ExportReport> {
    export_with(store, root, out, Dataset::Negatives, false).await
}

/// Exports the reviewed captures. Vehicles' plates are masked in the images (the region the
/// plate was read at, from the package's manifest) unless `show_plates`; their text is in
/// the annotations only with `show_plates`.
pub async fn export_with(
    store: &Store,
    root: &Path,
    out: &Path,
    which: Dataset,
    show_plates: bool,
) -> anyhow::Result<ExportReport> {
    let images_dir = out.join("images");
    std::fs::create_dir_all(&images_dir)?;
    let mut report = ExportReport::default();
    let mut images = Vec::new();
    let mut annotations = Vec::new();
    let mut categories: Vec<String> = Vec::new();
    for (c, decision, reason, note) in store.reviewed_captures(which == Dataset::Reviewed).await? {
        let Some(dir) = c
            .evidence
            .as_ref()
            .and_then(|e| e.get("package"))
            .and_then(|p| p.as_str())
            .and_then(|p| crate::evidence::resolve(root, p))
        else {
            report.skipped_no_package += 1;
            continue;
        };
        let manifest = match crate::evidence::verify(&dir) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(capture = %c.id, error = %e, "package fails its manifest; not exported");
                report.skipped_invalid += 1;
                continue;
            }
        };
        let (Some(span), Some(at)) = (manifest.clip, manifest.confirmed.stream_s) else {
            report.skipped_no_clip += 1;
            continue;
        };
        let clip = dir.join("clip.mp4");
        let offset = (at - span.start_s).max(0.0);
        let (w, h, mut rgb) =
            tokio::task::spawn_blocking(move || crate::evidence::clip::frame_at(&clip, offset))
                .await?
                .map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
        let plate = manifest.plate.as_ref();
        if !show_plates && let Some(b) = plate.and_then(|p| p.bbox) {
            crate::model::plate::mask_region(&mut rgb, w, h, b);
            report.plates_masked += 1;
        }
        let file_name = format!("{}.jpg", crate::core::path::safe_component(&c.id));
        let jpeg = crate::evidence::image::encode_jpeg(&rgb, w, h);
        std::fs::write(images_dir.join(&file_name), jpeg)?;
        let image_id = images.len() + 1;
        images.push(serde_json::json!({
            "id": image_id, "file_name": format!("images/{file_name}"), "width": w, "height": h,
            "date_captured": manifest.confirmed.utc, "camera": c.camera,
            "split": split_of(&c.camera),
        }));
        let label = c.label.clone();
        let category_id = match categories.iter().position(|k| *k == label) {
            Some(i) => i + 1,
            None => {
                categories.push(label);
                categories.len()
            }
        };
        let b: Vec<f64> = serde_json::from_value(c.bbox.clone()).unwrap_or_default();
        let (x1, y1, x2, y2) = match b.as_slice() {
            [a, b, c, d] => (a * w as f64, b * h as f64, c * w as f64, d * h as f64),
            _ => (0.0, 0.0, 0.0, 0.0),
        };
        annotations.push(serde_json::json!({
            "id": annotations.len() + 1,
            "image_id": image_id,
            "category_id": category_id,
            "bbox": [x1, y1, x2 - x1, y2 - y1],
            "area": (x2 - x1) * (y2 - y1),
            "iscrowd": 0,
            "score": c.score,
            "attributes": {
                "verdict": if decision == "confirm" { "confirmed" } else { "rejected" },
                "rejection_reason": (decision != "confirm").then_some(reason),
                "note": note, "rule": c.rule, "camera": c.camera,
                "zone": c.zone, "capture_key": c.id,
                "model": manifest.model.as_ref().map(|m| format!("{} {}", m.name, m.version)),
                "plate": plate.filter(|_| show_plates).map(|p| p.text.clone()),
            },
        }));
        report.exported += 1;
    }
    let description = match which {
        Dataset::Negatives => "citywatch: captures rejected by operators (hard negatives)",
        Dataset::Reviewed => "citywatch: captures confirmed and rejected by operators",
    };
    let cats: Vec<serde_json::Value> = categories
        .iter()
        .enumerate()
        .map(|(i, n)| serde_json::json!({ "id": i + 1, "name": n }))
        .collect();
    let doc = |imgs: Vec<&serde_json::Value>| {
        let ids: std::collections::HashSet<u64> =
            imgs.iter().filter_map(|i| i["id"].as_u64()).collect();
        let anns: Vec<&serde_json::Value> = annotations
            .iter()
            .filter(|a| a["image_id"].as_u64().is_some_and(|i| ids.contains(&i)))
            .collect();
        serde_json::json!({
            "info": { "description": description, "version": "1" },
            "licenses": [],
            "images": imgs,
            "annotations": anns,
            "categories": cats,
        })
    };
    let write = |name: &str, v: serde_json::Value| -> anyhow::Result<()> {
        let tmp = out.join(format!("{name}.tmp"));
        std::fs::write(&tmp, serde_json::to_vec_pretty(&v)?)?;
        std::fs::rename(&tmp, out.join(name))?;
        Ok(())
    };
    write("annotations.json", doc(images.iter().collect()))?;
    if which == Dataset::Reviewed {
        for split in ["train", "val"] {
            let part = images.iter().filter(|i| i["split"] == split).collect();
            write(&format!("{split}.json"), doc(part))?;
        }
    }
    Ok(report)
}
