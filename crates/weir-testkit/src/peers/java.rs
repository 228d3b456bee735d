//! The Java client peer (`crates/weir-testkit/peers/java`).
