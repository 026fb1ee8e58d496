//! The small core every stage shares: the injected clock and time helpers, the one shutdown
//! signal, retry backoff, credential redaction and HTML escaping.

pub mod backoff;
pub mod blocking;
pub mod clock;
pub mod faults;
pub mod font;
pub mod html;
pub mod path;
pub mod redact;
pub mod shutdown;
pub mod state;

pub use backoff::{Backoff, BackoffPolicy};
pub use clock::{Clock, ManualClock, SystemClock, TimeLapse, to_unix, unix_secs};
pub use redact::{RedactedUrl, redact_url};
pub use shutdown::Shutdown;
pub use state::{Quarantine, StateStore};
