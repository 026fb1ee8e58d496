//! ONNX Runtime, loaded at run time (`ort` with `load-dynamic`): where the library is, and
//! the one environment every session shares. A missing or wrong library is an error, never
//! a panic.

use parking_lot::Mutex;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::error::ModelError;

/// The library version `ort` 2.0.0-rc.15 was built against.
pub const ORT_VERSION: &str = "1.31.0";

/// Where to find `libonnxruntime.so`, in order: the config's `ort_library`, the
/// `CITYWATCH_ORT_LIB` environment variable, then the project-local install that
/// `scripts/deps.sh` makes (`.local/onnxruntime/lib/`), looked for beside the working
/// directory and beside the source tree this binary was built from.
pub fn library_path(configured: Option<&Path>) -> PathBuf {
    if let Some(p) = configured {
        return p.to_path_buf();
    }
    if let Some(p) = std::env::var_os("CITYWATCH_ORT_LIB") {
        return PathBuf::from(p);
    }
    let rel = Path::new(".local/onnxruntime/lib").join(format!("libonnxruntime.so.{ORT_VERSION}"));
    let candidates = [
        std::env::current_dir().map(|d| d.join(&rel)).ok(),
        Some(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join(&rel)),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|p| p.exists())
        .unwrap_or(rel)
}

use ort::environment::Environment;

/// The library the process loaded, and its environment (cheap to clone).
type Loaded = Option<(PathBuf, Environment)>;

static ENV: OnceLock<Mutex<Loaded>> = OnceLock::new();

/// The shared ONNX Runtime environment, loading the library on first use.
pub fn environment(lib: &Path) -> Result<Environment, ModelError> {
    let err = |m: String| ModelError::new("runtime", "ort_library", m);
    if !lib.exists() {
        return Err(err(format!(
            "ONNX Runtime library not found at {} (run `make deps`, or set CITYWATCH_ORT_LIB)",
            lib.display()
        )));
    }
    let cell = ENV.get_or_init(|| Mutex::new(None));
    let mut guard = cell.lock();
    if let Some((loaded, env)) = guard.as_ref() {
        if loaded != lib {
            tracing::warn!(
                loaded = %loaded.display(),
                asked = %lib.display(),
                "ONNX Runtime is already loaded from another path; keeping it"
            );
        }
        return Ok(env.clone());
    }
    let builder = ort::init_from(lib).map_err(|e| {
        err(format!(
            "cannot load ONNX Runtime from {}: {e} (need version {ORT_VERSION})",
            lib.display()
        ))
    })?;
    let env = builder
        .with_name("citywatch")
        .build()
        .map_err(|e| err(format!("cannot start ONNX Runtime: {e}")))?;
    *guard = Some((lib.to_path_buf(), env.clone()));
    Ok(env)
}
