//! A student's course progress: the arithmetic behind `student_progress`.

/// The running totals of one enrollment.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProgressTotals {
    pub total_lessons: i32,
    pub completed_lessons: i32,
    pub total_watch_time_seconds: i64,
    pub course_duration_seconds: i64,
    pub quizzes_taken: i32,
    pub quizzes_passed: i32,
    pub quiz_score_sum: i64,
}

/// Completed lessons over all lessons, in percent with two decimals.
pub fn progress_percentage(completed: i32, total: i32) -> f64 {
    if total <= 0 {
        return 0.0;
    }
    let percent = f64::from(completed.min(total)) * 100.0 / f64::from(total);
    (percent * 100.0).round() / 100.0
}

/// Engagement, 0–100: 60 % progress, 25 % quiz results (progress stands in before any
/// quiz is taken) and 15 % watch time against the course's total duration.
pub fn engagement_score(totals: &ProgressTotals) -> i32 {
    let progress = progress_percentage(totals.completed_lessons, totals.total_lessons);
    let quizzes = if totals.quizzes_taken > 0 {
        totals.quiz_score_sum as f64 / f64::from(totals.quizzes_taken)
    } else {
        progress
    };
    let watched = if totals.course_duration_seconds > 0 {
        (totals.total_watch_time_seconds as f64 * 100.0 / totals.course_duration_seconds as f64)
            .min(100.0)
    } else {
        progress
    };
    (0.60 * progress + 0.25 * quizzes + 0.15 * watched)
        .round()
        .clamp(0.0, 100.0) as i32
}

/// A quiz passes at 70 % or more.
pub const QUIZ_PASS_MARK: i32 = 70;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentage_rounds_to_two_decimals_and_caps_at_100() {
        assert_eq!(progress_percentage(1, 3), 33.33);
        assert_eq!(progress_percentage(3, 3), 100.0);
        assert_eq!(progress_percentage(5, 3), 100.0);
        assert_eq!(progress_percentage(0, 0), 0.0);
    }

    #[test]
    fn engagement_combines_progress_quizzes_and_watch_time() {
        let idle = ProgressTotals {
            total_lessons: 4,
            ..Default::default()
        };
        assert_eq!(engagement_score(&idle), 0);
        let done = ProgressTotals {
            total_lessons: 4,
            completed_lessons: 4,
            total_watch_time_seconds: 3600,
            course_duration_seconds: 3600,
            quizzes_taken: 2,
            quizzes_passed: 2,
            quiz_score_sum: 200,
        };
        assert_eq!(engagement_score(&done), 100);
        let half = ProgressTotals {
            completed_lessons: 2,
            quiz_score_sum: 80,
            quizzes_taken: 1,
            ..done
        };
        assert_eq!(engagement_score(&half), 65); // 0.6*50 + 0.25*80 + 0.15*100
    }
}
