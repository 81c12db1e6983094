//! The ids of learning's entities, each its own type (see the kit's `typed_id!`): a store
//! function that takes a course and a student cannot be called with the two swapped.

use lyceum_platform::typed_id;

typed_id! {
    /// A course.
    pub struct CourseId;
    /// A module of a course.
    pub struct ModuleId;
    /// A lesson of a module.
    pub struct LessonId;
    /// A student's enrollment in a course.
    pub struct EnrollmentId;
    /// A student's review of a course.
    pub struct ReviewId;
    /// A user, identity's: students, instructors and voters alike.
    pub struct UserId;
    /// An organization, identity's: the tenant a course or enrollment belongs to.
    pub struct OrganizationId;
    /// A payment, the instructor context's: what activated an enrollment.
    pub struct PaymentId;
    /// A workshop.
    pub struct WorkshopId;
    /// A user's registration for a workshop.
    pub struct RegistrationId;
    /// A certificate of a completed course or an attended workshop.
    pub struct CertificateId;
    /// A resource of the library.
    pub struct ResourceId;
}
