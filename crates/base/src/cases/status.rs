//! The case status state machine: where a case stands after filing, which platform report
//! moves it where, and what a closure check's look does to a handled case. The store
//! applies these moves in its transactions; it decides none of them.

use serde::{Deserialize, Serialize};

use crate::model::closure::CheckOutcome;

/// Where a case stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    /// 立案: sent to the platform.
    Filed,
    /// 派遣: a department has it.
    Dispatched,
    /// 处置完毕 reported: the closure check is waiting.
    Handled,
    /// 核实结案: the check saw the place clear.
    VerifiedClosed,
    /// 未整改: the check saw the problem still there; the case is open again.
    NotRectified,
    /// The camera could not judge the place: a person must check.
    CheckManual,
    /// The platform returned the case (not accepted).
    Returned,
    /// The platform closed the case itself.
    Closed,
}

impl CaseStatus {
    pub const ALL: [CaseStatus; 8] = [
        Self::Filed,
        Self::Dispatched,
        Self::Handled,
        Self::VerifiedClosed,
        Self::NotRectified,
        Self::CheckManual,
        Self::Returned,
        Self::Closed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Filed => "filed",
            Self::Dispatched => "dispatched",
            Self::Handled => "handled",
            Self::VerifiedClosed => "verified_closed",
            Self::NotRectified => "not_rectified",
            Self::CheckManual => "check_manual",
            Self::Returned => "returned",
            Self::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// No report changes it any more.
    pub fn is_final(self) -> bool {
        matches!(self, Self::VerifiedClosed | Self::Returned | Self::Closed)
    }

    /// Its deadline runs: the problem waits for a department.
    pub fn deadline_runs(self) -> bool {
        matches!(self, Self::Filed | Self::Dispatched | Self::NotRectified)
    }

    /// The statuses that `pick` chooses, as an SQL list (`('filed', 'dispatched')`): the
    /// store's queries select by these sets, never by a list of its own.
    pub fn sql_list(pick: fn(Self) -> bool) -> String {
        let names: Vec<String> = Self::ALL
            .into_iter()
            .filter(|s| pick(*s))
            .map(|s| format!("'{}'", s.as_str()))
            .collect();
        format!("({})", names.join(", "))
    }

    /// Where a handled case goes after a closure check's look: clear closes it, still there
    /// reopens it (a new deadline runs), and a look that could not judge leaves it handled
    /// until the `attempts`-th such look (counting this one) reaches `max_attempts`, when a
    /// person must check.
    pub fn after_check(outcome: &CheckOutcome, attempts: u32, max_attempts: u32) -> Self {
        match outcome {
            CheckOutcome::Clear => Self::VerifiedClosed,
            CheckOutcome::StillThere => Self::NotRectified,
            CheckOutcome::Unjudged { .. } if attempts >= max_attempts => Self::CheckManual,
            CheckOutcome::Unjudged { .. } => Self::Handled,
        }
    }

    /// Entering this status starts a new deadline (a reopened case).
    pub fn restarts_deadline(self) -> bool {
        self == Self::NotRectified
    }
}

/// What the platform reports of a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Report {
    Dispatched,
    Handled,
    Returned,
    Closed,
}

impl Report {
    /// The status a case in `from` moves to; None when `from` does not allow it.
    pub fn moves(self, from: CaseStatus) -> Option<CaseStatus> {
        use CaseStatus as S;
        if from.is_final() {
            return None;
        }
        match self {
            Report::Dispatched => Some(S::Dispatched),
            Report::Handled => {
                matches!(from, S::Filed | S::Dispatched | S::NotRectified).then_some(S::Handled)
            }
            Report::Returned => Some(S::Returned),
            Report::Closed => Some(S::Closed),
        }
    }
}

/// One progress report from the platform (a callback's body, or a poll's answer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PlatformEvent {
    /// The platform's id of this report: a report seen again changes nothing.
    pub event_id: String,
    pub case_number: String,
    pub status: Report,
    /// When it happened on the platform (Unix seconds); default: when received.
    #[serde(default)]
    pub at: Option<f64>,
    /// The department, or the platform's remark.
    #[serde(default)]
    pub note: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_move_only_open_cases_and_handled_needs_an_open_problem() {
        use CaseStatus as S;
        assert_eq!(Report::Handled.moves(S::Dispatched), Some(S::Handled));
        assert_eq!(Report::Handled.moves(S::NotRectified), Some(S::Handled));
        assert_eq!(Report::Handled.moves(S::Handled), None);
        assert_eq!(Report::Handled.moves(S::CheckManual), None);
        assert_eq!(
            Report::Dispatched.moves(S::NotRectified),
            Some(S::Dispatched)
        );
        for f in [S::VerifiedClosed, S::Returned, S::Closed] {
            for r in [
                Report::Dispatched,
                Report::Handled,
                Report::Returned,
                Report::Closed,
            ] {
                assert_eq!(r.moves(f), None);
            }
        }
        for s in CaseStatus::ALL {
            assert_eq!(CaseStatus::parse(s.as_str()), Some(s));
        }
    }

    #[test]
    fn the_sql_lists_follow_the_enum() {
        assert_eq!(
            CaseStatus::sql_list(CaseStatus::deadline_runs),
            "('filed', 'dispatched', 'not_rectified')"
        );
        assert_eq!(
            CaseStatus::sql_list(CaseStatus::is_final),
            "('verified_closed', 'returned', 'closed')"
        );
    }

    #[test]
    fn a_check_closes_reopens_or_after_enough_blind_looks_asks_a_person() {
        use CaseStatus as S;
        let blind = CheckOutcome::Unjudged {
            reason: "dark".into(),
        };
        assert_eq!(
            S::after_check(&CheckOutcome::Clear, 1, 3),
            S::VerifiedClosed
        );
        assert_eq!(
            S::after_check(&CheckOutcome::StillThere, 1, 3),
            S::NotRectified
        );
        assert_eq!(S::after_check(&blind, 2, 3), S::Handled);
        assert_eq!(S::after_check(&blind, 3, 3), S::CheckManual);
        assert!(S::NotRectified.restarts_deadline());
        assert!(S::NotRectified.deadline_runs() && !S::CheckManual.deadline_runs());
    }
}
