//! Where a camera is, and how a rule's captures become cases.

use serde::{Deserialize, Serialize};

/// Where a camera is, for cases.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Location {
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub lat: Option<f64>,
    #[serde(default)]
    pub lon: Option<f64>,
    /// 单元网格 code.
    #[serde(default)]
    pub grid_code: String,
    /// 社区.
    #[serde(default)]
    pub community: String,
    /// 街道.
    #[serde(default)]
    pub street: String,
}

/// How a rule's captures become cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum FilingMode {
    /// An operator confirms first (the default: field accuracy is 70–81%).
    #[default]
    Review,
    /// Filed at once.
    Auto,
}

/// A location as the store keeps it: JSON text.
impl TryFrom<String> for Location {
    type Error = serde_json::Error;
    fn try_from(json: String) -> Result<Self, Self::Error> {
        serde_json::from_str(&json)
    }
}
