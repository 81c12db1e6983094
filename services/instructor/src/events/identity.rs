//! Names, emails and avatars of users, for the dashboards, from identity's user events.

use async_trait::async_trait;
use lyceum_platform::db::Tx;
use lyceum_platform::events::consumer::{ConsumerSpec, EventHandler};
use lyceum_platform::events::unpack;
use lyceum_proto::events::v1 as pb;
use uuid::Uuid;

use crate::store::projections;

pub fn consumer_spec() -> ConsumerSpec {
    ConsumerSpec::new("instructor-directory", "identity", "identity.user.*")
}

pub struct UserEvents;

#[async_trait]
impl EventHandler for UserEvents {
    async fn handle(&self, tx: &mut Tx, event: &pb::EventEnvelope) -> anyhow::Result<()> {
        let user = match event.event_type.as_str() {
            "lyceum.identity.user.created" => unpack::<pb::UserCreated>(event)?.user,
            "lyceum.identity.user.updated" => unpack::<pb::UserUpdated>(event)?.user,
            "lyceum.identity.user.suspended" => unpack::<pb::UserSuspended>(event)?.user,
            _ => None,
        };
        if let Some(user) = user {
            let id = Uuid::try_parse(&user.id)?;
            projections::directory_entry(
                tx,
                id,
                &user.full_name,
                &user.email,
                &user.avatar_url,
                user.version,
            )
            .await?;
        }
        Ok(())
    }
}
