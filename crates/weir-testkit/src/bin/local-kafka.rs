//! `local-kafka`: starts Apache Kafka on loopback from the jars `scripts/setup-test-env` resolved, prints its
//! bootstrap address on stdout, and keeps it running until stdin closes (or Ctrl-C); then stops it and removes
//! its storage. For trying the CLI, `weir bench` and profiling against a real broker by hand:
//!
//! ```text
//! cargo run -p weir-testkit --bin local-kafka            # one node
//! cargo run -p weir-testkit --bin local-kafka -- 3       # three nodes
//! ```

use std::io::Read;

use weir_testkit::{Kafka, Shape};

fn main() {
    let shape = match std::env::args().nth(1).as_deref() {
        None | Some("1") => Shape::Single,
        Some("3") => Shape::Three,
        Some(other) => {
            eprintln!("local-kafka: expected 1 or 3 nodes, got {other:?}");
            std::process::exit(2);
        }
    };
    let kafka = match Kafka::try_start(shape, &[]) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("local-kafka: {e}");
            std::process::exit(1);
        }
    };
    println!("{}", kafka.bootstrap());
    eprintln!(
        "local-kafka: Apache Kafka {} up; close stdin (Ctrl-D) to stop it",
        kafka.version()
    );
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    drop(kafka);
}
