//! Metrics of connections and requests, through the `metrics` facade: per client (`client_id`), broker (its
//! address, `host:port`) and API.
//!
//! Handles are registered once per connection (the connection's own when it opens, an API's the first time the
//! connection sends it) and kept, so a request costs a few atomic operations on them and no registry lookup.
//! With no recorder installed every handle is a no-op. A recorder installed after a client was created sees
//! only the connections opened after it.
//!
//! | metric | type | labels | what |
//! |---|---|---|---|
//! | `kafka.client.request_total` | counter | `client_id`, `broker`, `api` | requests handed to the connection's writer |
//! | `kafka.client.request_error_total` | counter | `client_id`, `broker`, `api`, `error` | errors, by Kafka error name (see below) |
//! | `kafka.client.request_latency_seconds` | histogram | `client_id`, `broker`, `api` | from sending to the response |
//! | `kafka.client.requests_in_flight` | gauge | `client_id`, `broker`, `api` | requests waiting for their response |
//! | `kafka.client.connection_count` | gauge | `client_id`, `broker` | open connections |
//! | `kafka.client.connection_creation_total` | counter | `client_id`, `broker` | connections opened (TCP and TLS done) |
//! | `kafka.client.connection_close_total` | counter | `client_id`, `broker` | connections closed, for any reason |
//! | `kafka.client.successful_authentication_total` | counter | `client_id`, `broker` | SASL authentications and re-authentications that succeeded |
//! | `kafka.client.failed_authentication_total` | counter | `client_id`, `broker` | SASL authentications and re-authentications that failed |
//!
//! The `error` label is the Java name of a Kafka error code a response carried (`TOPIC_ALREADY_EXISTS`;
//! `UNKNOWN` for a code weir does not know, so that the wire cannot create labels), or, for a request that got
//! no usable response, `NETWORK_EXCEPTION` (the connection was lost), `REQUEST_TIMED_OUT` (no response within
//! `request.timeout.ms`), `INVALID_RESPONSE` (a response weir could not decode; the connection is dropped) or
//! `SASL_AUTHENTICATION_FAILED` (a re-authentication failed and closed the connection). The error codes of a
//! response are those its decoded type reports ([`ErrorCodes`]): its top-level code and those of its items,
//! for every call but Produce and Fetch, whose callers (the producer's sender, the consumer's fetcher) walk
//! their responses partition by partition anyway and count each code they read there
//! ([`ConnectionMetrics::count_error`]).

use std::borrow::Cow;
use std::sync::OnceLock;
use std::time::Duration;

use metrics::{
    counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Counter, Gauge,
    Histogram, Unit,
};
use weir_proto::call::ErrorCodes;
use weir_proto::{Call, KafkaCode};

use crate::error::Error;

/// Requests handed to a connection's writer.
pub(crate) const REQUEST_TOTAL: &str = "kafka.client.request_total";
/// Errors of requests, by API and error name.
pub(crate) const REQUEST_ERROR_TOTAL: &str = "kafka.client.request_error_total";
/// Time from sending a request to its response.
pub(crate) const REQUEST_LATENCY_SECONDS: &str = "kafka.client.request_latency_seconds";
/// Requests waiting for their response.
pub(crate) const REQUESTS_IN_FLIGHT: &str = "kafka.client.requests_in_flight";
/// Open connections.
pub(crate) const CONNECTION_COUNT: &str = "kafka.client.connection_count";
/// Connections opened.
pub(crate) const CONNECTION_CREATION_TOTAL: &str = "kafka.client.connection_creation_total";
/// Connections closed.
pub(crate) const CONNECTION_CLOSE_TOTAL: &str = "kafka.client.connection_close_total";
/// SASL (re-)authentications that succeeded.
pub(crate) const SUCCESSFUL_AUTHENTICATION_TOTAL: &str = "kafka.client.successful_authentication_total";
/// SASL (re-)authentications that failed.
pub(crate) const FAILED_AUTHENTICATION_TOTAL: &str = "kafka.client.failed_authentication_total";

/// Describes this module's metrics (unit and meaning) to the installed recorder; called when a client is
/// created.
pub(crate) fn describe() {
    describe_counter!(REQUEST_TOTAL, Unit::Count, "Requests sent to a broker, per API");
    describe_counter!(
        REQUEST_ERROR_TOTAL,
        Unit::Count,
        "Error codes in responses, and requests that got no usable response, per API and error name"
    );
    describe_histogram!(
        REQUEST_LATENCY_SECONDS,
        Unit::Seconds,
        "Time from sending a request to receiving its response, per API"
    );
    describe_gauge!(
        REQUESTS_IN_FLIGHT,
        Unit::Count,
        "Requests waiting for their response, per API"
    );
    describe_gauge!(CONNECTION_COUNT, Unit::Count, "Open connections to a broker");
    describe_counter!(
        CONNECTION_CREATION_TOTAL,
        Unit::Count,
        "Connections opened to a broker"
    );
    describe_counter!(
        CONNECTION_CLOSE_TOTAL,
        Unit::Count,
        "Connections to a broker closed"
    );
    describe_counter!(
        SUCCESSFUL_AUTHENTICATION_TOTAL,
        Unit::Count,
        "SASL authentications and re-authentications that succeeded"
    );
    describe_counter!(
        FAILED_AUTHENTICATION_TOTAL,
        Unit::Count,
        "SASL authentications and re-authentications that failed"
    );
}

/// The metric handles of one connection.
pub(crate) struct ConnectionMetrics {
    client_id: String,
    broker: String,
    /// Per API key, registered on first use.
    apis: Box<[OnceLock<ApiMetrics>]>,
    open: Gauge,
    closed: Counter,
    authenticated: Counter,
    refused: Counter,
}

/// The metric handles of one API on one connection.
#[derive(Clone)]
pub(crate) struct ApiMetrics {
    requests: Counter,
    latency: Histogram,
    in_flight: Gauge,
}

/// One request waiting for its response, counted in `requests_in_flight` until dropped (with the response, or
/// with the connection).
pub(crate) struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

impl ConnectionMetrics {
    /// The handles of a connection of `client_id` to `broker`, counted as opened.
    pub(crate) fn opened(client_id: &str, broker: &str) -> ConnectionMetrics {
        let labels = [("client_id", client_id.to_owned()), ("broker", broker.to_owned())];
        counter!(CONNECTION_CREATION_TOTAL, &labels).increment(1);
        let open = gauge!(CONNECTION_COUNT, &labels);
        open.increment(1.0);
        let keys = weir_proto::call::SPOKEN.iter().map(|s| s.0).max().unwrap_or(0);
        ConnectionMetrics {
            apis: (0..=keys.max(0)).map(|_| OnceLock::new()).collect(),
            open,
            closed: counter!(CONNECTION_CLOSE_TOTAL, &labels),
            authenticated: counter!(SUCCESSFUL_AUTHENTICATION_TOTAL, &labels),
            refused: counter!(FAILED_AUTHENTICATION_TOTAL, &labels),
            client_id: client_id.to_owned(),
            broker: broker.to_owned(),
        }
    }

    /// The connection closed (called once).
    pub(crate) fn closed(&self) {
        self.open.decrement(1.0);
        self.closed.increment(1);
    }

    /// A SASL authentication or re-authentication ended: `ok` or not.
    pub(crate) fn authentication(&self, ok: bool) {
        match ok {
            true => self.authenticated.increment(1),
            false => self.refused.increment(1),
        }
    }

    /// The handles of `C`'s API on this connection.
    pub(crate) fn api<C: Call>(&self) -> Cow<'_, ApiMetrics> {
        match usize::try_from(C::KEY).ok().and_then(|k| self.apis.get(k)) {
            Some(slot) => Cow::Borrowed(slot.get_or_init(|| self.register(C::NAME))),
            // Every call is in SPOKEN, so this does not happen; registering again is correct, only slower.
            None => Cow::Owned(self.register(C::NAME)),
        }
    }

    fn register(&self, api: &'static str) -> ApiMetrics {
        let labels = [
            ("client_id", self.client_id.clone()),
            ("broker", self.broker.clone()),
            ("api", api.to_owned()),
        ];
        ApiMetrics {
            requests: counter!(REQUEST_TOTAL, &labels),
            latency: histogram!(REQUEST_LATENCY_SECONDS, &labels),
            in_flight: gauge!(REQUESTS_IN_FLIGHT, &labels),
        }
    }

    /// Counts every error code `resp`, a decoded response of `C`, reports ([`ErrorCodes`]): none for Produce
    /// and Fetch.
    pub(crate) fn count_errors<C: Call>(&self, resp: &C::Response) {
        resp.error_codes(&mut |code| self.count_error::<C>(code));
    }

    /// Counts error `code` in a response of `C` (nothing for 0). For the callers that read the codes of the
    /// responses that report none themselves (Produce, Fetch).
    pub(crate) fn count_error<C: Call>(&self, code: i16) {
        if let Some(name) = error_name(code) {
            self.count(C::NAME, name);
        }
    }

    /// Counts a request of `C` that got no usable response, failed with `e`.
    pub(crate) fn count_failure<C: Call>(&self, e: &Error) {
        self.count(C::NAME, failure_name(e));
    }

    /// Registered at each error: errors are rare, and their labels are not known in advance.
    fn count(&self, api: &'static str, error: Cow<'static, str>) {
        counter!(
            REQUEST_ERROR_TOTAL,
            "client_id" => self.client_id.clone(),
            "broker" => self.broker.clone(),
            "api" => api,
            "error" => error
        )
        .increment(1);
    }
}

impl ApiMetrics {
    /// A request was handed to the writer.
    pub(crate) fn sent(&self) {
        self.requests.increment(1);
    }

    /// A request starts waiting for its response: in flight until the guard is dropped.
    pub(crate) fn in_flight(&self) -> InFlight {
        self.in_flight.increment(1.0);
        InFlight(self.in_flight.clone())
    }

    /// A response arrived `after` its request was sent.
    pub(crate) fn answered(&self, after: Duration) {
        self.latency.record(after);
    }
}

/// The Java name of a non-zero error code (`TOPIC_ALREADY_EXISTS`), `UNKNOWN` for a code weir does not know;
/// `None` for 0.
pub(crate) fn error_name(code: i16) -> Option<Cow<'static, str>> {
    match KafkaCode::from_code(code)? {
        KafkaCode::Unknown(_) => Some(Cow::Borrowed("UNKNOWN")),
        known => Some(Cow::Owned(java_name(known.name()))),
    }
}

/// `TopicAlreadyExists` as Java names it: `TOPIC_ALREADY_EXISTS` (every variant name of [`KafkaCode`] is its
/// Java name in CamelCase).
fn java_name(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 8);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// The `error` label of a request that failed without a usable response.
fn failure_name(e: &Error) -> Cow<'static, str> {
    match e {
        Error::Kafka { code, .. } => error_name(code.code()).unwrap_or(Cow::Borrowed("UNKNOWN")),
        Error::Timeout { .. } => Cow::Borrowed("REQUEST_TIMED_OUT"),
        Error::Protocol { .. } => Cow::Borrowed("INVALID_RESPONSE"),
        Error::Authentication { .. } => Cow::Borrowed("SASL_AUTHENTICATION_FAILED"),
        _ => Cow::Borrowed("NETWORK_EXCEPTION"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_names_are_java_names() {
        assert_eq!(error_name(0), None);
        assert_eq!(error_name(36).as_deref(), Some("TOPIC_ALREADY_EXISTS"));
        assert_eq!(error_name(6).as_deref(), Some("NOT_LEADER_OR_FOLLOWER"));
        assert_eq!(error_name(-1).as_deref(), Some("UNKNOWN_SERVER_ERROR"));
        assert_eq!(error_name(17).as_deref(), Some("INVALID_TOPIC_EXCEPTION"));
        assert_eq!(error_name(58).as_deref(), Some("SASL_AUTHENTICATION_FAILED"));
        // Codes from the wire that weir does not know share one label.
        assert_eq!(error_name(9999).as_deref(), Some("UNKNOWN"));
        assert_eq!(error_name(-77).as_deref(), Some("UNKNOWN"));
    }

    #[test]
    fn failures_without_a_response_have_their_own_names() {
        let io = Error::io("b:9092", std::io::Error::other("reset"));
        assert_eq!(failure_name(&io), "NETWORK_EXCEPTION");
        let timeout = Error::Timeout {
            what: "x".into(),
            after: Duration::from_secs(1),
        };
        assert_eq!(failure_name(&timeout), "REQUEST_TIMED_OUT");
        let bad = Error::Protocol {
            broker: "b:9092".into(),
            source: weir_proto::ProtoError::Decode {
                api: "Metadata",
                version: 12,
                reason: "short".into(),
            },
        };
        assert_eq!(failure_name(&bad), "INVALID_RESPONSE");
        let kafka = Error::Kafka {
            code: KafkaCode::NotController,
            context: String::new(),
        };
        assert_eq!(failure_name(&kafka), "NOT_CONTROLLER");
    }

    /// The errors a decoded response reports are counted by API and name, once per code, 0 never; a Fetch
    /// response reports none (its codes are counted by the fetcher, one by one).
    #[test]
    fn a_response_counts_the_codes_it_reports() {
        use metrics_util::debugging::{DebugValue, DebuggingRecorder};
        use weir_proto::admin::DeleteTopicsRequest;
        use weir_proto::fetch::{FetchRequest, FetchResponse};
        use weir_proto::group::HeartbeatRequest;

        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, || {
            let m = ConnectionMetrics::opened("c", "b:9092");
            m.count_errors::<DeleteTopicsRequest>(&vec![0, 3, 0, 3, 41]);
            m.count_errors::<HeartbeatRequest>(&0);
            m.count_errors::<HeartbeatRequest>(&27);
            let fetch = FetchResponse {
                error_code: 70,
                ..Default::default()
            };
            m.count_errors::<FetchRequest>(&fetch);
            m.count_error::<FetchRequest>(0);
            m.count_error::<FetchRequest>(1);
        });
        let mut counted: Vec<(String, String, u64)> = Vec::new();
        for (key, _, _, value) in snapshotter.snapshot().into_vec() {
            let key = key.key();
            if key.name() != REQUEST_ERROR_TOTAL {
                continue;
            }
            let label = |name: &str| {
                key.labels()
                    .find(|l| l.key() == name)
                    .map(|l| l.value().to_owned())
                    .unwrap()
            };
            assert_eq!(
                (label("client_id"), label("broker")),
                ("c".into(), "b:9092".into())
            );
            let DebugValue::Counter(n) = value else {
                panic!("{key:?} is not a counter")
            };
            counted.push((label("api"), label("error"), n));
        }
        counted.sort();
        let want = [
            ("DeleteTopics", "NOT_CONTROLLER", 1),
            ("DeleteTopics", "UNKNOWN_TOPIC_OR_PARTITION", 2),
            ("Fetch", "OFFSET_OUT_OF_RANGE", 1),
            ("Heartbeat", "REBALANCE_IN_PROGRESS", 1),
        ]
        .map(|(api, error, n)| (api.to_owned(), error.to_owned(), n));
        assert_eq!(counted, want);
    }
}
