//! The identity and tenancy service: organizations, teams, users, role grants, tokens,
//! signing keys and service accounts.
//!
//! Rooms: `api` (gRPC handlers), `domain` (types and rules), `store` (SQL), `events`
//! (what it publishes).

pub mod api;
pub mod domain;
pub mod events;
pub mod store;

use std::sync::Arc;

use anyhow::Context as _;
use async_trait::async_trait;
use lyceum_platform::auth::TokenVerifier;
use lyceum_platform::crypto::SecretBox;
use lyceum_platform::db::{Database, ServiceSchema};
use lyceum_platform::server::{ServerLimits, ServiceModule};
use lyceum_proto::identity::v1::auth_service_server::AuthServiceServer;
use lyceum_proto::identity::v1::organization_service_server::OrganizationServiceServer;
use lyceum_proto::identity::v1::user_service_server::UserServiceServer;
use tonic::service::RoutesBuilder;
use uuid::Uuid;

pub use api::{IdentityApi, IdentitySettings, Limit, SignInLimits, TokenLifetimes};
use domain::{Email, Password, Role};
use store::signing_keys::{KeyRing, ensure_signing_key};

/// The identity schema and its migrations.
pub const SCHEMA: ServiceSchema = lyceum_schema::IDENTITY;

pub const GRPC_SERVICES: [&str; 3] = [
    "lyceum.identity.v1.OrganizationService",
    "lyceum.identity.v1.UserService",
    "lyceum.identity.v1.AuthService",
];

/// The identity service, ready to be added to a server.
pub struct IdentityModule {
    db: Database,
    api: IdentityApi,
    audience: String,
}

impl IdentityModule {
    /// Makes sure a signing key exists and builds the handlers, with default settings but
    /// for the token lifetimes.
    pub async fn start(
        db: Database,
        sealer: SecretBox,
        lifetimes: TokenLifetimes,
    ) -> anyhow::Result<Self> {
        let settings = IdentitySettings {
            lifetimes,
            ..IdentitySettings::default()
        };
        Self::start_with(db, sealer, settings).await
    }

    pub async fn start_with(
        db: Database,
        sealer: SecretBox,
        settings: IdentitySettings,
    ) -> anyhow::Result<Self> {
        ensure_signing_key(&db, &sealer)
            .await
            .context("preparing the signing keys")?;
        let keys = Arc::new(KeyRing::new(sealer, settings.audience.clone()));
        Ok(Self {
            api: IdentityApi::new(db.clone(), keys, &settings),
            db,
            audience: settings.audience,
        })
    }

    /// A verifier that reads keys from identity's own table and refuses tokens of revoked
    /// sessions, suspended users and disabled service accounts at once.
    pub fn token_verifier(&self) -> TokenVerifier {
        TokenVerifier::new(Arc::new(store::signing_keys::DbKeySource::new(
            self.db.clone(),
        )))
        .with_audience(&self.audience)
        .with_revocation_check(Arc::new(api::SessionRevocationCheck::new(self.db.clone())))
    }
}

#[async_trait]
impl ServiceModule for IdentityModule {
    fn name(&self) -> &'static str {
        "identity"
    }

    fn grpc_service_names(&self) -> Vec<&'static str> {
        GRPC_SERVICES.to_vec()
    }

    fn add_routes(&self, routes: &mut RoutesBuilder, limits: &ServerLimits) {
        let max = limits.max_message_bytes;
        routes.add_service(
            OrganizationServiceServer::new(self.api.clone())
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        );
        routes.add_service(
            UserServiceServer::new(self.api.clone())
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        );
        routes.add_service(
            AuthServiceServer::new(self.api.clone())
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        );
    }

    fn database(&self) -> &Database {
        &self.db
    }
}

/// Creates the first platform admin (or makes an existing user one). Refuses when an
/// admin already exists, so the command cannot be used to take over a running platform.
pub async fn bootstrap_platform_admin(
    db: &Database,
    email: &str,
    password: &str,
    full_name: &str,
) -> anyhow::Result<Uuid> {
    let email = Email::parse(email).map_err(|e| anyhow::anyhow!("email {e}"))?;
    let password = Password::parse(password).map_err(|e| anyhow::anyhow!("password {e}"))?;
    let mut tx = db.begin_system("bootstrap").await?;
    store::users::lock_bootstrap(&mut tx).await?;
    anyhow::ensure!(
        !store::users::platform_admin_exists(&mut tx).await?,
        "a platform admin already exists; grant further admins through UserService.GrantRole"
    );
    let user = match store::users::find_by_email(&mut tx, email.as_str()).await? {
        Some(user) => user,
        None => {
            let user = store::users::insert(
                &mut tx,
                store::users::NewUser {
                    organization_id: None,
                    email: email.as_str().to_owned(),
                    full_name: full_name.to_owned(),
                    avatar_url: String::new(),
                    company_name: String::new(),
                    metadata: serde_json::json!({}),
                },
            )
            .await
            .map_err(|e| anyhow::anyhow!("creating the admin user: {e}"))?;
            tx.publish(events::user_created(&user)).await?;
            user
        }
    };
    store::credentials::set_password(&mut tx, user.id, &password.hash()).await?;
    for role in [Role::User, Role::Admin] {
        let grant = store::grants::grant(
            &mut tx,
            store::grants::NewGrant {
                user_id: user.id,
                role,
                organization_id: None,
                expires_at: None,
                granted_by: None,
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("granting {}: {e}", role.as_str()))?;
        tx.publish(events::role_granted(&grant)).await?;
    }
    tx.commit().await?;
    Ok(user.id)
}
