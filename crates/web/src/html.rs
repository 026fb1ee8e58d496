//! What every page shares: the language and its words, HTML escaping, local times and
//! the language cookie. Auth, the review actions and the pages build on it; it builds on nothing else in
//! web.

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;

pub use crate::core::html::escape as esc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Zh,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }

    /// The value of `?lang=` and of the language cookie.
    pub fn code_short(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }
}

/// The cookie that remembers the language a user chose with `?lang=`.
pub const LANG_COOKIE: &str = "cw_lang";

/// `?lang=en` or `?lang=zh` on any page.
#[derive(Deserialize)]
struct LangQuery {
    lang: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for Lang {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let asked = Query::<LangQuery>::try_from_uri(&parts.uri)
            .ok()
            .and_then(|q| q.0.lang)
            .or_else(|| {
                CookieJar::from_headers(&parts.headers)
                    .get(LANG_COOKIE)
                    .map(|c| c.value().to_string())
            });
        Ok(if asked.as_deref() == Some("en") {
            Lang::En
        } else {
            Lang::Zh
        })
    }
}

/// The UI's words.
pub fn t(lang: Lang, key: &str) -> &'static str {
    let (zh, en) = match key {
        "login" => ("登录", "Log in"),
        "logout" => ("退出", "Log out"),
        "capture_queue" => ("抓拍队列磁盘", "Capture queue disk"),
        "evidence_disk" => ("证据磁盘", "Evidence disk"),
        "disk_full" => (
            "磁盘已满，抓拍在等待写入",
            "full; captures wait to be written",
        ),
        "read_only" => (
            "磁盘只读，抓拍在等待写入",
            "read-only; captures wait to be written",
        ),
        "no_permission" => (
            "无写入权限，抓拍在等待写入",
            "not writable; captures wait to be written",
        ),
        "io_error" => (
            "写入出错，抓拍在等待写入",
            "write errors; captures wait to be written",
        ),
        "since" => ("自", "since"),
        "captures_waiting" => (
            "条抓拍等待中，空间恢复后自动续写",
            "captures waiting, written by themselves once the disk takes them",
        ),
        "user" => ("用户名", "User"),
        "password" => ("密码", "Password"),
        "bad_login" => ("用户名或密码错误", "Wrong user name or password"),
        "too_many" => (
            "登录失败次数过多，请稍后再试",
            "Too many failed logins; try again later",
        ),
        "review" => ("待审核", "Review queue"),
        "cases" => ("案件", "Cases"),
        "cameras" => ("摄像头", "Cameras"),
        "summary" => ("统计", "Summary"),
        "rule" => ("规则", "Rule"),
        "camera" => ("摄像头", "Camera"),
        "time" => ("时间", "Time"),
        "score" => ("置信度", "Score"),
        "aggregation" => ("合并次数", "Merged"),
        "status" => ("状态", "Status"),
        "confirm" => ("确认立案", "Confirm"),
        "reject" => ("驳回", "Reject"),
        "reason" => ("驳回原因", "Reason"),
        "note" => ("备注", "Note"),
        "newest" => ("最新优先", "Newest first"),
        "held_by" => ("处理中：", "Held by "),
        "oldest" => ("最早优先", "Oldest first"),
        "empty" => ("没有待审核的抓拍", "Nothing waiting for review"),
        "full_frame" => ("全景", "Full frame"),
        "crop" => ("特写", "Crop"),
        "first_seen" => ("首次发现", "First seen"),
        "clip" => ("视频片段", "Clip"),
        "manifest" => ("证据清单", "Manifest"),
        "location" => ("位置", "Location"),
        "category" => ("类别", "Category"),
        "time_limit" => ("处置时限", "Time limit"),
        "case_number" => ("案件编号", "Case number"),
        "filter" => ("筛选", "Filter"),
        "export" => ("导出 CSV", "Export CSV"),
        "health" => ("状态", "Health"),
        "frames" => ("帧数", "Frames"),
        "reused" => ("复用", "Reused"),
        "analysed" => ("已分析", "Analysed"),
        "reconnects" => ("重连", "Reconnects"),
        "last_error" => ("最近错误", "Last error"),
        "captures" => ("抓拍", "Captures"),
        "confirmed" => ("已确认", "Confirmed"),
        "rejected" => ("已驳回", "Rejected"),
        "pending" => ("待审核", "Pending"),
        "rate" => ("确认率", "Confirmation rate"),
        "next" => ("下一条", "Next"),
        "from" => ("起始日期", "From"),
        "to" => ("截止日期", "To"),
        "last_30_days" => (
            "最近30天：按规则和摄像头",
            "Last 30 days (to the newest capture), by rule and camera",
        ),
        "per_day" => ("每日抓拍", "Captures per day"),
        "filing_latency" => ("抓拍到立案耗时", "Capture to filing"),
        "decision_latency" => ("抓拍到审核耗时", "Capture to decision"),
        "rejection_reasons" => ("驳回原因", "Rejection reasons"),
        "replayed_note" => (
            "条抓拍来自录像回放：按录像日期计",
            "captures are from recorded footage: counted on the footage's dates",
        ),
        "keys" => (
            "快捷键：c 确认，r 驳回，n 下一条",
            "Keys: c confirm, r reject, n next",
        ),
        "false_detection" => ("误检", "False detection"),
        "compliant_vendor" => ("合规摊点", "Compliant vendor"),
        "duplicate" => ("重复", "Duplicate"),
        "not_a_problem" => ("不构成问题", "Not a problem"),
        "fixture" => ("固定设施", "Fixture"),
        "fixtures" => ("固定设施", "Fixtures"),
        "fleet" => ("全部工作进程的摄像头", "Fleet: every worker's cameras"),
        "remove" => ("移除", "Remove"),
        "proposed_fixtures" => (
            "待确认的固定设施（开机时或多日所见，确认前照常研判）",
            "Proposed fixtures (seen at the first look or for days; judged as usual until accepted)",
        ),
        "accept" => ("确认", "Accept"),
        "stall_parts" => ("摊位所见", "Seen in the stall"),
        "plate" => ("车牌号", "Plate"),
        "plate_unread" => ("未识别", "not read"),
        "correct_plate" => ("更正车牌", "Correct the plate"),
        "plate_reads" => ("次识别一致", "reads agree"),
        "plate_corrected" => ("人工更正", "corrected by"),
        "dismiss" => ("驳回", "Dismiss"),
        "add_fixture" => ("添加固定设施", "Add a fixture"),
        "mark_clean" => ("现已清洁", "Clean now"),
        "label" => ("类别", "Label"),
        "place_in_view" => (
            "画面位置（左, 上, 右, 下）",
            "Place in the view (left, top, right, bottom)",
        ),
        "fixture_learned" => (
            "初次学习场景时已在",
            "there when the scene was first learned",
        ),
        "fixture_stayed" => ("停留多日", "stood for days"),
        "fixture_operator" => ("操作员添加", "added by an operator"),
        "other" => ("其他", "Other"),
        "abandoned_vehicle" => ("废弃车辆", "Abandoned vehicle"),
        "illegal_vendor" => ("占道经营", "Illegal vendor"),
        "overflowing_bin" => ("垃圾满溢", "Overflowing bin"),
        "pending_review" => ("待审核", "Pending review"),
        "filed" => ("已立案", "Filed"),
        "closed" => ("已结案", "Closed"),
        "learning" => ("学习", "Learning"),
        "learned" => ("已学习抑制", "Learned suppression"),
        "learned_suppressions" => (
            "学习抑制（与已驳回抓拍相似）",
            "Learned suppressions (like rejected captures)",
        ),
        "memory" => ("审核记忆", "Verdict memory"),
        "resembles" => ("相似于", "Resembles"),
        "similarity" => ("相似度", "Similarity"),
        "undo" => ("撤销（转人工审核）", "Undo (send for review)"),
        "forget" => ("遗忘", "Forget"),
        "verdict" => ("审核结论", "Verdict"),
        "zone" => ("区域", "Zone"),
        "linked" => ("关联抑制", "Suppressions"),
        "proposals" => ("校准建议", "Calibration proposals"),
        "setting" => ("参数", "Setting"),
        "value" => ("建议值", "Value"),
        "history" => ("依据", "History"),
        "apply" => ("应用", "Apply"),
        "overrides" => ("已应用的校准", "Applied overrides"),
        "none" => ("无", "None"),
        "dispatched" => ("已派遣", "Dispatched"),
        "handled" => ("处置完毕（待核实）", "Handled (to verify)"),
        "verified_closed" => ("核实结案", "Verified closed"),
        "not_rectified" => ("未整改", "Not rectified"),
        "check_manual" => ("待人工核实", "Manual check"),
        "returned" => ("已退回", "Returned"),
        "overdue" => ("已超期", "Overdue"),
        "deadline" => ("处置截止", "Deadline"),
        "capture" => ("抓拍", "Capture"),
        "history_of_case" => ("案件流转", "Case history"),
        "by" => ("操作人", "By"),
        "verify_clear" => ("核实：已整改，结案", "Verified: fixed, close"),
        "verify_still" => ("核实：未整改", "Verified: not fixed"),
        "after_clear" => ("核实照片（已整改）", "After photo (fixed)"),
        "after_still" => ("核实照片（未整改）", "After photo (not fixed)"),
        "tampered" => ("证据被篡改", "Evidence tampered"),
        "tampered_files" => (
            "以下文件与证据清单的哈希不符，不能立案：",
            "these files do not match the manifest's hashes; confirm is refused:",
        ),
        "dead_letters" => ("投递失败", "Dead letters"),
        "requeue" => ("重新投递", "Requeue"),
        "requeue_all" => ("全部重新投递", "Requeue all"),
        "message" => ("消息", "Message"),
        "idempotency_key" => ("幂等键", "Idempotency key"),
        "attempts" => ("尝试次数", "Attempts"),
        "users" => ("用户", "Users"),
        "role" => ("角色", "Role"),
        "add_user" => ("添加用户", "Add user"),
        "sessions" => ("会话", "Sessions"),
        "enable" => ("启用", "Enable"),
        "disable" => ("停用", "Disable"),
        "disabled" => ("已停用", "Disabled"),
        "active" => ("正常", "Active"),
        "reset_password" => ("重置密码", "Reset password"),
        "audit" => ("审计日志", "Audit log"),
        "action" => ("操作", "Action"),
        "subject" => ("对象", "Subject"),
        "chain_ok" => ("哈希链完整", "Hash chain intact"),
        "full_walk_at" => ("上次全量校验", "last full walk"),
        "case" => ("案件", "Case"),
        "capacity_last_day" => ("最近一天的容量与健康", "Capacity and health, the last day"),
        "no_samples" => (
            "还没有采样（每 5 分钟一次）",
            "No samples yet (one every 5 minutes)",
        ),
        "cameras_by_state" => ("各状态的摄像头数", "Cameras by state"),
        "unhealthy" => ("异常", "Unhealthy"),
        "streaming" => ("正常", "Streaming"),
        "off_view" => ("偏离画面", "Off view"),
        "take_view" => ("以当前画面为准", "Take this view"),
        "take_view_help" => (
            "摄像机已按新的预置位调整（或基准画面有误）：丢弃基准画面，以接下来稳定的画面为新基准，规则恢复。请先确认区域仍覆盖正确的地面。",
            "The camera was re-aimed on purpose (or its reference is wrong): drop the reference view, take the next steady view as the new one, and resume the rules. Check first that the zones still cover the right ground.",
        ),
        "frames_per_min" => ("每分钟分析的帧", "Frames analysed per minute"),
        "inferences" => ("检测", "Detected"),
        "rule_met" => ("达到规则条件", "Rule met"),
        "alike" => ("相似", "alike"),
        "timeline" => ("时间线", "Timeline"),
        "similar_verdicts" => ("相似的历史审核", "Similar past verdicts"),
        "zoom_hint" => ("点击放大", "click to zoom"),
        "no_evidence" => ("没有证据照片", "No evidence photo"),
        "capture_keys" => (
            "按键：c 确认 · r 加数字 驳回并选原因 · n 下一条",
            "Keys: c confirms · r then a digit rejects with that reason · n next",
        ),
        "draw_zone" => ("在画面上绘制", "Draw on the picture"),
        "draw_fixture" => ("在画面上框出固定设施", "Draw a fixture"),
        "fixture_drawing" => (
            "点击固定设施的两个对角",
            "Click two opposite corners of the fixture",
        ),
        "reset_zone" => ("恢复配置文件中的区域", "Back to the config's zone"),
        "save" => ("保存", "Save"),
        "zone_saved" => (
            "区域已保存，摄像头下一帧起使用",
            "Zone saved: the camera uses it from its next frame",
        ),
        "zone_reset_done" => ("已恢复配置文件中的区域", "Back to the config's zone"),
        "zone_drawing" => (
            "在画面上依次点击各顶点，然后保存",
            "Click each corner on the picture, then save",
        ),
        "edit_zone" => ("修改顶点", "Edit the corners"),
        "new_mask" => ("新增屏蔽区", "Draw a new mask"),
        "mask_removed" => ("屏蔽区已删除", "Mask removed"),
        "zone_editing" => (
            "拖动顶点移动；在边旁点击添加顶点；双击顶点删除；然后保存",
            "Drag a corner to move it, click beside an edge to add one, double-click a corner to remove it, then save",
        ),
        "walk_full" => ("立即全量校验", "Walk the whole chain now"),
        "since_full_walk" => (
            "行为上次全量校验之后新增，本次已校验",
            "rows written since the last full walk, checked now",
        ),
        "chain_broken" => ("哈希链断裂", "Hash chain broken at"),
        "rows" => ("条", "rows"),
        "any" => ("全部", "Any"),
        "evidence" => ("证据", "Evidence"),
        "before" => ("抓拍时", "Before"),
        "after" => ("核实时", "After"),
        "left" => ("后到期", "left"),
        "package_verified" => ("证据包已校验", "Package verified"),
        "files" => ("个文件", "files"),
        "no_package" => ("没有证据包", "No evidence package"),
        "no_after_yet" => ("尚无核实照片", "No closure check yet"),
        "min_score" => ("最低置信度", "Min. score"),
        "order" => ("排序", "Order"),
        "reset" => ("重置", "Reset"),
        "waiting" => ("条待审核", "waiting"),
        "previous_page" => ("上一页", "Previous page"),
        "next_page" => ("下一页", "Next page"),
        "workbench_keys" => (
            "快捷键：j/k 或方向键移动，c 确认，r 加数字驳回，x 选择（c、r 作用于所选），Enter 打开",
            "Keys: j/k or arrows move, c confirm, r then a digit rejects, x selects (c and r apply to the selection), Enter opens",
        ),
        _ => ("?", "?"),
    };
    match lang {
        Lang::Zh => zh,
        Lang::En => en,
    }
}

/// Every string quoted right after `prefix` in `text`: the literal keys of the calls to `t`.
#[cfg(test)]
pub(crate) fn quoted_after(text: &str, prefix: &str) -> Vec<String> {
    text.match_indices(prefix)
        .filter_map(|(i, _)| {
            let rest = &text[i + prefix.len()..];
            Some(rest[..rest.find('"')?].to_string())
        })
        .collect()
}

/// A time as local date and time to the second, for tables.
pub fn local(unix: f64, utc_offset_s: i32) -> String {
    crate::model::package::format_time(unix, utc_offset_s)
        .replace('T', " ")
        .chars()
        .take(19)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys that reach `t` through a variable: values from the store and the config, and
    /// tables in code.
    fn run_time_keys() -> Vec<String> {
        use crate::config::RuleKind;
        use citywatch_base::cases::CaseStatus;
        let mut keys: Vec<String> = [
            RuleKind::AbandonedVehicle,
            RuleKind::IllegalVendor,
            RuleKind::OverflowingBin,
        ]
        .iter()
        .map(|r| r.as_str().to_string())
        .collect();
        keys.extend(CaseStatus::ALL.iter().map(|s| s.as_str().to_string()));
        keys.extend(crate::review::REJECT_REASONS.iter().map(|s| s.to_string()));
        keys.extend(crate::templates::nav_keys().map(str::to_string));
        keys.extend(
            [
                // Capture statuses, a case's overdue event, remembered verdicts.
                "pending_review",
                "filed",
                "rejected",
                "learned",
                "overdue",
                "confirmed",
                // The capture page's figures and the summary's latency charts.
                "full_frame",
                "first_seen",
                "crop",
                "decision_latency",
                "filing_latency",
            ]
            .map(String::from),
        );
        keys
    }

    #[test]
    fn every_key_in_code_templates_and_data_has_both_languages() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut keys = Vec::new();
        for e in std::fs::read_dir(src).unwrap() {
            let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
            for prefix in [
                "t(lang, \"",
                "t(Lang::Zh, \"",
                "t(Lang::En, \"",
                "t(self.lang, \"",
            ] {
                keys.extend(quoted_after(&text, prefix));
            }
        }
        let in_code = keys.len();
        keys.extend(crate::templates::template_keys());
        // Most words are in the templates now; both searches must still find plenty.
        assert!(
            keys.len() > in_code + 100,
            "the templates' keys were not found ({} in all)",
            keys.len()
        );
        assert!(in_code > 30, "only {in_code} keys found in code");
        keys.extend(run_time_keys());
        let missing: Vec<&String> = keys
            .iter()
            .filter(|k| t(Lang::Zh, k) == "?" || t(Lang::En, k) == "?")
            .collect();
        assert!(missing.is_empty(), "no words for {missing:?}");
        for k in &keys {
            assert_ne!(t(Lang::Zh, k), t(Lang::En, k), "{k} is not translated");
        }
    }
}
