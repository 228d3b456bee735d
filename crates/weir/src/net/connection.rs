//! One TCP connection to one broker: a handle plus a reader task and a writer task.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use weir_proto::frame::{self, FrameDecoder};
use weir_proto::versions::{ApiVersionsRequest, VersionTable};
use weir_proto::Call;

use crate::config::ClientConfig;
use crate::error::{Error, Result};

type Reply = oneshot::Sender<Result<Bytes>>;

struct Pending {
    reply: Reply,
    deadline: Instant,
    _permit: OwnedSemaphorePermit,
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
}

impl Shared {
    /// Marks the connection dead and fails every pending request with `why`.
    fn close(&self, why: Error) {
        self.closed.store(true, Ordering::Release);
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
    next_id: AtomicI32,
    in_flight: Arc<Semaphore>,
    versions: VersionTable,
    client_id: String,
    request_timeout: Duration,
}

impl Drop for Connection {
    fn drop(&mut self) {
        // The tasks end when the channel closes (writer) and when they see `closed` (reader).
        self.shared.closed.store(true, Ordering::Release);
    }
}

impl Connection {
    /// Connects, starts the tasks and negotiates API versions.
    pub(crate) async fn connect(addr: &str, cfg: &ClientConfig) -> Result<Connection> {
        let io_err = |source| Error::io(addr, source);
        let stream = tokio::time::timeout(cfg.connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| Error::Timeout {
                what: format!("connecting to {addr}"),
                after: cfg.connect_timeout,
            })?
            .map_err(io_err)?;
        stream.set_nodelay(true).map_err(io_err)?;
        let (reader, writer) = stream.into_split();
        let shared = Arc::new(Shared {
            addr: addr.to_owned(),
            pending: Mutex::new(HashMap::new()),
            closed: false.into(),
        });
        let (tx, rx) = mpsc::channel(256);
        tokio::spawn(write_loop(shared.clone(), writer, rx));
        tokio::spawn(read_loop(
            shared.clone(),
            reader,
            FrameDecoder::new(cfg.max_response_size),
            cfg.request_timeout,
        ));
        let mut conn = Connection {
            shared,
            tx,
            next_id: AtomicI32::new(0),
            in_flight: Arc::new(Semaphore::new(cfg.max_in_flight.max(1))),
            versions: VersionTable::default(),
            client_id: cfg.client_id.clone(),
            request_timeout: cfg.request_timeout,
        };
        conn.versions = conn.negotiate_versions().await?;
        tracing::debug!(broker = addr, "connected");
        Ok(conn)
    }

    async fn negotiate_versions(&self) -> Result<VersionTable> {
        let req = ApiVersionsRequest {
            software_name: "weir".into(),
            software_version: env!("CARGO_PKG_VERSION").into(),
        };
        let resp = match ApiVersionsRequest::decode(self.exchange(&req, 3).await?, 3) {
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

    /// The version `C` is sent at on this connection, or an error if the broker speaks none weir speaks.
    pub(crate) fn version<C: Call>(&self) -> Result<i16> {
        self.versions.version::<C>().ok_or_else(|| Error::UnsupportedApi {
            broker: self.shared.addr.clone(),
            api: C::NAME,
        })
    }

    /// Sends `req` at the highest version both sides speak and returns the decoded response.
    ///
    /// Every response is decoded by weir-proto, which bounds each count by the bytes present. A response that
    /// cannot be decoded leaves the stream position trustworthy (frames are length-delimited), but the peer is
    /// speaking something else: the connection is dropped and the error is [`Error::Protocol`].
    pub(crate) async fn call<C: Call>(&self, req: &C) -> Result<C::Response> {
        self.call_at(req, self.version::<C>()?).await
    }

    /// [`Connection::call`] at a given version.
    async fn call_at<C: Call>(&self, req: &C, version: i16) -> Result<C::Response> {
        let frame = self.exchange(req, version).await?;
        C::decode(frame, version).map_err(|e| self.bad_response(e))
    }

    /// Sends `req` at `version` and waits for the response frame.
    async fn exchange<C: Call>(&self, req: &C, version: i16) -> Result<Bytes> {
        let frame = self.submit(req, version, true).await?.expect("reply expected");
        let after = self.request_timeout;
        let frame = match tokio::time::timeout(after, frame).await {
            Ok(Ok(r)) => r?,
            Ok(Err(_)) => return Err(self.lost()),
            Err(_) => {
                return Err(Error::Timeout {
                    what: format!("{} request to {}", C::NAME, self.shared.addr),
                    after,
                })
            }
        };
        Ok(frame)
    }

    /// Drops the connection after a response that cannot be decoded, and says so.
    fn bad_response(&self, source: weir_proto::ProtoError) -> Error {
        self.shared.close(self.lost());
        Error::Protocol {
            broker: self.shared.addr.clone(),
            source,
        }
    }

    /// Sends a request the broker will not answer (produce with acks=0); returns once it is queued for writing.
    pub(crate) async fn send_unanswered<C: Call>(&self, req: &C) -> Result<()> {
        self.submit(req, self.version::<C>()?, false).await.map(|_| ())
    }

    async fn submit<C: Call>(
        &self,
        req: &C,
        version: i16,
        answered: bool,
    ) -> Result<Option<oneshot::Receiver<Result<Bytes>>>> {
        if self.is_closed() {
            return Err(self.lost());
        }
        let correlation_id = self.next_id.fetch_add(1, Ordering::Relaxed) & i32::MAX;
        let frame = req
            .encode(version, correlation_id, Some(&self.client_id))
            .map_err(|source| Error::Encode {
                what: format!("{} v{version} request", C::NAME),
                source,
            })?;
        let permit = self
            .in_flight
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| self.lost())?;
        let (reply, rx) = oneshot::channel();
        let pending = answered.then(|| Pending {
            reply,
            deadline: Instant::now() + self.request_timeout,
            _permit: permit,
        });
        self.tx
            .send(Outgoing {
                correlation_id,
                frame,
                pending,
            })
            .await
            .map_err(|_| self.lost())?;
        Ok(answered.then_some(rx))
    }

    fn lost(&self) -> Error {
        connection_lost(&self.shared.addr)
    }
}

fn connection_lost(addr: &str) -> Error {
    Error::io(
        addr,
        std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "connection closed"),
    )
}

async fn write_loop(
    shared: Arc<Shared>,
    mut writer: tokio::net::tcp::OwnedWriteHalf,
    mut rx: mpsc::Receiver<Outgoing>,
) {
    let mut batch = Vec::with_capacity(16);
    while rx.recv_many(&mut batch, 64).await > 0 {
        if shared.closed.load(Ordering::Acquire) {
            break;
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
                tracing::debug!(broker = %shared.addr, error = %e, "write failed; closing connection");
                shared.close(Error::io(&*shared.addr, e));
                return;
            }
        }
    }
    let _ = writer.shutdown().await;
}

async fn read_loop(
    shared: Arc<Shared>,
    mut reader: tokio::net::tcp::OwnedReadHalf,
    decoder: FrameDecoder,
    timeout: Duration,
) {
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut sweep = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            read = reader.read_buf(&mut buf) => {
                match read {
                    Ok(0) => {
                        tracing::debug!(broker = %shared.addr, "connection closed by broker");
                        shared.close(connection_lost(&shared.addr));
                        return;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::debug!(broker = %shared.addr, error = %e, "read failed; closing connection");
                        shared.close(Error::io(&*shared.addr, e));
                        return;
                    }
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
                if buf.capacity() - buf.len() < 4096 {
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
