//! The ids this context's store functions take side by side, each its own type (see the
//! kit's `typed_id!`): a course and its instructor, or a payout and its instructor, cannot
//! be passed the wrong way round.

use lyceum_platform::typed_id;

typed_id! {
    /// A user, identity's: instructors and students alike.
    pub struct UserId;
    /// A course, learning's, as its projection here knows it.
    pub struct CourseId;
    /// A payout of an instructor's pending earnings.
    pub struct PayoutId;
}
