//! The plate reader with real ONNX Runtime on the PP-OCRv4 models that `make deps` unpacks:
//! rendered plates of every kind, pasted on a vehicle-like background, read exactly.

use citywatch::model::plate;
use citywatch::plate::render::{random_plate, render_plate};
use citywatch::plate::{OcrPlateReader, PlateManifest, PlateReader, RgbImage};

use crate::common::*;

fn reader() -> OcrPlateReader {
    let m = PlateManifest::load_named(&repo().join("models"), "plate_ppocr_v4").unwrap();
    let lib = citywatch::detect::runtime::library_path(None);
    OcrPlateReader::load(m, &lib, 2).unwrap_or_else(|e| panic!("{e}"))
}

fn font() -> ab_glyph::FontArc {
    citywatch::core::font::load(None).unwrap()
}

/// A vehicle's rear as the reader meets it: a body colour with a little noise, a darker
/// bumper band, and the plate low in the middle.
fn on_vehicle(plate_img: &RgbImage, rng: &mut fastrand::Rng) -> RgbImage {
    let w = plate_img.width * 5 / 2;
    let h = plate_img.height * 4;
    let body = [rng.u8(60..200), rng.u8(60..200), rng.u8(60..200)];
    let mut img = RgbImage::filled(w, h, body);
    for y in 0..h {
        for x in 0..w {
            let n = rng.i16(-12..12);
            let mut p = img.pixel(x, y);
            if y > h * 3 / 4 {
                p = [p[0] / 2, p[1] / 2, p[2] / 2];
            }
            let f = |v: u8| (v as i16 + n).clamp(0, 255) as u8;
            img.put(x, y, [f(p[0]), f(p[1]), f(p[2])]);
        }
    }
    let px = (w - plate_img.width) / 2 + rng.u32(0..plate_img.width / 8);
    img.paste(plate_img, px, h * 5 / 8 - plate_img.height / 2);
    img
}

#[test]
fn rendered_plates_of_every_kind_read_exactly_at_twenty_pixels_and_more() {
    let reader = reader();
    let font = font();
    let mut rng = fastrand::Rng::with_seed(29);
    let total = 60;
    let mut exact = 0;
    let mut misses = Vec::new();
    for i in 0..total {
        let text = random_plate(&mut rng, i);
        let height = 20 + (i as u32 % 13);
        let img = on_vehicle(&render_plate(&font, &text, height), &mut rng);
        let r = reader.read(&img).unwrap();
        if r.read.text.as_deref() == Some(text.as_str()) {
            exact += 1;
            let [x, y, w, h] = r.region.expect("a read plate has a region");
            assert!(x + w <= img.width && y + h <= img.height);
        } else {
            misses.push(format!(
                "{text} at {height}px read {:?} (lines {:?})",
                r.read.text, r.lines
            ));
        }
    }
    let rate = exact as f64 / total as f64;
    eprintln!("plates read exactly: {exact}/{total}; missed: {misses:?}");
    assert!(rate >= 0.95, "{exact}/{total} exact: {misses:#?}");
}

#[test]
fn a_vehicle_without_a_plate_reads_as_unreadable_not_a_guess() {
    let reader = reader();
    let mut rng = fastrand::Rng::with_seed(7);
    let blank = RgbImage::filled(120, 40, [30, 60, 160]);
    let img = on_vehicle(&blank, &mut rng);
    let r = reader.read(&img).unwrap();
    assert_eq!(r.read.text, None, "{:?}", r.lines);
    assert_eq!(r.region, None);
    // Text that is not a plate is not one either.
    let sign = render_plate(&font(), "HELLO12", 24);
    let r = reader.read(&on_vehicle(&sign, &mut rng)).unwrap();
    assert_eq!(r.read.text, None, "{:?}", r.lines);
}

#[test]
fn a_wrong_or_missing_plate_model_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let src = std::fs::read_to_string(repo().join("models/plate_ppocr_v4.toml")).unwrap();
    std::fs::write(dir.path().join("plate_ppocr_v4.toml"), &src).unwrap();
    let lib = citywatch::detect::runtime::library_path(None);
    let m = PlateManifest::load_named(dir.path(), "plate_ppocr_v4").unwrap();
    let e = OcrPlateReader::load(m, &lib, 1).unwrap_err();
    assert_eq!(
        (e.model.as_str(), e.field.as_str()),
        ("plate_ppocr_v4", "det.file")
    );
    assert!(e.message.contains("does not exist"), "{e}");
    // The right name, the wrong bytes.
    std::fs::create_dir_all(dir.path().join("ppocr")).unwrap();
    for f in ["ch_PP-OCRv4_det_infer.onnx", "ch_PP-OCRv4_rec_infer.onnx"] {
        std::fs::write(dir.path().join("ppocr").join(f), b"not a model").unwrap();
    }
    let m = PlateManifest::load_named(dir.path(), "plate_ppocr_v4").unwrap();
    let e = OcrPlateReader::load(m, &lib, 1).unwrap_err();
    assert_eq!(e.field, "det.sha256", "{e}");
    // A manifest field it does not know is named.
    std::fs::write(
        dir.path().join("plate_ppocr_v4.toml"),
        src.replace("[rec]", "[rec]\nheigth = 48"),
    )
    .unwrap();
    let e = PlateManifest::load_named(dir.path(), "plate_ppocr_v4").unwrap_err();
    assert!(e.field.starts_with("rec"), "{e}");
}

#[test]
fn format_validation_matches_what_the_renderer_draws() {
    let mut rng = fastrand::Rng::with_seed(1);
    for i in 0..120 {
        let t = random_plate(&mut rng, i);
        assert!(plate::validate(&t).is_some(), "{t}");
    }
}
