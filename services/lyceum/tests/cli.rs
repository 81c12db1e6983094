//! The `lyceum` binary as an operator runs it: migrate, serve, healthcheck, shut down,
//! and fail loudly when a dependency is missing.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use lyceum_testkit::{TestDatabase, free_port, nats_url};

/// The binary in development mode (the public data key), as scripts/run.sh runs it.
fn lyceum() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lyceum"));
    command
        .env_remove("DATABASE_URL")
        .env_remove("LYCEUM_DATA_KEY")
        .env("LYCEUM_DEV_MODE", "1")
        .env("RUST_LOG", "warn")
        .env("LYCEUM_EVENT_PREFIX", format!("cli{}", std::process::id()));
    command
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test]
async fn migrate_then_serve_answers_health_and_stops_cleanly_on_sigterm() {
    let db = TestDatabase::create().await;
    let migrate = lyceum()
        .args(["migrate", "all", "--database-url", &db.url])
        .output()
        .unwrap();
    assert!(migrate.status.success(), "{}", text(&migrate));
    assert!(text(&migrate).contains("migrated identity"));
    // Migrating again is a no-op.
    let again = lyceum()
        .args(["migrate", "identity", "--database-url", &db.url])
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", text(&again));

    let port = free_port();
    let addr = format!("http://127.0.0.1:{port}");
    let mut server = lyceum()
        .args(["serve", "All", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--database-url", &db.url, "--nats-url", &nats_url()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(30);
    let health = loop {
        let output = lyceum()
            .args(["healthcheck", "--addr", &addr])
            .output()
            .unwrap();
        if output.status.success() || Instant::now() > deadline {
            break output;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(health.status.success(), "{}", text(&health));
    assert_eq!(String::from_utf8_lossy(&health.stdout).trim(), "SERVING");

    let service = lyceum()
        .args([
            "healthcheck",
            "--addr",
            &addr,
            "--service",
            "lyceum.identity.v1.AuthService",
        ])
        .output()
        .unwrap();
    assert!(service.status.success(), "{}", text(&service));

    // SIGTERM: graceful shutdown, exit status 0.
    let pid = server.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = server.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not stop on SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "exit status {status}");
}

#[test]
fn serve_names_the_unreachable_database_and_exits_non_zero() {
    let port = free_port();
    let url = format!("postgres://postgres@127.0.0.1:{port}/lyceum");
    let output = lyceum()
        .args([
            "serve",
            "identity",
            "--database-url",
            &url,
            "--nats-url",
            &nats_url(),
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let message = text(&output);
    assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
    assert!(message.contains("PostgreSQL"), "{message}");
}

/// An unreachable NATS server is no reason to stop (see `event_faults`); a NATS URL that
/// can never work is.
#[test]
fn serve_names_an_invalid_nats_url_and_exits_non_zero() {
    let url = "nats://127.0.0.1:not-a-port".to_owned();
    let output = lyceum()
        .args(["serve", "identity", "--nats-url", &url])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let message = text(&output);
    assert!(
        message.contains(&url) && message.contains("NATS"),
        "{message}"
    );
}

#[tokio::test]
async fn without_a_data_key_serve_refuses_to_start_unless_in_development_mode() {
    let db = TestDatabase::create().await;
    let migrate = lyceum()
        .args(["migrate", "all", "--database-url", &db.url])
        .output()
        .unwrap();
    assert!(migrate.status.success(), "{}", text(&migrate));

    let port = free_port();
    let serve = |command: &mut Command| {
        command
            .args([
                "serve",
                "identity",
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .args(["--database-url", &db.url, "--nats-url", &nats_url()]);
    };
    let mut production = lyceum();
    production.env_remove("LYCEUM_DEV_MODE");
    serve(&mut production);
    let output = production.output().unwrap();
    assert!(!output.status.success(), "{}", text(&output));
    let message = text(&output);
    assert!(
        message.contains("LYCEUM_DATA_KEY is not set") && message.contains("--dev"),
        "{message}"
    );
    // An empty variable is no key either.
    let mut empty = lyceum();
    empty
        .env_remove("LYCEUM_DEV_MODE")
        .env("LYCEUM_DATA_KEY", "");
    serve(&mut empty);
    assert!(!empty.output().unwrap().status.success());
    // LYCEUM_DEV_MODE=0 is not development mode.
    let mut off = lyceum();
    off.env("LYCEUM_DEV_MODE", "0");
    serve(&mut off);
    assert!(!off.output().unwrap().status.success());

    // With a key, or with --dev, the same command serves.
    for (flag, key) in [
        (None, Some("bHljZXVtLXRlc3Qta2V5LW5vdC1zZWNyZXQtLS0tLS0=")),
        (Some("--dev"), None),
    ] {
        let mut command = lyceum();
        command.env_remove("LYCEUM_DEV_MODE");
        serve(&mut command);
        if let Some(flag) = flag {
            command.arg(flag);
        }
        if let Some(key) = key {
            command.env("LYCEUM_DATA_KEY", key);
        }
        let mut server = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                server.try_wait().unwrap().is_none(),
                "serve exited with {flag:?} / key {key:?}"
            );
            assert!(Instant::now() < deadline, "serve did not start listening");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        server.kill().unwrap();
        server.wait().unwrap();
    }
}

#[test]
fn unknown_services_are_refused_with_the_valid_names() {
    let output = lyceum().args(["serve", "billing"]).output().unwrap();
    assert!(!output.status.success());
    let message = text(&output);
    assert!(
        message.contains("valid values: all, identity, learning, instructor"),
        "{message}"
    );
}

#[test]
fn every_command_has_help() {
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["migrate", "--help"],
        vec!["healthcheck", "--help"],
        vec!["admin", "bootstrap", "--help"],
    ] {
        let output = lyceum().args(&args).output().unwrap();
        assert!(output.status.success(), "{args:?}: {}", text(&output));
        assert!(
            String::from_utf8_lossy(&output.stdout).contains("Usage"),
            "{args:?}"
        );
    }
}

#[tokio::test]
async fn the_admin_bootstrap_command_creates_the_first_admin_once() {
    let db = TestDatabase::create().await;
    let migrate = lyceum()
        .args(["migrate", "--database-url", &db.url])
        .output()
        .unwrap();
    assert!(migrate.status.success(), "{}", text(&migrate));
    let bootstrap = |email: &str| {
        lyceum()
            .args([
                "admin",
                "bootstrap",
                "--email",
                email,
                "--database-url",
                &db.url,
            ])
            .env("LYCEUM_ADMIN_PASSWORD", "Correct-Horse-42")
            .output()
            .unwrap()
    };
    let first = bootstrap("root@lyceum.test");
    assert!(first.status.success(), "{}", text(&first));
    let second = bootstrap("other@lyceum.test");
    assert!(!second.status.success());
    assert!(
        text(&second).contains("already exists"),
        "{}",
        text(&second)
    );
}

#[tokio::test]
async fn verify_and_dlq_list_report_on_a_migrated_database() {
    let db = TestDatabase::create().await;
    let migrate = lyceum()
        .args(["migrate", "all", "--database-url", &db.url])
        .output()
        .unwrap();
    assert!(migrate.status.success(), "{}", text(&migrate));

    let verify = lyceum()
        .args(["verify", "all", "--database-url", &db.url])
        .output()
        .unwrap();
    assert!(verify.status.success(), "{}", text(&verify));
    let report = text(&verify);
    assert!(
        report.contains("identity: no derived statistics"),
        "{report}"
    );
    assert!(
        report.contains("learning: learning.course_statistics ok"),
        "{report}"
    );

    // Drift makes verify fail until --repair fixes it.
    let mut conn = db.admin_connection().await;
    sqlx::query(
        "INSERT INTO learning.courses (id, instructor_id, title, enrolled_count)
         VALUES (gen_random_uuid(), gen_random_uuid(), 'Drifted', 3)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let drifted = lyceum()
        .args(["verify", "learning", "--database-url", &db.url])
        .output()
        .unwrap();
    assert!(!drifted.status.success());
    assert!(
        text(&drifted).contains("enrolled_count: stored 3, expected 0"),
        "{}",
        text(&drifted)
    );
    let repaired = lyceum()
        .args(["verify", "learning", "--repair", "--database-url", &db.url])
        .output()
        .unwrap();
    assert!(repaired.status.success(), "{}", text(&repaired));
    let again = lyceum()
        .args(["verify", "learning", "--database-url", &db.url])
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", text(&again));

    let dlq = lyceum()
        .args(["dlq", "list", "--database-url", &db.url])
        .output()
        .unwrap();
    assert!(dlq.status.success(), "{}", text(&dlq));
    assert!(
        String::from_utf8_lossy(&dlq.stdout).starts_with("id"),
        "{}",
        text(&dlq)
    );
    let replay = lyceum()
        .args([
            "dlq",
            "replay",
            "00000000-0000-0000-0000-000000000001",
            "--database-url",
            &db.url,
        ])
        .args(["--nats-url", &nats_url()])
        .output()
        .unwrap();
    assert!(!replay.status.success());
    assert!(
        text(&replay).contains("no dead letter"),
        "{}",
        text(&replay)
    );
}

#[tokio::test]
async fn the_archive_job_moves_only_old_activity() {
    let db = TestDatabase::create().await;
    let migrate = lyceum()
        .args(["migrate", "all", "--database-url", &db.url])
        .output()
        .unwrap();
    assert!(migrate.status.success(), "{}", text(&migrate));
    let mut conn = db.admin_connection().await;
    sqlx::query(
        "INSERT INTO instructor.student_activity (id, instructor_id, student_id, activity_type, occurred_at)
         SELECT gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), 'enrolled', now() - make_interval(days => g)
         FROM generate_series(1, 20) g",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let run = lyceum()
        .args([
            "jobs",
            "run",
            "archive-activity",
            "--older-than-days",
            "10",
            "--database-url",
            &db.url,
        ])
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", text(&run));
    assert!(
        text(&run).contains("archived 11 activity rows"),
        "{}",
        text(&run)
    );
    let (live, archived): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM instructor.student_activity), (SELECT count(*) FROM instructor.student_activity_archive)",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!((live, archived), (9, 11));
}
