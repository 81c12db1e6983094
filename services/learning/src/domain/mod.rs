//! Learning's types and pure rules: statuses and their transitions, money, ratings,
//! progress and engagement arithmetic. Nothing here touches the database.

mod kinds;
mod money;
mod progress;
mod text;

pub use kinds::*;
pub use money::{Currency, Money};
pub use progress::{ProgressTotals, QUIZ_PASS_MARK, engagement_score, progress_percentage};
pub use text::{BoundedText, Rating, TextList, parse_optional_rating, parse_rating};
