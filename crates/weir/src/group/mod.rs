//! Consumer groups (classic protocol). Work in progress.
