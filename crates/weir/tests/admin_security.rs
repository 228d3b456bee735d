//! ACL and SCRAM credential administration on real Apache Kafka with an authorizer: credentials weir creates
//! authenticate a weir client over SASL_PLAINTEXT (and stop doing so once deleted), ACLs weir creates let that
//! client read, filters describe and delete exactly what they name, and per-item failures stay per item.
//!
//! The admin client uses the harness's PLAINTEXT listener, whose principal (`User:ANONYMOUS`) is a super user.

use std::future::Future;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use weir::admin::{
    AclBinding, AclFilter, AclOperation, AclPermissionType, PatternType, ResourceType, ScramAlteration,
    ScramCredentialInfo, ScramMechanism,
};
use weir::config::{ClientConfig, ProducerConfig, Secret};
use weir::consumer::{Consumer, ConsumerConfig, StartOffset, TopicPartition};
use weir::error::KafkaCode;
use weir::{Admin, Error, Producer, ProducerRecord};
use weir_testkit::{unique_name, Kafka, SecureOptions, SecurityProtocol, Shape};

/// How long a change may take to reach the broker's authorizer and credential cache (it is applied from the
/// metadata log a moment after the controller acknowledged it).
const PROPAGATION: Duration = Duration::from_secs(30);

fn cluster() -> &'static Kafka {
    static K: OnceLock<Kafka> = OnceLock::new();
    K.get_or_init(|| {
        Kafka::start_secure(
            Shape::Single,
            &SecureOptions {
                acls: true,
                client_auth_required: true,
                scram_users: vec![],
                ..Default::default()
            },
        )
    })
}

fn timeouts(c: &mut ClientConfig) {
    c.set("request.timeout.ms", "10000").unwrap();
    c.set("max.block.ms", "5000").unwrap();
}

/// An admin client on the PLAINTEXT listener (a super user).
fn super_admin() -> Admin {
    let mut c = ClientConfig::new(&cluster().bootstrap());
    timeouts(&mut c);
    Admin::new(c).unwrap()
}

/// Client settings for `user` over SASL_PLAINTEXT with `mechanism`.
fn sasl_config(user: &str, password: &str, mechanism: ScramMechanism) -> ClientConfig {
    let mut c = ClientConfig::new(&cluster().listener(SecurityProtocol::SaslPlaintext));
    timeouts(&mut c);
    c.set("security.protocol", "SASL_PLAINTEXT").unwrap();
    c.set("sasl.mechanism", mechanism.name()).unwrap();
    c.set("sasl.username", user).unwrap();
    c.set("sasl.password", password).unwrap();
    c
}

/// Authenticates as `user` (a metadata request on a fresh client).
async fn authenticate(user: &str, password: &str, mechanism: ScramMechanism) -> weir::Result<()> {
    let admin = Admin::new(sasl_config(user, password, mechanism))?;
    let r = admin.list_topics().await.map(drop);
    admin.close().await?;
    r
}

/// Retries `attempt` until it returns `Some`, for at most [`PROPAGATION`]; panics with `what` and the last
/// finding otherwise.
async fn eventually<T, F, Fut>(what: &str, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + PROPAGATION;
    loop {
        match attempt().await {
            Ok(t) => return t,
            Err(e) if Instant::now() >= deadline => panic!("{what}: still not after {PROPAGATION:?}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

fn is_auth_failure(e: &Error) -> bool {
    matches!(e, Error::Authentication { .. })
}

#[tokio::test]
async fn scram_credentials_set_by_weir_authenticate_weir_and_stop_once_deleted() {
    let admin = super_admin();
    let user = unique_name("carol");
    let password = "carol-Secret-1";

    admin
        .upsert_scram_credential(
            &user,
            ScramMechanism::ScramSha256,
            &Secret::new(password),
            Some(4096),
        )
        .await
        .unwrap();
    admin
        .upsert_scram_credential(&user, ScramMechanism::ScramSha512, &Secret::new(password), None)
        .await
        .unwrap();

    // Described: both mechanisms with their iterations (once the broker answering has applied both).
    let want = [
        ScramCredentialInfo {
            mechanism: ScramMechanism::ScramSha256,
            iterations: 4096,
        },
        ScramCredentialInfo {
            mechanism: ScramMechanism::ScramSha512,
            iterations: weir::admin::DEFAULT_SCRAM_ITERATIONS,
        },
    ];
    eventually("both credentials described", || async {
        let described = admin
            .describe_user_scram_credentials(Some(&[user.as_str()]))
            .await
            .map_err(|e| e.to_string())?;
        match &described[..] {
            [u] if u.user == user && u.credentials.as_deref().ok() == Some(&want[..]) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    // Every user: the harness's admin and this one, sorted.
    let all = admin.describe_user_scram_credentials(None).await.unwrap();
    let names: Vec<&str> = all.iter().map(|u| u.user.as_str()).collect();
    assert!(
        names.contains(&user.as_str()) && names.contains(&"admin"),
        "{names:?}"
    );
    assert!(names.windows(2).all(|w| w[0] <= w[1]), "{names:?}");
    // A user without credentials is a per-user error, not a request failure.
    let nobody = unique_name("nobody");
    let described = admin
        .describe_user_scram_credentials(Some(&[user.as_str(), nobody.as_str()]))
        .await
        .unwrap();
    let of = |name: &str| described.iter().find(|u| u.user == name).unwrap();
    assert_eq!(of(&user).credentials.as_ref().unwrap().len(), 2);
    let e = of(&nobody).credentials.clone().unwrap_err();
    assert_eq!(e.kafka_code(), Some(KafkaCode::ResourceNotFound), "{e}");

    // A weir client authenticates as the user, with either mechanism.
    for m in [ScramMechanism::ScramSha512, ScramMechanism::ScramSha256] {
        eventually(&format!("{user} authenticates with {m}"), || async {
            authenticate(&user, password, m).await.map_err(|e| e.to_string())
        })
        .await;
    }
    // A wrong password is an authentication error, and does not show the password.
    let e = authenticate(&user, "not-the-password", ScramMechanism::ScramSha512)
        .await
        .unwrap_err();
    assert!(is_auth_failure(&e), "{e:?}");
    assert!(!e.to_string().contains("not-the-password"), "{e}");

    // Deleted: SCRAM-SHA-512 fails again while SCRAM-SHA-256 still works.
    admin
        .delete_scram_credential(&user, ScramMechanism::ScramSha512)
        .await
        .unwrap();
    eventually(&format!("{user} refused with SCRAM-SHA-512"), || async {
        match authenticate(&user, password, ScramMechanism::ScramSha512).await {
            Err(e) if is_auth_failure(&e) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    authenticate(&user, password, ScramMechanism::ScramSha256)
        .await
        .unwrap();

    // One request, two outcomes: deleting what exists and what does not.
    let other = unique_name("nobody");
    let outcomes = admin
        .alter_user_scram_credentials(&[
            ScramAlteration::delete(user.as_str(), ScramMechanism::ScramSha256),
            ScramAlteration::delete(other.as_str(), ScramMechanism::ScramSha256),
        ])
        .await
        .unwrap();
    assert_eq!(outcomes.len(), 2);
    assert_eq!(outcomes[0].0, user);
    outcomes[0].1.clone().unwrap();
    assert_eq!(outcomes[1].0, other);
    let e = outcomes[1].1.clone().unwrap_err();
    assert_eq!(e.kafka_code(), Some(KafkaCode::ResourceNotFound), "{e}");
    // Kafka takes one alteration per user and request: two fail together.
    let twice = admin
        .alter_user_scram_credentials(&[
            ScramAlteration::upsert(other.as_str(), ScramMechanism::ScramSha256, password),
            ScramAlteration::upsert(other.as_str(), ScramMechanism::ScramSha512, password),
        ])
        .await
        .unwrap();
    assert_eq!(twice.len(), 1);
    let e = twice[0].1.clone().unwrap_err();
    assert_eq!(e.kafka_code(), Some(KafkaCode::DuplicateResource), "{e}");
    eventually(&format!("{user} refused with SCRAM-SHA-256"), || async {
        match authenticate(&user, password, ScramMechanism::ScramSha256).await {
            Err(e) if is_auth_failure(&e) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    eventually("no credential described", || async {
        let gone = admin
            .describe_user_scram_credentials(Some(&[user.as_str()]))
            .await
            .map_err(|e| e.to_string())?;
        match &gone[0].credentials {
            Err(e) if e.kafka_code() == Some(KafkaCode::ResourceNotFound) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;

    // Refused before anything is sent.
    let e = admin
        .upsert_scram_credential(
            &user,
            ScramMechanism::ScramSha256,
            &Secret::new(password),
            Some(100),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e:?}");
}

/// Reads the one record of `topic` as `user`.
async fn read_one(user: &str, password: &str, topic: &str) -> Result<String, String> {
    let mut cc = ConsumerConfig::new(&cluster().listener(SecurityProtocol::SaslPlaintext));
    cc.client = sasl_config(user, password, ScramMechanism::ScramSha512);
    let consumer = Consumer::new(cc).map_err(|e| e.to_string())?;
    let result = async {
        consumer
            .assign(&[(TopicPartition::new(topic, 0), StartOffset::Earliest)])
            .await?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Some(r) = consumer.poll(1, Duration::from_millis(200)).await?.pop() {
                return Ok(Some(
                    String::from_utf8_lossy(&r.value.unwrap_or_default()).into_owned(),
                ));
            }
        }
        Ok::<_, Error>(None)
    }
    .await;
    let _ = consumer.close().await;
    match result {
        Ok(Some(v)) => Ok(v),
        Ok(None) => Err("no record within 5 s".into()),
        Err(e) => Err(e.to_string()),
    }
}

#[tokio::test]
async fn acls_created_by_weir_let_a_sasl_user_read_and_filters_delete_exactly_them() {
    let kafka = cluster();
    let admin = super_admin();
    let user = unique_name("carol");
    let principal = format!("User:{user}");
    let password = "carol-acl-secret";
    admin
        .upsert_scram_credential(&user, ScramMechanism::ScramSha512, &Secret::new(password), None)
        .await
        .unwrap();

    // A topic with one record, produced over PLAINTEXT (the super user).
    let topic = unique_name("acl-t");
    kafka.create_topic(&topic, 1);
    let mut pc = ProducerConfig::new(&kafka.bootstrap());
    timeouts(&mut pc.client);
    let producer = Producer::new(pc).unwrap();
    producer
        .send(ProducerRecord::new(topic.as_str(), "for carol").partition(0))
        .await
        .unwrap()
        .await
        .unwrap();
    producer.close().await.unwrap();

    // Before any ACL, carol authenticates but may not read.
    eventually("carol authenticates", || async {
        authenticate(&user, password, ScramMechanism::ScramSha512)
            .await
            .map_err(|e| e.to_string())
    })
    .await;
    assert!(read_one(&user, password, &topic).await.is_err());

    let prefix = format!("{}-pre-", unique_name("p"));
    let acls = vec![
        AclBinding::allow(
            ResourceType::Topic,
            topic.as_str(),
            principal.as_str(),
            AclOperation::Read,
        ),
        AclBinding::allow(
            ResourceType::Topic,
            topic.as_str(),
            principal.as_str(),
            AclOperation::Describe,
        ),
        AclBinding::allow(
            ResourceType::Topic,
            prefix.as_str(),
            principal.as_str(),
            AclOperation::Write,
        )
        .with_pattern(PatternType::Prefixed),
    ];
    let outcomes = admin.create_acls(&acls).await.unwrap();
    assert_eq!(outcomes.len(), 3);
    for o in outcomes {
        o.unwrap();
    }

    // Described by principal: exactly the three, sorted.
    let mut want = acls.clone();
    want.sort();
    let by_principal = AclFilter::any().with_principal(principal.as_str());
    eventually("carol's ACLs described", || async {
        let got = admin
            .describe_acls(&by_principal)
            .await
            .map_err(|e| e.to_string())?;
        if got == want {
            Ok(())
        } else {
            Err(format!("{got:?}"))
        }
    })
    .await;
    // By resource (literal): the two on the topic.
    let literal_on_topic = AclFilter::any()
        .with_resource(ResourceType::Topic, topic.as_str())
        .with_pattern(PatternType::Literal);
    assert_eq!(
        admin.describe_acls(&literal_on_topic).await.unwrap(),
        want[..2].to_vec()
    );
    // Match: what applies to a topic under the prefix is the prefixed ACL.
    let under_prefix = AclFilter::any()
        .with_resource(ResourceType::Topic, format!("{prefix}x"))
        .with_pattern(PatternType::Match)
        .with_principal(principal.as_str());
    assert_eq!(
        admin.describe_acls(&under_prefix).await.unwrap(),
        [acls[2].clone()]
    );
    // By operation and permission.
    let writes = by_principal
        .clone()
        .with_operation(AclOperation::Write)
        .with_permission(AclPermissionType::Allow);
    assert_eq!(admin.describe_acls(&writes).await.unwrap(), [acls[2].clone()]);
    let denies = by_principal.clone().with_permission(AclPermissionType::Deny);
    assert!(admin.describe_acls(&denies).await.unwrap().is_empty());

    // Carol reads the record.
    let got = eventually("carol reads the topic", || read_one(&user, password, &topic)).await;
    assert_eq!(got, "for carol");

    // Deleted through one filter: the deleted bindings come back; an empty filter result beside it.
    let nobody = AclFilter::any().with_principal(format!("User:{}", unique_name("nobody")));
    let deleted = admin.delete_acls(&[by_principal.clone(), nobody]).await.unwrap();
    assert_eq!(deleted.len(), 2);
    assert_eq!(deleted[0].as_ref().unwrap(), &want);
    assert!(deleted[1].as_ref().unwrap().is_empty());
    eventually("carol's ACLs gone", || async {
        let got = admin
            .describe_acls(&by_principal)
            .await
            .map_err(|e| e.to_string())?;
        if got.is_empty() {
            Ok(())
        } else {
            Err(format!("{got:?}"))
        }
    })
    .await;
    eventually("carol refused again", || async {
        match read_one(&user, password, &topic).await {
            Err(_) => Ok(()),
            Ok(v) => Err(format!("read {v:?}")),
        }
    })
    .await;
}

#[tokio::test]
async fn an_invalid_acl_fails_alone() {
    let admin = super_admin();
    let principal = format!("User:{}", unique_name("dave"));
    let topic = unique_name("acl-inv");
    let good = AclBinding::allow(
        ResourceType::Topic,
        topic.as_str(),
        principal.as_str(),
        AclOperation::Read,
    );
    // The controller's own refusals, per binding.
    let bad_cluster = AclBinding::allow(
        ResourceType::Cluster,
        "not-the-cluster",
        principal.as_str(),
        AclOperation::Alter,
    );
    let no_name = AclBinding::allow(ResourceType::Topic, "", principal.as_str(), AclOperation::Read);
    // Refused before sending (a broker would fail every binding of the request for one of these).
    let on_any = AclBinding::allow(
        ResourceType::Any,
        topic.as_str(),
        principal.as_str(),
        AclOperation::Read,
    );
    let any_op = AclBinding::allow(
        ResourceType::Topic,
        topic.as_str(),
        principal.as_str(),
        AclOperation::Any,
    );
    let matching = good.clone().with_pattern(PatternType::Match);
    let unknown = AclBinding {
        operation: AclOperation::Unknown(0),
        ..good.clone()
    };
    let outcomes = admin
        .create_acls(&[
            bad_cluster,
            on_any,
            good.clone(),
            any_op,
            no_name,
            matching,
            unknown,
        ])
        .await
        .unwrap();
    assert_eq!(outcomes.len(), 7);
    outcomes[2].clone().unwrap();
    for i in [0, 4] {
        let e = outcomes[i].clone().unwrap_err();
        assert_eq!(e.kafka_code(), Some(KafkaCode::InvalidRequest), "#{i}: {e}");
    }
    for i in [1, 3, 5, 6] {
        assert!(
            matches!(outcomes[i], Err(Error::InvalidArgument(_))),
            "#{i}: {:?}",
            outcomes[i]
        );
    }

    // A filter with an unknown code fails alone too; the other deletes the good binding.
    let bad_filter = AclFilter::any().with_operation(AclOperation::Unknown(0));
    let deleted = eventually("the good ACL deleted", || async {
        let d = admin
            .delete_acls(&[bad_filter.clone(), AclFilter::from(&good)])
            .await
            .map_err(|e| e.to_string())?;
        match &d[1] {
            Ok(acls) if !acls.is_empty() => Ok(d),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert!(
        matches!(deleted[0], Err(Error::InvalidArgument(_))),
        "{:?}",
        deleted[0]
    );
    assert_eq!(deleted[1].as_ref().unwrap(), &[good]);
}

#[tokio::test]
async fn without_rights_acl_and_credential_administration_is_refused() {
    let admin = super_admin();
    let user = unique_name("erin");
    let password = "erin-secret";
    admin
        .upsert_scram_credential(&user, ScramMechanism::ScramSha512, &Secret::new(password), None)
        .await
        .unwrap();
    let erin = eventually("erin authenticates", || async {
        let a = Admin::new(sasl_config(&user, password, ScramMechanism::ScramSha512))
            .map_err(|e| e.to_string())?;
        a.list_topics().await.map_err(|e| e.to_string())?;
        Ok(a)
    })
    .await;
    // A request-level refusal is the call's error.
    let e = erin.describe_acls(&AclFilter::any()).await.unwrap_err();
    assert_eq!(e.kafka_code(), Some(KafkaCode::ClusterAuthorizationFailed), "{e}");
    let e = erin.describe_user_scram_credentials(None).await.unwrap_err();
    assert_eq!(e.kafka_code(), Some(KafkaCode::ClusterAuthorizationFailed), "{e}");
    // Per binding: each one refused.
    let acl = AclBinding::allow(
        ResourceType::Topic,
        "t",
        format!("User:{user}"),
        AclOperation::Read,
    );
    match erin.create_acls(&[acl]).await {
        Ok(outcomes) => {
            let e = outcomes[0].clone().unwrap_err();
            assert_eq!(e.kafka_code(), Some(KafkaCode::ClusterAuthorizationFailed), "{e}");
        }
        Err(e) => assert_eq!(e.kafka_code(), Some(KafkaCode::ClusterAuthorizationFailed), "{e}"),
    }
    erin.close().await.unwrap();
}
