//! Reviews: who may write them, ratings kept exact under concurrency, responses, votes,
//! and the reconciliation of course statistics.

mod common;

use common::*;
use lyceum_platform::verify::Reconciliation;
use lyceum_proto::learning::v1 as pb;
use lyceum_testkit::{assert_code, authed, violated_fields};
use tonic::Code;

async fn completed_student(app: &TestApp, course: &pb::Course, lessons: &[String]) -> User {
    let student = app.student(None);
    let enrollment = app.enroll(&student, &course.id).await;
    app.complete(&student, &enrollment.id, lessons).await;
    student
}

fn review(course: &pb::Course, rating: i32) -> pb::CreateReviewRequest {
    pb::CreateReviewRequest {
        course_id: course.id.clone(),
        rating,
        title: "Solid".into(),
        text: "Worth it".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn only_students_who_completed_the_course_review_it_once() {
    let app = TestApp::spawn().await;
    let teacher = app.instructor(None);
    let (course, lessons) = app.published_course(&teacher, 0, 1).await;
    let halfway = app.student(None);
    app.enroll(&halfway, &course.id).await;
    assert_code(
        app.reviews()
            .create_review(authed(review(&course, 5), &halfway.token))
            .await,
        Code::FailedPrecondition,
    );
    let outsider = app.student(None);
    assert_code(
        app.reviews()
            .create_review(authed(review(&course, 5), &outsider.token))
            .await,
        Code::FailedPrecondition,
    );

    let graduate = completed_student(&app, &course, &lessons).await;
    let status = assert_code(
        app.reviews()
            .create_review(authed(review(&course, 6), &graduate.token))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), vec!["rating"]);
    let mut bad_breakdown = review(&course, 4);
    bad_breakdown.value_rating = 9;
    let status = assert_code(
        app.reviews()
            .create_review(authed(bad_breakdown, &graduate.token))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), vec!["value_rating"]);

    let created = app
        .reviews()
        .create_review(authed(review(&course, 4), &graduate.token))
        .await
        .unwrap()
        .into_inner()
        .review
        .unwrap();
    assert_code(
        app.reviews()
            .create_review(authed(review(&course, 5), &graduate.token))
            .await,
        Code::AlreadyExists,
    );
    let stats = app
        .course(&graduate, &course.id)
        .await
        .unwrap()
        .statistics
        .unwrap();
    assert_eq!((stats.average_rating, stats.review_count), (4.0, 1));

    // The author changes the rating; the course follows.
    app.reviews()
        .update_review(authed(
            pb::UpdateReviewRequest {
                review: Some(pb::Review {
                    id: created.id.clone(),
                    rating: 2,
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["rating".into()],
                }),
            },
            &graduate.token,
        ))
        .await
        .unwrap();
    let stats = app
        .course(&graduate, &course.id)
        .await
        .unwrap()
        .statistics
        .unwrap();
    assert_eq!((stats.average_rating, stats.review_count), (2.0, 1));
    assert_code(
        app.reviews()
            .delete_review(authed(
                pb::DeleteReviewRequest {
                    id: created.id.clone(),
                },
                &teacher.token,
            ))
            .await,
        Code::PermissionDenied,
    );

    // The instructor answers; other users vote it helpful (and can withdraw the vote).
    let answered = app
        .reviews()
        .respond_to_review(authed(
            pb::RespondToReviewRequest {
                review_id: created.id.clone(),
                response: "Thanks!".into(),
            },
            &teacher.token,
        ))
        .await
        .unwrap()
        .into_inner()
        .review
        .unwrap();
    assert_eq!(answered.instructor_response, "Thanks!");
    assert_code(
        app.reviews()
            .respond_to_review(authed(
                pb::RespondToReviewRequest {
                    review_id: created.id.clone(),
                    response: "Me too".into(),
                },
                &outsider.token,
            ))
            .await,
        Code::PermissionDenied,
    );
    let vote = |user: &User| {
        let mut client = app.reviews();
        let request = authed(
            pb::VoteReviewHelpfulRequest {
                review_id: created.id.clone(),
            },
            &user.token,
        );
        async move { client.vote_review_helpful(request).await }
    };
    assert_eq!(
        vote(&outsider)
            .await
            .unwrap()
            .into_inner()
            .review
            .unwrap()
            .helpful_count,
        1
    );
    assert_eq!(
        vote(&halfway)
            .await
            .unwrap()
            .into_inner()
            .review
            .unwrap()
            .helpful_count,
        2
    );
    let withdrawn = vote(&outsider).await.unwrap().into_inner();
    assert_eq!(
        (withdrawn.voted, withdrawn.review.unwrap().helpful_count),
        (false, 1)
    );
    assert_code(vote(&graduate).await, Code::FailedPrecondition);

    app.reviews()
        .delete_review(authed(
            pb::DeleteReviewRequest {
                id: created.id.clone(),
            },
            &graduate.token,
        ))
        .await
        .unwrap();
    let stats = app
        .course(&graduate, &course.id)
        .await
        .unwrap()
        .statistics
        .unwrap();
    assert_eq!((stats.average_rating, stats.review_count), (0.0, 0));
    let subjects = app.outbox_subjects().await;
    for verb in ["created", "updated", "deleted"] {
        assert!(
            subjects.contains(&format!("learning.review.{verb}")),
            "{verb}"
        );
    }
}

#[tokio::test]
async fn concurrent_reviews_keep_the_rating_exact_and_verify_repairs_drift() {
    let app = TestApp::spawn().await;
    let teacher = app.instructor(None);
    let (course, lessons) = app.published_course(&teacher, 0, 1).await;
    let mut students = Vec::new();
    for _ in 0..40 {
        students.push(completed_student(&app, &course, &lessons).await);
    }
    let attempts = students.iter().enumerate().map(|(i, student)| {
        let mut client = app.reviews();
        let request = authed(review(&course, (i % 5) as i32 + 1), &student.token);
        async move { client.create_review(request).await }
    });
    let results = futures::future::join_all(attempts).await;
    assert!(results.iter().all(|r| r.is_ok()));
    let stats = app
        .course(&teacher, &course.id)
        .await
        .unwrap()
        .statistics
        .unwrap();
    // Ratings 1..5 eight times each: sum 120 over 40 reviews.
    assert_eq!((stats.review_count, stats.average_rating), (40, 3.0));
    assert_eq!((stats.enrolled_count, stats.completed_count), (40, 40));

    let check = lyceum_learning::jobs::course_statistics::CourseStatistics;
    assert!(check.check(&app.learning).await.unwrap().is_empty());
    // Damage the statistics behind the service's back: verify sees it and repairs it.
    let mut conn = app.db.admin_connection().await;
    sqlx::query(
        "UPDATE learning.courses SET enrolled_count = 45, rating_sum = 1 WHERE id = $1::uuid",
    )
    .bind(&course.id)
    .execute(&mut conn)
    .await
    .unwrap();
    let drift = check.check(&app.learning).await.unwrap();
    assert_eq!(drift.len(), 2, "{drift:?}");
    let checks: Vec<Box<dyn Reconciliation>> = vec![Box::new(check)];
    let reports = lyceum_platform::verify::run(&app.learning, &checks, true)
        .await
        .unwrap();
    assert_eq!(reports[0].repaired, Some(1));
    let stats = app
        .course(&teacher, &course.id)
        .await
        .unwrap()
        .statistics
        .unwrap();
    assert_eq!((stats.enrolled_count, stats.average_rating), (40, 3.0));
}
