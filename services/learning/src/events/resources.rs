//! What the resource library publishes.

use lyceum_platform::convert::{opt_id_to_string, opt_timestamp};
use lyceum_platform::events::Event;
use lyceum_proto::events::v1 as pb;

use crate::domain::resource::ResourceStatus;
use crate::store::resources::ResourceRow;

pub const PUBLISHED: &str = "learning.resource.published";

/// Whether a change from `before` (None: a new resource) to `after` publishes.
pub fn publishes(before: Option<ResourceStatus>, after: ResourceStatus) -> bool {
    after == ResourceStatus::Published && before != Some(ResourceStatus::Published)
}

pub fn resource_published(row: &ResourceRow) -> Event {
    let payload = pb::ResourcePublished {
        resource_id: row.id.to_string(),
        author_id: row.author_id.to_string(),
        organization_id: opt_id_to_string(row.organization_id),
        course_id: opt_id_to_string(row.course_id),
        r#type: row.resource_type.to_string(),
        title: row.title.clone(),
        access_level: row.access_level.to_string(),
        publish_time: opt_timestamp(row.published_at),
    };
    Event::new(PUBLISHED, row.organization_id, &payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publishing_is_news_once_per_move_into_published() {
        use ResourceStatus::*;
        assert!(publishes(None, Published));
        assert!(publishes(Some(Draft), Published));
        assert!(!publishes(None, Draft));
        assert!(!publishes(Some(Published), Published));
        assert!(!publishes(Some(Published), Draft));
    }
}
