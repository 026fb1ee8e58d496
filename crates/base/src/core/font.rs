//! The CJK font the evidence watermark is drawn with: found, read and checked once, by the
//! config's validation (so a bad `evidence.font` is a config error naming the field) and by
//! the evidence writer.

use std::path::{Path, PathBuf};

use ab_glyph::{Font, FontArc};

/// Font files tried in order when the config names none.
pub const DEFAULT_FONTS: &[&str] = &[
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
];

#[derive(Debug, thiserror::Error)]
pub enum FontError {
    #[error(
        "no CJK font for the evidence watermark: tried {tried}; install Debian's fonts-wqy-microhei (make deps) or set evidence.font"
    )]
    Missing { tried: String },
    #[error("evidence font {path}: {detail}")]
    Bad { path: PathBuf, detail: String },
}

/// Loads `path`, or the first default font that exists. The font must draw 线索.
pub fn load(path: Option<&Path>) -> Result<FontArc, FontError> {
    let candidates: Vec<PathBuf> = match path {
        Some(p) => vec![p.to_path_buf()],
        None => DEFAULT_FONTS.iter().map(PathBuf::from).collect(),
    };
    let Some(found) = candidates.iter().find(|p| p.is_file()) else {
        return Err(FontError::Missing {
            tried: candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        });
    };
    let bad = |detail: String| FontError::Bad {
        path: found.clone(),
        detail,
    };
    let bytes = std::fs::read(found).map_err(|e| bad(e.to_string()))?;
    let font = FontArc::try_from_vec(bytes).map_err(|e| bad(e.to_string()))?;
    for ch in ['线', '索'] {
        if font.glyph_id(ch).0 == 0 {
            return Err(bad(format!("has no glyph for {ch:?}")));
        }
    }
    Ok(font)
}
