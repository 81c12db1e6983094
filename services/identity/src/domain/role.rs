use lyceum_platform::text_enum;
use lyceum_proto::identity::v1 as pb;

text_enum! {
    /// A role a user can be granted, platform-wide or within one organization.
    pub enum Role: pb::Role {
        Admin = "admin" => Admin,
        OrgAdmin = "org_admin" => OrgAdmin,
        TeamLead = "team_lead" => TeamLead,
        Member = "member" => Member,
        Instructor = "instructor" => Instructor,
        Expert = "expert" => Expert,
        Client = "client" => Client,
        User = "user" => User,
    }
}

impl Role {
    /// Roles that only make sense inside an organization.
    pub fn requires_organization(self) -> bool {
        matches!(self, Role::OrgAdmin | Role::TeamLead)
    }

    /// Roles that apply to the whole platform and never to one organization.
    pub fn is_platform_wide(self) -> bool {
        matches!(self, Role::Admin)
    }
}

/// A role asked for in the wrong scope (a violation on `organization_id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleScopeError {
    OrganizationRequired(Role),
    OrganizationForbidden(Role),
}

impl std::fmt::Display for RoleScopeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::OrganizationRequired(role) => {
                write!(f, "is required for role {}", role.as_str())
            }
            Self::OrganizationForbidden(role) => {
                write!(f, "must be empty for role {}", role.as_str())
            }
        }
    }
}

impl Role {
    /// Organization roles need an organization; platform-wide ones must have none.
    pub fn check_scope(self, organization: Option<uuid::Uuid>) -> Result<(), RoleScopeError> {
        if self.requires_organization() && organization.is_none() {
            return Err(RoleScopeError::OrganizationRequired(self));
        }
        if self.is_platform_wide() && organization.is_some() {
            return Err(RoleScopeError::OrganizationForbidden(self));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn organization_roles_need_one_and_platform_roles_none() {
        let org = Some(uuid::Uuid::from_u128(1));
        assert_eq!(Role::OrgAdmin.check_scope(org), Ok(()));
        assert_eq!(Role::TeamLead.check_scope(org), Ok(()));
        assert_eq!(Role::Admin.check_scope(None), Ok(()));
        assert_eq!(Role::Instructor.check_scope(None), Ok(()));
        assert_eq!(Role::Member.check_scope(org), Ok(()));
        assert_eq!(
            Role::TeamLead.check_scope(None).unwrap_err().to_string(),
            "is required for role team_lead"
        );
        assert_eq!(
            Role::OrgAdmin.check_scope(None),
            Err(RoleScopeError::OrganizationRequired(Role::OrgAdmin))
        );
        assert_eq!(
            Role::Admin.check_scope(org).unwrap_err().to_string(),
            "must be empty for role admin"
        );
    }
}
