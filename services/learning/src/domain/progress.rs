//! A student's course progress: merging what a student reports about a lesson into what
//! was recorded before, the totals that change with it, and the arithmetic behind
//! `student_progress`.

use super::{EnrollmentStatus, LessonProgressStatus, LessonType};

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

/// What a student reports about one lesson, validated (see the API's `TryFrom`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LessonReport {
    pub status: LessonProgressStatus,
    /// 0–100.
    pub progress_percent: i32,
    /// 0 to a week.
    pub watch_time_seconds: i64,
    /// 0–100, on quiz lessons only.
    pub quiz_score: Option<i32>,
}

impl LessonReport {
    /// A week of watching one lesson is the most anyone records; it keeps the totals far
    /// from overflowing.
    pub const MAX_WATCH_TIME_SECONDS: i64 = 604_800;

    /// Only quiz lessons take a score.
    pub fn fits(&self, lesson_type: LessonType) -> Result<(), &'static str> {
        if self.quiz_score.is_some() && lesson_type != LessonType::Quiz {
            Err("only quiz lessons take a score")
        } else {
            Ok(())
        }
    }
}

/// One lesson's recorded progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LessonState {
    pub status: LessonProgressStatus,
    pub progress_percent: i32,
    pub watch_time_seconds: i64,
    pub quiz_score: Option<i32>,
    pub quiz_passed: Option<bool>,
}

impl LessonState {
    fn quiz(&self) -> Option<(i32, bool)> {
        self.quiz_score.zip(self.quiz_passed)
    }
}

/// A report merged into a lesson's earlier progress: the new state and what changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LessonMerge {
    pub state: LessonState,
    pub started_now: bool,
    pub completed_now: bool,
    /// The quiz result this report recorded: (score, passed).
    pub quiz: Option<(i32, bool)>,
    previous_watch_time_seconds: i64,
    previous_quiz: Option<(i32, bool)>,
}

/// Merges a report into the lesson's earlier progress. A completed lesson stays completed,
/// watch time only grows, and a quiz keeps its last score until a new one is reported.
pub fn merge_lesson(previous: Option<&LessonState>, report: &LessonReport) -> LessonMerge {
    let was_completed = previous.is_some_and(|p| p.status == LessonProgressStatus::Completed);
    let completed = was_completed || report.status == LessonProgressStatus::Completed;
    let previous_watch = previous.map_or(0, |p| p.watch_time_seconds);
    let quiz = report
        .quiz_score
        .map(|score| (score, score >= QUIZ_PASS_MARK));
    let previous_quiz = previous.and_then(LessonState::quiz);
    let (quiz_score, quiz_passed) = match (quiz, previous) {
        (Some((score, passed)), _) => (Some(score), Some(passed)),
        (None, Some(p)) => (p.quiz_score, p.quiz_passed),
        (None, None) => (None, None),
    };
    LessonMerge {
        state: LessonState {
            status: if completed {
                LessonProgressStatus::Completed
            } else {
                LessonProgressStatus::InProgress
            },
            progress_percent: if completed {
                100
            } else {
                report.progress_percent
            },
            watch_time_seconds: previous_watch.max(report.watch_time_seconds),
            quiz_score,
            quiz_passed,
        },
        started_now: previous.is_none(),
        completed_now: completed && !was_completed,
        quiz,
        previous_watch_time_seconds: previous_watch,
        previous_quiz,
    }
}

impl ProgressTotals {
    /// Adds the difference one merged report made to the course's totals.
    pub fn apply(&mut self, merge: &LessonMerge) {
        self.completed_lessons += i32::from(merge.completed_now);
        self.total_watch_time_seconds +=
            merge.state.watch_time_seconds - merge.previous_watch_time_seconds;
        match (merge.quiz, merge.previous_quiz) {
            (Some((score, passed)), None) => {
                self.quizzes_taken += 1;
                self.quiz_score_sum += i64::from(score);
                self.quizzes_passed += i32::from(passed);
            }
            (Some((score, passed)), Some((old_score, old_passed))) => {
                self.quiz_score_sum += i64::from(score) - i64::from(old_score);
                self.quizzes_passed += i32::from(passed) - i32::from(old_passed);
            }
            (None, _) => {}
        }
    }

    /// Every lesson done: an active enrollment becomes completed.
    pub fn completes(&self, enrollment: EnrollmentStatus) -> bool {
        enrollment == EnrollmentStatus::Active
            && self.total_lessons > 0
            && self.completed_lessons >= self.total_lessons
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(status: LessonProgressStatus, percent: i32, watch: i64) -> LessonReport {
        LessonReport {
            status,
            progress_percent: percent,
            watch_time_seconds: watch,
            quiz_score: None,
        }
    }

    #[test]
    fn a_completed_lesson_stays_completed_and_watch_time_only_grows() {
        use LessonProgressStatus::*;
        let first = merge_lesson(None, &report(InProgress, 40, 300));
        assert!(first.started_now && !first.completed_now);
        assert_eq!(first.state.progress_percent, 40);
        let done = merge_lesson(Some(&first.state), &report(Completed, 80, 200));
        assert!(!done.started_now && done.completed_now);
        assert_eq!(
            (
                done.state.status,
                done.state.progress_percent,
                done.state.watch_time_seconds
            ),
            (Completed, 100, 300)
        );
        let again = merge_lesson(Some(&done.state), &report(InProgress, 10, 900));
        assert!(!again.completed_now);
        assert_eq!(
            (again.state.status, again.state.watch_time_seconds),
            (Completed, 900)
        );

        let mut totals = ProgressTotals {
            total_lessons: 2,
            ..Default::default()
        };
        for merge in [&first, &done, &again] {
            totals.apply(merge);
        }
        assert_eq!(totals.completed_lessons, 1);
        assert_eq!(totals.total_watch_time_seconds, 900);
        assert!(!totals.completes(EnrollmentStatus::Active));
        totals.completed_lessons = 2;
        assert!(totals.completes(EnrollmentStatus::Active));
        assert!(!totals.completes(EnrollmentStatus::Completed));
    }

    #[test]
    fn a_retaken_quiz_replaces_its_score_in_the_totals() {
        use LessonProgressStatus::*;
        let quiz = |score| LessonReport {
            quiz_score: Some(score),
            ..report(InProgress, 50, 0)
        };
        let failed = merge_lesson(None, &quiz(50));
        assert_eq!(failed.quiz, Some((50, false)));
        let passed = merge_lesson(Some(&failed.state), &quiz(QUIZ_PASS_MARK));
        let kept = merge_lesson(Some(&passed.state), &report(InProgress, 60, 0));
        assert_eq!(kept.quiz, None);
        assert_eq!(
            (kept.state.quiz_score, kept.state.quiz_passed),
            (Some(70), Some(true))
        );
        let mut totals = ProgressTotals::default();
        for merge in [&failed, &passed, &kept] {
            totals.apply(merge);
        }
        assert_eq!(
            (
                totals.quizzes_taken,
                totals.quizzes_passed,
                totals.quiz_score_sum
            ),
            (1, 1, 70)
        );
        assert!(quiz(80).fits(LessonType::Quiz).is_ok());
        assert!(quiz(80).fits(LessonType::Video).is_err());
    }

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
