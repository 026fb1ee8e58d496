//! The small core every stage shares: the injected clock, the one shutdown signal and
//! credential redaction.

pub mod clock;
pub mod redact;
pub mod shutdown;

pub use clock::{Clock, ManualClock, SystemClock, unix_secs};
pub use redact::{RedactedUrl, redact_url};
pub use shutdown::Shutdown;
