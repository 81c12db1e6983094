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
