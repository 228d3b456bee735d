//! `weir users` and `weir acls` against real Apache Kafka with an authorizer: a password set from stdin
//! authenticates `weir topics list` over SASL_PLAINTEXT (settings passed with -X), ACLs created with
//! kafka-acls.sh-style options are listed and deleted, and bad arguments are usage errors.

use std::time::{Duration, Instant};

use weir_testkit::{unique_name, Kafka, SecureOptions, SecurityProtocol, Shape};

#[path = "support/run.rs"]
mod run;

use run::weir;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[track_caller]
fn ok(args: &[&str], stdin: &[u8]) -> String {
    let o = weir(args, stdin);
    assert!(
        o.status.success(),
        "`weir {}` failed ({}): {}",
        args.join(" "),
        o.status,
        text(&o.stderr)
    );
    text(&o.stdout)
}

/// The rows of a table, each split on whitespace, header dropped.
fn rows(table: &str) -> Vec<Vec<String>> {
    table
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect()
}

/// Runs `check` until it returns true, for at most 30 s (changes reach the broker a moment after they are
/// acknowledged).
fn eventually(what: &str, mut check: impl FnMut() -> Result<(), String>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match check() {
            Ok(()) => return,
            Err(e) if Instant::now() >= deadline => panic!("{what}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(300)),
        }
    }
}

#[test]
fn users_and_acls_are_managed_from_the_command_line() {
    let kafka = Kafka::start_secure(
        Shape::Single,
        &SecureOptions {
            acls: true,
            ..Default::default()
        },
    );
    let b = kafka.bootstrap();
    let sasl = kafka.listener(SecurityProtocol::SaslPlaintext);
    let user = unique_name("cli-carol");
    let principal = format!("User:{user}");
    let password = "cli-carol-secret";

    // A password from stdin, for both mechanisms.
    ok(
        &[
            "users",
            "set-password",
            &user,
            "-b",
            &b,
            "--mechanism",
            "SCRAM-SHA-512",
            "-m",
            "scram-sha-256",
            "--password-stdin",
            "--iterations",
            "4096",
        ],
        format!("{password}\n").as_bytes(),
    );
    // `users list` asks a broker, which applies changes a moment after the controller acknowledged them.
    let users_list = |want: Vec<[&str; 3]>| {
        eventually(&format!("users list shows {want:?}"), || {
            let got = rows(&ok(&["users", "list", &user, "-b", &b], b""));
            if got == want {
                Ok(())
            } else {
                Err(format!("{got:?}"))
            }
        })
    };
    users_list(vec![
        [&user, "SCRAM-SHA-256", "4096"],
        [&user, "SCRAM-SHA-512", "4096"],
    ]);
    let everyone = ok(&["users", "list", "-b", &b], b"");
    assert!(
        everyone.contains(&user) && everyone.contains("admin"),
        "{everyone}"
    );

    // The credential authenticates weir over SASL_PLAINTEXT, configured with -X.
    let topic = unique_name("cli-acl");
    kafka.create_topic(&topic, 1);
    let as_carol = |args: &[&str]| {
        let mut a: Vec<&str> = args.to_vec();
        a.extend([
            "-b",
            &sasl,
            "-X",
            "security.protocol=SASL_PLAINTEXT",
            "-X",
            "sasl.mechanism=SCRAM-SHA-512",
            "-X",
        ]);
        let user_prop = format!("sasl.username={user}");
        let password_prop = format!("sasl.password={password}");
        a.push(&user_prop);
        a.extend(["-X", &password_prop]);
        weir(&a, b"")
    };
    eventually("carol lists topics", || {
        let o = as_carol(&["topics", "list"]);
        if o.status.success() {
            Ok(())
        } else {
            Err(text(&o.stderr))
        }
    });
    // Without ACLs carol sees no topic.
    assert!(!text(&as_carol(&["topics", "list"]).stdout).contains(&topic));

    // ACLs in kafka-acls.sh's words.
    let prefix = format!("{}-pre-", unique_name("cli"));
    ok(
        &[
            "acls",
            "create",
            "-b",
            &b,
            "--allow-principal",
            &principal,
            "--operation",
            "Read",
            "--operation",
            "DESCRIBE",
            "--topic",
            &topic,
        ],
        b"",
    );
    ok(
        &[
            "acls",
            "create",
            "-b",
            &b,
            "--allow-principal",
            &principal,
            "--operation",
            "write",
            "--topic",
            &prefix,
            "--resource-pattern-type",
            "prefixed",
        ],
        b"",
    );
    let want = vec![
        vec![
            principal.clone(),
            "*".into(),
            "ALLOW".into(),
            "READ".into(),
            "TOPIC".into(),
            topic.clone(),
            "LITERAL".into(),
        ],
        vec![
            principal.clone(),
            "*".into(),
            "ALLOW".into(),
            "DESCRIBE".into(),
            "TOPIC".into(),
            topic.clone(),
            "LITERAL".into(),
        ],
        vec![
            principal.clone(),
            "*".into(),
            "ALLOW".into(),
            "WRITE".into(),
            "TOPIC".into(),
            prefix.clone(),
            "PREFIXED".into(),
        ],
    ];
    let mut want_sorted = want.clone();
    want_sorted.sort();
    eventually("carol's ACLs listed", || {
        let mut got = rows(&ok(&["acls", "list", "-b", &b, "--principal", &principal], b""));
        got.sort();
        if got == want_sorted {
            Ok(())
        } else {
            Err(format!("{got:?}"))
        }
    });
    let on_topic = rows(&ok(&["acls", "list", "-b", &b, "--topic", &topic], b""));
    assert_eq!(on_topic.len(), 2, "{on_topic:?}");
    // Now carol sees the topic.
    eventually("carol sees the topic", || {
        let out = text(&as_carol(&["topics", "list"]).stdout);
        if out.lines().any(|l| l == topic) {
            Ok(())
        } else {
            Err(out)
        }
    });

    // Deleted by resource and principal: the deleted ACLs are printed.
    let mut deleted = rows(&ok(
        &[
            "acls",
            "delete",
            "-b",
            &b,
            "--topic",
            &topic,
            "--allow-principal",
            &principal,
        ],
        b"",
    ));
    deleted.sort();
    let mut want_topic = want[..2].to_vec();
    want_topic.sort();
    assert_eq!(deleted, want_topic);
    // A literal filter (the default) does not touch the prefixed ACL; a prefixed one does.
    assert!(rows(&ok(&["acls", "delete", "-b", &b, "--topic", &prefix], b"")).is_empty());
    let deleted = rows(&ok(
        &[
            "acls",
            "delete",
            "-b",
            &b,
            "--topic",
            &prefix,
            "--resource-pattern-type",
            "prefixed",
        ],
        b"",
    ));
    assert_eq!(deleted, want[2..]);
    eventually("carol's ACLs gone", || {
        let got = rows(&ok(&["acls", "list", "-b", &b, "--principal", &principal], b""));
        if got.is_empty() {
            Ok(())
        } else {
            Err(format!("{got:?}"))
        }
    });

    // Credentials deleted one mechanism at a time; a user without any is an error of `users list`.
    ok(
        &["users", "delete", &user, "-b", &b, "--mechanism", "SCRAM-SHA-512"],
        b"",
    );
    users_list(vec![[&user, "SCRAM-SHA-256", "4096"]]);
    ok(&["users", "delete", &user, "-b", &b, "-m", "SCRAM-SHA-256"], b"");
    eventually("users list fails for a user without credentials", || {
        let o = weir(&["users", "list", &user, "-b", &b], b"");
        let err = text(&o.stderr);
        if o.status.code() == Some(1) && err.contains("ResourceNotFound") {
            Ok(())
        } else {
            Err(format!("{}: {err}", o.status))
        }
    });
    eventually("carol refused", || {
        let o = as_carol(&["topics", "list"]);
        let err = text(&o.stderr);
        if !o.status.success() && err.contains("authentication") {
            Ok(())
        } else {
            Err(format!("{}: {err}", o.status))
        }
    });
    // Deleting what is not there fails.
    let o = weir(&["users", "delete", &user, "-b", &b, "-m", "SCRAM-SHA-256"], b"");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
}

#[test]
fn bad_security_admin_arguments_are_usage_errors() {
    // Nothing here reaches a broker: an unused port.
    let b = "127.0.0.1:9";
    for args in [
        vec!["acls", "create", "-b", b, "--operation", "Read", "--topic", "t"],
        vec![
            "acls",
            "create",
            "-b",
            b,
            "--allow-principal",
            "alice",
            "--operation",
            "Read",
            "--topic",
            "t",
        ],
        vec![
            "acls",
            "create",
            "-b",
            b,
            "--allow-principal",
            "User:a",
            "--operation",
            "Reed",
            "--topic",
            "t",
        ],
        vec![
            "acls",
            "create",
            "-b",
            b,
            "--allow-principal",
            "User:a",
            "--operation",
            "Read",
        ],
        vec![
            "acls",
            "create",
            "-b",
            b,
            "--allow-principal",
            "User:a",
            "--operation",
            "Any",
            "--topic",
            "t",
        ],
        vec![
            "acls",
            "create",
            "-b",
            b,
            "--allow-principal",
            "User:a",
            "--operation",
            "Read",
            "--topic",
            "t",
            "--resource-pattern-type",
            "match",
        ],
        vec!["acls", "delete", "-b", b, "--principal", "User:a"],
        vec![
            "users",
            "set-password",
            "u",
            "-b",
            b,
            "-m",
            "SCRAM-SHA-1",
            "--password",
            "x",
        ],
        vec!["users", "set-password", "u", "-b", b, "-m", "SCRAM-SHA-256"],
        vec![
            "users",
            "set-password",
            "u",
            "-b",
            b,
            "-m",
            "SCRAM-SHA-256",
            "--password",
            "x",
            "--iterations",
            "100",
        ],
        vec![
            "users",
            "set-password",
            "u",
            "-b",
            b,
            "-m",
            "SCRAM-SHA-256",
            "--password-stdin",
        ],
    ] {
        let o = weir(&args, b"");
        assert_eq!(
            o.status.code(),
            Some(2),
            "weir {}: {}",
            args.join(" "),
            text(&o.stderr)
        );
    }
}
