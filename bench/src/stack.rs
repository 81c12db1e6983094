//! The system under test: a fresh database, identity served in-process on a free port
//! with its outbox relay, learning and instructor in the `lyceum` binary's own process,
//! and clients for the RPCs.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use lyceum_identity::{IdentityModule, SCHEMA, TokenLifetimes};
use lyceum_platform::auth::{Claims, Principal};
use lyceum_platform::config::DEVELOPMENT_DATA_KEY;
use lyceum_platform::crypto::SecretBox;
use lyceum_platform::db::{Database, ServiceSchema};
use lyceum_platform::events::EventBus;
use lyceum_proto::identity::v1 as pb;
use lyceum_proto::identity::v1::auth_service_client::AuthServiceClient;
use lyceum_testkit::{RunningServer, TestDatabase, test_bus};
use sqlx::migrate::Migrator;
use tonic::transport::Channel;

use crate::service_process::ServiceProcess;

pub const ADMIN_EMAIL: &str = "bench-admin@lyceum.test";
pub const ADMIN_PASSWORD: &str = "Bench-Admin-Password-1";

static PROJECTION_MIGRATOR: Migrator = sqlx::migrate!("migrations/projection");

/// The schema of the benchmark's event projection (a consumer in "another service").
pub const PROJECTION: ServiceSchema = ServiceSchema {
    name: "bench_projection",
    migrator: &PROJECTION_MIGRATOR,
};

pub struct Stack {
    pub database: TestDatabase,
    pub identity: Database,
    pub learning: Database,
    pub instructor: Database,
    /// Learning (with instructor) in a process of its own, verifying signatures only, as it
    /// is deployed.
    pub learning_channels: Vec<Channel>,
    /// Dropping it stops the process.
    pub learning_process: ServiceProcess,
    /// Mints tokens for generated users with identity's signing key.
    pub signer: lyceum_platform::auth::TokenSigner,
    pub projection: Database,
    pub bus: EventBus,
    /// Kept for its lifetime: dropping it stops the services.
    pub _server: RunningServer,
    /// Several HTTP/2 connections, so that one connection is not the bottleneck.
    pub channels: Vec<Channel>,
    pub admin_token: String,
    pub admin: Principal,
}

impl Stack {
    pub async fn start(service_binary: &Path) -> anyhow::Result<Self> {
        let database = TestDatabase::create().await;
        database.migrate(&SCHEMA).await;
        database.migrate(&PROJECTION).await;
        database.migrate(&lyceum_learning::SCHEMA).await;
        database.migrate(&lyceum_instructor::SCHEMA).await;
        let identity = database.service_database(&SCHEMA).await;
        let learning = database.service_database(&lyceum_learning::SCHEMA).await;
        let instructor = database.service_database(&lyceum_instructor::SCHEMA).await;
        let projection = database.service_database(&PROJECTION).await;
        let sealer = SecretBox::from_base64(DEVELOPMENT_DATA_KEY)?;
        let module =
            IdentityModule::start(identity.clone(), sealer, TokenLifetimes::default()).await?;
        let verifier = Arc::new(module.token_verifier());
        let bus = test_bus().await;
        let server = RunningServer::start(vec![Arc::new(module)], verifier, bus.clone()).await;
        let mut channels = Vec::new();
        for _ in 0..4 {
            channels.push(
                Channel::from_shared(format!("http://{}", server.addr))?
                    .connect()
                    .await?,
            );
        }
        lyceum_identity::bootstrap_platform_admin(&identity, ADMIN_EMAIL, ADMIN_PASSWORD, "Bench")
            .await?;
        let tokens = AuthServiceClient::new(channels[0].clone())
            .authenticate(pb::AuthenticateRequest {
                email: ADMIN_EMAIL.into(),
                password: ADMIN_PASSWORD.into(),
            })
            .await?
            .into_inner()
            .tokens
            .context("tokens")?;
        let admin = Principal::from_claims(claims_of(&tokens.access_token)?);

        // Learning and instructor in the `lyceum` binary, as deployed, verifying tokens with
        // identity's keys fetched over gRPC.
        let learning_process = ServiceProcess::start(
            service_binary,
            &database.url,
            &lyceum_testkit::nats_url(),
            bus.prefix(),
            server.addr,
        )
        .await?;
        let mut learning_channels = Vec::new();
        for _ in 0..4 {
            learning_channels.push(
                Channel::from_shared(format!("http://{}", learning_process.addr))?
                    .connect()
                    .await?,
            );
        }
        let mut conn = database.admin_connection().await;
        let (kid, sealed): (String, Vec<u8>) = sqlx::query_as(
            "SELECT kid, private_key_encrypted FROM identity.signing_keys ORDER BY created_at DESC LIMIT 1",
        )
        .fetch_one(&mut conn)
        .await?;
        let seed: [u8; 32] = SecretBox::from_base64(DEVELOPMENT_DATA_KEY)?
            .decrypt(&sealed)?
            .try_into()
            .map_err(|_| anyhow::anyhow!("bad key length"))?;
        let signer = lyceum_platform::auth::TokenSigner::new(
            kid,
            ed25519_dalek::SigningKey::from_bytes(&seed),
        );
        Ok(Self {
            database,
            identity,
            learning,
            instructor,
            learning_channels,
            learning_process,
            signer,
            projection,
            bus,
            _server: server,
            channels,
            admin_token: tokens.access_token,
            admin,
        })
    }

    pub fn channel(&self, worker: usize) -> Channel {
        self.channels[worker % self.channels.len()].clone()
    }

    pub fn learning_channel(&self, worker: usize) -> Channel {
        self.learning_channels[worker % self.learning_channels.len()].clone()
    }

    /// A student's token and principal, minted without a round trip to identity.
    pub fn student(&self, id: uuid::Uuid) -> (String, Principal) {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            iss: lyceum_platform::auth::ISSUER.into(),
            sub: id,
            iat: now,
            exp: now + 3600,
            jti: uuid::Uuid::now_v7(),
            kind: lyceum_platform::auth::PrincipalKind::User,
            org: None,
            roles: vec![lyceum_platform::auth::GrantedRole {
                role: "user".into(),
                org: None,
            }],
            sid: None,
            scopes: vec![],
        };
        (self.signer.sign(&claims), Principal::from_claims(claims))
    }
}

/// The claims of a token this tool was just issued (not verified: it only reads them).
pub fn claims_of(token: &str) -> anyhow::Result<Claims> {
    let payload = token.split('.').nth(1).context("not a JWT")?;
    Ok(serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload)?)?)
}
