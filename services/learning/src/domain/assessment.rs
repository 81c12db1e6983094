//! An assessment's rules: the five dimensions, question weights and answer values, the
//! score math (exact, in integers of thousandths and hundredths, the same the database
//! computes in numerics), the status moves and the recommendations of a completed one.
//!
//! Scores: a dimension's is round(Σ weight·value / Σ weight, 2) over its scored answers,
//! none while it has none or their weights sum to zero; the overall is the mean of the
//! dimensions that have one, rounded half-up to 2 decimals, none when no dimension has one.
//! Text answers are never scored.

use lyceum_platform::text_enum;
use lyceum_proto::learning::v1 as pb;
use thiserror::Error;

text_enum! {
    pub enum Dimension: pb::Dimension {
        Individual = "individual" => Individual,
        Leadership = "leadership" => Leadership,
        Cultural = "cultural" => Cultural,
        Embedding = "embedding" => Embedding,
        Velocity = "velocity" => Velocity,
    }
}

text_enum! {
    pub enum AnswerType: pb::AnswerType {
        Scale = "scale" => Scale,
        MultipleChoice = "multiple_choice" => MultipleChoice,
        FearToConfidence = "fear_to_confidence" => FearToConfidence,
        Text = "text" => Text,
    }
}

text_enum! {
    pub enum AssessmentType: pb::AssessmentType {
        Full = "full" => Full,
        Quick = "quick" => Quick,
        FollowUp = "follow_up" => FollowUp,
    }
}

text_enum! {
    pub enum AssessmentStatus: pb::AssessmentStatus {
        InProgress = "in_progress" => InProgress,
        Completed = "completed" => Completed,
        Abandoned = "abandoned" => Abandoned,
    }
}

impl AnswerType {
    /// Whether answers of this type enter the dimension's score.
    pub fn is_scored(self) -> bool {
        self != AnswerType::Text
    }
}

/// The most questions a template has.
pub const MAX_QUESTIONS: usize = 200;
/// The most a question weighs.
pub const MAX_WEIGHT_MILLI: i64 = 1_000_000;

/// A question's weight in thousandths: 0 to 1,000 with at most three decimals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Weight(i64);

impl Weight {
    pub fn parse(raw: f64) -> Result<Self, String> {
        if !raw.is_finite() {
            return Err("must be a number".into());
        }
        if raw < 0.0 {
            return Err("must not be negative".into());
        }
        let milli = (raw * 1000.0).round();
        if milli > MAX_WEIGHT_MILLI as f64 {
            return Err("must be at most 1000".into());
        }
        if (raw * 1000.0 - milli).abs() > 1e-6 {
            return Err("must have at most three decimals".into());
        }
        Ok(Self(milli as i64))
    }

    pub fn from_milli(milli: i64) -> Self {
        Self(milli)
    }

    pub fn milli(self) -> i64 {
        self.0
    }

    pub fn as_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }
}

/// A scored answer: 0 to 100.
pub fn parse_answer_value(raw: i32) -> Result<i16, String> {
    if (0..=100).contains(&raw) {
        Ok(raw as i16)
    } else {
        Err("must be from 0 to 100".into())
    }
}

/// Hundredths of a score, 0 to 10,000: the numeric(5, 2) of the database.
pub type Hundredths = i64;

/// Half-up division of non-negative integers.
fn divide_half_up(numerator: i128, denominator: i128) -> i128 {
    (2 * numerator + denominator) / (2 * denominator)
}

/// Running sums of one dimension, in thousandths of weight: Σ weight·value and Σ weight.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DimensionSums {
    pub weighted_sum_milli: i128,
    pub weight_total_milli: i128,
}

impl DimensionSums {
    /// Adds a scored answer, or takes one away (`sign` = -1) when it is replaced.
    pub fn apply(&mut self, weight: Weight, value: i16, sign: i128) {
        self.weighted_sum_milli += sign * i128::from(weight.milli()) * i128::from(value);
        self.weight_total_milli += sign * i128::from(weight.milli());
    }

    /// The dimension's score, none without scored weight.
    pub fn score(&self) -> Option<Hundredths> {
        if self.weight_total_milli <= 0 {
            return None;
        }
        Some(divide_half_up(self.weighted_sum_milli * 100, self.weight_total_milli) as i64)
    }
}

/// The mean of the scores that exist, half-up to hundredths; none when none exists.
pub fn overall_score(scores: &[Option<Hundredths>]) -> Option<Hundredths> {
    let present: Vec<i128> = scores.iter().flatten().map(|&s| i128::from(s)).collect();
    if present.is_empty() {
        return None;
    }
    Some(divide_half_up(present.iter().sum(), present.len() as i128) as i64)
}

/// Hundredths as the caller's decimal number.
pub fn as_points(score: Hundredths) -> f64 {
    score as f64 / 100.0
}

/// What a caller may do with an assessment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum AssessmentRefusal {
    #[error("only the assessment's owner answers, completes or abandons it")]
    NotOwner,
    #[error("the assessment is {0}, no longer in progress")]
    NotInProgress(AssessmentStatus),
    #[error("an assessment is completed after at least one answer")]
    NothingAnswered,
}

/// Whether the caller may change the assessment (answer, complete, abandon) now.
pub fn decide_change(status: AssessmentStatus, is_owner: bool) -> Result<(), AssessmentRefusal> {
    if !is_owner {
        return Err(AssessmentRefusal::NotOwner);
    }
    if status != AssessmentStatus::InProgress {
        return Err(AssessmentRefusal::NotInProgress(status));
    }
    Ok(())
}

/// Whether the assessment may be completed now.
pub fn decide_complete(
    status: AssessmentStatus,
    is_owner: bool,
    answer_count: i32,
) -> Result<(), AssessmentRefusal> {
    decide_change(status, is_owner)?;
    if answer_count == 0 {
        return Err(AssessmentRefusal::NothingAnswered);
    }
    Ok(())
}

/// Advice for a dimension that scored low.
pub fn advice(dimension: Dimension) -> &'static str {
    match dimension {
        Dimension::Individual => {
            "Build personal adaptability: set a weekly learning goal and reflect on one change you handled."
        }
        Dimension::Leadership => {
            "Lead change visibly: explain the why of each change to your team and invite their questions."
        }
        Dimension::Cultural => {
            "Strengthen a culture of change: make experiments safe and share what failed as openly as what worked."
        }
        Dimension::Embedding => {
            "Embed new ways of working: turn one recent change into a documented routine with an owner."
        }
        Dimension::Velocity => {
            "Raise the pace of change: shorten decision loops and review one stalled initiative this month."
        }
    }
}

/// How many of the lowest-scoring dimensions a completed assessment recommends on.
pub const RECOMMENDED_DIMENSIONS: usize = 2;

/// The recommendations of a completed assessment: the lowest-scoring dimensions that have a
/// score, lowest first, ties in dimension order.
pub fn recommendations(scores: &[(Dimension, Option<Hundredths>)]) -> Vec<(Dimension, Hundredths)> {
    let mut scored: Vec<(Dimension, Hundredths)> = scores
        .iter()
        .filter_map(|&(d, s)| s.map(|s| (d, s)))
        .collect();
    // A stable sort keeps dimension order among equal scores.
    scored.sort_by_key(|&(_, s)| s);
    scored.truncate(RECOMMENDED_DIMENSIONS);
    scored
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(raw: f64) -> Weight {
        Weight::parse(raw).unwrap()
    }

    #[test]
    fn weights_are_non_negative_thousandths_up_to_a_thousand() {
        assert_eq!(w(1.5).milli(), 1500);
        assert_eq!(w(0.0).milli(), 0);
        assert_eq!(w(1000.0).milli(), 1_000_000);
        assert!(Weight::parse(-0.5).is_err());
        assert!(Weight::parse(1000.001).is_err());
        assert!(Weight::parse(0.0001).is_err());
        assert!(Weight::parse(f64::NAN).is_err());
    }

    #[test]
    fn answer_values_are_zero_to_a_hundred() {
        assert_eq!(parse_answer_value(0), Ok(0));
        assert_eq!(parse_answer_value(100), Ok(100));
        assert!(parse_answer_value(101).is_err());
        assert!(parse_answer_value(-1).is_err());
    }

    #[test]
    fn a_dimension_is_the_weighted_average_rounded_half_up_to_hundredths() {
        let mut sums = DimensionSums::default();
        assert_eq!(sums.score(), None);
        sums.apply(w(1.0), 70, 1);
        sums.apply(w(2.0), 80, 1);
        // (70 + 160) / 3 = 76.666… → 76.67
        assert_eq!(sums.score(), Some(7667));
        let mut half = DimensionSums::default();
        half.apply(w(1.0), 0, 1);
        half.apply(w(1.0), 1, 1);
        half.apply(w(1.0), 0, 1);
        half.apply(w(1.0), 0, 1);
        half.apply(w(1.0), 0, 1);
        half.apply(w(1.0), 0, 1);
        half.apply(w(1.0), 0, 1);
        half.apply(w(1.0), 0, 1);
        // 1 / 8 = 0.125 → 0.13 (half-up)
        assert_eq!(half.score(), Some(13));
    }

    #[test]
    fn replacing_an_answer_takes_the_old_one_out() {
        let mut sums = DimensionSums::default();
        sums.apply(w(1.0), 40, 1);
        sums.apply(w(1.0), 40, -1);
        sums.apply(w(1.0), 90, 1);
        assert_eq!(sums.score(), Some(9000));
    }

    #[test]
    fn zero_total_weight_leaves_the_dimension_unscored() {
        let mut sums = DimensionSums::default();
        sums.apply(w(0.0), 80, 1);
        assert_eq!(sums.score(), None);
    }

    #[test]
    fn the_overall_is_the_mean_of_the_scored_dimensions_half_up() {
        assert_eq!(overall_score(&[None, None, None, None, None]), None);
        assert_eq!(
            overall_score(&[Some(5000), None, None, None, None]),
            Some(5000)
        );
        // (10.01 + 10.00) / 2 = 10.005 → 10.01
        assert_eq!(
            overall_score(&[Some(1001), Some(1000), None, None, None]),
            Some(1001)
        );
        // (1 + 1 + 0) / 3 hundredths = 0.00666… → 0.01
        assert_eq!(overall_score(&[Some(1), Some(1), Some(0)]), Some(1));
    }

    #[test]
    fn only_the_owner_changes_an_assessment_in_progress() {
        use AssessmentStatus::*;
        assert_eq!(decide_change(InProgress, true), Ok(()));
        assert_eq!(
            decide_change(InProgress, false),
            Err(AssessmentRefusal::NotOwner)
        );
        assert_eq!(
            decide_change(Completed, true),
            Err(AssessmentRefusal::NotInProgress(Completed))
        );
        assert_eq!(
            decide_change(Abandoned, true),
            Err(AssessmentRefusal::NotInProgress(Abandoned))
        );
        assert_eq!(
            decide_complete(InProgress, true, 0),
            Err(AssessmentRefusal::NothingAnswered)
        );
        assert_eq!(decide_complete(InProgress, true, 1), Ok(()));
    }

    #[test]
    fn recommendations_name_the_two_lowest_scored_dimensions() {
        use Dimension::*;
        let scores = [
            (Individual, Some(8000)),
            (Leadership, Some(4000)),
            (Cultural, None),
            (Embedding, Some(4000)),
            (Velocity, Some(9000)),
        ];
        assert_eq!(
            recommendations(&scores),
            vec![(Leadership, 4000), (Embedding, 4000)]
        );
        assert!(recommendations(&[(Individual, None)]).is_empty());
    }
}
