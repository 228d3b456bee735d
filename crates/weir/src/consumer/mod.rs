//! The consumer: partition state table, buffers, fetchers, delivery.

pub mod state_table;
