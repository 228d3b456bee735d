//! Finding coordinators (FindCoordinator): the broker that runs a consumer group (key type 0) or a transactional
//! id's transactions (key type 1), and what says a coordinator moved.

use weir_proto::group::FindCoordinatorRequest;

use super::Cluster;
use crate::error::{check, Error, KafkaCode, Result};

/// A group's coordinator (FindCoordinator key type 0).
pub(crate) const GROUP: i8 = 0;
/// A transactional id's coordinator (FindCoordinator key type 1).
pub(crate) const TRANSACTION: i8 = 1;

impl Cluster {
    /// The address (`host:port`) and node id of the coordinator of `key`, asked of any broker.
    pub(crate) async fn find_coordinator(&self, key: &str, key_type: i8) -> Result<(String, i32)> {
        let req = FindCoordinatorRequest {
            key: key.to_owned(),
            key_type,
        };
        let found = self.any_call(&req).await?;
        // Versions 0-3 always decode to exactly one coordinator; v4 lists one per key asked.
        let c = found.into_iter().next().ok_or_else(|| Error::Kafka {
            code: KafkaCode::CoordinatorNotAvailable,
            context: format!("FindCoordinator {key}: empty answer"),
        })?;
        check(c.error_code, || format!("FindCoordinator {key}"))?;
        Ok((format!("{}:{}", c.host, c.port), c.node_id))
    }
}

/// Whether `e` says the coordinator is gone or moved (the next call must find it again).
pub(crate) fn coordinator_moved(e: &Error) -> bool {
    match e {
        Error::Io { .. } | Error::Timeout { .. } => true,
        Error::Kafka { code, .. } => matches!(
            code,
            KafkaCode::NotCoordinator | KafkaCode::CoordinatorNotAvailable
        ),
        _ => false,
    }
}
