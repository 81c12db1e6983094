//! What assessments publish: their completion, with the scores it fixed.

use lyceum_platform::convert::{opt_id_to_string, opt_timestamp};
use lyceum_platform::events::Event;
use lyceum_proto::events::v1 as pb;

use crate::domain::assessment::as_points;
use crate::store::assessments::AssessmentRow;

/// `learning.assessment.completed`, from the completed row.
pub fn assessment_completed(row: &AssessmentRow) -> Event {
    let payload = pb::AssessmentCompleted {
        assessment_id: row.id.to_string(),
        template_id: row.template_id.to_string(),
        user_id: row.user_id.to_string(),
        organization_id: opt_id_to_string(row.organization_id),
        assessment_type: row.assessment_type.to_string(),
        individual_score: row.individual.map(as_points),
        leadership_score: row.leadership.map(as_points),
        cultural_score: row.cultural.map(as_points),
        embedding_score: row.embedding.map(as_points),
        velocity_score: row.velocity.map(as_points),
        overall_score: row.overall.map(as_points),
        completed_time: opt_timestamp(row.completed_at),
        version: row.version,
    };
    Event::new(
        "learning.assessment.completed",
        row.organization_id,
        &payload,
    )
}
