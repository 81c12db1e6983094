//! Drip content: a course's lessons released to each student a number of days after the
//! student got access (the enrollment's activation).
//!
//! A course's `drip_schedule` is a JSON object from lesson ids to days, 0–3,650:
//! `{"0191…": 7}` releases that lesson on day 7. Lessons it does not name are released at
//! once; so are all lessons while `drip_content` is off.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

/// The longest delay a schedule may give: ten years.
pub const MAX_DAYS: u64 = 3_650;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DripSchedule(HashMap<Uuid, u32>);

impl DripSchedule {
    pub fn parse(value: &serde_json::Value) -> Result<Self, String> {
        let object = value
            .as_object()
            .ok_or("must be an object from lesson ids to days")?;
        let mut days = HashMap::with_capacity(object.len());
        for (key, value) in object {
            let lesson = Uuid::try_parse(key)
                .map_err(|_| format!("'{}' is not a lesson id", truncate(key)))?;
            // Whole numbers: protobuf's Struct carries every number as a double.
            let count = value
                .as_u64()
                .or_else(|| {
                    value
                        .as_f64()
                        .filter(|d| d.fract() == 0.0 && *d >= 0.0)
                        .map(|d| d as u64)
                })
                .filter(|d| *d <= MAX_DAYS)
                .ok_or_else(|| format!("the days of lesson {lesson} must be 0 to {MAX_DAYS}"))?;
            days.insert(lesson, count as u32);
        }
        Ok(Self(days))
    }

    /// When the lesson is released to a student whose access began at `access_from`;
    /// `None` when it is not held back at all.
    pub fn release_time(&self, lesson: Uuid, access_from: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.0
            .get(&lesson)
            .filter(|days| **days > 0)
            .map(|days| access_from + Duration::days(i64::from(*days)))
    }
}

fn truncate(text: &str) -> &str {
    match text.char_indices().nth(40) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

/// A lesson as one student may have it now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Release {
    /// When it is (or was) released, if the schedule holds it back at all.
    pub at: Option<DateTime<Utc>>,
    pub released: bool,
}

pub fn release_of(
    drip_content: bool,
    schedule: &DripSchedule,
    lesson: Uuid,
    access_from: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Release {
    if !drip_content {
        return Release {
            at: None,
            released: true,
        };
    }
    let at = schedule.release_time(lesson, access_from);
    Release {
        at,
        released: at.is_none_or(|at| at <= now),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lesson_on_day_seven_is_withheld_on_day_six() {
        let lesson = Uuid::from_u128(7);
        let schedule = DripSchedule::parse(&serde_json::json!({ lesson.to_string(): 7 })).unwrap();
        let start = DateTime::from_timestamp(1_900_000_000, 0).unwrap();
        let on = |day: i64| release_of(true, &schedule, lesson, start, start + Duration::days(day));
        assert!(!on(6).released);
        assert!(on(7).released);
        assert_eq!(on(6).at, Some(start + Duration::days(7)));
        assert!(release_of(false, &schedule, lesson, start, start).released);
        assert!(release_of(true, &schedule, Uuid::from_u128(8), start, start).released);
    }

    #[test]
    fn schedules_name_lessons_and_bounded_days() {
        assert!(DripSchedule::parse(&serde_json::json!({})).is_ok());
        assert!(DripSchedule::parse(&serde_json::json!([])).is_err());
        assert!(DripSchedule::parse(&serde_json::json!({"week-1": 7})).is_err());
        let id = Uuid::from_u128(1).to_string();
        assert!(DripSchedule::parse(&serde_json::json!({ id.clone(): -1 })).is_err());
        assert!(DripSchedule::parse(&serde_json::json!({ id.clone(): 3651 })).is_err());
        assert!(DripSchedule::parse(&serde_json::json!({ id.clone(): 1.5 })).is_err());
        assert!(DripSchedule::parse(&serde_json::json!({ id: 7.0 })).is_ok());
    }
}
