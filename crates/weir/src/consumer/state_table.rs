//! Per-partition consumer state in atomics.
