use lyceum_platform::text_enum;
use lyceum_proto::learning::v1 as pb;

text_enum! {
    pub enum CourseStatus: pb::CourseStatus {
        Draft = "draft" => Draft,
        Published = "published" => Published,
        Archived = "archived" => Archived,
    }
}

impl CourseStatus {
    /// draft → published → archived; a draft may also be archived directly.
    pub fn can_become(self, next: CourseStatus) -> bool {
        matches!(
            (self, next),
            (CourseStatus::Draft, CourseStatus::Published)
                | (CourseStatus::Draft, CourseStatus::Archived)
                | (CourseStatus::Published, CourseStatus::Archived)
        )
    }
}

text_enum! {
    pub enum Visibility: pb::CourseVisibility {
        Public = "public" => Public,
        Organization = "organization" => Organization,
    }
}

text_enum! {
    pub enum EnrollmentType: pb::EnrollmentType {
        Open = "open" => Open,
        CohortOnly = "cohort_only" => CohortOnly,
        Hybrid = "hybrid" => Hybrid,
    }
}

text_enum! {
    pub enum LessonType: pb::LessonType {
        Video = "video" => Video,
        Article = "article" => Article,
        Quiz = "quiz" => Quiz,
        Assignment = "assignment" => Assignment,
    }
}

text_enum! {
    pub enum InstructorRole: pb::InstructorRole {
        Primary = "primary" => Primary,
        CoInstructor = "co_instructor" => CoInstructor,
        Assistant = "assistant" => Assistant,
    }
}

text_enum! {
    pub enum Permission: pb::InstructorPermission {
        ViewContent = "view_content" => ViewContent,
        EditContent = "edit_content" => EditContent,
        ManageStudents = "manage_students" => ManageStudents,
        RespondToReviews = "respond_to_reviews" => RespondToReviews,
        ViewAnalytics = "view_analytics" => ViewAnalytics,
    }
}

text_enum! {
    pub enum EnrollmentStatus: pb::EnrollmentStatus {
        PendingPayment = "pending_payment" => PendingPayment,
        Active = "active" => Active,
        Completed = "completed" => Completed,
        Cancelled = "cancelled" => Cancelled,
        Refunded = "refunded" => Refunded,
    }
}

impl EnrollmentStatus {
    /// Counted in the course's `enrolled_count`: students who are or were taught.
    pub fn counts_as_enrolled(self) -> bool {
        matches!(self, EnrollmentStatus::Active | EnrollmentStatus::Completed)
    }

    pub fn can_become(self, next: EnrollmentStatus) -> bool {
        use EnrollmentStatus::*;
        matches!(
            (self, next),
            (PendingPayment, Active)
                | (PendingPayment, Cancelled)
                | (Active, Completed)
                | (Active, Cancelled)
                | (Active, Refunded)
                | (Completed, Refunded)
                | (Cancelled, PendingPayment)
                | (Cancelled, Active)
        )
    }
}

text_enum! {
    pub enum LessonProgressStatus: pb::LessonProgressStatus {
        InProgress = "in_progress" => InProgress,
        Completed = "completed" => Completed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn courses_move_forward_only() {
        assert!(CourseStatus::Draft.can_become(CourseStatus::Published));
        assert!(CourseStatus::Published.can_become(CourseStatus::Archived));
        assert!(!CourseStatus::Archived.can_become(CourseStatus::Published));
        assert!(!CourseStatus::Published.can_become(CourseStatus::Draft));
    }

    #[test]
    fn enrollments_follow_their_lifecycle() {
        use EnrollmentStatus::*;
        assert!(PendingPayment.can_become(Active));
        assert!(Active.can_become(Completed));
        assert!(Completed.can_become(Refunded));
        assert!(!Refunded.can_become(Active));
        assert!(!Completed.can_become(Cancelled));
        assert!(Active.counts_as_enrolled() && Completed.counts_as_enrolled());
        assert!(!PendingPayment.counts_as_enrolled() && !Refunded.counts_as_enrolled());
    }
}
