//! Service accounts across services, each in a process of its own as deployed: scopes
//! decide what an account may do in instructor, and disabling it at identity makes
//! instructor refuse its token within seconds, also after instructor restarts.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lyceum_platform::auth::scopes;
use lyceum_proto::identity::v1 as idpb;
use lyceum_proto::identity::v1::auth_service_client::AuthServiceClient;
use lyceum_proto::instructor::v1 as ipb;
use lyceum_proto::instructor::v1::payment_service_client::PaymentServiceClient;
use lyceum_testkit::{TestDatabase, authed, free_port, nats_url, service_account};
use tonic::Code;
use tonic::transport::Channel;

const ADMIN_EMAIL: &str = "root@lyceum.test";
const ADMIN_PASSWORD: &str = "Correct-Horse-42";

/// `lyceum serve <service>`, killed when dropped.
struct Served {
    port: u16,
    child: Child,
}

impl Served {
    async fn start(service: &str, db: &TestDatabase, prefix: &str, identity: Option<u16>) -> Self {
        let port = free_port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_lyceum"));
        command
            .args(["serve", service, "--listen", &format!("127.0.0.1:{port}")])
            .args(["--database-url", &db.url, "--nats-url", &nats_url()])
            .env("LYCEUM_EVENT_PREFIX", prefix)
            .env("LYCEUM_DEV_MODE", "1")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(if std::env::var_os("TEST_LOG").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            });
        if let Some(identity) = identity {
            command.args(["--identity-addr", &format!("http://127.0.0.1:{identity}")]);
        }
        let child = command.spawn().expect("lyceum starts");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "{service} did not start listening"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self { port, child }
    }

    async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://127.0.0.1:{}", self.port))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reports a payment outcome as the token's holder. The payment does not exist, so an
/// authorized caller is told NOT_FOUND: the code says how far authorization went.
async fn report_outcome(instructor: &Served, token: &str) -> Code {
    PaymentServiceClient::new(instructor.channel().await)
        .succeed_payment(authed(
            ipb::SucceedPaymentRequest {
                id: uuid::Uuid::now_v7().to_string(),
                ..Default::default()
            },
            token,
        ))
        .await
        .map_or_else(|status| status.code(), |_| Code::Ok)
}

/// Polls until the answer is `wanted`, allowing only the codes in `meanwhile` before it.
async fn answers_eventually(
    instructor: &Served,
    token: &str,
    wanted: Code,
    meanwhile: &[Code],
) -> Duration {
    let start = Instant::now();
    loop {
        let code = report_outcome(instructor, token).await;
        if code == wanted {
            return start.elapsed();
        }
        assert!(
            meanwhile.contains(&code),
            "answered {code:?} while waiting for {wanted:?}"
        );
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "still {code:?}, never {wanted:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn scopes_decide_what_a_service_account_may_do_and_disabling_it_reaches_every_service() {
    let db = TestDatabase::create().await;
    let migrate = Command::new(env!("CARGO_BIN_EXE_lyceum"))
        .args(["migrate", "all", "--database-url", &db.url])
        .output()
        .unwrap();
    assert!(migrate.status.success());
    let identity_db = db.service_database(&lyceum_identity::SCHEMA).await;
    lyceum_identity::bootstrap_platform_admin(&identity_db, ADMIN_EMAIL, ADMIN_PASSWORD, "Root")
        .await
        .unwrap();
    let prefix = format!("sa{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);

    let identity = Served::start("identity", &db, &prefix, None).await;
    let mut instructor = Served::start("instructor", &db, &prefix, Some(identity.port)).await;
    let mut auth = AuthServiceClient::new(identity.channel().await);
    let admin = auth
        .authenticate(idpb::AuthenticateRequest {
            email: ADMIN_EMAIL.into(),
            password: ADMIN_PASSWORD.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .tokens
        .unwrap()
        .access_token;
    let (payments_id, payments) =
        service_account(&mut auth, &admin, "payments", &[scopes::PAYMENTS_WRITE]).await;
    let (_, reader) = service_account(&mut auth, &admin, "reader", &[scopes::USERS_READ]).await;

    // Until instructor has read the disabled accounts it answers UNAVAILABLE to service
    // accounts; then the scope decides.
    answers_eventually(&instructor, &payments, Code::NotFound, &[Code::Unavailable]).await;
    assert_eq!(
        report_outcome(&instructor, &reader).await,
        Code::PermissionDenied
    );

    auth.disable_service_account(authed(
        idpb::DisableServiceAccountRequest {
            service_account_id: payments_id,
        },
        &admin,
    ))
    .await
    .unwrap();
    // The token would live ten minutes; instructor refuses it within seconds.
    let took = answers_eventually(
        &instructor,
        &payments,
        Code::Unauthenticated,
        &[Code::NotFound],
    )
    .await;
    assert!(took < Duration::from_secs(5), "took {took:?}");
    // Other accounts are untouched.
    assert_eq!(
        report_outcome(&instructor, &reader).await,
        Code::PermissionDenied
    );

    // A restarted instructor never accepts the disabled account's token.
    drop(instructor);
    instructor = Served::start("instructor", &db, &prefix, Some(identity.port)).await;
    answers_eventually(
        &instructor,
        &payments,
        Code::Unauthenticated,
        &[Code::Unavailable],
    )
    .await;
    answers_eventually(
        &instructor,
        &reader,
        Code::PermissionDenied,
        &[Code::Unavailable],
    )
    .await;
}
