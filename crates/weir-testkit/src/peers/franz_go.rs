//! The franz-go peer (`crates/weir-testkit/peers/go`).
