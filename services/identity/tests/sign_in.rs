//! Signing in: throttling of failed attempts per account and per address, and the
//! deployment's audience in every token.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use lyceum_identity::{IdentitySettings, Limit, SignInLimits};
use lyceum_platform::auth::{GrpcKeySource, TokenError, TokenVerifier};
use lyceum_proto::identity::v1 as pb;
use lyceum_testkit::{assert_code, authed, claims_of};
use tonic::{Code, Request, Status};
use tonic_types::StatusExt;

async fn sign_in(app: &TestApp, request: Request<pb::AuthenticateRequest>) -> Result<(), Status> {
    app.auth().authenticate(request).await.map(|_| ())
}

fn attempt(email: &str, password: &str) -> Request<pb::AuthenticateRequest> {
    Request::new(pb::AuthenticateRequest {
        email: email.into(),
        password: password.into(),
    })
}

fn from(address: &str, email: &str, password: &str) -> Request<pb::AuthenticateRequest> {
    let mut request = attempt(email, password);
    request
        .metadata_mut()
        .insert("x-forwarded-for", address.parse().unwrap());
    request
}

/// The retry delay of a throttled answer.
fn retry_delay(status: &Status) -> Duration {
    status
        .get_error_details()
        .retry_info()
        .and_then(|info| info.retry_delay)
        .expect("RetryInfo with a delay")
}

#[tokio::test]
async fn repeated_wrong_passwords_for_one_account_are_throttled_with_a_retry_delay() {
    let app = TestApp::spawn().await;
    app.create_user(None, "target@example.org", "").await;
    app.create_user(None, "bystander@example.org", "").await;
    // The default allowance: five failures, then one attempt a minute.
    for _ in 0..5 {
        assert_code(
            sign_in(&app, attempt("target@example.org", "Wrong-Password-1")).await,
            Code::Unauthenticated,
        );
    }
    // Now even the right password waits: a guesser cannot tell when they hit it.
    let status = assert_code(
        sign_in(&app, attempt("Target@Example.org", PASSWORD)).await,
        Code::ResourceExhausted,
    );
    let delay = retry_delay(&status);
    assert!(
        delay > Duration::from_secs(50) && delay <= Duration::from_secs(60),
        "{delay:?}"
    );
    // Another account from the same address signs in as usual.
    app.login("bystander@example.org", PASSWORD).await;
    // Bad input is still bad input, not a throttled attempt.
    assert_code(
        sign_in(&app, attempt("not-an-email", "x")).await,
        Code::InvalidArgument,
    );
}

#[tokio::test]
async fn concurrent_wrong_passwords_for_one_account_get_no_more_checks_than_the_burst() {
    let app = TestApp::spawn_with(IdentitySettings {
        sign_in_limits: SignInLimits {
            per_account: Limit {
                burst: 5,
                refill_every: Duration::from_secs(60),
            },
            per_address: Limit {
                burst: 1_000,
                refill_every: Duration::from_secs(1),
            },
        },
        ..Default::default()
    })
    .await;
    app.create_user(None, "target@example.org", "").await;
    // All guesses are in flight before the first password check ends: only the ones that
    // held a token when they started may reach the hashing.
    let guesses = (0..40).map(|i| {
        let mut auth = app.auth();
        async move {
            auth.authenticate(attempt(
                "target@example.org",
                &format!("Wrong-Password-{i}"),
            ))
            .await
        }
    });
    let answers = futures::future::join_all(guesses).await;
    let mut checked = 0;
    for answer in answers {
        let status = answer.expect_err("every guess is wrong");
        match status.code() {
            // Only a checked password answers UNAUTHENTICATED.
            Code::Unauthenticated => checked += 1,
            Code::ResourceExhausted => {
                assert!(retry_delay(&status) > Duration::ZERO);
            }
            other => panic!("unexpected {other:?}: {status:?}"),
        }
    }
    assert!(
        (1..=5).contains(&checked),
        "{checked} passwords were checked"
    );
    // The failures stay counted: the right password now waits too.
    assert_code(
        sign_in(&app, attempt("target@example.org", PASSWORD)).await,
        Code::ResourceExhausted,
    );
}

#[tokio::test]
async fn failures_from_one_address_are_throttled_across_accounts_behind_trusted_proxies() {
    let app = TestApp::spawn_with(IdentitySettings {
        sign_in_limits: SignInLimits {
            per_account: Limit {
                burst: 100,
                refill_every: Duration::from_secs(60),
            },
            per_address: Limit {
                burst: 3,
                refill_every: Duration::from_secs(30),
            },
        },
        trusted_proxy_hops: 1,
        ..Default::default()
    })
    .await;
    app.create_user(None, "real@example.org", "").await;
    // A stuffing run: unknown and known emails alike count against the address. The
    // client-written part of the header (left of what our proxy appended) is ignored.
    for (i, email) in ["a@example.org", "b@example.org", "real@example.org"]
        .iter()
        .enumerate()
    {
        assert_code(
            sign_in(
                &app,
                from(
                    &format!("10.{i}.0.1, 198.51.100.7"),
                    email,
                    "Wrong-Password-1",
                ),
            )
            .await,
            Code::Unauthenticated,
        );
    }
    let status = assert_code(
        sign_in(&app, from("198.51.100.7", "real@example.org", PASSWORD)).await,
        Code::ResourceExhausted,
    );
    assert!(retry_delay(&status) <= Duration::from_secs(30));
    // The same person from another address is not held back by that run.
    sign_in(&app, from("203.0.113.9", "real@example.org", PASSWORD))
        .await
        .expect("another address signs in");
}

#[tokio::test]
async fn tokens_carry_the_deployments_audience_and_other_deployments_refuse_them() {
    let app = TestApp::spawn_with(IdentitySettings {
        audience: "lyceum-staging".into(),
        ..Default::default()
    })
    .await;
    app.create_user(None, "aud@example.org", "").await;
    let token = app.login("aud@example.org", PASSWORD).await.access_token;
    let payload: serde_json::Value = {
        use base64::Engine;
        let part = token.split('.').nth(1).unwrap();
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(part)
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(payload["aud"], "lyceum-staging");

    let keys = || Arc::new(GrpcKeySource::new(&format!("http://{}", app.server.addr)).unwrap());
    // Identity itself accepts it...
    let me = claims_of(&token).sub.to_string();
    app.users()
        .get_user(authed(pb::GetUserRequest { id: me }, &token))
        .await
        .expect("identity accepts its own audience");
    // ...as does a service of the same deployment; one configured for another refuses it.
    let same = TokenVerifier::new(keys()).with_audience("lyceum-staging");
    assert!(same.verify(&token).await.is_ok());
    let other = TokenVerifier::new(keys());
    assert_eq!(other.verify(&token).await, Err(TokenError::WrongAudience));
}
