//! Administration: create, delete and list topics; list offsets; metadata; ACLs ([`AclBinding`],
//! [`AclFilter`]); SCRAM credentials ([`ScramAlteration`], [`UserScramCredentials`]).
//! The cluster and topics described ([`ClusterDescription`], [`TopicDescription`]), partitions added
//! ([`NewPartitions`]), records deleted; configurations of topics and brokers ([`ConfigResource`],
//! [`ConfigEntry`], [`AlterConfigOp`]).
//! Consumer groups ([`GroupFilter`], [`GroupDescription`]), their committed offsets ([`GroupOffset`],
//! [`ResetPlan`]) and partitions' active producers ([`ActiveProducer`]).
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
mod configs;
mod groups;
mod offsets;
mod producers;
mod scram;
mod topics;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use weir_proto::{Call, ProtoError};

pub use self::acl::{
    AclBinding, AclFilter, AclOperation, AclPermissionType, PatternType, ResourceType, UnknownName,
};
pub use self::configs::{
    AlterConfigOp, AlterConfigOpType, ConfigEntry, ConfigResource, ConfigResourceType, ConfigSource,
    ConfigSynonym, ConfigType,
};
pub use self::groups::{GroupDescription, GroupFilter, GroupMember, GroupState, GroupType, ListedGroup};
pub use self::offsets::{GroupOffset, PlannedOffset, ResetPlan, ResetSpec};
pub use self::producers::ActiveProducer;
pub use self::scram::{
    ScramAlteration, ScramCredentialInfo, ScramMechanism, UserScramCredentials, DEFAULT_SCRAM_ITERATIONS,
    MAX_SCRAM_ITERATIONS, MIN_SCRAM_ITERATIONS,
};
pub use self::topics::{
    BrokerDescription, ClusterDescription, NewPartitions, OffsetAndTimestamp, PartitionDescription,
    TopicDescription, TopicId, DELETE_TO_HIGH_WATERMARK,
};
use crate::cluster::Cluster;
pub use crate::cluster::OffsetSpec;
use crate::config::ClientConfig;
use crate::error::{Error, Result};
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
