//! One connection to one broker (TCP, or TLS over TCP): a handle plus a reader task and a writer task.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, watch, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tracing::Instrument;
use weir_proto::frame::{self, FrameDecoder};
use weir_proto::versions::{ApiVersionsRequest, VersionTable};
use weir_proto::Call;

use super::metrics::{ConnectionMetrics, InFlight};
use super::sasl::{self, Sasl, SaslChannel};
use super::transport::{Stream, Transport};
use crate::config::ClientConfig;
use crate::error::{Error, Result};

type Reply = oneshot::Sender<Result<Bytes>>;

struct Pending {
    reply: Reply,
    deadline: Instant,
    /// The in-flight slot, freed with the entry (re-authentication's requests take none).
    _permit: Option<OwnedSemaphorePermit>,
    /// Counted in `requests_in_flight` until the entry goes.
    _in_flight: InFlight,
}

struct Outgoing {
    correlation_id: i32,
    frame: Bytes,
    /// `None` for requests the broker does not answer (produce with acks=0).
    pending: Option<Pending>,
}

/// State shared by the handle and the two tasks of one connection.
struct Shared {
    addr: String,
    pending: Mutex<HashMap<i32, Pending>>,
    closed: AtomicBool,
    next_id: AtomicI32,
    metrics: ConnectionMetrics,
}

impl Shared {
    /// The version `C` is sent at with a broker speaking `versions`.
    fn version<C: Call>(&self, versions: &VersionTable) -> Result<i16> {
        versions.version::<C>().ok_or_else(|| Error::UnsupportedApi {
            broker: self.addr.clone(),
            api: C::NAME,
        })
    }

    /// `req` encoded at `version` with a fresh correlation id: the id and the frame.
    fn encode<C: Call>(&self, req: &C, version: i16, client_id: &str) -> Result<(i32, Bytes)> {
        let correlation_id = self.next_id.fetch_add(1, Ordering::Relaxed) & i32::MAX;
        let frame = req
            .encode(version, correlation_id, Some(client_id))
            .map_err(|source| Error::Encode {
                what: format!("{} v{version} request", C::NAME),
                source,
            })?;
        Ok((correlation_id, frame))
    }

    /// The response frame to a `C` request, waited for at most `after`.
    async fn answer<C: Call>(
        &self,
        reply: oneshot::Receiver<Result<Bytes>>,
        after: Duration,
    ) -> Result<Bytes> {
        match tokio::time::timeout(after, reply).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(connection_lost(&self.addr)),
            Err(_) => Err(Error::Timeout {
                what: format!("{} request to {}", C::NAME, self.addr),
                after,
            }),
        }
    }

    /// Marks the connection dead (counting its close the first time).
    fn mark_closed(&self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            self.metrics.closed();
        }
    }

    /// Marks the connection dead and fails every pending request with `why`.
    fn close(&self, why: Error) {
        self.mark_closed();
        let drained: Vec<Pending> = self.pending.lock().unwrap().drain().map(|(_, p)| p).collect();
        for p in drained {
            let _ = p.reply.send(Err(why.clone()));
        }
    }
}

/// Handle to one broker connection. Cloning the `Arc` around it is how it is shared.
pub(crate) struct Connection {
    shared: Arc<Shared>,
    tx: mpsc::Sender<Outgoing>,
    /// The writer re-authenticates by this plan (KIP-368) once the first authentication set one.
    reauth: watch::Sender<Option<Reauth>>,
    in_flight: Arc<Semaphore>,
    /// The in-flight slots this connection has in all (`max.in.flight.requests.per.connection`).
    slots: usize,
    versions: VersionTable,
    client_id: String,
    request_timeout: Duration,
}

impl Drop for Connection {
    fn drop(&mut self) {
        // The tasks end when the channel closes (writer) and when they see `closed` (reader).
        self.shared.mark_closed();
    }
}

impl Connection {
    /// Connects (TLS included, if configured), starts the tasks, negotiates API versions and authenticates
    /// (SASL, if configured).
    pub(crate) async fn connect(addr: &str, cfg: &ClientConfig, transport: &Transport) -> Result<Connection> {
        let stream = transport.connect(addr, cfg).await?;
        let shared = Arc::new(Shared {
            addr: addr.to_owned(),
            pending: Mutex::new(HashMap::new()),
            closed: false.into(),
            next_id: AtomicI32::new(0),
            metrics: ConnectionMetrics::opened(&cfg.client_id, addr),
        });
        let (tx, rx) = mpsc::channel(256);
        let (reauth, plan) = watch::channel(None);
        let decoder = FrameDecoder::new(cfg.max_response_size);
        let timeout = cfg.request_timeout;
        let plaintext = matches!(stream, Stream::Plain(_));
        match stream {
            Stream::Plain(tcp) => {
                let (reader, writer) = tcp.into_split();
                tokio::spawn(write_loop(shared.clone(), writer, rx, plan, timeout));
                tokio::spawn(read_loop(shared.clone(), reader, decoder, timeout));
            }
            Stream::Tls(tls) => {
                let (reader, writer) = tokio::io::split(*tls);
                tokio::spawn(write_loop(shared.clone(), writer, rx, plan, timeout));
                tokio::spawn(read_loop(shared.clone(), reader, decoder, timeout));
            }
        }
        let slots = cfg.max_in_flight.max(1);
        let mut conn = Connection {
            shared,
            tx,
            reauth,
            in_flight: Arc::new(Semaphore::new(slots)),
            slots,
            versions: VersionTable::default(),
            client_id: cfg.client_id.clone(),
            request_timeout: cfg.request_timeout,
        };
        conn.versions = conn.negotiate_versions(plaintext).await?;
        if let Some(sasl) = transport.sasl() {
            let authenticated = sasl::authenticate(&mut &conn, sasl).await;
            conn.shared.metrics.authentication(authenticated.is_ok());
            let lifetime = authenticated?;
            let mechanism = sasl.mechanism().name();
            tracing::debug!(broker = addr, mechanism, ?lifetime, "authenticated");
            if let Some(lifetime) = lifetime {
                conn.reauth.send_replace(Some(Reauth {
                    sasl: sasl.clone(),
                    versions: conn.versions.clone(),
                    client_id: conn.client_id.clone(),
                    at: Instant::now() + sasl::reauthenticate_after(lifetime),
                }));
            }
        }
        tracing::debug!(broker = addr, "connected");
        Ok(conn)
    }

    /// The broker's address.
    pub(crate) fn addr(&self) -> &str {
        &self.shared.addr
    }

    /// ApiVersions, the first request. On a `plaintext` connection, a close before the answer names TLS as a
    /// likely cause (a TLS listener drops the plaintext request it cannot read); a connection cut on the way
    /// looks the same, so the message says "if it does so every time".
    async fn negotiate_versions(&self, plaintext: bool) -> Result<VersionTable> {
        let req = ApiVersionsRequest {
            software_name: "weir".into(),
            software_version: env!("CARGO_PKG_VERSION").into(),
        };
        let first = self.exchange(&req, 3).await.map_err(|e| match e {
            // Nothing answered the first request: the listener may expect something else first.
            Error::Io { broker, source }
                if plaintext && source.kind() == std::io::ErrorKind::ConnectionAborted =>
            {
                Error::Io {
                    broker,
                    source: Arc::new(std::io::Error::new(
                        std::io::ErrorKind::ConnectionAborted,
                        "the broker closed the connection before answering ApiVersions; if it does so every \
                         time, this listener probably expects TLS (security.protocol SSL or SASL_SSL)",
                    )),
                }
            }
            e => e,
        })?;
        let first = ApiVersionsRequest::decode(first, 3);
        if let Ok(r) = &first {
            self.shared.metrics.count_errors::<ApiVersionsRequest>(r);
        }
        let resp = match first {
            Ok(r) if r.error_code == 0 => r,
            // UNSUPPORTED_VERSION, answered in the v0 layout by older brokers (which v3 may not decode): v0
            // always works.
            _ => self.call_at(&req, 0).await?,
        };
        crate::error::check(resp.error_code, || {
            format!("ApiVersions from {}", self.shared.addr)
        })?;
        Ok(VersionTable::from_ranges(&resp.ranges))
    }

    /// Whether the connection has died (the next user should reconnect).
    pub(crate) fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }

    /// Requests sent (or being handed to the writer) and not answered yet: a lock-free read.
    pub(crate) fn in_flight(&self) -> usize {
        self.slots.saturating_sub(self.in_flight.available_permits())
    }

    /// The version `C` is sent at on this connection, or an error if the broker speaks none weir speaks.
    pub(crate) fn version<C: Call>(&self) -> Result<i16> {
        self.shared.version::<C>(&self.versions)
    }

    /// Sends `req` at the highest version both sides speak and returns the decoded response.
    ///
    /// Every response is decoded by weir-proto, which bounds each count by the bytes present. A response that
    /// cannot be decoded leaves the stream position trustworthy (frames are length-delimited), but the peer is
    /// speaking something else: the connection is dropped and the error is [`Error::Protocol`].
    pub(crate) async fn call<C: Call>(&self, req: &C) -> Result<C::Response> {
        self.call_at(req, self.version::<C>()?).await
    }

    /// [`Connection::call`] at no more than version `max` (a protocol whose meaning changes with the version:
    /// transactions before KIP-890's version 2).
    pub(crate) async fn call_capped<C: Call>(&self, req: &C, max: i16) -> Result<C::Response> {
        let version = self.version::<C>()?;
        if version <= max {
            return self.call_at(req, version).await;
        }
        let capped = self
            .versions
            .pick(C::KEY, &(*C::VERSIONS.start()..=max))
            .ok_or_else(|| Error::UnsupportedApi {
                broker: self.shared.addr.clone(),
                api: C::NAME,
            })?;
        self.call_at(req, capped).await
    }

    /// [`Connection::call`] at a given version.
    async fn call_at<C: Call>(&self, req: &C, version: i16) -> Result<C::Response> {
        let frame = self.exchange(req, version).await?;
        let resp = C::decode(frame, version).map_err(|e| self.bad_response::<C>(e))?;
        self.shared.metrics.count_errors::<C>(&resp);
        Ok(resp)
    }

    /// Sends `req` at `version` and waits for the response frame, in a `kafka_request` span (debug level).
    async fn exchange<C: Call>(&self, req: &C, version: i16) -> Result<Bytes> {
        let span = request_span::<C>(&self.shared.addr, version);
        let traced = span.clone();
        async move {
            let (correlation_id, reply) = self.submit(req, version, true).await?;
            traced.record("correlation_id", correlation_id);
            let sent = Instant::now();
            let reply = reply.expect("reply expected");
            let answer = self.shared.answer::<C>(reply, self.request_timeout).await;
            match &answer {
                Ok(_) => self.shared.metrics.api::<C>().answered(sent.elapsed()),
                Err(e) => self.shared.metrics.count_failure::<C>(e),
            }
            answer
        }
        .instrument(span)
        .await
    }

    /// Drops the connection after a response that cannot be decoded, and says so.
    fn bad_response<C: Call>(&self, source: weir_proto::ProtoError) -> Error {
        self.shared.close(self.lost());
        let e = Error::Protocol {
            broker: self.shared.addr.clone(),
            source,
        };
        self.shared.metrics.count_failure::<C>(&e);
        e
    }

    /// The metrics of this connection, for callers that count the error codes of Produce and Fetch responses
    /// ([`ConnectionMetrics::count_error`]), which report none themselves.
    pub(crate) fn metrics(&self) -> &ConnectionMetrics {
        &self.shared.metrics
    }

    /// Sends a request the broker will not answer (produce with acks=0); returns once it is queued for writing.
    pub(crate) async fn send_unanswered<C: Call>(&self, req: &C) -> Result<()> {
        let version = self.version::<C>()?;
        let span = request_span::<C>(&self.shared.addr, version);
        let traced = span.clone();
        async move {
            let (correlation_id, _) = self.submit(req, version, false).await?;
            traced.record("correlation_id", correlation_id);
            Ok(())
        }
        .instrument(span)
        .await
    }

    /// Hands `req` to the writer: its correlation id, and the receiver of its response frame when `answered`.
    async fn submit<C: Call>(
        &self,
        req: &C,
        version: i16,
        answered: bool,
    ) -> Result<(i32, Option<oneshot::Receiver<Result<Bytes>>>)> {
        if self.is_closed() {
            return Err(self.lost());
        }
        let (correlation_id, frame) = self.shared.encode(req, version, &self.client_id)?;
        let permit = self
            .in_flight
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| self.lost())?;
        let (reply, rx) = oneshot::channel();
        let api = self.shared.metrics.api::<C>();
        let pending = answered.then(|| Pending {
            reply,
            deadline: Instant::now() + self.request_timeout,
            _permit: Some(permit),
            _in_flight: api.in_flight(),
        });
        self.tx
            .send(Outgoing {
                correlation_id,
                frame,
                pending,
            })
            .await
            .map_err(|_| self.lost())?;
        api.sent();
        Ok((correlation_id, answered.then_some(rx)))
    }

    fn lost(&self) -> Error {
        connection_lost(&self.shared.addr)
    }
}

/// The span of one request (debug level; nothing is formatted unless a subscriber wants it).
fn request_span<C: Call>(broker: &str, version: i16) -> tracing::Span {
    tracing::debug_span!(
        "kafka_request",
        api = C::NAME,
        version,
        broker,
        correlation_id = tracing::field::Empty
    )
}

fn connection_lost(addr: &str) -> Error {
    Error::io(
        addr,
        std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "connection closed"),
    )
}

/// When and how the writer re-authenticates the connection (KIP-368).
#[derive(Clone)]
struct Reauth {
    sasl: Arc<Sasl>,
    versions: VersionTable,
    client_id: String,
    at: Instant,
}

async fn write_loop(
    shared: Arc<Shared>,
    mut writer: impl AsyncWrite + Unpin + Send,
    mut rx: mpsc::Receiver<Outgoing>,
    mut plan: watch::Receiver<Option<Reauth>>,
    timeout: Duration,
) {
    let mut batch = Vec::with_capacity(16);
    let mut reauth: Option<Reauth> = None;
    let mut plan_open = true;
    loop {
        let due = reauth.as_ref().map(|r| r.at);
        tokio::select! {
            n = rx.recv_many(&mut batch, 64) => if n == 0 { break },
            // The broker ends the session at its lifetime: re-authenticate before, even when idle.
            _ = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {}
            changed = plan.changed(), if plan_open => {
                match changed {
                    Ok(()) => reauth = plan.borrow_and_update().clone(),
                    Err(_) => plan_open = false,
                }
                continue;
            }
        }
        if shared.closed.load(Ordering::Acquire) {
            break;
        }
        if let Some(r) = reauth.as_mut().filter(|r| r.at <= Instant::now()) {
            // Nothing else may be sent while the broker reads SASL messages; what was sent before is answered
            // first (a broker handles one request of a connection at a time), and what waits in the queue goes
            // after.
            let mut ch = WriterChannel {
                shared: &shared,
                writer: &mut writer,
                versions: &r.versions,
                client_id: &r.client_id,
                timeout,
            };
            let started = Instant::now();
            let authenticated = sasl::authenticate(&mut ch, &r.sasl).await;
            shared.metrics.authentication(authenticated.is_ok());
            match authenticated {
                Ok(lifetime) => {
                    tracing::debug!(broker = %shared.addr, ?lifetime, "re-authenticated");
                    match lifetime {
                        // A broker refuses re-authentications less than a second apart.
                        Some(l) => {
                            r.at = (Instant::now() + sasl::reauthenticate_after(l))
                                .max(started + sasl::MIN_REAUTH_INTERVAL)
                        }
                        None => reauth = None,
                    }
                }
                Err(e) => {
                    tracing::debug!(broker = %shared.addr, error = %e, "re-authentication failed; closing connection");
                    shared.close(e);
                    return;
                }
            }
        }
        // Register before writing, so a fast response always finds its entry.
        {
            let mut pending = shared.pending.lock().unwrap();
            for o in batch.iter_mut() {
                if let Some(p) = o.pending.take() {
                    pending.insert(o.correlation_id, p);
                }
            }
        }
        for o in batch.drain(..) {
            if let Err(e) = writer.write_all(&o.frame).await {
                return write_failed(&shared, e);
            }
        }
        // TLS keeps what it could not send yet: push it out.
        if let Err(e) = writer.flush().await {
            return write_failed(&shared, e);
        }
    }
    let _ = writer.shutdown().await;
}

fn write_failed(shared: &Shared, e: std::io::Error) {
    tracing::debug!(broker = %shared.addr, error = %e, "write failed; closing connection");
    shared.close(Error::io(&*shared.addr, e));
}

/// The writer task's side of a SASL exchange: it writes each request itself and waits for its answer, so nothing
/// queued is sent in between.
struct WriterChannel<'a, W> {
    shared: &'a Shared,
    writer: &'a mut W,
    versions: &'a VersionTable,
    client_id: &'a str,
    timeout: Duration,
}

impl<W: AsyncWrite + Unpin + Send> SaslChannel for WriterChannel<'_, W> {
    fn broker(&self) -> &str {
        &self.shared.addr
    }

    async fn call<C: Call + Sync>(&mut self, req: &C) -> Result<C::Response> {
        let shared = self.shared;
        let version = shared.version::<C>(self.versions)?;
        let (id, frame) = shared.encode(req, version, self.client_id)?;
        let span = request_span::<C>(&shared.addr, version);
        span.record("correlation_id", id);
        let api = shared.metrics.api::<C>();
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            reply,
            deadline: Instant::now() + self.timeout,
            _permit: None,
            _in_flight: api.in_flight(),
        };
        shared.pending.lock().unwrap().insert(id, pending);
        let writer = &mut *self.writer;
        let timeout = self.timeout;
        async move {
            let io = |e| Error::io(&*shared.addr, e);
            writer.write_all(&frame).await.map_err(io)?;
            writer.flush().await.map_err(io)?;
            api.sent();
            let sent = Instant::now();
            let frame = shared.answer::<C>(answer, timeout).await;
            let frame = frame.inspect_err(|e| shared.metrics.count_failure::<C>(e))?;
            api.answered(sent.elapsed());
            let resp = C::decode(frame, version).map_err(|source| Error::Protocol {
                broker: shared.addr.clone(),
                source,
            });
            let resp = resp.inspect_err(|e| shared.metrics.count_failure::<C>(e))?;
            shared.metrics.count_errors::<C>(&resp);
            Ok(resp)
        }
        .instrument(span)
        .await
    }
}

impl SaslChannel for &Connection {
    fn broker(&self) -> &str {
        self.addr()
    }

    async fn call<C: Call + Sync>(&mut self, req: &C) -> Result<C::Response> {
        Connection::call(self, req).await
    }
}

async fn read_loop(
    shared: Arc<Shared>,
    mut reader: impl AsyncRead + Unpin,
    decoder: FrameDecoder,
    timeout: Duration,
) {
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut first = true;
    let mut sweep = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            read = reader.read_buf(&mut buf) => {
                match read {
                    Ok(0) => {
                        // After this client closed its side, the broker's close is the expected answer.
                        if !shared.closed.load(Ordering::Acquire) {
                            tracing::debug!(broker = %shared.addr, "connection closed by broker");
                        }
                        shared.close(connection_lost(&shared.addr));
                        return;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::debug!(broker = %shared.addr, error = %e, "read failed; closing connection");
                        shared.close(super::tls::read_error(&shared.addr, e));
                        return;
                    }
                }
                if std::mem::take(&mut first) && looks_like_tls(&buf) {
                    // A TLS alert or handshake record where a frame size should be: without this, its first
                    // bytes would be read as a frame of some hundreds of MiB.
                    tracing::debug!(broker = %shared.addr, "TLS record from a connection without TLS; closing");
                    shared.close(Error::Tls {
                        broker: shared.addr.clone(),
                        reason: "the broker answered in TLS: this listener expects security.protocol SSL or \
                                 SASL_SSL"
                            .into(),
                    });
                    return;
                }
                loop {
                    match decoder.decode(&mut buf) {
                        Ok(Some(frame)) => deliver(&shared, frame),
                        Ok(None) => break,
                        Err(source) => {
                            tracing::warn!(broker = %shared.addr, error = %source, "bad frame; closing connection");
                            shared.close(Error::Protocol { broker: shared.addr.clone(), source });
                            return;
                        }
                    }
                }
                // Room for the next read, unless the decoder already made room for the rest of a frame whose
                // size it knows (a frame larger than the buffer gets an allocation of its own, of its size).
                if buf.len() < 4 && buf.capacity() - buf.len() < 4096 {
                    buf.reserve(64 * 1024);
                }
            }
            _ = sweep.tick() => {
                if shared.closed.load(Ordering::Acquire) {
                    shared.close(connection_lost(&shared.addr));
                    return;
                }
                let now = Instant::now();
                let expired = shared.pending.lock().unwrap().values().any(|p| p.deadline <= now);
                if expired {
                    // As the Java client does: a request past its timeout means the connection is not trustworthy.
                    tracing::debug!(broker = %shared.addr, "request timed out; closing connection");
                    shared.close(Error::Timeout { what: format!("request to {}", shared.addr), after: timeout });
                    return;
                }
            }
        }
    }
}

/// Whether the first bytes from a broker are a TLS record header (handshake or alert, TLS 1.0 to 1.3) rather
/// than a frame size: no Kafka response frame is 0x15030000 bytes or more.
fn looks_like_tls(buf: &[u8]) -> bool {
    matches!(buf, [0x15 | 0x16, 0x03, 0x00..=0x04, ..])
}

fn deliver(shared: &Shared, frame: Bytes) {
    let Some(id) = frame::response_correlation_id(&frame) else {
        return;
    };
    let entry = shared.pending.lock().unwrap().remove(&id);
    match entry {
        // The receiver may be gone (its future was dropped): the response is simply discarded.
        Some(p) => drop(p.reply.send(Ok(frame))),
        None => {
            tracing::debug!(broker = %shared.addr, correlation_id = id, "response to unknown request ignored")
        }
    }
}
