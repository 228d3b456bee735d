//! Authorization on real Apache Kafka (StandardAuthorizer, ACLs made with weir's admin), handled as the Java
//! client handles it: a consumer denied one topic reports it and consumes the others; a producer fails only the
//! records it may not write; a group the member may not join is reported, retried with backoff; and refused
//! credentials cause no reconnect storm (connection attempts counted through a proxy).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use weir::admin::{AclBinding, AclOperation, ResourceType};
use weir::config::{ClientConfig, ProducerConfig};
use weir::consumer::{Consumer, ConsumerConfig, StartOffset, TopicPartition};
use weir::error::KafkaCode;
use weir::group::{GroupConfig, GroupConsumer};
use weir::{Admin, Error, Producer, ProducerRecord};
use weir_testkit::{unique_name, Kafka, SecureOptions, SecurityProtocol, Shape};

const BOB: (&str, &str) = ("bob", "bob-secret");
/// Eve may only read: she may write nowhere, so an idempotent producer cannot get a producer id.
const EVE: (&str, &str) = ("eve", "eve-secret");
const RECORDS: usize = 20;

struct Setup {
    kafka: Kafka,
    /// Bob may read, write and describe it.
    allowed: String,
    /// Bob may do nothing with it.
    denied: String,
    /// Bob may describe it, not read or write it.
    described: String,
}

async fn setup() -> &'static Setup {
    static S: tokio::sync::OnceCell<Setup> = tokio::sync::OnceCell::const_new();
    S.get_or_init(|| async {
        let kafka = Kafka::start_secure(
            Shape::Single,
            &SecureOptions {
                acls: true,
                scram_users: vec![(BOB.0.into(), BOB.1.into()), (EVE.0.into(), EVE.1.into())],
                ..Default::default()
            },
        );
        let (allowed, denied, described) = (unique_name("ok"), unique_name("denied"), unique_name("desc"));
        for t in [&allowed, &denied, &described] {
            kafka.create_topic(t, 1);
        }
        {
            let admin = Admin::new(ClientConfig::new(&kafka.bootstrap())).unwrap();
            let principal = format!("User:{}", BOB.0);
            let mut acls: Vec<AclBinding> = [AclOperation::Read, AclOperation::Write, AclOperation::Describe]
                .into_iter()
                .map(|op| AclBinding::allow(ResourceType::Topic, allowed.clone(), principal.clone(), op))
                .collect();
            acls.push(AclBinding::allow(
                ResourceType::Topic,
                described.clone(),
                principal.clone(),
                AclOperation::Describe,
            ));
            for op in [AclOperation::Read, AclOperation::Describe] {
                acls.push(AclBinding::allow(
                    ResourceType::Topic,
                    allowed.clone(),
                    format!("User:{}", EVE.0),
                    op,
                ));
            }
            for r in admin.create_acls(&acls).await.unwrap() {
                r.unwrap();
            }
            // Records in every topic, written by the super user (the harness's PLAINTEXT listener).
            let producer = Producer::new(ProducerConfig::new(&kafka.bootstrap())).unwrap();
            for t in [&allowed, &denied, &described] {
                for i in 0..RECORDS {
                    producer
                        .send(ProducerRecord::new(t.as_str(), format!("{t}-{i}")))
                        .await
                        .unwrap()
                        .await
                        .unwrap();
                }
            }
            producer.close().await.unwrap();
            // The ACLs reach the broker's authorizer a moment after the controller took them.
            let deadline = Instant::now() + Duration::from_secs(30);
            let bob = Admin::new(bob_config(&kafka)).unwrap();
            while !bob.list_topics().await.is_ok_and(|t| t.contains(&allowed)) {
                assert!(Instant::now() < deadline, "the ACLs did not take effect");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Setup {
            kafka,
            allowed,
            denied,
            described,
        }
    })
    .await
}

fn bob_config(kafka: &Kafka) -> ClientConfig {
    user_config(kafka, BOB)
}

fn user_config(kafka: &Kafka, (user, password): (&str, &str)) -> ClientConfig {
    let mut c = ClientConfig::new(&kafka.listener(SecurityProtocol::SaslPlaintext));
    for (k, v) in [
        ("security.protocol", "SASL_PLAINTEXT"),
        ("sasl.mechanism", "SCRAM-SHA-512"),
        ("sasl.username", user),
        ("sasl.password", password),
        ("request.timeout.ms", "10000"),
        ("max.block.ms", "5000"),
    ] {
        c.set(k, v).unwrap();
    }
    c
}

fn denied_code(e: &Error) -> Option<KafkaCode> {
    e.kafka_code().filter(|c| {
        matches!(
            c,
            KafkaCode::TopicAuthorizationFailed | KafkaCode::GroupAuthorizationFailed
        )
    })
}

#[tokio::test]
async fn a_consumer_denied_some_topics_reports_them_and_consumes_the_others() {
    let s = setup().await;
    let mut cc = ConsumerConfig::new("unused:1");
    cc.client = bob_config(&s.kafka);
    let consumer = Consumer::new(cc).unwrap();
    let starts: Vec<_> = [&s.allowed, &s.denied, &s.described]
        .into_iter()
        .map(|t| (TopicPartition::new(t.as_str(), 0), StartOffset::Earliest))
        .collect();
    consumer.assign(&starts).await.unwrap();
    let (mut got, mut errors) = (Vec::new(), Vec::new());
    let deadline = Instant::now() + Duration::from_secs(30);
    while (got.len() < RECORDS || errors.len() < 2) && Instant::now() < deadline {
        match consumer.poll(100, Duration::from_millis(200)).await {
            Ok(records) => got.extend(records.into_iter().map(|r| r.topic.to_string())),
            Err(e) => errors.push(e),
        }
    }
    // Half a second more: no further reports, no records of the others.
    let quiet = Instant::now() + Duration::from_millis(500);
    while Instant::now() < quiet {
        match consumer.poll(100, Duration::from_millis(100)).await {
            Ok(records) => got.extend(records.into_iter().map(|r| r.topic.to_string())),
            Err(e) => errors.push(e),
        }
    }
    consumer.close().await.unwrap();
    assert_eq!(got.len(), RECORDS, "{got:?}");
    assert!(got.iter().all(|t| *t == s.allowed), "{got:?}");
    // One report per refused topic: the one bob may not describe (at assignment), the one he may not read (at
    // its first fetch).
    assert_eq!(errors.len(), 2, "{errors:?}");
    for topic in [&s.denied, &s.described] {
        let e = errors
            .iter()
            .find(|e| e.to_string().contains(topic.as_str()))
            .unwrap_or_else(|| panic!("no report for {topic}: {errors:?}"));
        assert_eq!(denied_code(e), Some(KafkaCode::TopicAuthorizationFailed), "{e:?}");
    }
    assert!(consumer.assignment().iter().all(|tp| *tp.topic != *s.denied));
}

#[tokio::test]
async fn a_producer_fails_only_the_records_it_may_not_write() {
    let s = setup().await;
    let mut pc = ProducerConfig::new("unused:1");
    pc.client = bob_config(&s.kafka);
    let producer = Producer::new(pc).unwrap();
    let t0 = Instant::now();
    let mut delivered = 0;
    let mut refused = Vec::new();
    for i in 0..10 {
        for topic in [&s.allowed, &s.denied, &s.described] {
            let sent = async {
                producer
                    .send(ProducerRecord::new(topic.as_str(), format!("bob-{i}")))
                    .await?
                    .await
            };
            match sent.await {
                Ok(_) => delivered += 1,
                Err(e) => refused.push((topic.clone(), e)),
            }
        }
    }
    producer.close().await.unwrap();
    assert!(t0.elapsed() < Duration::from_secs(20), "took {:?}", t0.elapsed());
    assert_eq!(delivered, 10, "{refused:?}");
    assert_eq!(refused.len(), 20);
    for (topic, e) in &refused {
        assert_ne!(*topic, s.allowed, "{e:?}");
        assert_eq!(
            denied_code(e),
            Some(KafkaCode::TopicAuthorizationFailed),
            "{topic}: {e:?}"
        );
        assert!(!e.is_retriable());
    }
}

/// A principal that may write nowhere gets no producer id: every record fails promptly with the cluster's
/// refusal (not retried, not left waiting for the delivery timeout).
#[tokio::test]
async fn an_idempotent_producer_refused_a_producer_id_fails_its_records() {
    let s = setup().await;
    let mut pc = ProducerConfig::new("unused:1");
    pc.client = user_config(&s.kafka, EVE);
    let producer = Producer::new(pc).unwrap();
    let t0 = Instant::now();
    for i in 0..3 {
        let sent = async {
            producer
                .send(ProducerRecord::new(s.allowed.as_str(), format!("eve-{i}")))
                .await?
                .await
        };
        let e = tokio::time::timeout(Duration::from_secs(10), sent)
            .await
            .expect("the record waited")
            .expect_err("eve may not write");
        assert_eq!(
            e.kafka_code(),
            Some(KafkaCode::ClusterAuthorizationFailed),
            "{e:?}"
        );
    }
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    producer.close().await.unwrap();
}

#[tokio::test]
async fn a_group_the_member_may_not_use_is_reported_with_backoff() {
    let s = setup().await;
    let mut gc = GroupConfig::new("unused:1", &unique_name("g-denied"));
    gc.consumer.client = bob_config(&s.kafka);
    let member = GroupConsumer::new(gc).unwrap();
    member.subscribe(&[s.allowed.as_str()]);
    let (mut errors, mut records) = (Vec::new(), 0);
    let until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < until {
        match member.poll(100, Duration::from_millis(200)).await {
            Ok(r) => records += r.len(),
            Err(e) => errors.push(e),
        }
    }
    member.close().await.ok();
    assert_eq!(records, 0);
    assert!(!errors.is_empty(), "the refusal was not reported");
    assert!(
        errors
            .iter()
            .all(|e| denied_code(e) == Some(KafkaCode::GroupAuthorizationFailed)),
        "{errors:?}"
    );
    // Retried with a growing backoff, not in a loop: a handful of reports in 4 s.
    assert!(errors.len() <= 8, "{} reports in 4 s: {errors:?}", errors.len());
}

/// Forwards connections to `target`, counting them.
async fn counting_proxy(target: String) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let count = Arc::new(AtomicUsize::new(0));
    let counted = count.clone();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::Relaxed);
            let target = target.clone();
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    (addr, count)
}

/// Wrong credentials: every operation fails at once with the authentication error, and the background work
/// (a group member trying to join) reconnects with backoff: a bounded number of attempts.
#[tokio::test]
async fn refused_credentials_cause_no_reconnect_storm() {
    let s = setup().await;
    let (proxy, attempts) = counting_proxy(s.kafka.listener(SecurityProtocol::SaslPlaintext)).await;
    let mut client = bob_config(&s.kafka);
    client.bootstrap_servers = vec![proxy];
    client.set("sasl.password", "not-bobs").unwrap();
    let mut gc = GroupConfig::new("unused:1", &unique_name("g-storm"));
    gc.consumer.client = client;
    let member = GroupConsumer::new(gc).unwrap();
    member.subscribe(&[s.allowed.as_str()]);
    let window = Duration::from_secs(5);
    let until = Instant::now() + window;
    let mut errors = Vec::new();
    while Instant::now() < until {
        if let Err(e) = member.poll(100, Duration::from_millis(200)).await {
            errors.push(e);
        }
    }
    member.close().await.ok();
    let n = attempts.load(Ordering::Relaxed);
    assert!(
        errors.iter().any(|e| matches!(e, Error::Authentication { .. })),
        "{errors:?}"
    );
    // The reconnect backoff (50 ms doubling to 1 s) allows about 9 attempts in 5 s.
    assert!((1..=12).contains(&n), "{n} connection attempts in {window:?}");
}
