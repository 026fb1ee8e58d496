//! Fault injection for soak tests: named points in the pipeline that fail on purpose when a
//! process is started with `CITYWATCH_FAULTS` (the `fail` crate's fail points).
//!
//! The variable holds `point=actions` pairs separated by `;`, in the `fail` crate's action
//! syntax: `detect=20*return` makes the first 20 inferences fail, `detect=5%return` one in
//! twenty. Unset or empty, every point is inert (one map lookup where it is passed).
//!
//! Points:
//! - `detect`: an inference batch fails as a runtime error of the model (the frames are
//!   unjudged and the camera shows `detector_down`).
//! - `evidence`: writing an evidence package; only `panic` means anything here
//!   (`evidence=1*panic`): the writer panics, as a bug in building a package would, and the
//!   capture is filed without its package.

/// The points a process knows; a name outside this list is refused, so a typo never
/// leaves a soak test without its fault.
pub const POINTS: [&str; 2] = ["detect", "evidence"];

/// The environment variable that arms the points.
pub const VAR: &str = "CITYWATCH_FAULTS";

/// Arms the points that `spec` names. Returns the points armed, or why `spec` is refused.
pub fn arm(spec: &str) -> Result<Vec<String>, String> {
    let mut armed = Vec::new();
    for part in spec.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((point, actions)) = part.split_once('=') else {
            return Err(format!("{VAR}: `{part}` is not point=actions"));
        };
        let point = point.trim();
        if !POINTS.contains(&point) {
            return Err(format!(
                "{VAR}: unknown fault point `{point}` (known: {})",
                POINTS.join(", ")
            ));
        }
        fail::cfg(point, actions.trim()).map_err(|e| format!("{VAR}: {point}: {e}"))?;
        armed.push(part.to_string());
    }
    Ok(armed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_names_known_points_with_valid_actions() {
        assert_eq!(arm("").unwrap(), Vec::<String>::new());
        assert!(
            arm("decode=return")
                .unwrap_err()
                .contains("unknown fault point `decode`")
        );
        assert!(arm("detect").unwrap_err().contains("point=actions"));
        assert!(arm("detect=sometimes").unwrap_err().contains("detect"));
        // Armed and spent: three evaluations return, then the point is off.
        assert_eq!(arm("detect=3*return").unwrap(), vec!["detect=3*return"]);
        let fired = (0..5)
            .filter(|_| {
                (|| {
                    fail::fail_point!("detect", |_| true);
                    false
                })()
            })
            .count();
        assert_eq!(fired, 3);
        fail::remove("detect");
    }
}
