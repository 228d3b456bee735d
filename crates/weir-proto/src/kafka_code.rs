//! Kafka error codes, by name.
//!
//! [`KafkaCode`] names every error code of Apache Kafka's `org.apache.kafka.common.protocol.Errors`
//! (Kafka 4.x), so the rest of weir can match on names rather than numbers, and keep any code it does not
//! know as [`KafkaCode::Unknown`]. Code 0 (`NONE`) is not a variant: it means "no error", which is why
//! [`KafkaCode::from_code`] returns `None` for it and [`KafkaCode::check`] returns `Ok(())`.
//!
//! Variant names are the Java names in CamelCase (the names `kafka-protocol` uses too).
//! [`KafkaCode::is_retriable`] is true exactly for the codes whose Java exception extends
//! `RetriableException`.
//!
//! Everything is generated from one table, the single invocation of `kafka_codes!` below: to add a code,
//! add one row there.

use std::fmt;

/// Generates [`KafkaCode`] and its lookups from one table of `code => Variant, JAVA_NAME, retriable;` rows.
macro_rules! kafka_codes {
    ($($code:literal => $variant:ident, $java:ident, $retriable:literal;)*) => {
        /// A Kafka error code, by name.
        ///
        /// Made from the `i16` a response carries with [`KafkaCode::from_code`] (or [`KafkaCode::check`]);
        /// [`KafkaCode::code`] gives the number back. A code weir does not know becomes
        /// [`KafkaCode::Unknown`], so no code is ever lost. `from_code` never makes `Unknown` of a code that
        /// has a variant of its own.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum KafkaCode {
            $(
                #[doc = concat!(
                    "`", stringify!($java), "` (", stringify!($code), "); retriable: ",
                    stringify!($retriable), "."
                )]
                $variant,
            )*
            /// A non-zero code weir does not know (newer than this table, or not a Kafka code at all).
            /// Never retriable.
            Unknown(i16),
        }

        impl KafkaCode {
            /// The error a response's error code stands for: `None` for 0 (no error), the named variant
            /// for a known code, [`KafkaCode::Unknown`] for any other.
            pub const fn from_code(code: i16) -> Option<KafkaCode> {
                match code {
                    0 => None,
                    $($code => Some(KafkaCode::$variant),)*
                    other => Some(KafkaCode::Unknown(other)),
                }
            }

            /// The code as it appears on the wire.
            pub const fn code(self) -> i16 {
                match self {
                    $(KafkaCode::$variant => $code,)*
                    KafkaCode::Unknown(code) => code,
                }
            }

            /// Whether the same request may succeed if tried again later: true exactly for the codes
            /// whose Java exception extends `RetriableException`. [`KafkaCode::Unknown`] is not retriable.
            pub const fn is_retriable(self) -> bool {
                match self {
                    $(KafkaCode::$variant => $retriable,)*
                    KafkaCode::Unknown(_) => false,
                }
            }

            /// The variant's name, e.g. `"NotLeaderOrFollower"`; `"Unknown"` for [`KafkaCode::Unknown`].
            pub const fn name(self) -> &'static str {
                match self {
                    $(KafkaCode::$variant => stringify!($variant),)*
                    KafkaCode::Unknown(_) => "Unknown",
                }
            }
        }
    };
}

kafka_codes! {
     -1 => UnknownServerError,                     UNKNOWN_SERVER_ERROR,                       false;
      1 => OffsetOutOfRange,                       OFFSET_OUT_OF_RANGE,                        false;
      2 => CorruptMessage,                         CORRUPT_MESSAGE,                            true;
      3 => UnknownTopicOrPartition,                UNKNOWN_TOPIC_OR_PARTITION,                 true;
      4 => InvalidFetchSize,                       INVALID_FETCH_SIZE,                         false;
      5 => LeaderNotAvailable,                     LEADER_NOT_AVAILABLE,                       true;
      6 => NotLeaderOrFollower,                    NOT_LEADER_OR_FOLLOWER,                     true;
      7 => RequestTimedOut,                        REQUEST_TIMED_OUT,                          true;
      8 => BrokerNotAvailable,                     BROKER_NOT_AVAILABLE,                       false;
      9 => ReplicaNotAvailable,                    REPLICA_NOT_AVAILABLE,                      true;
     10 => MessageTooLarge,                        MESSAGE_TOO_LARGE,                          false;
     11 => StaleControllerEpoch,                   STALE_CONTROLLER_EPOCH,                     false;
     12 => OffsetMetadataTooLarge,                 OFFSET_METADATA_TOO_LARGE,                  false;
     13 => NetworkException,                       NETWORK_EXCEPTION,                          true;
     14 => CoordinatorLoadInProgress,              COORDINATOR_LOAD_IN_PROGRESS,               true;
     15 => CoordinatorNotAvailable,                COORDINATOR_NOT_AVAILABLE,                  true;
     16 => NotCoordinator,                         NOT_COORDINATOR,                            true;
     17 => InvalidTopicException,                  INVALID_TOPIC_EXCEPTION,                    false;
     18 => RecordListTooLarge,                     RECORD_LIST_TOO_LARGE,                      false;
     19 => NotEnoughReplicas,                      NOT_ENOUGH_REPLICAS,                        true;
     20 => NotEnoughReplicasAfterAppend,           NOT_ENOUGH_REPLICAS_AFTER_APPEND,           true;
     21 => InvalidRequiredAcks,                    INVALID_REQUIRED_ACKS,                      false;
     22 => IllegalGeneration,                      ILLEGAL_GENERATION,                         false;
     23 => InconsistentGroupProtocol,              INCONSISTENT_GROUP_PROTOCOL,                false;
     24 => InvalidGroupId,                         INVALID_GROUP_ID,                           false;
     25 => UnknownMemberId,                        UNKNOWN_MEMBER_ID,                          false;
     26 => InvalidSessionTimeout,                  INVALID_SESSION_TIMEOUT,                    false;
     27 => RebalanceInProgress,                    REBALANCE_IN_PROGRESS,                      false;
     28 => InvalidCommitOffsetSize,                INVALID_COMMIT_OFFSET_SIZE,                 false;
     29 => TopicAuthorizationFailed,               TOPIC_AUTHORIZATION_FAILED,                 false;
     30 => GroupAuthorizationFailed,               GROUP_AUTHORIZATION_FAILED,                 false;
     31 => ClusterAuthorizationFailed,             CLUSTER_AUTHORIZATION_FAILED,               false;
     32 => InvalidTimestamp,                       INVALID_TIMESTAMP,                          false;
     33 => UnsupportedSaslMechanism,               UNSUPPORTED_SASL_MECHANISM,                 false;
     34 => IllegalSaslState,                       ILLEGAL_SASL_STATE,                         false;
     35 => UnsupportedVersion,                     UNSUPPORTED_VERSION,                        false;
     36 => TopicAlreadyExists,                     TOPIC_ALREADY_EXISTS,                       false;
     37 => InvalidPartitions,                      INVALID_PARTITIONS,                         false;
     38 => InvalidReplicationFactor,               INVALID_REPLICATION_FACTOR,                 false;
     39 => InvalidReplicaAssignment,               INVALID_REPLICA_ASSIGNMENT,                 false;
     40 => InvalidConfig,                          INVALID_CONFIG,                             false;
     41 => NotController,                          NOT_CONTROLLER,                             true;
     42 => InvalidRequest,                         INVALID_REQUEST,                            false;
     43 => UnsupportedForMessageFormat,            UNSUPPORTED_FOR_MESSAGE_FORMAT,             false;
     44 => PolicyViolation,                        POLICY_VIOLATION,                           false;
     45 => OutOfOrderSequenceNumber,               OUT_OF_ORDER_SEQUENCE_NUMBER,               false;
     46 => DuplicateSequenceNumber,                DUPLICATE_SEQUENCE_NUMBER,                  false;
     47 => InvalidProducerEpoch,                   INVALID_PRODUCER_EPOCH,                     false;
     48 => InvalidTxnState,                        INVALID_TXN_STATE,                          false;
     49 => InvalidProducerIdMapping,               INVALID_PRODUCER_ID_MAPPING,                false;
     50 => InvalidTransactionTimeout,              INVALID_TRANSACTION_TIMEOUT,                false;
    // Retriable in Kafka since 3.4 (KAFKA-14417); kafka-protocol 0.18.0 says not.
     51 => ConcurrentTransactions,                 CONCURRENT_TRANSACTIONS,                    true;
     52 => TransactionCoordinatorFenced,           TRANSACTION_COORDINATOR_FENCED,             false;
     53 => TransactionalIdAuthorizationFailed,     TRANSACTIONAL_ID_AUTHORIZATION_FAILED,      false;
     54 => SecurityDisabled,                       SECURITY_DISABLED,                          false;
     55 => OperationNotAttempted,                  OPERATION_NOT_ATTEMPTED,                    false;
     56 => KafkaStorageError,                      KAFKA_STORAGE_ERROR,                        true;
     57 => LogDirNotFound,                         LOG_DIR_NOT_FOUND,                          false;
     58 => SaslAuthenticationFailed,               SASL_AUTHENTICATION_FAILED,                 false;
     59 => UnknownProducerId,                      UNKNOWN_PRODUCER_ID,                        false;
     60 => ReassignmentInProgress,                 REASSIGNMENT_IN_PROGRESS,                   false;
     61 => DelegationTokenAuthDisabled,            DELEGATION_TOKEN_AUTH_DISABLED,             false;
     62 => DelegationTokenNotFound,                DELEGATION_TOKEN_NOT_FOUND,                 false;
     63 => DelegationTokenOwnerMismatch,           DELEGATION_TOKEN_OWNER_MISMATCH,            false;
     64 => DelegationTokenRequestNotAllowed,       DELEGATION_TOKEN_REQUEST_NOT_ALLOWED,       false;
     65 => DelegationTokenAuthorizationFailed,     DELEGATION_TOKEN_AUTHORIZATION_FAILED,      false;
     66 => DelegationTokenExpired,                 DELEGATION_TOKEN_EXPIRED,                   false;
     67 => InvalidPrincipalType,                   INVALID_PRINCIPAL_TYPE,                     false;
     68 => NonEmptyGroup,                          NON_EMPTY_GROUP,                            false;
     69 => GroupIdNotFound,                        GROUP_ID_NOT_FOUND,                         false;
     70 => FetchSessionIdNotFound,                 FETCH_SESSION_ID_NOT_FOUND,                 true;
     71 => InvalidFetchSessionEpoch,               INVALID_FETCH_SESSION_EPOCH,                true;
     72 => ListenerNotFound,                       LISTENER_NOT_FOUND,                         true;
     73 => TopicDeletionDisabled,                  TOPIC_DELETION_DISABLED,                    false;
     74 => FencedLeaderEpoch,                      FENCED_LEADER_EPOCH,                        true;
     75 => UnknownLeaderEpoch,                     UNKNOWN_LEADER_EPOCH,                       true;
     76 => UnsupportedCompressionType,             UNSUPPORTED_COMPRESSION_TYPE,               false;
     77 => StaleBrokerEpoch,                       STALE_BROKER_EPOCH,                         false;
     78 => OffsetNotAvailable,                     OFFSET_NOT_AVAILABLE,                       true;
     79 => MemberIdRequired,                       MEMBER_ID_REQUIRED,                         false;
     80 => PreferredLeaderNotAvailable,            PREFERRED_LEADER_NOT_AVAILABLE,             true;
     81 => GroupMaxSizeReached,                    GROUP_MAX_SIZE_REACHED,                     false;
     82 => FencedInstanceId,                       FENCED_INSTANCE_ID,                         false;
     83 => EligibleLeadersNotAvailable,            ELIGIBLE_LEADERS_NOT_AVAILABLE,             true;
     84 => ElectionNotNeeded,                      ELECTION_NOT_NEEDED,                        true;
     85 => NoReassignmentInProgress,               NO_REASSIGNMENT_IN_PROGRESS,                false;
     86 => GroupSubscribedToTopic,                 GROUP_SUBSCRIBED_TO_TOPIC,                  false;
     87 => InvalidRecord,                          INVALID_RECORD,                             false;
     88 => UnstableOffsetCommit,                   UNSTABLE_OFFSET_COMMIT,                     true;
     89 => ThrottlingQuotaExceeded,                THROTTLING_QUOTA_EXCEEDED,                  true;
     90 => ProducerFenced,                         PRODUCER_FENCED,                            false;
     91 => ResourceNotFound,                       RESOURCE_NOT_FOUND,                         false;
     92 => DuplicateResource,                      DUPLICATE_RESOURCE,                         false;
     93 => UnacceptableCredential,                 UNACCEPTABLE_CREDENTIAL,                    false;
     94 => InconsistentVoterSet,                   INCONSISTENT_VOTER_SET,                     false;
     95 => InvalidUpdateVersion,                   INVALID_UPDATE_VERSION,                     false;
     96 => FeatureUpdateFailed,                    FEATURE_UPDATE_FAILED,                      false;
     97 => PrincipalDeserializationFailure,        PRINCIPAL_DESERIALIZATION_FAILURE,          false;
     98 => SnapshotNotFound,                       SNAPSHOT_NOT_FOUND,                         false;
     99 => PositionOutOfRange,                     POSITION_OUT_OF_RANGE,                      false;
    100 => UnknownTopicId,                         UNKNOWN_TOPIC_ID,                           true;
    101 => DuplicateBrokerRegistration,            DUPLICATE_BROKER_REGISTRATION,              false;
    102 => BrokerIdNotRegistered,                  BROKER_ID_NOT_REGISTERED,                   false;
    103 => InconsistentTopicId,                    INCONSISTENT_TOPIC_ID,                      true;
    104 => InconsistentClusterId,                  INCONSISTENT_CLUSTER_ID,                    false;
    105 => TransactionalIdNotFound,                TRANSACTIONAL_ID_NOT_FOUND,                 false;
    106 => FetchSessionTopicIdError,               FETCH_SESSION_TOPIC_ID_ERROR,               true;
    107 => IneligibleReplica,                      INELIGIBLE_REPLICA,                         false;
    108 => NewLeaderElected,                       NEW_LEADER_ELECTED,                         false;
    109 => OffsetMovedToTieredStorage,             OFFSET_MOVED_TO_TIERED_STORAGE,             false;
    110 => FencedMemberEpoch,                      FENCED_MEMBER_EPOCH,                        false;
    111 => UnreleasedInstanceId,                   UNRELEASED_INSTANCE_ID,                     false;
    112 => UnsupportedAssignor,                    UNSUPPORTED_ASSIGNOR,                       false;
    113 => StaleMemberEpoch,                       STALE_MEMBER_EPOCH,                         false;
    114 => MismatchedEndpointType,                 MISMATCHED_ENDPOINT_TYPE,                   false;
    115 => UnsupportedEndpointType,                UNSUPPORTED_ENDPOINT_TYPE,                  false;
    116 => UnknownControllerId,                    UNKNOWN_CONTROLLER_ID,                      false;
    117 => UnknownSubscriptionId,                  UNKNOWN_SUBSCRIPTION_ID,                    false;
    118 => TelemetryTooLarge,                      TELEMETRY_TOO_LARGE,                        false;
    119 => InvalidRegistration,                    INVALID_REGISTRATION,                       false;
    120 => TransactionAbortable,                   TRANSACTION_ABORTABLE,                      false;
    121 => InvalidRecordState,                     INVALID_RECORD_STATE,                       false;
    122 => ShareSessionNotFound,                   SHARE_SESSION_NOT_FOUND,                    true;
    123 => InvalidShareSessionEpoch,               INVALID_SHARE_SESSION_EPOCH,                true;
    124 => FencedStateEpoch,                       FENCED_STATE_EPOCH,                         false;
    125 => InvalidVoterKey,                        INVALID_VOTER_KEY,                          false;
    126 => DuplicateVoter,                         DUPLICATE_VOTER,                            false;
    127 => VoterNotFound,                          VOTER_NOT_FOUND,                            false;
    128 => InvalidRegularExpression,               INVALID_REGULAR_EXPRESSION,                 false;
    129 => RebootstrapRequired,                    REBOOTSTRAP_REQUIRED,                       false;
    130 => StreamsInvalidTopology,                 STREAMS_INVALID_TOPOLOGY,                   false;
    131 => StreamsInvalidTopologyEpoch,            STREAMS_INVALID_TOPOLOGY_EPOCH,             false;
    132 => StreamsTopologyFenced,                  STREAMS_TOPOLOGY_FENCED,                    false;
    133 => ShareSessionLimitReached,               SHARE_SESSION_LIMIT_REACHED,                true;
    // Kafka 4.4; unknown to kafka-protocol 0.18.0.
    134 => GroupDeletionFailed,                    GROUP_DELETION_FAILED,                      false;
    135 => StreamsTopologyDescriptionUpdateFailed, STREAMS_TOPOLOGY_DESCRIPTION_UPDATE_FAILED, false;
}

impl KafkaCode {
    /// Turns a response's error code into `Ok(())` for 0 (no error) or the error it stands for.
    pub const fn check(code: i16) -> Result<(), KafkaCode> {
        match KafkaCode::from_code(code) {
            None => Ok(()),
            Some(error) => Err(error),
        }
    }
}

impl fmt::Display for KafkaCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KafkaCode::Unknown(code) => write!(f, "unknown error code {code}"),
            known => f.write_str(known.name()),
        }
    }
}

impl std::error::Error for KafkaCode {}

#[cfg(test)]
mod tests {
    use super::KafkaCode;
    use kafka_protocol::error::ResponseError;

    /// The newest code in the table.
    const NEWEST: i16 = 135;

    /// Codes where `is_retriable` deliberately differs from kafka-protocol 0.18.0, with the reason.
    const RETRIABLE_DIFFERS: &[(i16, &str)] = &[(
        51,
        "CONCURRENT_TRANSACTIONS: ConcurrentTransactionsException extends RetriableException since \
         Kafka 3.4 (KAFKA-14417); kafka-protocol still says not retriable",
    )];

    /// Codes kafka-protocol 0.18.0 does not know (it makes them `Unknown`): added in Kafka 4.4.
    const NEWER_THAN_KAFKA_PROTOCOL: &[i16] = &[134, 135];

    #[test]
    fn every_code_round_trips() {
        for c in -1..=200i16 {
            let code = KafkaCode::from_code(c);
            if c == 0 {
                assert_eq!(code, None);
                assert_eq!(KafkaCode::check(c), Ok(()));
            } else {
                assert_eq!(code.map(KafkaCode::code), Some(c), "code {c}");
                assert_eq!(KafkaCode::check(c), Err(code.unwrap()), "code {c}");
            }
        }
        for c in [i16::MIN, -2, 136, 1000, i16::MAX] {
            assert_eq!(KafkaCode::from_code(c), Some(KafkaCode::Unknown(c)));
            assert_eq!(KafkaCode::Unknown(c).code(), c);
        }
    }

    #[test]
    fn known_codes_are_minus_one_and_one_to_newest() {
        let known = |c: i16| !matches!(KafkaCode::from_code(c), None | Some(KafkaCode::Unknown(_)));
        let known_codes: Vec<i16> = (i16::MIN..=i16::MAX).filter(|&c| known(c)).collect();
        let expected: Vec<i16> = std::iter::once(-1).chain(1..=NEWEST).collect();
        assert_eq!(known_codes, expected);
        assert_eq!(known_codes.len(), 136);
    }

    #[test]
    fn agrees_with_kafka_protocol() {
        for c in -1..=1000i16 {
            let ours = KafkaCode::from_code(c);
            let theirs = ResponseError::try_from_code(c);
            let (Some(ours), Some(theirs)) = (ours, theirs) else {
                assert_eq!(c, 0);
                assert!(ours.is_none() && theirs.is_none());
                continue;
            };
            assert_eq!(theirs.code(), c);
            if let ResponseError::Unknown(_) = theirs {
                if NEWER_THAN_KAFKA_PROTOCOL.contains(&c) {
                    assert!(!matches!(ours, KafkaCode::Unknown(_)), "code {c}");
                } else {
                    assert_eq!(ours, KafkaCode::Unknown(c));
                    assert_eq!(format!("{ours:?}"), format!("{theirs:?}"));
                    assert!(!ours.is_retriable());
                }
                continue;
            }
            assert_eq!(ours.name(), format!("{theirs:?}"), "code {c}");
            assert_eq!(ours.to_string(), theirs.to_string(), "code {c}");
            let differs = RETRIABLE_DIFFERS.iter().any(|&(d, _)| d == c);
            assert_eq!(
                ours.is_retriable() != theirs.is_retriable(),
                differs,
                "code {c} ({ours})"
            );
        }
    }

    #[test]
    fn spot_checks() {
        let nlof = KafkaCode::from_code(6).unwrap();
        assert_eq!(nlof, KafkaCode::NotLeaderOrFollower);
        assert!(nlof.is_retriable());
        assert_eq!(nlof.name(), "NotLeaderOrFollower");
        assert_eq!(nlof.to_string(), "NotLeaderOrFollower");

        let member = KafkaCode::from_code(25).unwrap();
        assert_eq!(member, KafkaCode::UnknownMemberId);
        assert!(!member.is_retriable());

        assert_eq!(KafkaCode::from_code(27), Some(KafkaCode::RebalanceInProgress));
        assert!(!KafkaCode::RebalanceInProgress.is_retriable());

        let range = KafkaCode::from_code(1).unwrap();
        assert_eq!(range, KafkaCode::OffsetOutOfRange);
        assert!(!range.is_retriable());

        assert_eq!(KafkaCode::from_code(-1), Some(KafkaCode::UnknownServerError));
        assert!(KafkaCode::ConcurrentTransactions.is_retriable());
        assert_eq!(KafkaCode::StreamsTopologyDescriptionUpdateFailed.code(), NEWEST);
        assert_eq!(KafkaCode::from_code(16), Some(KafkaCode::NotCoordinator));
        assert_eq!(KafkaCode::check(22), Err(KafkaCode::IllegalGeneration));

        let unknown = KafkaCode::from_code(-42).unwrap();
        assert_eq!(unknown, KafkaCode::Unknown(-42));
        assert_eq!(unknown.name(), "Unknown");
        assert_eq!(unknown.to_string(), "unknown error code -42");
        assert!(!unknown.is_retriable());
    }
}
