//! Per-city category tables (`pipelines/categories/*.toml`): rule → 大类/小类 code and name and
//! the time limit (处置时限). Codes live in these tables, never in code.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::RuleKind;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Category {
    pub major_code: String,
    pub major_name: String,
    pub minor_code: String,
    pub minor_name: String,
    /// 处置时限, e.g. "4工作时" or "5工作日".
    pub time_limit: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoryTable {
    pub scheme: String,
    /// 事件来源.
    pub source: String,
    /// 渠道类型.
    pub channel: String,
    pub rules: BTreeMap<RuleKind, Category>,
}

impl CategoryTable {
    /// Reads a table and checks it covers every rule in `needed`.
    pub fn load(path: &Path, needed: &[RuleKind]) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let value: toml::Value = text
            .parse::<toml::Table>()
            .map(toml::Value::Table)
            .map_err(|e| format!("{}: not valid TOML: {}", path.display(), e.message().trim()))?;
        let table: CategoryTable = serde_path_to_error::deserialize(value).map_err(|e| {
            let msg = e.inner().to_string();
            format!(
                "{}: {}: {}",
                path.display(),
                e.path(),
                msg.lines().next().unwrap_or("")
            )
        })?;
        let missing: Vec<&str> = needed
            .iter()
            .filter(|r| !table.rules.contains_key(r))
            .map(|r| r.as_str())
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "{}: rules.{}: no category for this rule, which the pipeline uses",
                path.display(),
                missing.join(", rules.")
            ));
        }
        for (rule, cat) in &table.rules {
            if let Err(e) = TimeLimit::parse(&cat.time_limit) {
                return Err(format!(
                    "{}: rules.{}.time_limit: {e}",
                    path.display(),
                    rule.as_str()
                ));
            }
        }
        Ok(table)
    }
}

/// A 处置时限 as a duration: working days or working hours count only the city's working
/// time (its calendar and working day); hours and days are calendar time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TimeLimit {
    /// `N工作日`: N working days, each the length of the working day.
    WorkDays(f64),
    /// `N工作时` or `N工作小时`.
    WorkHours(f64),
    /// `N小时`.
    Hours(f64),
    /// `N天`, `N日` or `N自然日`.
    Days(f64),
}

impl TimeLimit {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let split = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let n: f64 = num
            .parse()
            .ok()
            .filter(|n: &f64| n.is_finite() && *n > 0.0)
            .ok_or_else(|| {
                format!("{s:?}: expected a positive number then a unit, like \"5工作日\"")
            })?;
        match unit.trim() {
            "工作日" => Ok(Self::WorkDays(n)),
            "工作时" | "工作小时" => Ok(Self::WorkHours(n)),
            "小时" => Ok(Self::Hours(n)),
            "天" | "日" | "自然日" => Ok(Self::Days(n)),
            u => Err(format!(
                "{s:?}: unknown unit {u:?}; one of 工作日, 工作时, 工作小时, 小时, 天, 日, 自然日"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_limits_parse_with_their_units() {
        assert_eq!(TimeLimit::parse("5工作日"), Ok(TimeLimit::WorkDays(5.0)));
        assert_eq!(TimeLimit::parse("2工作时"), Ok(TimeLimit::WorkHours(2.0)));
        assert_eq!(
            TimeLimit::parse("1.5工作小时"),
            Ok(TimeLimit::WorkHours(1.5))
        );
        assert_eq!(TimeLimit::parse("24小时"), Ok(TimeLimit::Hours(24.0)));
        assert_eq!(TimeLimit::parse("3天"), Ok(TimeLimit::Days(3.0)));
        assert!(TimeLimit::parse("五工作日").is_err());
        assert!(
            TimeLimit::parse("5周")
                .unwrap_err()
                .contains("unknown unit")
        );
        assert!(TimeLimit::parse("0小时").is_err());
    }

    #[test]
    fn shipped_tables_cover_every_rule() {
        let all = [
            RuleKind::AbandonedVehicle,
            RuleKind::IllegalVendor,
            RuleKind::OverflowingBin,
        ];
        let dir =
            Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join("pipelines/categories");
        let t = CategoryTable::load(&dir.join("default.toml"), &all).unwrap();
        assert_eq!(t.rules[&RuleKind::OverflowingBin].minor_code, "0102");
        assert_eq!(t.source, "视频抓拍");
        let alt = CategoryTable::load(&dir.join("alt-scheme.toml"), &all).unwrap();
        assert_eq!(alt.rules[&RuleKind::OverflowingBin].minor_name, "垃圾满溢");
    }

    #[test]
    fn a_missing_rule_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.toml");
        std::fs::write(&p, "scheme = \"x\"\nsource = \"视频抓拍\"\nchannel = \"c\"\n[rules.illegal_vendor]\nmajor_code = \"05\"\nmajor_name = \"街面秩序\"\nminor_code = \"0501\"\nminor_name = \"无照经营游商\"\ntime_limit = \"2工作时\"\n").unwrap();
        let e = CategoryTable::load(&p, &[RuleKind::IllegalVendor, RuleKind::AbandonedVehicle])
            .unwrap_err();
        assert!(
            e.ends_with(
                "rules.abandoned_vehicle: no category for this rule, which the pipeline uses"
            ),
            "{e}"
        );
    }
}
