use std::collections::HashSet;

use lyceum_platform::auth::{optional_principal, require_principal};
use lyceum_platform::convert::{TimePosition, page_size, parse_id, required_id, update_mask};
use lyceum_platform::{ApiError, Violations};
use lyceum_proto::learning::v1 as pb;
use lyceum_proto::learning::v1::review_service_server::ReviewService;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{LearningApi, course_access, decode_position, paginate, visible_course, wire};
use crate::domain::review::{RatingChange, may_review, may_vote};
use crate::domain::{
    BoundedText, CourseId, EnrollmentId, ReviewId, UserId, parse_optional_rating, parse_rating,
};
use crate::events;
use crate::store::reviews::{ReviewContent, ReviewRow};
use crate::store::{Tx, courses, enrollments, reviews};

type ReviewTitle = BoundedText<200, false>;
type ReviewText = BoundedText<5000, false>;
type Response_ = BoundedText<5000, true>;

/// Validates the content fields of a review message.
fn parse_content(v: &mut Violations, prefix: &str, review: &pb::Review) -> Option<ReviewContent> {
    let field = |name: &str| format!("{prefix}{name}");
    let rating = v.check(&field("rating"), parse_rating(review.rating));
    let quality = v.check(
        &field("content_quality_rating"),
        parse_optional_rating(review.content_quality_rating),
    );
    let instructor = v.check(
        &field("instructor_rating"),
        parse_optional_rating(review.instructor_rating),
    );
    let value = v.check(
        &field("value_rating"),
        parse_optional_rating(review.value_rating),
    );
    let title = v.check(&field("title"), ReviewTitle::parse(&review.title));
    let text = v.check(&field("text"), ReviewText::parse(&review.text));
    Some(ReviewContent {
        rating: rating?,
        content_quality_rating: quality?,
        instructor_rating: instructor?,
        value_rating: value?,
        title: title?.into_inner(),
        text: text?.into_inner(),
    })
}

/// A CreateReview request, validated.
struct CreateReview {
    course_id: Uuid,
    content: ReviewContent,
}

impl TryFrom<pb::CreateReviewRequest> for CreateReview {
    type Error = ApiError;

    fn try_from(req: pb::CreateReviewRequest) -> Result<Self, ApiError> {
        let mut v = Violations::new();
        let course_id = required_id(&mut v, "course_id", &req.course_id);
        let content = parse_content(
            &mut v,
            "",
            &pb::Review {
                rating: req.rating,
                content_quality_rating: req.content_quality_rating,
                instructor_rating: req.instructor_rating,
                value_rating: req.value_rating,
                title: req.title,
                text: req.text,
                ..Default::default()
            },
        );
        v.into_result()?;
        let (Some(course_id), Some(content)) = (course_id, content) else {
            unreachable!("parsed when there are no violations")
        };
        Ok(Self { course_id, content })
    }
}

/// An UpdateReview request, validated as far as the request alone allows: the review's
/// id and the fields its mask names. The new values are merged with the stored review
/// and checked together.
struct UpdateReview {
    id: Uuid,
    paths: HashSet<String>,
    review: pb::Review,
}

impl TryFrom<pb::UpdateReviewRequest> for UpdateReview {
    type Error = ApiError;

    fn try_from(req: pb::UpdateReviewRequest) -> Result<Self, ApiError> {
        let review = req.review.unwrap_or_default();
        let mut v = Violations::new();
        let id = required_id(&mut v, "review.id", &review.id);
        let paths = update_mask(
            &mut v,
            req.update_mask,
            &[
                "rating",
                "content_quality_rating",
                "instructor_rating",
                "value_rating",
                "title",
                "text",
            ],
        );
        v.into_result()?;
        let id = id.expect("parsed when there are no violations");
        Ok(Self { id, paths, review })
    }
}

/// A ListReviews request, validated.
struct ListReviews {
    course_id: Uuid,
    limit: i64,
    after: Option<TimePosition>,
}

impl TryFrom<pb::ListReviewsRequest> for ListReviews {
    type Error = ApiError;

    fn try_from(req: pb::ListReviewsRequest) -> Result<Self, ApiError> {
        let mut v = Violations::new();
        let course_id = required_id(&mut v, "course_id", &req.course_id);
        let limit = page_size(&mut v, req.page_size);
        let after = decode_position(&mut v, &req.page_token);
        v.into_result()?;
        let course_id = course_id.expect("parsed when there are no violations");
        Ok(Self {
            course_id,
            limit,
            after,
        })
    }
}

/// A RespondToReview request, validated.
struct RespondToReview {
    review_id: Uuid,
    response: Response_,
}

impl TryFrom<pb::RespondToReviewRequest> for RespondToReview {
    type Error = ApiError;

    fn try_from(req: pb::RespondToReviewRequest) -> Result<Self, ApiError> {
        let mut v = Violations::new();
        let review_id = required_id(&mut v, "review_id", &req.review_id);
        let response = v.check("response", Response_::parse(&req.response));
        v.into_result()?;
        let (Some(review_id), Some(response)) = (review_id, response) else {
            unreachable!("parsed when there are no violations")
        };
        Ok(Self {
            review_id,
            response,
        })
    }
}

impl LearningApi {
    /// Applies a review's change to the course's rating statistics as the service,
    /// returning the new statistics.
    async fn adjust_ratings(
        &self,
        tx: &mut Tx,
        course_id: uuid::Uuid,
        change: RatingChange,
    ) -> Result<courses::Ratings, ApiError> {
        tx.begin_bookkeeping("course ratings").await?;
        let rating = courses::add_to_ratings(tx, course_id, change.sum, change.count).await?;
        tx.end_bookkeeping().await?;
        Ok(rating)
    }

    async fn own_review(
        &self,
        tx: &mut Tx,
        principal: &lyceum_platform::auth::Principal,
        id: uuid::Uuid,
    ) -> Result<ReviewRow, ApiError> {
        let review = reviews::lock(tx, id)
            .await?
            .ok_or_else(|| ApiError::not_found("review"))?;
        if !principal.is_user(review.student_id) && !principal.has_platform_access() {
            return Err(ApiError::PermissionDenied(
                "only the review's author may change it".into(),
            ));
        }
        Ok(review)
    }

    async fn create_review_(
        &self,
        request: Request<pb::CreateReviewRequest>,
    ) -> Result<pb::CreateReviewResponse, ApiError> {
        let principal = require_principal(&request)?;
        let CreateReview { course_id, content } = request.into_inner().try_into()?;
        let mut tx = self.tx_for(Some(&principal)).await?;
        let (course, _) = visible_course(&mut tx, Some(&principal), course_id).await?;
        // The course's review switch (`allow_comments`).
        if !course.allow_comments {
            return Err(ApiError::FailedPrecondition(
                "this course does not take reviews".into(),
            ));
        }
        let enrollment = enrollments::lock_by_student(
            &mut tx,
            CourseId::new(course_id),
            UserId::new(principal.subject),
        )
        .await?;
        let enrollment = may_review(enrollment, |e| e.status)?;
        let change = RatingChange::created(content.rating);
        let review = reviews::insert(
            &mut tx,
            CourseId::new(course_id),
            UserId::new(principal.subject),
            EnrollmentId::new(enrollment.id),
            UserId::new(course.instructor_id),
            content,
        )
        .await?;
        let stats = self.adjust_ratings(&mut tx, course_id, change).await?;
        tx.publish(events::review_changed(
            change.verb,
            &review,
            stats,
            course.organization_id,
        ))
        .await?;
        tx.commit().await?;
        Ok(pb::CreateReviewResponse {
            review: Some(wire::review(review)),
        })
    }

    async fn update_review_(
        &self,
        request: Request<pb::UpdateReviewRequest>,
    ) -> Result<pb::UpdateReviewResponse, ApiError> {
        let principal = require_principal(&request)?;
        let UpdateReview { id, paths, review } = request.into_inner().try_into()?;
        let mut tx = self.tx_for(Some(&principal)).await?;
        let stored = self.own_review(&mut tx, &principal, id).await?;
        let pick = |path: &str, new: i32, old: Option<i32>| {
            if paths.contains(path) {
                new
            } else {
                old.unwrap_or(0)
            }
        };
        let mut v = Violations::new();
        let merged = pb::Review {
            rating: pick("rating", review.rating, Some(stored.rating)),
            content_quality_rating: pick(
                "content_quality_rating",
                review.content_quality_rating,
                stored.content_quality_rating,
            ),
            instructor_rating: pick(
                "instructor_rating",
                review.instructor_rating,
                stored.instructor_rating,
            ),
            value_rating: pick("value_rating", review.value_rating, stored.value_rating),
            title: if paths.contains("title") {
                review.title.clone()
            } else {
                stored.title.clone()
            },
            text: if paths.contains("text") {
                review.text.clone()
            } else {
                stored.review_text.clone()
            },
            ..Default::default()
        };
        let content = parse_content(&mut v, "review.", &merged);
        v.into_result()?;
        let content = content.expect("parsed when there are no violations");
        let change = RatingChange::updated(stored.rating, content.rating);
        let updated = reviews::update_content(&mut tx, id, content).await?;
        let stats = self
            .adjust_ratings(&mut tx, stored.course_id, change)
            .await?;
        let course = courses::get(&mut tx, stored.course_id).await?;
        tx.publish(events::review_changed(
            change.verb,
            &updated,
            stats,
            course.and_then(|c| c.organization_id),
        ))
        .await?;
        tx.commit().await?;
        Ok(pb::UpdateReviewResponse {
            review: Some(wire::review(updated)),
        })
    }

    async fn delete_review_(
        &self,
        request: Request<pb::DeleteReviewRequest>,
    ) -> Result<pb::DeleteReviewResponse, ApiError> {
        let principal = require_principal(&request)?;
        let id = parse_id("id", &request.get_ref().id)?;
        let mut tx = self.tx_for(Some(&principal)).await?;
        let review = self.own_review(&mut tx, &principal, id).await?;
        reviews::delete(&mut tx, id).await?;
        let change = RatingChange::deleted(review.rating);
        let stats = self
            .adjust_ratings(&mut tx, review.course_id, change)
            .await?;
        let course = courses::get(&mut tx, review.course_id).await?;
        tx.publish(events::review_changed(
            change.verb,
            &review,
            stats,
            course.and_then(|c| c.organization_id),
        ))
        .await?;
        tx.commit().await?;
        Ok(pb::DeleteReviewResponse {})
    }

    async fn list_reviews_(
        &self,
        request: Request<pb::ListReviewsRequest>,
    ) -> Result<pb::ListReviewsResponse, ApiError> {
        let principal = optional_principal(&request);
        let ListReviews {
            course_id,
            limit,
            after,
        } = request.into_inner().try_into()?;
        let mut tx = self.tx_for(principal.as_ref()).await?;
        visible_course(&mut tx, principal.as_ref(), course_id).await?;
        let rows = reviews::list(&mut tx, CourseId::new(course_id), after, limit + 1).await?;
        tx.commit().await?;
        let (rows, next_page_token) = paginate(rows, limit, |r| (r.created_at, r.id));
        Ok(pb::ListReviewsResponse {
            reviews: rows.into_iter().map(wire::review).collect(),
            next_page_token,
        })
    }

    async fn respond_to_review_(
        &self,
        request: Request<pb::RespondToReviewRequest>,
    ) -> Result<pb::RespondToReviewResponse, ApiError> {
        let principal = require_principal(&request)?;
        let RespondToReview {
            review_id: id,
            response,
        } = request.into_inner().try_into()?;
        let mut tx = self.tx_for(Some(&principal)).await?;
        let review = reviews::get(&mut tx, id)
            .await?
            .ok_or_else(|| ApiError::not_found("review"))?;
        let course = courses::get(&mut tx, review.course_id)
            .await?
            .ok_or_else(|| ApiError::not_found("review"))?;
        if !course_access(&mut tx, Some(&principal), &course)
            .await?
            .respond_to_reviews
        {
            return Err(ApiError::permission_denied());
        }
        let updated = reviews::respond(&mut tx, id, response.into_inner()).await?;
        tx.commit().await?;
        Ok(pb::RespondToReviewResponse {
            review: Some(wire::review(updated)),
        })
    }

    async fn vote_review_helpful_(
        &self,
        request: Request<pb::VoteReviewHelpfulRequest>,
    ) -> Result<pb::VoteReviewHelpfulResponse, ApiError> {
        let principal = require_principal(&request)?;
        let id = parse_id("review_id", &request.get_ref().review_id)?;
        let mut tx = self.tx_for(Some(&principal)).await?;
        let review = reviews::get(&mut tx, id)
            .await?
            .ok_or_else(|| ApiError::not_found("review"))?;
        may_vote(principal.is_user(review.student_id))?;
        let voted =
            reviews::toggle_vote(&mut tx, ReviewId::new(id), UserId::new(principal.subject))
                .await?;
        tx.begin_bookkeeping("helpful votes").await?;
        let updated =
            reviews::add_to_helpful_count(&mut tx, id, if voted { 1 } else { -1 }).await?;
        tx.commit().await?;
        Ok(pb::VoteReviewHelpfulResponse {
            review: Some(wire::review(updated)),
            voted,
        })
    }
}

#[tonic::async_trait]
impl ReviewService for LearningApi {
    async fn create_review(
        &self,
        r: Request<pb::CreateReviewRequest>,
    ) -> Result<Response<pb::CreateReviewResponse>, Status> {
        Ok(Response::new(self.create_review_(r).await?))
    }
    async fn update_review(
        &self,
        r: Request<pb::UpdateReviewRequest>,
    ) -> Result<Response<pb::UpdateReviewResponse>, Status> {
        Ok(Response::new(self.update_review_(r).await?))
    }
    async fn delete_review(
        &self,
        r: Request<pb::DeleteReviewRequest>,
    ) -> Result<Response<pb::DeleteReviewResponse>, Status> {
        Ok(Response::new(self.delete_review_(r).await?))
    }
    async fn list_reviews(
        &self,
        r: Request<pb::ListReviewsRequest>,
    ) -> Result<Response<pb::ListReviewsResponse>, Status> {
        Ok(Response::new(self.list_reviews_(r).await?))
    }
    async fn respond_to_review(
        &self,
        r: Request<pb::RespondToReviewRequest>,
    ) -> Result<Response<pb::RespondToReviewResponse>, Status> {
        Ok(Response::new(self.respond_to_review_(r).await?))
    }
    async fn vote_review_helpful(
        &self,
        r: Request<pb::VoteReviewHelpfulRequest>,
    ) -> Result<Response<pb::VoteReviewHelpfulResponse>, Status> {
        Ok(Response::new(self.vote_review_helpful_(r).await?))
    }
}
