use std::collections::HashSet;

use lyceum_platform::auth::{Principal, require_principal};
use lyceum_platform::convert::{
    bounded_json, decode_page_token, encode_page_token, page_size, parse_id, required_id,
    update_mask,
};
use lyceum_platform::db::TenantContext;
use lyceum_platform::{ApiError, Violations};
use lyceum_proto::identity::v1 as pb;
use lyceum_proto::identity::v1::organization_service_server::OrganizationService;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{IdentityApi, wire};
use crate::domain::organization::{
    decide_organization_update, decide_team_admin, decide_team_member, may_administer,
    may_see_organization, may_see_team, touches_billing,
};
use crate::domain::{
    BoundedText, Name, OrganizationId, Slug, SubscriptionStatus, SubscriptionTier, TeamId,
    TeamMemberRole, UserId, require_platform_admin,
};
use crate::events;
use crate::store::organizations::{NewOrganization, OrganizationChanges};
use crate::store::{Tx, organizations, teams};

type CompanySize = BoundedText<50, false>;
type Description = BoundedText<2000, false>;

/// A CreateOrganization request, validated.
struct CreateOrganization {
    name: Name,
    slug: Slug,
    tier: SubscriptionTier,
    status: SubscriptionStatus,
    company_size: CompanySize,
    settings: serde_json::Value,
    branding: serde_json::Value,
}

impl TryFrom<pb::CreateOrganizationRequest> for CreateOrganization {
    type Error = ApiError;

    fn try_from(req: pb::CreateOrganizationRequest) -> Result<Self, ApiError> {
        let mut v = Violations::new();
        let name = v.check("name", Name::parse(&req.name));
        let slug = v.check("slug", Slug::parse(&req.slug));
        let tier = match req.subscription_tier {
            0 => Some(SubscriptionTier::Starter),
            n => v.check("subscription_tier", SubscriptionTier::from_proto(n)),
        };
        let status = match req.subscription_status {
            0 => Some(SubscriptionStatus::Trialing),
            n => v.check("subscription_status", SubscriptionStatus::from_proto(n)),
        };
        let company_size = v.check("company_size", CompanySize::parse(&req.company_size));
        let settings = bounded_json(&mut v, "settings", req.settings);
        let branding = bounded_json(&mut v, "branding", req.branding);
        v.into_result()?;
        let (Some(name), Some(slug), Some(tier), Some(status), Some(company_size)) =
            (name, slug, tier, status, company_size)
        else {
            unreachable!("all fields parsed when there are no violations")
        };
        Ok(Self {
            name,
            slug,
            tier,
            status,
            company_size,
            settings,
            branding,
        })
    }
}

/// A ListOrganizations request, validated.
struct ListOrganizations {
    limit: i64,
    after: Option<Uuid>,
}

impl TryFrom<pb::ListOrganizationsRequest> for ListOrganizations {
    type Error = ApiError;

    fn try_from(req: pb::ListOrganizationsRequest) -> Result<Self, ApiError> {
        let mut v = Violations::new();
        let limit = page_size(&mut v, req.page_size);
        let after = decode_page_token(&mut v, &req.page_token);
        v.into_result()?;
        Ok(Self { limit, after })
    }
}

/// An UpdateOrganization request, validated: the changes its mask names.
struct UpdateOrganization {
    id: Uuid,
    paths: HashSet<String>,
    changes: OrganizationChanges,
}

impl TryFrom<pb::UpdateOrganizationRequest> for UpdateOrganization {
    type Error = ApiError;

    fn try_from(req: pb::UpdateOrganizationRequest) -> Result<Self, ApiError> {
        let mut v = Violations::new();
        let org = req.organization.unwrap_or_default();
        let id = required_id(&mut v, "organization.id", &org.id);
        let paths = update_mask(
            &mut v,
            req.update_mask,
            &[
                "name",
                "slug",
                "subscription_tier",
                "subscription_status",
                "company_size",
                "settings",
                "branding",
            ],
        );
        let mut changes = OrganizationChanges::default();
        if paths.contains("name") {
            changes.name = v
                .check("organization.name", Name::parse(&org.name))
                .map(|n| n.into_inner());
        }
        if paths.contains("slug") {
            changes.slug = v
                .check("organization.slug", Slug::parse(&org.slug))
                .map(|s| s.as_str().to_owned());
        }
        if paths.contains("subscription_tier") {
            changes.subscription_tier = v.check(
                "organization.subscription_tier",
                SubscriptionTier::from_proto(org.subscription_tier),
            );
        }
        if paths.contains("subscription_status") {
            changes.subscription_status = v.check(
                "organization.subscription_status",
                SubscriptionStatus::from_proto(org.subscription_status),
            );
        }
        if paths.contains("company_size") {
            changes.company_size = v
                .check(
                    "organization.company_size",
                    CompanySize::parse(&org.company_size),
                )
                .map(|s| s.into_inner());
        }
        if paths.contains("settings") {
            changes.settings = Some(bounded_json(&mut v, "organization.settings", org.settings));
        }
        if paths.contains("branding") {
            changes.branding = Some(bounded_json(&mut v, "organization.branding", org.branding));
        }
        v.into_result()?;
        let id = id.expect("parsed when there are no violations");
        Ok(Self { id, paths, changes })
    }
}

/// A CreateTeam request, validated.
struct CreateTeam {
    organization_id: Uuid,
    name: Name,
    description: Description,
}

impl TryFrom<pb::CreateTeamRequest> for CreateTeam {
    type Error = ApiError;

    fn try_from(req: pb::CreateTeamRequest) -> Result<Self, ApiError> {
        let mut v = Violations::new();
        let org = required_id(&mut v, "organization_id", &req.organization_id);
        let name = v.check("name", Name::parse(&req.name));
        let description = v.check("description", Description::parse(&req.description));
        v.into_result()?;
        let (Some(organization_id), Some(name), Some(description)) = (org, name, description)
        else {
            unreachable!("all fields parsed when there are no violations")
        };
        Ok(Self {
            organization_id,
            name,
            description,
        })
    }
}

/// A ListTeams request, validated.
struct ListTeams {
    organization_id: Uuid,
    limit: i64,
    after: Option<Uuid>,
}

impl TryFrom<pb::ListTeamsRequest> for ListTeams {
    type Error = ApiError;

    fn try_from(req: pb::ListTeamsRequest) -> Result<Self, ApiError> {
        let mut v = Violations::new();
        let org = required_id(&mut v, "organization_id", &req.organization_id);
        let limit = page_size(&mut v, req.page_size);
        let after = decode_page_token(&mut v, &req.page_token);
        v.into_result()?;
        let organization_id = org.expect("parsed when there are no violations");
        Ok(Self {
            organization_id,
            limit,
            after,
        })
    }
}

/// An UpdateTeam request, validated: the new values of the fields its mask names.
struct UpdateTeam {
    id: Uuid,
    name: Option<String>,
    description: Option<String>,
}

impl TryFrom<pb::UpdateTeamRequest> for UpdateTeam {
    type Error = ApiError;

    fn try_from(req: pb::UpdateTeamRequest) -> Result<Self, ApiError> {
        let mut v = Violations::new();
        let team = req.team.unwrap_or_default();
        let id = required_id(&mut v, "team.id", &team.id);
        let paths = update_mask(&mut v, req.update_mask, &["name", "description"]);
        let name = if paths.contains("name") {
            v.check("team.name", Name::parse(&team.name))
                .map(|n| n.into_inner())
        } else {
            None
        };
        let description = if paths.contains("description") {
            v.check("team.description", Description::parse(&team.description))
                .map(|d| d.into_inner())
        } else {
            None
        };
        v.into_result()?;
        let id = id.expect("parsed when there are no violations");
        Ok(Self {
            id,
            name,
            description,
        })
    }
}

/// An AddTeamMember request, validated.
struct AddTeamMember {
    team_id: Uuid,
    user_id: Uuid,
    role: TeamMemberRole,
}

impl TryFrom<pb::AddTeamMemberRequest> for AddTeamMember {
    type Error = ApiError;

    fn try_from(req: pb::AddTeamMemberRequest) -> Result<Self, ApiError> {
        let mut v = Violations::new();
        let team_id = required_id(&mut v, "team_id", &req.team_id);
        let user_id = required_id(&mut v, "user_id", &req.user_id);
        let role = match req.role {
            0 => Some(TeamMemberRole::Member),
            n => v.check("role", TeamMemberRole::from_proto(n)),
        };
        v.into_result()?;
        let (Some(team_id), Some(user_id), Some(role)) = (team_id, user_id, role) else {
            unreachable!("all fields parsed when there are no violations")
        };
        Ok(Self {
            team_id,
            user_id,
            role,
        })
    }
}

/// A RemoveTeamMember request, validated.
struct RemoveTeamMember {
    team_id: Uuid,
    user_id: Uuid,
}

impl TryFrom<pb::RemoveTeamMemberRequest> for RemoveTeamMember {
    type Error = ApiError;

    fn try_from(req: pb::RemoveTeamMemberRequest) -> Result<Self, ApiError> {
        let mut v = Violations::new();
        let team_id = required_id(&mut v, "team_id", &req.team_id);
        let user_id = required_id(&mut v, "user_id", &req.user_id);
        v.into_result()?;
        let (Some(team_id), Some(user_id)) = (team_id, user_id) else {
            unreachable!("all fields parsed when there are no violations")
        };
        Ok(Self { team_id, user_id })
    }
}

/// A ListTeamMembers request, validated.
struct ListTeamMembers {
    team_id: Uuid,
    limit: i64,
    after: Option<Uuid>,
}

impl TryFrom<pb::ListTeamMembersRequest> for ListTeamMembers {
    type Error = ApiError;

    fn try_from(req: pb::ListTeamMembersRequest) -> Result<Self, ApiError> {
        let mut v = Violations::new();
        let team_id = required_id(&mut v, "team_id", &req.team_id);
        let limit = page_size(&mut v, req.page_size);
        let after = decode_page_token(&mut v, &req.page_token);
        v.into_result()?;
        let team_id = team_id.expect("parsed when there are no violations");
        Ok(Self {
            team_id,
            limit,
            after,
        })
    }
}

impl IdentityApi {
    async fn tx_for(&self, principal: &Principal) -> Result<Tx, ApiError> {
        Ok(self
            .db
            .begin(&TenantContext::for_principal(principal))
            .await?)
    }

    async fn team_for_admin(
        &self,
        tx: &mut Tx,
        principal: &Principal,
        id: Uuid,
    ) -> Result<teams::TeamRow, ApiError> {
        let team = teams::get(tx, id)
            .await?
            .ok_or_else(|| ApiError::not_found("team"))?;
        decide_team_admin(principal, team.organization_id)?;
        Ok(team)
    }

    async fn create_organization_(
        &self,
        request: Request<pb::CreateOrganizationRequest>,
    ) -> Result<pb::CreateOrganizationResponse, ApiError> {
        let principal = require_principal(&request)?;
        let CreateOrganization {
            name,
            slug,
            tier,
            status,
            company_size,
            settings,
            branding,
        } = request.into_inner().try_into()?;
        require_platform_admin(&principal)?;
        let mut tx = self.tx_for(&principal).await?;
        let row = organizations::insert(
            &mut tx,
            NewOrganization {
                name: name.into_inner(),
                slug: slug.as_str().to_owned(),
                subscription_tier: tier,
                subscription_status: status,
                company_size: company_size.into_inner(),
                settings,
                branding,
            },
        )
        .await?;
        tx.publish(events::organization_created(&row)).await?;
        tx.commit().await?;
        Ok(pb::CreateOrganizationResponse {
            organization: Some(wire::organization(row)),
        })
    }

    async fn get_organization_(
        &self,
        request: Request<pb::GetOrganizationRequest>,
    ) -> Result<pb::GetOrganizationResponse, ApiError> {
        let principal = require_principal(&request)?;
        let id = parse_id("id", &request.get_ref().id)?;
        may_see_organization(&principal, id)?;
        let mut tx = self.tx_for(&principal).await?;
        let row = organizations::get(&mut tx, id)
            .await?
            .ok_or_else(|| ApiError::not_found("organization"))?;
        tx.commit().await?;
        Ok(pb::GetOrganizationResponse {
            organization: Some(wire::organization(row)),
        })
    }

    async fn list_organizations_(
        &self,
        request: Request<pb::ListOrganizationsRequest>,
    ) -> Result<pb::ListOrganizationsResponse, ApiError> {
        let principal = require_principal(&request)?;
        let ListOrganizations { limit, after } = request.into_inner().try_into()?;
        // Row-level security narrows the list to what the caller may see.
        let mut tx = self.tx_for(&principal).await?;
        let rows = organizations::list(&mut tx, after, limit + 1).await?;
        tx.commit().await?;
        let (rows, next) = paginate(rows, limit, |r| r.id);
        Ok(pb::ListOrganizationsResponse {
            organizations: rows.into_iter().map(wire::organization).collect(),
            next_page_token: next,
        })
    }

    async fn update_organization_(
        &self,
        request: Request<pb::UpdateOrganizationRequest>,
    ) -> Result<pb::UpdateOrganizationResponse, ApiError> {
        let principal = require_principal(&request)?;
        let UpdateOrganization { id, paths, changes } = request.into_inner().try_into()?;
        let billing = touches_billing(paths.iter().map(String::as_str));
        decide_organization_update(&principal, id, billing)?;
        let mut tx = self.tx_for(&principal).await?;
        let row = organizations::update(&mut tx, id, changes)
            .await?
            .ok_or_else(|| ApiError::not_found("organization"))?;
        tx.publish(events::organization_updated(&row)).await?;
        tx.commit().await?;
        Ok(pb::UpdateOrganizationResponse {
            organization: Some(wire::organization(row)),
        })
    }

    async fn create_team_(
        &self,
        request: Request<pb::CreateTeamRequest>,
    ) -> Result<pb::CreateTeamResponse, ApiError> {
        let principal = require_principal(&request)?;
        let CreateTeam {
            organization_id: org,
            name,
            description,
        } = request.into_inner().try_into()?;
        may_administer(&principal, org)?;
        let mut tx = self.tx_for(&principal).await?;
        let row = teams::insert(&mut tx, org, name.into_inner(), description.into_inner()).await?;
        tx.commit().await?;
        Ok(pb::CreateTeamResponse {
            team: Some(wire::team(row)),
        })
    }

    async fn get_team_(
        &self,
        request: Request<pb::GetTeamRequest>,
    ) -> Result<pb::GetTeamResponse, ApiError> {
        let principal = require_principal(&request)?;
        let id = parse_id("id", &request.get_ref().id)?;
        let mut tx = self.tx_for(&principal).await?;
        let row = teams::get(&mut tx, id)
            .await?
            .ok_or_else(|| ApiError::not_found("team"))?;
        may_see_team(&principal, row.organization_id)?;
        tx.commit().await?;
        Ok(pb::GetTeamResponse {
            team: Some(wire::team(row)),
        })
    }

    async fn list_teams_(
        &self,
        request: Request<pb::ListTeamsRequest>,
    ) -> Result<pb::ListTeamsResponse, ApiError> {
        let principal = require_principal(&request)?;
        let ListTeams {
            organization_id: org,
            limit,
            after,
        } = request.into_inner().try_into()?;
        may_see_organization(&principal, org)?;
        let mut tx = self.tx_for(&principal).await?;
        let rows = teams::list(
            &mut tx,
            OrganizationId::new(org),
            after.map(TeamId::new),
            limit + 1,
        )
        .await?;
        tx.commit().await?;
        let (rows, next) = paginate(rows, limit, |r| r.id);
        Ok(pb::ListTeamsResponse {
            teams: rows.into_iter().map(wire::team).collect(),
            next_page_token: next,
        })
    }

    async fn update_team_(
        &self,
        request: Request<pb::UpdateTeamRequest>,
    ) -> Result<pb::UpdateTeamResponse, ApiError> {
        let principal = require_principal(&request)?;
        let UpdateTeam {
            id,
            name,
            description,
        } = request.into_inner().try_into()?;
        let mut tx = self.tx_for(&principal).await?;
        self.team_for_admin(&mut tx, &principal, id).await?;
        let row = teams::update(&mut tx, id, name, description)
            .await?
            .ok_or_else(|| ApiError::not_found("team"))?;
        tx.commit().await?;
        Ok(pb::UpdateTeamResponse {
            team: Some(wire::team(row)),
        })
    }

    async fn delete_team_(
        &self,
        request: Request<pb::DeleteTeamRequest>,
    ) -> Result<pb::DeleteTeamResponse, ApiError> {
        let principal = require_principal(&request)?;
        let id = parse_id("id", &request.get_ref().id)?;
        let mut tx = self.tx_for(&principal).await?;
        self.team_for_admin(&mut tx, &principal, id).await?;
        teams::delete(&mut tx, id).await?;
        tx.commit().await?;
        Ok(pb::DeleteTeamResponse {})
    }

    async fn add_team_member_(
        &self,
        request: Request<pb::AddTeamMemberRequest>,
    ) -> Result<pb::AddTeamMemberResponse, ApiError> {
        let principal = require_principal(&request)?;
        let AddTeamMember {
            team_id,
            user_id,
            role,
        } = request.into_inner().try_into()?;
        let mut tx = self.tx_for(&principal).await?;
        let team = self.team_for_admin(&mut tx, &principal, team_id).await?;
        let user = crate::store::users::get(&mut tx, user_id)
            .await?
            .ok_or_else(|| ApiError::not_found("user"))?;
        decide_team_member(team.organization_id, user.organization_id)?;
        let row = teams::upsert_member(&mut tx, &team, user.id, role).await?;
        tx.commit().await?;
        Ok(pb::AddTeamMemberResponse {
            member: Some(wire::member(row)),
        })
    }

    async fn remove_team_member_(
        &self,
        request: Request<pb::RemoveTeamMemberRequest>,
    ) -> Result<pb::RemoveTeamMemberResponse, ApiError> {
        let principal = require_principal(&request)?;
        let RemoveTeamMember { team_id, user_id } = request.into_inner().try_into()?;
        let mut tx = self.tx_for(&principal).await?;
        self.team_for_admin(&mut tx, &principal, team_id).await?;
        if !teams::remove_member(&mut tx, TeamId::new(team_id), UserId::new(user_id)).await? {
            return Err(ApiError::not_found("team member"));
        }
        tx.commit().await?;
        Ok(pb::RemoveTeamMemberResponse {})
    }

    async fn list_team_members_(
        &self,
        request: Request<pb::ListTeamMembersRequest>,
    ) -> Result<pb::ListTeamMembersResponse, ApiError> {
        let principal = require_principal(&request)?;
        let ListTeamMembers {
            team_id,
            limit,
            after,
        } = request.into_inner().try_into()?;
        let mut tx = self.tx_for(&principal).await?;
        let team = teams::get(&mut tx, team_id)
            .await?
            .ok_or_else(|| ApiError::not_found("team"))?;
        may_see_team(&principal, team.organization_id)?;
        let rows = teams::list_members(
            &mut tx,
            TeamId::new(team_id),
            after.map(UserId::new),
            limit + 1,
        )
        .await?;
        tx.commit().await?;
        let (rows, next) = paginate(rows, limit, |r| r.user_id);
        Ok(pb::ListTeamMembersResponse {
            members: rows.into_iter().map(wire::member).collect(),
            next_page_token: next,
        })
    }
}

/// Splits a page fetched with one extra row into the page and the next page token.
pub(super) fn paginate<T>(
    mut rows: Vec<T>,
    limit: i64,
    key: impl Fn(&T) -> Uuid,
) -> (Vec<T>, String) {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    if rows.len() > limit {
        rows.truncate(limit);
        let last = rows.last().map(&key).expect("a non-empty page");
        (rows, encode_page_token(&last))
    } else {
        (rows, String::new())
    }
}

#[tonic::async_trait]
impl OrganizationService for IdentityApi {
    async fn create_organization(
        &self,
        r: Request<pb::CreateOrganizationRequest>,
    ) -> Result<Response<pb::CreateOrganizationResponse>, Status> {
        Ok(Response::new(self.create_organization_(r).await?))
    }
    async fn get_organization(
        &self,
        r: Request<pb::GetOrganizationRequest>,
    ) -> Result<Response<pb::GetOrganizationResponse>, Status> {
        Ok(Response::new(self.get_organization_(r).await?))
    }
    async fn list_organizations(
        &self,
        r: Request<pb::ListOrganizationsRequest>,
    ) -> Result<Response<pb::ListOrganizationsResponse>, Status> {
        Ok(Response::new(self.list_organizations_(r).await?))
    }
    async fn update_organization(
        &self,
        r: Request<pb::UpdateOrganizationRequest>,
    ) -> Result<Response<pb::UpdateOrganizationResponse>, Status> {
        Ok(Response::new(self.update_organization_(r).await?))
    }
    async fn create_team(
        &self,
        r: Request<pb::CreateTeamRequest>,
    ) -> Result<Response<pb::CreateTeamResponse>, Status> {
        Ok(Response::new(self.create_team_(r).await?))
    }
    async fn get_team(
        &self,
        r: Request<pb::GetTeamRequest>,
    ) -> Result<Response<pb::GetTeamResponse>, Status> {
        Ok(Response::new(self.get_team_(r).await?))
    }
    async fn list_teams(
        &self,
        r: Request<pb::ListTeamsRequest>,
    ) -> Result<Response<pb::ListTeamsResponse>, Status> {
        Ok(Response::new(self.list_teams_(r).await?))
    }
    async fn update_team(
        &self,
        r: Request<pb::UpdateTeamRequest>,
    ) -> Result<Response<pb::UpdateTeamResponse>, Status> {
        Ok(Response::new(self.update_team_(r).await?))
    }
    async fn delete_team(
        &self,
        r: Request<pb::DeleteTeamRequest>,
    ) -> Result<Response<pb::DeleteTeamResponse>, Status> {
        Ok(Response::new(self.delete_team_(r).await?))
    }
    async fn add_team_member(
        &self,
        r: Request<pb::AddTeamMemberRequest>,
    ) -> Result<Response<pb::AddTeamMemberResponse>, Status> {
        Ok(Response::new(self.add_team_member_(r).await?))
    }
    async fn remove_team_member(
        &self,
        r: Request<pb::RemoveTeamMemberRequest>,
    ) -> Result<Response<pb::RemoveTeamMemberResponse>, Status> {
        Ok(Response::new(self.remove_team_member_(r).await?))
    }
    async fn list_team_members(
        &self,
        r: Request<pb::ListTeamMembersRequest>,
    ) -> Result<Response<pb::ListTeamMembersResponse>, Status> {
        Ok(Response::new(self.list_team_members_(r).await?))
    }
}
