//! Record batch v2 codec (placeholder while the codec lands).

/// Errors from the record batch codec.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {}
