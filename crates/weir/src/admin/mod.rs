//! Administration: create, delete and list topics; list offsets; metadata; ACLs ([`AclBinding`],
//! [`AclFilter`]); SCRAM credentials ([`ScramAlteration`], [`UserScramCredentials`]).
//!
//! ```no_run
//! # async fn demo() -> weir::Result<()> {
//! let admin = weir::Admin::new(weir::config::ClientConfig::new("127.0.0.1:9092"))?;
//! admin.create_topic("events", 6, 1).await?;
//! let ends = admin.list_offsets("events", weir::admin::OffsetSpec::Latest).await?;
//! println!("{ends:?}");
//! # Ok(()) }
//! ```

mod acl;
mod scram;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use weir_proto::admin::{CreateTopicsRequest, DeleteTopicsRequest, NewTopic};
use weir_proto::{Call, ProtoError};

pub use self::acl::{
    AclBinding, AclFilter, AclOperation, AclPermissionType, PatternType, ResourceType, UnknownName,
};
pub use self::scram::{
    ScramAlteration, ScramCredentialInfo, ScramMechanism, UserScramCredentials, DEFAULT_SCRAM_ITERATIONS,
    MAX_SCRAM_ITERATIONS, MIN_SCRAM_ITERATIONS,
};
pub use crate::cluster::OffsetSpec;
use crate::cluster::{Cluster, MetadataSnapshot};
use crate::config::ClientConfig;
use crate::error::{check, Error, Result};
use crate::net::Connection;

/// A cluster administration client. Cheap to clone; clones share connections and [`Admin::close`].
#[derive(Clone)]
pub struct Admin {
    cluster: Arc<Cluster>,
    closed: Arc<AtomicBool>,
}

impl Admin {
    /// An admin client for the cluster behind `cfg.bootstrap_servers`. Connects lazily; must be called inside a
    /// tokio runtime.
    pub fn new(cfg: ClientConfig) -> Result<Admin> {
        Ok(Admin {
            cluster: Cluster::new(cfg)?,
            closed: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Closes the client: later calls fail with [`Error::Closed`]; connections close when the last clone is
    /// dropped.
    pub async fn close(&self) -> Result<()> {
        self.closed.store(true, Ordering::Release);
        Ok(())
    }

    fn cluster(&self) -> Result<&Cluster> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(&self.cluster)
    }

    /// Creates a topic. Already existing is an error (`TopicAlreadyExists`).
    pub async fn create_topic(&self, name: &str, partitions: i32, replication_factor: i16) -> Result<()> {
        let req = CreateTopicsRequest {
            topics: vec![NewTopic {
                name: name.to_owned(),
                partitions,
                replication_factor,
                configs: Vec::new(),
            }],
            timeout_ms: self.cluster()?.config().request_timeout.as_millis() as i32,
        };
        let topics = self.cluster()?.controller_connection().await?.call(&req).await?;
        for t in topics {
            let msg = t.error_message.unwrap_or_default();
            check(t.error_code, || format!("create topic {name} {msg}"))?;
        }
        Ok(())
    }

    /// Deletes a topic.
    pub async fn delete_topic(&self, name: &str) -> Result<()> {
        let req = DeleteTopicsRequest {
            names: vec![name.to_owned()],
            timeout_ms: self.cluster()?.config().request_timeout.as_millis() as i32,
        };
        let codes = self.cluster()?.controller_connection().await?.call(&req).await?;
        for code in codes {
            check(code, || format!("delete topic {name}"))?;
        }
        Ok(())
    }

    /// Metadata of every topic in the cluster.
    pub async fn metadata(&self) -> Result<Arc<MetadataSnapshot>> {
        self.cluster()?.refresh(true).await
    }

    /// Names of all topics, sorted.
    pub async fn list_topics(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> = self.metadata().await?.topics.keys().cloned().collect();
        names.sort();
        Ok(names)
    }

    /// The offset `spec` of every partition of `topic`, asked of each partition's leader.
    pub async fn list_offsets(&self, topic: &str, spec: OffsetSpec) -> Result<BTreeMap<i32, i64>> {
        let meta = self.cluster()?.topic(topic).await?;
        let partitions: Vec<i32> = (0..meta.partition_count()).collect();
        self.cluster()?.list_offsets(topic, &partitions, spec).await
    }
}

/// A response that does not answer what was asked (fewer results than items sent, a user missing): the broker
/// is not speaking the protocol, [`Error::Protocol`].
fn count_mismatch<C: Call>(conn: &Connection, reason: String) -> Error {
    Error::Protocol {
        broker: conn.addr().to_owned(),
        source: ProtoError::Decode {
            api: C::NAME,
            version: conn.version::<C>().unwrap_or(-1),
            reason,
        },
    }
}
