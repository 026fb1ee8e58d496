//! The edge where a camera's state is kept across restarts: a trait over what is kept, so
//! the stage that owns the state and the store that saves it need not know each other.

use parking_lot::{Mutex, MutexGuard};
use std::collections::HashMap;
use std::sync::Arc;

/// Keeps one state of type `S` per camera.
pub trait StateStore<S>: Send {
    /// A camera's saved state. A state that cannot be read as one (corrupt, or written by
    /// something else) is set aside and the camera starts fresh: one camera's bad state
    /// never stops the others. [`Self::quarantined`] then says where it went.
    fn load(&self, camera: &str) -> std::io::Result<S>;
    fn save(&self, camera: &str, state: &S) -> std::io::Result<()>;
    /// Where the camera's unreadable state was set aside at its last load, if it was.
    fn quarantined(&self, _camera: &str) -> Option<String> {
        None
    }
}

/// Cameras whose saved state was unreadable at load, and where it was set aside (shared by
/// the stores; a poisoned lock is still read).
#[derive(Debug, Clone, Default)]
pub struct Quarantine(Arc<Mutex<HashMap<String, String>>>);

impl Quarantine {
    fn map(&self) -> MutexGuard<'_, HashMap<String, String>> {
        self.0.lock()
    }

    /// Notes that `camera`'s state was set aside `at` (a file, or the audit log).
    pub fn note(&self, camera: &str, at: String) {
        self.map().insert(camera.to_string(), at);
    }

    pub fn get(&self, camera: &str) -> Option<String> {
        self.map().get(camera).cloned()
    }
}
