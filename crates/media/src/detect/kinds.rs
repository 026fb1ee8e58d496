//! What a detected object is to citywatch's rules, whatever the model calls it.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    Vehicle,
    Person,
    /// Stall evidence: umbrellas, tables, carts, goods.
    StallPart,
    Bin,
    Garbage,
    BinOverflow,
    Other,
}

impl ObjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Vehicle => "vehicle",
            ObjectKind::Person => "person",
            ObjectKind::StallPart => "stall_part",
            ObjectKind::Bin => "bin",
            ObjectKind::Garbage => "garbage",
            ObjectKind::BinOverflow => "bin_overflow",
            ObjectKind::Other => "other",
        }
    }
}
