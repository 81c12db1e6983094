//! Spawns the identity service against a fresh database and gives typed clients.

#![allow(dead_code)]

use std::sync::Arc;

use lyceum_identity::{IdentityModule, IdentitySettings, SCHEMA};
use lyceum_platform::config::DEVELOPMENT_DATA_KEY;
use lyceum_platform::crypto::SecretBox;
use lyceum_platform::db::Database;
use lyceum_platform::events::EventBus;
use lyceum_proto::identity::v1 as pb;
use lyceum_proto::identity::v1::auth_service_client::AuthServiceClient;
use lyceum_proto::identity::v1::organization_service_client::OrganizationServiceClient;
use lyceum_proto::identity::v1::user_service_client::UserServiceClient;
use lyceum_testkit::{RunningServer, TestDatabase, authed, test_bus};
use tonic::Request;
use tonic::transport::Channel;

pub const ADMIN_EMAIL: &str = "root@lyceum.test";
pub const PASSWORD: &str = "Correct-Horse-42";

pub struct TestApp {
    pub db: TestDatabase,
    pub database: Database,
    pub bus: EventBus,
    pub server: RunningServer,
    pub sealer: SecretBox,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(IdentitySettings::default()).await
    }

    pub async fn spawn_with(settings: IdentitySettings) -> Self {
        let db = TestDatabase::create().await;
        db.migrate(&SCHEMA).await;
        let database = db.service_database(&SCHEMA).await;
        let sealer = SecretBox::from_base64(DEVELOPMENT_DATA_KEY).unwrap();
        let module = IdentityModule::start_with(database.clone(), sealer.clone(), settings)
            .await
            .expect("identity starts");
        let verifier = Arc::new(module.token_verifier());
        let bus = test_bus().await;
        let server = RunningServer::start(vec![Arc::new(module)], verifier, bus.clone()).await;
        Self {
            db,
            database,
            bus,
            server,
            sealer,
        }
    }

    pub fn orgs(&self) -> OrganizationServiceClient<Channel> {
        OrganizationServiceClient::new(self.server.channel.clone())
    }

    pub fn users(&self) -> UserServiceClient<Channel> {
        UserServiceClient::new(self.server.channel.clone())
    }

    pub fn auth(&self) -> AuthServiceClient<Channel> {
        AuthServiceClient::new(self.server.channel.clone())
    }

    /// Bootstraps the platform admin and returns their access token.
    pub async fn admin_token(&self) -> String {
        lyceum_identity::bootstrap_platform_admin(&self.database, ADMIN_EMAIL, PASSWORD, "Root")
            .await
            .expect("bootstrap admin");
        self.login(ADMIN_EMAIL, PASSWORD).await.access_token
    }

    pub async fn login(&self, email: &str, password: &str) -> pb::TokenPair {
        self.auth()
            .authenticate(pb::AuthenticateRequest {
                email: email.into(),
                password: password.into(),
            })
            .await
            .expect("login succeeds")
            .into_inner()
            .tokens
            .expect("tokens")
    }

    /// A service account with `scopes`: its id and a fresh access token.
    pub async fn service_account(
        &self,
        admin: &str,
        name: &str,
        scopes: &[&str],
    ) -> (String, String) {
        lyceum_testkit::service_account(&mut self.auth(), admin, name, scopes).await
    }

    pub async fn create_org(&self, admin: &str, slug: &str) -> pb::Organization {
        self.orgs()
            .create_organization(authed(
                pb::CreateOrganizationRequest {
                    name: format!("Org {slug}"),
                    slug: slug.into(),
                    ..Default::default()
                },
                admin,
            ))
            .await
            .expect("create organization")
            .into_inner()
            .organization
            .expect("organization")
    }

    pub async fn create_user(&self, token: Option<&str>, email: &str, org: &str) -> pb::User {
        let message = pb::CreateUserRequest {
            email: email.into(),
            password: PASSWORD.into(),
            full_name: format!("User {email}"),
            organization_id: org.into(),
            ..Default::default()
        };
        let request = match token {
            Some(token) => authed(message, token),
            None => Request::new(message),
        };
        self.users()
            .create_user(request)
            .await
            .expect("create user")
            .into_inner()
            .user
            .expect("user")
    }

    /// Makes `user` an org admin of `org` and returns their fresh access token.
    pub async fn org_admin_token(
        &self,
        admin: &str,
        org: &pb::Organization,
        email: &str,
    ) -> (pb::User, String) {
        let user = self.create_user(Some(admin), email, &org.id).await;
        self.users()
            .grant_role(authed(
                pb::GrantRoleRequest {
                    user_id: user.id.clone(),
                    role: pb::Role::OrgAdmin as i32,
                    organization_id: org.id.clone(),
                    expire_time: None,
                },
                admin,
            ))
            .await
            .expect("grant org_admin");
        let token = self.login(email, PASSWORD).await.access_token;
        (user, token)
    }
}
