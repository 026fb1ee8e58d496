//! The review actions, shared by the JSON API and the pages: confirm and reject a capture
//! (with the operator's role checked), a capture's verified manifest, the cameras as shown,
//! and how store errors become HTTP answers.

use serde::{Deserialize, Serialize};

use super::auth::Auth;
use super::error::WebError;
use super::state::WebState;
use crate::model::live::SceneCommand;
use crate::store::StoreError;
use crate::store::users::Role;

/// Reasons an operator can give for a rejection.
pub const REJECT_REASONS: &[&str] = &[
    "false_detection",
    "compliant_vendor",
    "duplicate",
    "not_a_problem",
    // 固定设施: the capture shows a fixture (a bench, a shop's chairs); it becomes one of the
    // camera's fixtures, never stall evidence again.
    "fixture",
    "other",
];

/// A capture's evidence package as the UI shows it.
pub enum PackageView {
    Verified(Box<crate::model::package::PackageManifest>),
    /// Files fail their hash check (or are missing): named, and confirm is refused.
    Tampered(crate::model::package::Tampered),
    /// No package (none written, or no evidence root here).
    None,
}

/// Checks a capture's package, every file.
pub fn package_of(st: &WebState, evidence: &Option<serde_json::Value>) -> PackageView {
    let dir = st.evidence_root.as_ref().and_then(|root| {
        let rel = evidence.as_ref()?.get("package")?.as_str()?;
        crate::model::package::resolve(root, rel)
    });
    match dir {
        None => PackageView::None,
        Some(dir) => match crate::model::package::verify_all(&dir) {
            Ok(m) => PackageView::Verified(Box::new(m)),
            Err(t) => PackageView::Tampered(t),
        },
    }
}

/// The package manifest of a capture's evidence, if it has one under the root and it
/// verifies.
pub fn manifest_of(
    st: &WebState,
    evidence: &Option<serde_json::Value>,
) -> Option<crate::model::package::PackageManifest> {
    match package_of(st, evidence) {
        PackageView::Verified(m) => Some(*m),
        _ => None,
    }
}

/// Confirms a capture: files its case and its outbox row.
pub async fn do_confirm(st: &WebState, auth: &Auth, id: &str) -> Result<String, WebError> {
    auth.require(Role::Operator)?;
    let capture = st
        .store
        .capture(id)
        .await?
        .ok_or_else(|| WebError::not_found("no such capture"))?;
    if let PackageView::Tampered(t) = package_of(st, &capture.evidence) {
        tracing::error!(capture = id, files = ?t.files, "confirm refused: the evidence package fails its hash check");
        return Err(WebError::conflict(format!(
            "evidence tampered: {} fail the package's hash check; confirm refused",
            t.files.join(", ")
        )));
    }
    let location = st
        .cameras
        .get(&capture.camera)
        .map(|c| c.location.clone())
        .unwrap_or_default();
    let policy = st.cases.policy();
    let case = st
        .store
        .confirm(id, &auth.user.name, &policy, &location, st.now())
        .await?;
    learn(st, id).await;
    Ok(case)
}

/// Hands a reviewed capture's remembered verdict to the running cameras' memory.
async fn learn(st: &WebState, id: &str) {
    match st.store.memory_entry(id).await {
        Ok(Some(e)) => {
            if let Some(m) = &st.memory {
                m.remember(e);
            }
        }
        Ok(None) => {}
        // The row is stored; the cameras take it at the next start.
        Err(e) => tracing::warn!(capture = id, error = %e, "cannot read the remembered verdict"),
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectBody {
    /// false_detection, compliant_vendor, duplicate, not_a_problem, fixture (it becomes one
    /// of the camera's fixtures) or other.
    pub reason: String,
    /// The operator's words, at most 2000 characters.
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub note: Option<String>,
    /// The CSRF token, when the body is an HTML form.
    #[serde(default)]
    pub csrf: Option<String>,
}

pub async fn do_reject(
    st: &WebState,
    auth: &Auth,
    id: &str,
    body: &RejectBody,
) -> Result<(), WebError> {
    auth.require(Role::Operator)?;
    if !REJECT_REASONS.contains(&body.reason.as_str()) {
        return Err(WebError::unprocessable(format!(
            "reason must be one of {}",
            REJECT_REASONS.join(", ")
        )));
    }
    let note = body.note.as_deref().filter(|n| !n.trim().is_empty());
    if note.is_some_and(|n| n.chars().count() > 2000) {
        return Err(WebError::unprocessable(
            "note is longer than 2000 characters",
        ));
    }
    let capture = if body.reason == "fixture" {
        st.store.capture(id).await?
    } else {
        None
    };
    st.store
        .reject(id, &auth.user.name, &body.reason, note, st.now())
        .await?;
    learn(st, id).await;
    if let Some(c) = capture
        && let Some(bbox) = bbox_of(&c.bbox)
    {
        st.desk.send(
            &c.camera,
            SceneCommand::AddFixture {
                label: c.label.clone(),
                bbox,
            },
        );
    }
    Ok(())
}

/// A stored capture's box.
pub fn bbox_of(v: &serde_json::Value) -> Option<crate::model::BBox> {
    let a = v.as_array()?;
    let f = |i: usize| a.get(i).and_then(|x| x.as_f64()).map(|x| x as f32);
    Some([f(0)?, f(1)?, f(2)?, f(3)?])
}

/// An operator marks a bin capture's zone clean now: its reference is replaced.
pub async fn do_mark_clean(st: &WebState, auth: &Auth, id: &str) -> Result<(), WebError> {
    auth.require(Role::Operator)?;
    let c = st
        .store
        .capture(id)
        .await?
        .ok_or_else(|| WebError::not_found("no such capture"))?;
    if c.rule != "overflowing_bin" {
        return Err(WebError::unprocessable(
            "only a bin capture's zone can be marked clean",
        ));
    }
    st.desk
        .send(&c.camera, SceneCommand::MarkClean { zone: c.zone });
    Ok(())
}

/// An admin takes the camera's view now as its view: its reference views are dropped and
/// the next steady view becomes the reference (a camera re-aimed on purpose, or one whose
/// reference came from a bad picture, is off view until then). Audited.
pub async fn do_take_view(st: &WebState, auth: &Auth, camera: &str) -> Result<(), WebError> {
    auth.require(Role::Admin)?;
    if !st.cameras.contains_key(camera) {
        return Err(WebError::not_found("no such camera"));
    }
    audit_scene_change(st, auth, "view.take", camera, None).await?;
    st.desk.send(camera, SceneCommand::TakeView);
    Ok(())
}

/// Form fields for a camera's fixtures: add one (label and box) or remove one (its index).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureForm {
    #[serde(default)]
    pub csrf: Option<String>,
    #[serde(default)]
    pub remove: Option<usize>,
    /// Accept the proposed fixture of this index.
    #[serde(default)]
    pub accept: Option<usize>,
    /// Dismiss the proposed fixture of this index.
    #[serde(default)]
    pub dismiss: Option<usize>,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub x1: Option<f32>,
    #[serde(default)]
    pub y1: Option<f32>,
    #[serde(default)]
    pub x2: Option<f32>,
    #[serde(default)]
    pub y2: Option<f32>,
}

/// Adds or removes a fixture of a camera, or accepts or dismisses one it proposes
/// (supervisors and operators); audited: the audit log's action and detail say which.
pub async fn do_fixture(
    st: &WebState,
    auth: &Auth,
    camera: &str,
    f: &FixtureForm,
) -> Result<(), WebError> {
    auth.require(Role::Operator)?;
    if !st.cameras.contains_key(camera) {
        return Err(WebError::not_found("no such camera"));
    }
    let bad = WebError::unprocessable;
    let boxed =
        |b: &crate::model::BBox| format!("[{:.3}, {:.3}, {:.3}, {:.3}]", b[0], b[1], b[2], b[3]);
    let (action, detail, cmd) = if let Some(i) = f.remove {
        let fixtures = st.desk.fixtures(camera);
        let fx = fixtures.get(i).ok_or_else(|| bad("no such fixture"))?;
        (
            "fixture.remove",
            format!("{} {}", fx.label, boxed(&fx.bbox)),
            SceneCommand::RemoveFixtures { bbox: fx.bbox },
        )
    } else if let Some((i, accept)) = f
        .accept
        .map(|i| (i, true))
        .or(f.dismiss.map(|i| (i, false)))
    {
        let proposed = st.desk.proposed(camera);
        let fx = proposed
            .get(i)
            .ok_or_else(|| bad("no such proposed fixture"))?;
        (
            if accept {
                "fixture.accept"
            } else {
                "fixture.dismiss"
            },
            format!("{} {} ({:?})", fx.label, boxed(&fx.bbox), fx.source),
            SceneCommand::AnswerProposed {
                bbox: fx.bbox,
                accept,
            },
        )
    } else {
        let (Some(x1), Some(y1), Some(x2), Some(y2)) = (f.x1, f.y1, f.x2, f.y2) else {
            return Err(bad(
                "a fixture needs x1, y1, x2, y2 (0..1), remove, accept or dismiss",
            ));
        };
        let b = [x1, y1, x2, y2];
        if b.iter().any(|v| !(0.0..=1.0).contains(v)) || x1 >= x2 || y1 >= y2 {
            return Err(bad("the box must be x1 < x2, y1 < y2 within 0..1"));
        }
        let label = f
            .label
            .as_deref()
            .map(str::trim)
            .filter(|l| !l.is_empty() && l.len() <= 40)
            .unwrap_or("fixture")
            .to_string();
        (
            "fixture.add",
            format!("{label} {}", boxed(&b)),
            SceneCommand::AddFixture { label, bbox: b },
        )
    };
    audit_scene_change(st, auth, action, camera, Some(&detail)).await?;
    st.desk.send(camera, cmd);
    Ok(())
}

/// Writes an operator's change to a camera's scene to the audit log before the camera is
/// told: a change that cannot be audited is not made.
async fn audit_scene_change(
    st: &WebState,
    auth: &Auth,
    action: &str,
    camera: &str,
    detail: Option<&str>,
) -> Result<(), WebError> {
    st.store
        .audit(&auth.user.name, action, camera, detail, st.now())
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, action, "cannot audit a change to a camera's scene");
            WebError::Unavailable("cannot write the audit log".into())
        })
}

/// One camera as the API shows it: never its credentials.
#[derive(Serialize)]
pub struct CameraView {
    pub id: String,
    pub name: String,
    pub url: String,
    pub status: Option<crate::model::health::CameraStatus>,
    pub analysis: Option<crate::model::live::AnalysisStatus>,
    pub zones: Vec<serde_json::Value>,
    /// Its fixtures (benches, a shop's chairs): never stall evidence.
    pub fixtures: Vec<crate::model::fixture::Fixture>,
    /// What it proposes as fixtures (found at its first look, or standing for days): judged
    /// like anything else until an operator accepts them.
    pub proposed_fixtures: Vec<crate::model::fixture::Fixture>,
}

pub fn camera_views(st: &WebState) -> Vec<CameraView> {
    let health = st.health.snapshot(st.clock.now());
    let analysis = st.analysis.lock().clone();
    st.cameras
        .values()
        .map(|c| CameraView {
            id: c.id.clone(),
            name: c.name.clone(),
            url: c.redacted_url(),
            status: health.iter().find(|h| h.health.id == c.id).cloned(),
            analysis: analysis.get(&c.id).copied(),
            zones: c
                .zones
                .iter()
                .map(|z| serde_json::json!({ "id": z.id, "polygon": z.polygon.0 }))
                .collect(),
            fixtures: st.desk.fixtures(&c.id),
            proposed_fixtures: st.desk.proposed(&c.id),
        })
        .collect()
}

/// What the learning page and `/api/learning` show: learned suppressions, the remembered
/// verdicts, calibration proposals and the overrides applied.
#[derive(Debug, Serialize)]
pub struct LearningView {
    pub suppressions: Vec<crate::store::query::CaptureRow>,
    pub memory: Vec<crate::store::learning::MemoryRow>,
    pub proposals: Vec<crate::model::calibrate::Proposal>,
    pub overrides: Vec<crate::store::learning::Override>,
}

/// Least rejected captures a calibration proposal must drop to be shown.
pub const PROPOSAL_MIN_DROPPED: usize = 2;

pub async fn learning_view(st: &WebState) -> Result<LearningView, WebError> {
    let suppressions = st
        .store
        .list_captures(&crate::store::query::CaptureFilter {
            status: Some("learned".into()),
            limit: Some(200),
            ..Default::default()
        })
        .await?;
    let memory = st.store.memory_list(500).await?;
    let overrides = st.store.overrides().await?;
    Ok(LearningView {
        suppressions,
        memory,
        proposals: proposals(st).await?,
        overrides,
    })
}

/// The calibration proposals, from the store's verdict statistics per camera and rule
/// (one query, whatever the history's length).
pub async fn proposals(st: &WebState) -> Result<Vec<crate::model::calibrate::Proposal>, WebError> {
    use crate::model::calibrate::{Verdicts, proposal};
    Ok(st
        .store
        .verdict_stats()
        .await?
        .into_iter()
        .filter_map(|(v, dropped)| {
            let verdicts = Verdicts {
                rule: crate::config::RuleKind::parse(&v.rule)?,
                camera: v.camera,
                confirmed: v.confirmed.max(0) as usize,
                rejected: v.rejected.max(0) as usize,
                lowest_confirmed: v.lowest,
            };
            proposal(&verdicts, dropped.max(0) as usize, PROPOSAL_MIN_DROPPED)
        })
        .collect())
}

/// Undoes a learned suppression: the capture joins the review queue (audited).
pub async fn do_undo(st: &WebState, auth: &Auth, id: &str) -> Result<(), WebError> {
    auth.require(Role::Operator)?;
    st.store
        .undo_learned(id, &auth.user.name, st.now())
        .await
        .map_err(|e| match e {
            StoreError::NotPending { status, .. } => WebError::conflict(format!(
                "the capture is {status}, not a learned suppression"
            )),
            e => e.into(),
        })
}

/// Forgets a remembered verdict, in the store and in the running cameras' memory (audited).
pub async fn do_forget(st: &WebState, auth: &Auth, id: &str) -> Result<(), WebError> {
    auth.require(Role::Operator)?;
    let found = st
        .store
        .forget_memory(id, &auth.user.name, st.now())
        .await?;
    if let Some(m) = &st.memory {
        m.forget(id);
    }
    if found {
        Ok(())
    } else {
        Err(WebError::not_found(
            "no remembered verdict for that capture",
        ))
    }
}

/// Form fields for applying a calibration proposal.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplyForm {
    pub camera: String,
    pub rule: String,
    #[serde(default)]
    pub csrf: Option<String>,
}

/// An admin applies the current proposal for a camera and rule: stored as an override
/// (audited), taken by the cameras at their next start.
pub async fn do_apply(st: &WebState, auth: &Auth, f: &ApplyForm) -> Result<(), WebError> {
    auth.require(Role::Admin)?;
    let p = proposals(st)
        .await?
        .into_iter()
        .find(|p| p.camera == f.camera && p.rule.as_str() == f.rule)
        .ok_or_else(|| WebError::not_found("no proposal for that camera and rule now"))?;
    st.store
        .apply_override(&crate::store::learning::Override {
            camera: p.camera,
            rule: p.rule.as_str().to_string(),
            setting: p.setting.to_string(),
            value: p.value,
            applied_by: auth.user.name.clone(),
            applied_at: st.now(),
        })
        .await
        .map_err(WebError::from)
}

/// Whether the user sees plates in full (operators and admins); viewers see them masked.
pub fn sees_plates(auth: &Auth) -> bool {
    auth.require(Role::Operator).is_ok()
}

/// An operator's correction of a capture's plate (the API's and the page's): the text
/// normalised and validated (None for an empty one), stored and audited. Returns the plate
/// as stored.
pub async fn do_correct_plate(
    st: &WebState,
    auth: &Auth,
    id: &str,
    raw: Option<&str>,
) -> Result<Option<String>, WebError> {
    auth.require(Role::Operator)?;
    let plate = match raw.filter(|r| !r.trim().is_empty()) {
        None => None,
        Some(raw) => {
            let t = crate::model::plate::normalise(raw);
            if crate::model::plate::validate(&t).is_none() {
                return Err(WebError::unprocessable(format!(
                    "{raw:?} is not a plate: a province (京, 沪, 粤…), a letter, then 5 letters or digits \
                     (京A12345), 4 and a suffix such as 警 or 学 (京A1234警), or 6 for new energy (粤BD12345)"
                )));
            }
            Some(t)
        }
    };
    if !st
        .store
        .correct_plate(id, plate.as_deref(), &auth.user.name, st.now())
        .await?
    {
        return Err(WebError::not_found("no such capture"));
    }
    tracing::info!(capture = %id, by = %auth.user.name, "plate corrected");
    Ok(plate)
}

/// A plate as this user may see it: in full for operators and admins, masked for viewers.
pub fn shown_plate(auth: &Auth, plate: &str) -> String {
    if sees_plates(auth) {
        plate.to_string()
    } else {
        crate::model::plate::mask(plate)
    }
}
