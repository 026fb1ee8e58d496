//! Model errors: always the model's name and the manifest field at fault.

use std::fmt;

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub struct ModelError {
    pub model: String,
    /// Manifest field path (`output.layout`, `sha256`, `input.size`), or `runtime`.
    pub field: String,
    pub message: String,
}

impl ModelError {
    pub fn new(model: &str, field: &str, message: impl Into<String>) -> Self {
        Self {
            model: model.to_string(),
            field: field.to_string(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "model {}: {}: {}", self.model, self.field, self.message)
    }
}
