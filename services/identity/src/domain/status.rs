use lyceum_platform::text_enum;
use lyceum_proto::identity::v1 as pb;

text_enum! {
    pub enum SubscriptionTier: pb::SubscriptionTier {
        Starter = "starter" => Starter,
        Growth = "growth" => Growth,
        Enterprise = "enterprise" => Enterprise,
    }
}

text_enum! {
    pub enum SubscriptionStatus: pb::SubscriptionStatus {
        Trialing = "trialing" => Trialing,
        Active = "active" => Active,
        PastDue = "past_due" => PastDue,
        Canceled = "canceled" => Canceled,
    }
}

text_enum! {
    pub enum UserStatus: pb::UserStatus {
        Active = "active" => Active,
        Inactive = "inactive" => Inactive,
        Suspended = "suspended" => Suspended,
    }
}

text_enum! {
    pub enum TeamMemberRole: pb::TeamMemberRole {
        Lead = "lead" => Lead,
        Member = "member" => Member,
    }
}
