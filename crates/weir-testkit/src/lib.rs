//! weir-testkit: the harness for weir's integration tests.
//!
//! * [`Kafka`]: real Apache Kafka 4.x (KRaft) on loopback, one node or three, from the jars that
//!   `scripts/setup-test-env` resolves with Maven. A test binary shares one single-node cluster
//!   ([`Kafka::shared`]); failover tests start their own ([`Kafka::start`]).
//! * [`Kafka::stop`], [`Kafka::active_controller`], [`Kafka::reassign`], [`Kafka::wait_in_sync`]: what an
//!   operator does to a running cluster (a graceful stop, finding the active KRaft controller, moving
//!   partitions, waiting for a full ISR), for failover tests, besides [`Kafka::kill`] and [`Kafka::restart`].
//! * [`Kafka::start_proxied`]: a cluster whose clients go through a chaos proxy in front of every broker
//!   ([`chaos::Chaos`]: cuts, delays, stalls, half-open connections, slow reads, switched at runtime), while
//!   replication and the controller go direct.
//! * [`Kafka::start_secure`]: a cluster that also listens on `SSL`, `SASL_PLAINTEXT` and `SASL_SSL`
//!   ([`SecureOptions`]: PLAIN and SCRAM users, client certificates, ACLs), with certificates generated for it
//!   ([`Pki`]: a CA, broker and client certificates, and broker certificates a client must refuse).
//! * [`peers::java`]: Apache Kafka's Java client, at the broker's version, the reference for semantics;
//!   [`peers::franz_go`]: franz-go, the peer for the pause/resume workload weir exists for.
//! * [`oidc::OidcServer`]: an OpenID Connect provider on loopback (client credentials grant, RS256 JWTs, a
//!   JWKS) and the broker settings that validate its tokens, for OAUTHBEARER tests.
//! * [`ReplayServer`]: an in-process stand-in for a broker that answers Fetch from record batches encoded once,
//!   at memory speed, so a consumer's own cost can be measured with no broker in the way ([`replay`]);
//!   [`cpu_time`] reads the CPU clocks a benchmark needs to tell the client's CPU from the server's.
//! * [`bench_out`]: the results lines the side-by-side benches append to `$WEIR_BENCH_OUT`, read by
//!   `scripts/bench-report` (the `bench-report` binary) to draw `docs/benchmarks.md`'s tables and plots.
//! * [`Kcat`] and [`Python`]: librdkafka 2.16 tooling for interop checks (kcat run against the librdkafka
//!   bundled in the PyPI `confluent-kafka` wheel, and that wheel's Python).
//!
//! Everything is prepared by `scripts/setup-test-env` (run by `scripts/test`). Interop tests must not pass
//! silently when the tooling is missing: use [`Kcat::require`] / [`Python::require`], or
//! [`Kcat::require_or_skip`] / [`Python::require_or_skip`], which skip only when
//! `WEIR_ALLOW_NO_LIBRDKAFKA=1`.
//!
//! ```no_run
//! use weir_testkit::{unique_name, Kafka, Kcat};
//!
//! let kafka = Kafka::shared();
//! let topic = unique_name("demo");
//! kafka.create_topic(&topic, 3);
//! let kcat = Kcat::require();
//! let out = kcat.produce(&kafka.bootstrap(), &topic, Some(0), b"a\nb\n", &[]);
//! assert!(out.status.success());
//! let got = kcat.consume_all(&kafka.bootstrap(), &topic, "%s\n", &[]);
//! assert_eq!(got, b"a\nb\n");
//! ```

pub mod bench_env;
pub mod bench_out;
pub mod chaos;
pub mod counting_alloc;
pub mod cpu_time;
mod kafka;
mod librdkafka;
pub mod oidc;
pub mod peers;
pub mod pki;
mod process;
pub mod replay;
mod wire;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

pub use kafka::{java, kafka_libs, Kafka, PartitionPlacement, SecureOptions, SecurityProtocol, Shape};
pub use librdkafka::{Kcat, Python, LIBRDKAFKA_VERSION};
pub use pki::{Pki, ServerCert};
pub use process::run_with_timeout;
pub use replay::{ReplayBuilder, ReplayServer};

/// Root of the weir repository (where `scripts/`, `.kafka/`, `.venv/` and `.rdk/` live).
pub fn repo_root() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    p.canonicalize().unwrap_or(p)
}

pub(crate) const SETUP_HINT: &str = "run scripts/setup-test-env (or use scripts/test, which runs it)";

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A name unique within this machine's test run, for topics and groups on a shared cluster:
/// `PREFIX-PID-N` (N counts up per process).
pub fn unique_name(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}", std::process::id())
}

/// Same as [`unique_name`].
pub fn unique_topic(prefix: &str) -> String {
    unique_name(prefix)
}
