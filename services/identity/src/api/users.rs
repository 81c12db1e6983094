use std::collections::HashSet;

use chrono::{DateTime, Utc};
use lyceum_platform::auth::{Principal, optional_principal, require_principal};
use lyceum_platform::convert::{
    bounded_json, decode_page_token, from_timestamp, optional_id, page_size, parse_id, required_id,
    update_mask,
};
use lyceum_platform::db::TenantContext;
use lyceum_platform::{ApiError, Violations};
use lyceum_proto::identity::v1 as pb;
use lyceum_proto::identity::v1::user_service_server::UserService;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::organizations::paginate;
use super::{IdentityApi, wire};
use crate::domain::grant::{GrantScope, decide_grant, may_grant};
use crate::domain::session::SessionEnd;
use crate::domain::user::{
    PasswordChange, UserCreation, can_see_user, confirm_current_password, decide_password_change,
    decide_user_creation, decide_user_listing, decide_user_update, default_grants, may_read_roles,
    needs_held_grants,
};
use crate::domain::{
    BoundedText, Email, OptionalName, OrganizationId, Password, Role, UserId, UserStatus,
};
use crate::events;
use crate::store::grants::NewGrant;
use crate::store::users::{NewUser, UserChanges, UserRow};
use crate::store::{Tx, credentials, grants, sessions, users};

type AvatarUrl = BoundedText<2048, false>;
const MAX_BATCH: usize = 1000;

/// A CreateUser request, validated.
struct CreateUser {
    email: Email,
    password: Password,
    full_name: OptionalName,
    organization_id: Option<Uuid>,
    avatar_url: AvatarUrl,
    company_name: OptionalName,
    metadata: serde_json::Value,
}

impl TryFrom<pb::CreateUserRequest> for CreateUser {
    type Error = ApiError;

    fn try_from(req: pb::CreateUserRequest) -> Result<Self, ApiError> {
        let mut v = Violations::new();
        let email = v.check("email", Email::parse(&req.email));
        let password = v.check("password", Password::parse(&req.password));
        let full_name = v.check("full_name", OptionalName::parse(&req.full_name));
        let organization_id = optional_id(&mut v, "organization_id", &req.organization_id);
        let avatar_url = v.check("avatar_url", AvatarUrl::parse(&req.avatar_url));
        let company_name = v.check("company_name", OptionalName::parse(&req.company_name));
        let metadata = bounded_json(&mut v, "metadata", req.metadata);
        v.into_result()?;
        let (
            Some(email),
            Some(password),
            Some(full_name),
            Some(organization_id),
            Some(avatar_url),
            Some(company_name),
        ) = (
            email,
            password,
            full_name,
            organization_id,
            avatar_url,
            company_name,
        )
        else {
            unreachable!("all fields parsed when there are no violations")
        };
        Ok(Self {
            email,
            password,
            full_name,
            organization_id,
            avatar_url,
            company_name,
            metadata,
        })
    }
}

/// A ListUsers request, validated.
struct ListUsers {
    organization_id: Option<Uuid>,
    limit: i64,
    after: Option<Uuid>,
}

impl TryFrom<pb::ListUsersRequest> for ListUsers {
    type Error = ApiError;

    fn try_from(req: pb::ListUsersRequest) -> Result<Self, ApiError> {
        let mut v = Violations::new();
        let organization_id = optional_id(&mut v, "organization_id", &req.organization_id);
        let limit = page_size(&mut v, req.page_size);
        let after = decode_page_token(&mut v, &req.page_token);
        v.into_result()?;
        let organization_id = organization_id.expect("parsed when there are no violations");
        Ok(Self {
            organization_id,
            limit,
            after,
        })
    }
}

/// An UpdateUser request, validated: the changes its mask names.
struct UpdateUser {
    id: Uuid,
    changes: UserChanges,
}

impl TryFrom<pb::UpdateUserRequest> for UpdateUser {
    type Error = ApiError;

    fn try_from(req: pb::UpdateUserRequest) -> Result<Self, ApiError> {
        let mut v = Violations::new();
        let user = req.user.unwrap_or_default();
        let id = required_id(&mut v, "user.id", &user.id);
        let paths: HashSet<String> = update_mask(
            &mut v,
            req.update_mask,
            &[
                "full_name",
                "avatar_url",
                "company_name",
                "metadata",
                "status",
            ],
        );
        let mut changes = UserChanges::default();
        if paths.contains("full_name") {
            changes.full_name = v
                .check("user.full_name", OptionalName::parse(&user.full_name))
                .map(|n| n.into_inner());
        }
        if paths.contains("avatar_url") {
            changes.avatar_url = v
                .check("user.avatar_url", AvatarUrl::parse(&user.avatar_url))
                .map(|n| n.into_inner());
        }
        if paths.contains("company_name") {
            changes.company_name = v
                .check("user.company_name", OptionalName::parse(&user.company_name))
                .map(|n| n.into_inner());
        }
        if paths.contains("metadata") {
            changes.metadata = Some(bounded_json(&mut v, "user.metadata", user.metadata));
        }
        if paths.contains("status") {
            changes.status = v.check("user.status", UserStatus::from_proto(user.status));
        }
        v.into_result()?;
        let id = id.expect("parsed when there are no violations");
        Ok(Self { id, changes })
    }
}

/// A ChangePassword request, validated.
struct ChangePassword {
    user_id: Uuid,
    new_password: Password,
    /// The password the caller claims is current, when it must prove it.
    current_password: String,
}

impl TryFrom<pb::ChangePasswordRequest> for ChangePassword {
    type Error = ApiError;

    fn try_from(req: pb::ChangePasswordRequest) -> Result<Self, ApiError> {
        let mut v = Violations::new();
        let user_id = required_id(&mut v, "user_id", &req.user_id);
        let new_password = v.check("new_password", Password::parse(&req.new_password));
        v.into_result()?;
        let (Some(user_id), Some(new_password)) = (user_id, new_password) else {
            unreachable!("all fields parsed when there are no violations")
        };
        Ok(Self {
            user_id,
            new_password,
            current_password: req.current_password,
        })
    }
}

/// A GrantRole request, validated.
struct GrantRole {
    user_id: Uuid,
    grant: GrantScope,
    expires_at: Option<DateTime<Utc>>,
}

impl TryFrom<pb::GrantRoleRequest> for GrantRole {
    type Error = ApiError;

    fn try_from(req: pb::GrantRoleRequest) -> Result<Self, ApiError> {
        let mut v = Violations::new();
        let user_id = required_id(&mut v, "user_id", &req.user_id);
        let role = v.check("role", Role::from_proto(req.role));
        let org = optional_id(&mut v, "organization_id", &req.organization_id);
        let expires_at = match &req.expire_time {
            None => Some(None),
            Some(ts) => match from_timestamp(ts) {
                Ok(t) if t > Utc::now() => Some(Some(t)),
                Ok(_) => {
                    v.add("expire_time", "must be in the future");
                    None
                }
                Err(e) => {
                    v.add("expire_time", e);
                    None
                }
            },
        };
        if let (Some(role), Some(org)) = (role, org) {
            v.check("organization_id", role.check_scope(org));
        }
        v.into_result()?;
        let (Some(user_id), Some(role), Some(org), Some(expires_at)) =
            (user_id, role, org, expires_at)
        else {
            unreachable!("all fields parsed when there are no violations")
        };
        Ok(Self {
            user_id,
            grant: GrantScope {
                role,
                organization_id: org,
            },
            expires_at,
        })
    }
}

/// A HasRole request, validated.
struct HasRole {
    user_id: Uuid,
    role: Role,
    organization_id: Option<Uuid>,
}

impl TryFrom<pb::HasRoleRequest> for HasRole {
    type Error = ApiError;

    fn try_from(req: pb::HasRoleRequest) -> Result<Self, ApiError> {
        let mut v = Violations::new();
        let user_id = required_id(&mut v, "user_id", &req.user_id);
        let role = v.check("role", Role::from_proto(req.role));
        let org = optional_id(&mut v, "organization_id", &req.organization_id);
        v.into_result()?;
        let (Some(user_id), Some(role), Some(organization_id)) = (user_id, role, org) else {
            unreachable!("all fields parsed when there are no violations")
        };
        Ok(Self {
            user_id,
            role,
            organization_id,
        })
    }
}

impl IdentityApi {
    /// The user's unexpired grants, for the outranking check: the caller may not list
    /// the grants it is asking about, so the service reads them itself.
    async fn held_grants(&self, tx: &mut Tx, user_id: Uuid) -> Result<Vec<GrantScope>, ApiError> {
        tx.begin_bookkeeping("outranking check").await?;
        let held = grants::active_grants(tx, user_id).await?;
        tx.end_bookkeeping().await?;
        Ok(held.iter().map(|g| g.scope()).collect())
    }

    async fn visible_user(
        &self,
        tx: &mut Tx,
        principal: &Principal,
        id: Uuid,
    ) -> Result<UserRow, ApiError> {
        users::get(tx, id)
            .await?
            .filter(|u| can_see_user(principal, &u.scope()))
            .ok_or_else(|| ApiError::not_found("user"))
    }

    async fn create_user_(
        &self,
        request: Request<pb::CreateUserRequest>,
    ) -> Result<pb::CreateUserResponse, ApiError> {
        let principal = optional_principal(&request);
        let CreateUser {
            email,
            password,
            full_name,
            organization_id,
            avatar_url,
            company_name,
            metadata,
        } = request.into_inner().try_into()?;

        let creation = decide_user_creation(principal.as_ref(), organization_id)?;
        let context = match creation {
            // Nobody is signed in yet: creating the account is the service's own work.
            UserCreation::SelfRegistration => TenantContext::anonymous(),
            UserCreation::ByCaller(caller) => TenantContext::for_principal(caller),
        };
        let hash = super::run_hashing(move || password.hash()).await?;

        let mut tx = self.db.begin(&context).await?;
        if creation == UserCreation::SelfRegistration {
            tx.begin_bookkeeping("self-registration").await?;
        }
        let user = users::insert(
            &mut tx,
            NewUser {
                organization_id,
                email: email.as_str().to_owned(),
                full_name: full_name.into_inner(),
                avatar_url: avatar_url.into_inner(),
                company_name: company_name.into_inner(),
                metadata,
            },
        )
        .await?;
        // The user row passed the caller's policies; its credentials and default grants
        // are the service's own bookkeeping.
        if tx.bookkeeping().is_none() {
            tx.begin_bookkeeping("new user's credentials and default roles")
                .await?;
        }
        credentials::set_password(&mut tx, user.id, &hash).await?;
        tx.publish(events::user_created(&user)).await?;
        let granted_by = principal.as_ref().map(|p| p.subject);
        for GrantScope {
            role,
            organization_id,
        } in default_grants(organization_id)
        {
            let grant = grants::grant(
                &mut tx,
                NewGrant {
                    user_id: user.id,
                    role,
                    organization_id,
                    expires_at: None,
                    granted_by,
                },
            )
            .await?;
            tx.publish(events::role_granted(&grant)).await?;
        }
        tx.commit().await?;
        Ok(pb::CreateUserResponse {
            user: Some(wire::user(user)),
        })
    }

    async fn get_user_(
        &self,
        request: Request<pb::GetUserRequest>,
    ) -> Result<pb::GetUserResponse, ApiError> {
        let principal = require_principal(&request)?;
        let id = parse_id("id", &request.get_ref().id)?;
        let mut tx = self
            .db
            .begin(&TenantContext::for_principal(&principal))
            .await?;
        let user = self.visible_user(&mut tx, &principal, id).await?;
        tx.commit().await?;
        Ok(pb::GetUserResponse {
            user: Some(wire::user(user)),
        })
    }

    async fn list_users_(
        &self,
        request: Request<pb::ListUsersRequest>,
    ) -> Result<pb::ListUsersResponse, ApiError> {
        let principal = require_principal(&request)?;
        let ListUsers {
            organization_id: org,
            limit,
            after,
        } = request.into_inner().try_into()?;
        decide_user_listing(&principal, org)?;
        let mut tx = self
            .db
            .begin(&TenantContext::for_principal(&principal))
            .await?;
        let rows = users::list(
            &mut tx,
            org.map(OrganizationId::new),
            after.map(UserId::new),
            limit + 1,
        )
        .await?;
        tx.commit().await?;
        let (rows, next) = paginate(rows, limit, |r| r.id);
        Ok(pb::ListUsersResponse {
            users: rows.into_iter().map(wire::user).collect(),
            next_page_token: next,
        })
    }

    async fn update_user_(
        &self,
        request: Request<pb::UpdateUserRequest>,
    ) -> Result<pb::UpdateUserResponse, ApiError> {
        let principal = require_principal(&request)?;
        let UpdateUser { id, changes } = request.into_inner().try_into()?;
        let mut tx = self
            .db
            .begin(&TenantContext::for_principal(&principal))
            .await?;
        let existing = self.visible_user(&mut tx, &principal, id).await?.scope();
        let held = if needs_held_grants(&principal, &existing) {
            Some(self.held_grants(&mut tx, id).await?)
        } else {
            None
        };
        let update = decide_user_update(&principal, &existing, held.as_deref(), changes.status)?;
        let updated = users::update(&mut tx, id, changes)
            .await?
            .ok_or_else(|| ApiError::not_found("user"))?;
        if update.end_sessions {
            // The caller may manage the user but not their sessions' rows: the service
            // ends them itself.
            tx.begin_bookkeeping("end suspended user's sessions")
                .await?;
            sessions::revoke_user_sessions(&mut tx, id, SessionEnd::UserSuspended).await?;
            tx.end_bookkeeping().await?;
        }
        tx.publish(events::user_updated(&updated)).await?;
        if update.announce_suspension {
            tx.publish(events::user_suspended(&updated)).await?;
        }
        tx.commit().await?;
        Ok(pb::UpdateUserResponse {
            user: Some(wire::user(updated)),
        })
    }

    async fn batch_get_users_(
        &self,
        request: Request<pb::BatchGetUsersRequest>,
    ) -> Result<pb::BatchGetUsersResponse, ApiError> {
        let principal = require_principal(&request)?;
        let req = request.into_inner();
        let mut v = Violations::new();
        if req.ids.len() > MAX_BATCH {
            v.add("ids", format!("at most {MAX_BATCH} ids per call"));
        }
        let ids: Vec<Uuid> = req
            .ids
            .iter()
            .enumerate()
            .filter_map(|(i, raw)| required_id(&mut v, &format!("ids[{i}]"), raw))
            .collect();
        v.into_result()?;
        let mut tx = self
            .db
            .begin(&TenantContext::for_principal(&principal))
            .await?;
        let rows = users::batch_get(&mut tx, &ids).await?;
        tx.commit().await?;
        Ok(pb::BatchGetUsersResponse {
            users: rows
                .into_iter()
                .filter(|u| can_see_user(&principal, &u.scope()))
                .map(wire::user)
                .collect(),
        })
    }

    async fn change_password_(
        &self,
        request: Request<pb::ChangePasswordRequest>,
    ) -> Result<pb::ChangePasswordResponse, ApiError> {
        let principal = require_principal(&request)?;
        let ChangePassword {
            user_id: id,
            new_password: password,
            current_password,
        } = request.into_inner().try_into()?;
        let mut tx = self
            .db
            .begin(&TenantContext::for_principal(&principal))
            .await?;
        let user = self.visible_user(&mut tx, &principal, id).await?;
        match decide_password_change(&principal, &user.scope())? {
            PasswordChange::ProveCurrent => {
                let current = credentials::password_hash(&mut tx, id).await?;
                let matches = super::run_hashing(move || {
                    current.is_some_and(|h| h.matches(&current_password))
                })
                .await?;
                confirm_current_password(matches)?;
            }
            PasswordChange::Reset => {}
        }
        let hash = super::run_hashing(move || password.hash()).await?;
        credentials::set_password(&mut tx, id, &hash).await?;
        tx.begin_bookkeeping("end sessions after a password change")
            .await?;
        sessions::revoke_user_sessions(&mut tx, id, SessionEnd::PasswordChanged).await?;
        tx.commit().await?;
        Ok(pb::ChangePasswordResponse {})
    }

    async fn grant_role_(
        &self,
        request: Request<pb::GrantRoleRequest>,
    ) -> Result<pb::GrantRoleResponse, ApiError> {
        let principal = require_principal(&request)?;
        let GrantRole {
            user_id,
            grant,
            expires_at,
        } = request.into_inner().try_into()?;
        let mut tx = self
            .db
            .begin(&TenantContext::for_principal(&principal))
            .await?;
        let user = self.visible_user(&mut tx, &principal, user_id).await?;
        decide_grant(&principal, &user.scope(), &grant)?;
        let row = grants::grant(
            &mut tx,
            NewGrant {
                user_id,
                role: grant.role,
                organization_id: grant.organization_id,
                expires_at,
                granted_by: Some(principal.subject),
            },
        )
        .await?;
        tx.publish(events::role_granted(&row)).await?;
        tx.commit().await?;
        Ok(pb::GrantRoleResponse {
            grant: Some(wire::grant(row)),
        })
    }

    async fn revoke_role_(
        &self,
        request: Request<pb::RevokeRoleRequest>,
    ) -> Result<pb::RevokeRoleResponse, ApiError> {
        let principal = require_principal(&request)?;
        let id = parse_id("grant_id", &request.get_ref().grant_id)?;
        let mut tx = self
            .db
            .begin(&TenantContext::for_principal(&principal))
            .await?;
        let grant = grants::get(&mut tx, id)
            .await?
            .ok_or_else(|| ApiError::not_found("grant"))?;
        may_grant(&principal, &grant.scope())?;
        if !grants::revoke(&mut tx, id).await? {
            // Revoked meanwhile by someone else: nothing more to do or announce.
            return Err(ApiError::not_found("grant"));
        }
        tx.publish(events::role_revoked(&grant)).await?;
        // The role travels in the user's access tokens: end their sessions so it stops
        // working now, not when those tokens expire.
        tx.begin_bookkeeping("end sessions after a role revocation")
            .await?;
        sessions::revoke_user_sessions(&mut tx, grant.user_id, SessionEnd::RolesRevoked).await?;
        tx.commit().await?;
        Ok(pb::RevokeRoleResponse {})
    }

    async fn has_role_(
        &self,
        request: Request<pb::HasRoleRequest>,
    ) -> Result<pb::HasRoleResponse, ApiError> {
        let principal = require_principal(&request)?;
        let HasRole {
            user_id,
            role,
            organization_id: org,
        } = request.into_inner().try_into()?;
        let mut tx = self
            .db
            .begin(&TenantContext::for_principal(&principal))
            .await?;
        let user = self.visible_user(&mut tx, &principal, user_id).await?;
        may_read_roles(&principal, &user.scope())?;
        // The caller may ask about grants it cannot list itself.
        tx.begin_bookkeeping("role check").await?;
        let has_role = grants::has_role(
            &mut tx,
            UserId::new(user_id),
            role,
            org.map(OrganizationId::new),
        )
        .await?;
        tx.commit().await?;
        Ok(pb::HasRoleResponse { has_role })
    }

    async fn list_user_roles_(
        &self,
        request: Request<pb::ListUserRolesRequest>,
    ) -> Result<pb::ListUserRolesResponse, ApiError> {
        let principal = require_principal(&request)?;
        let user_id = parse_id("user_id", &request.get_ref().user_id)?;
        let mut tx = self
            .db
            .begin(&TenantContext::for_principal(&principal))
            .await?;
        let user = self.visible_user(&mut tx, &principal, user_id).await?;
        may_read_roles(&principal, &user.scope())?;
        let rows = grants::active_grants(&mut tx, user_id).await?;
        tx.commit().await?;
        Ok(pb::ListUserRolesResponse {
            grants: rows.into_iter().map(wire::grant).collect(),
        })
    }
}

#[tonic::async_trait]
impl UserService for IdentityApi {
    async fn create_user(
        &self,
        r: Request<pb::CreateUserRequest>,
    ) -> Result<Response<pb::CreateUserResponse>, Status> {
        Ok(Response::new(self.create_user_(r).await?))
    }
    async fn get_user(
        &self,
        r: Request<pb::GetUserRequest>,
    ) -> Result<Response<pb::GetUserResponse>, Status> {
        Ok(Response::new(self.get_user_(r).await?))
    }
    async fn list_users(
        &self,
        r: Request<pb::ListUsersRequest>,
    ) -> Result<Response<pb::ListUsersResponse>, Status> {
        Ok(Response::new(self.list_users_(r).await?))
    }
    async fn update_user(
        &self,
        r: Request<pb::UpdateUserRequest>,
    ) -> Result<Response<pb::UpdateUserResponse>, Status> {
        Ok(Response::new(self.update_user_(r).await?))
    }
    async fn batch_get_users(
        &self,
        r: Request<pb::BatchGetUsersRequest>,
    ) -> Result<Response<pb::BatchGetUsersResponse>, Status> {
        Ok(Response::new(self.batch_get_users_(r).await?))
    }
    async fn change_password(
        &self,
        r: Request<pb::ChangePasswordRequest>,
    ) -> Result<Response<pb::ChangePasswordResponse>, Status> {
        Ok(Response::new(self.change_password_(r).await?))
    }
    async fn grant_role(
        &self,
        r: Request<pb::GrantRoleRequest>,
    ) -> Result<Response<pb::GrantRoleResponse>, Status> {
        Ok(Response::new(self.grant_role_(r).await?))
    }
    async fn revoke_role(
        &self,
        r: Request<pb::RevokeRoleRequest>,
    ) -> Result<Response<pb::RevokeRoleResponse>, Status> {
        Ok(Response::new(self.revoke_role_(r).await?))
    }
    async fn has_role(
        &self,
        r: Request<pb::HasRoleRequest>,
    ) -> Result<Response<pb::HasRoleResponse>, Status> {
        Ok(Response::new(self.has_role_(r).await?))
    }
    async fn list_user_roles(
        &self,
        r: Request<pb::ListUserRolesRequest>,
    ) -> Result<Response<pb::ListUserRolesResponse>, Status> {
        Ok(Response::new(self.list_user_roles_(r).await?))
    }
}
