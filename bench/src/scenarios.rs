//! One scenario per RPC, each with its raw SQL baseline: the statements the service runs
//! for that RPC (the token's revocation check, then the handler's transaction), called
//! through the same store functions but without gRPC, auth or encoding.

use std::sync::Arc;

use async_trait::async_trait;
use lyceum_identity::domain::{OrganizationId, SessionId, UserId};
use lyceum_identity::store::{organizations, sessions, users};
use lyceum_platform::auth::{Principal, with_bearer};
use lyceum_platform::db::{Database, TenantContext};
use lyceum_proto::identity::v1 as pb;
use lyceum_proto::identity::v1::organization_service_client::OrganizationServiceClient;
use lyceum_proto::identity::v1::user_service_client::UserServiceClient;
use tonic::Request;
use uuid::Uuid;

use crate::load::Operation;
use crate::stack::Stack;

fn code(status: tonic::Status) -> String {
    format!("{:?}", status.code())
}

fn sql(error: impl std::fmt::Display) -> String {
    format!("sql: {error}")
}

/// What identity's verifier does for every request: is the session still live?
async fn revocation_check(db: &Database, principal: &Principal) -> Result<(), String> {
    let mut tx = db.begin_system("test").await.map_err(sql)?;
    let session = principal.session_id.unwrap_or_default();
    sessions::session_is_live(
        &mut tx,
        SessionId::new(session),
        UserId::new(principal.subject),
    )
    .await
    .map_err(sql)?;
    tx.commit().await.map_err(sql)
}

pub struct GetUserRpc {
    pub stack: Arc<Stack>,
    pub ids: Arc<Vec<Uuid>>,
}

#[async_trait]
impl Operation for GetUserRpc {
    async fn call(&self, worker: usize, sequence: u64) -> Result<(), String> {
        let id = self.ids[sequence as usize % self.ids.len()];
        let mut client = UserServiceClient::new(self.stack.channel(worker));
        let request = with_bearer(
            Request::new(pb::GetUserRequest { id: id.to_string() }),
            &self.stack.admin_token,
        );
        client.get_user(request).await.map(|_| ()).map_err(code)
    }
}

pub struct GetUserSql {
    pub stack: Arc<Stack>,
    pub ids: Arc<Vec<Uuid>>,
}

#[async_trait]
impl Operation for GetUserSql {
    async fn call(&self, _worker: usize, sequence: u64) -> Result<(), String> {
        let id = self.ids[sequence as usize % self.ids.len()];
        let db = &self.stack.identity;
        revocation_check(db, &self.stack.admin).await?;
        let mut tx = db
            .begin(&TenantContext::for_principal(&self.stack.admin))
            .await
            .map_err(sql)?;
        users::get(&mut tx, id)
            .await
            .map_err(sql)?
            .ok_or("missing user")?;
        tx.commit().await.map_err(sql)
    }
}

pub struct ListUsersRpc {
    pub stack: Arc<Stack>,
    pub organizations: Arc<Vec<Uuid>>,
}

#[async_trait]
impl Operation for ListUsersRpc {
    async fn call(&self, worker: usize, sequence: u64) -> Result<(), String> {
        let org = self.organizations[sequence as usize % self.organizations.len()];
        let mut client = UserServiceClient::new(self.stack.channel(worker));
        let message = pb::ListUsersRequest {
            organization_id: org.to_string(),
            page_size: 50,
            page_token: String::new(),
        };
        let request = with_bearer(Request::new(message), &self.stack.admin_token);
        client.list_users(request).await.map(|_| ()).map_err(code)
    }
}

pub struct ListUsersSql {
    pub stack: Arc<Stack>,
    pub organizations: Arc<Vec<Uuid>>,
}

#[async_trait]
impl Operation for ListUsersSql {
    async fn call(&self, _worker: usize, sequence: u64) -> Result<(), String> {
        let org = self.organizations[sequence as usize % self.organizations.len()];
        let db = &self.stack.identity;
        revocation_check(db, &self.stack.admin).await?;
        let mut tx = db
            .begin(&TenantContext::for_principal(&self.stack.admin))
            .await
            .map_err(sql)?;
        users::list(&mut tx, Some(OrganizationId::new(org)), None, 51)
            .await
            .map_err(sql)?;
        tx.commit().await.map_err(sql)
    }
}

/// A slug no other call uses: the run's random id and the sequence number.
fn unique_slug(run: Uuid, sequence: u64) -> String {
    format!("b-{}-{sequence}", run.simple())
}

pub struct CreateOrganizationRpc {
    pub stack: Arc<Stack>,
    pub run: Uuid,
}

#[async_trait]
impl Operation for CreateOrganizationRpc {
    async fn call(&self, worker: usize, sequence: u64) -> Result<(), String> {
        let mut client = OrganizationServiceClient::new(self.stack.channel(worker));
        let message = pb::CreateOrganizationRequest {
            name: format!("Benchmark organization {sequence}"),
            slug: unique_slug(self.run, sequence),
            ..Default::default()
        };
        let request = with_bearer(Request::new(message), &self.stack.admin_token);
        client
            .create_organization(request)
            .await
            .map(|_| ())
            .map_err(code)
    }
}

pub struct CreateOrganizationSql {
    pub stack: Arc<Stack>,
    pub run: Uuid,
}

#[async_trait]
impl Operation for CreateOrganizationSql {
    async fn call(&self, _worker: usize, sequence: u64) -> Result<(), String> {
        let db = &self.stack.identity;
        revocation_check(db, &self.stack.admin).await?;
        let mut tx = db
            .begin(&TenantContext::for_principal(&self.stack.admin))
            .await
            .map_err(sql)?;
        let row = organizations::insert(
            &mut tx,
            organizations::NewOrganization {
                name: format!("Benchmark organization {sequence}"),
                slug: unique_slug(self.run, sequence),
                subscription_tier: lyceum_identity::domain::SubscriptionTier::Starter,
                subscription_status: lyceum_identity::domain::SubscriptionStatus::Trialing,
                company_size: String::new(),
                settings: serde_json::json!({}),
                branding: serde_json::json!({}),
            },
        )
        .await
        .map_err(|e| e.to_string())?;
        tx.publish(lyceum_identity::events::organization_created(&row))
            .await
            .map_err(sql)?;
        tx.commit().await.map_err(sql)
    }
}
