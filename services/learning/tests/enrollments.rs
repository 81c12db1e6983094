//! Enrollments, payments, progress and completion.

mod common;

use common::*;
use lyceum_proto::events::v1 as events;
use lyceum_proto::learning::v1 as pb;
use lyceum_testkit::{assert_code, authed, eventually, violated_fields};
use tonic::Code;
use uuid::Uuid;

#[tokio::test]
async fn a_free_course_activates_at_once_and_progress_completes_it() {
    let app = TestApp::spawn().await;
    let teacher = app.instructor(None);
    let student = app.student(None);
    let (course, lessons) = app.published_course(&teacher, 0, 3).await;
    let enrollment = app.enroll(&student, &course.id).await;
    assert_eq!(enrollment.status, pb::EnrollmentStatus::Active as i32);
    assert_code(
        app.enrollments()
            .enroll(authed(
                pb::EnrollRequest {
                    course_id: course.id.clone(),
                },
                &student.token,
            ))
            .await,
        Code::AlreadyExists,
    );

    // A quiz taken, then two lessons completed.
    let quiz = app
        .enrollments()
        .record_lesson_progress(authed(
            pb::RecordLessonProgressRequest {
                enrollment_id: enrollment.id.clone(),
                lesson_id: lessons[0].clone(),
                status: pb::LessonProgressStatus::InProgress as i32,
                progress_percent: 50,
                watch_time_seconds: 120,
                quiz_score: Some(80),
            },
            &student.token,
        ))
        .await
        .unwrap()
        .into_inner();
    let progress = quiz.progress.unwrap();
    assert_eq!(
        (
            progress.quizzes_taken,
            progress.quizzes_passed,
            progress.average_quiz_score
        ),
        (1, 1, 80.0)
    );
    assert_eq!(
        (
            progress.completed_lessons,
            progress.total_lessons,
            progress.total_watch_time_seconds
        ),
        (0, 3, 120)
    );

    let done = app.complete(&student, &enrollment.id, &lessons[1..]).await;
    let progress = done.progress.unwrap();
    assert_eq!(progress.completed_lessons, 2);
    assert_eq!(progress.progress_percentage, 66.67);
    assert_eq!(
        done.enrollment.unwrap().status,
        pb::EnrollmentStatus::Active as i32
    );

    let done = app.complete(&student, &enrollment.id, &lessons[..1]).await;
    let progress = done.progress.unwrap();
    assert_eq!(
        (progress.completed_lessons, progress.progress_percentage),
        (3, 100.0)
    );
    assert_eq!(progress.total_watch_time_seconds, 1800);
    assert!(
        progress.engagement_score >= 90,
        "{}",
        progress.engagement_score
    );
    assert_eq!(
        done.enrollment.unwrap().status,
        pb::EnrollmentStatus::Completed as i32
    );

    let stats = app
        .course(&student, &course.id)
        .await
        .unwrap()
        .statistics
        .unwrap();
    assert_eq!((stats.enrolled_count, stats.completed_count), (1, 1));
    let subjects = app.outbox_subjects().await;
    // One event per change of state: a free enrollment is created active.
    assert!(
        !subjects.iter().any(|s| s == "learning.enrollment.created"),
        "a free enrollment has no separate created event: {subjects:?}"
    );
    for expected in [
        "learning.enrollment.activated",
        "learning.lesson_progress.recorded",
        "learning.enrollment.completed",
    ] {
        assert!(
            subjects.iter().any(|s| s == expected),
            "{expected} missing from {subjects:?}"
        );
    }
}

#[tokio::test]
async fn a_paid_course_waits_for_payment_and_is_refunded_on_the_refund_event() {
    let app = TestApp::spawn().await;
    let teacher = app.instructor(None);
    let student = app.student(None);
    let (course, _) = app.published_course(&teacher, 4900, 1).await;
    let enrollment = app.enroll(&student, &course.id).await;
    assert_eq!(
        enrollment.status,
        pb::EnrollmentStatus::PendingPayment as i32
    );
    assert_eq!(
        app.course(&student, &course.id)
            .await
            .unwrap()
            .statistics
            .unwrap()
            .enrolled_count,
        0
    );

    let payment_id = Uuid::now_v7().to_string();
    let paid = events::PaymentSucceeded {
        payment_id: payment_id.clone(),
        payer_id: student.id.to_string(),
        amount_minor: 4900,
        currency: "USD".into(),
        related_entity_type: "course_enrollment".into(),
        related_entity_id: enrollment.id.clone(),
        ..Default::default()
    };
    app.publish_payment_event("succeeded", &paid).await;
    // A duplicate (webhook retried, event redelivered) changes nothing.
    app.publish_payment_event("succeeded", &paid).await;
    let get = || async {
        app.enrollments()
            .get_enrollment(authed(
                pb::GetEnrollmentRequest {
                    id: enrollment.id.clone(),
                },
                &student.token,
            ))
            .await
            .unwrap()
            .into_inner()
            .enrollment
            .unwrap()
    };
    eventually("activation", || async {
        get().await.status == pb::EnrollmentStatus::Active as i32
    })
    .await;
    let active = get().await;
    assert_eq!(active.payment_id, payment_id);
    assert_eq!(active.price_paid.unwrap().amount_minor, 4900);

    // A partial refund leaves the enrollment alone; a full one refunds it.
    let refund = |full: bool| events::PaymentRefunded {
        payment_id: payment_id.clone(),
        related_entity_type: "course_enrollment".into(),
        related_entity_id: enrollment.id.clone(),
        refunded_minor: if full { 2900 } else { 2000 },
        total_refunded_minor: if full { 4900 } else { 2000 },
        currency: "USD".into(),
        fully_refunded: full,
    };
    app.publish_payment_event("refunded", &refund(false)).await;
    app.publish_payment_event("refunded", &refund(true)).await;
    eventually("the refund", || async {
        get().await.status == pb::EnrollmentStatus::Refunded as i32
    })
    .await;
    let stats = app
        .course(&student, &course.id)
        .await
        .unwrap()
        .statistics
        .unwrap();
    assert_eq!(stats.enrolled_count, 0);
    // Exactly one activation was counted and undone.
    let subjects = app.outbox_subjects().await;
    assert_eq!(
        subjects
            .iter()
            .filter(|s| *s == "learning.enrollment.activated")
            .count(),
        1
    );
    assert_eq!(
        subjects
            .iter()
            .filter(|s| *s == "learning.enrollment.refunded")
            .count(),
        1
    );
}

#[tokio::test]
async fn cancelled_enrollments_can_be_reopened_and_progress_needs_an_active_one() {
    let app = TestApp::spawn().await;
    let teacher = app.instructor(None);
    let student = app.student(None);
    let (course, lessons) = app.published_course(&teacher, 0, 2).await;
    let enrollment = app.enroll(&student, &course.id).await;
    let cancelled = app
        .enrollments()
        .cancel_enrollment(authed(
            pb::CancelEnrollmentRequest {
                id: enrollment.id.clone(),
            },
            &student.token,
        ))
        .await
        .unwrap()
        .into_inner()
        .enrollment
        .unwrap();
    assert_eq!(cancelled.status, pb::EnrollmentStatus::Cancelled as i32);
    assert_eq!(
        app.course(&student, &course.id)
            .await
            .unwrap()
            .statistics
            .unwrap()
            .enrolled_count,
        0
    );
    assert_code(
        app.enrollments()
            .record_lesson_progress(authed(
                pb::RecordLessonProgressRequest {
                    enrollment_id: enrollment.id.clone(),
                    lesson_id: lessons[0].clone(),
                    status: pb::LessonProgressStatus::Completed as i32,
                    ..Default::default()
                },
                &student.token,
            ))
            .await,
        Code::FailedPrecondition,
    );
    let reopened = app.enroll(&student, &course.id).await;
    assert_eq!(
        (reopened.id.as_str(), reopened.status),
        (enrollment.id.as_str(), pb::EnrollmentStatus::Active as i32)
    );
    assert_eq!(
        app.course(&student, &course.id)
            .await
            .unwrap()
            .statistics
            .unwrap()
            .enrolled_count,
        1
    );

    // The teaching team sees the course's enrollments; another student does not.
    let listed = app
        .enrollments()
        .list_enrollments(authed(
            pb::ListEnrollmentsRequest {
                course_id: course.id.clone(),
                ..Default::default()
            },
            &teacher.token,
        ))
        .await
        .unwrap()
        .into_inner()
        .enrollments;
    assert_eq!(listed.len(), 1);
    let other = app.student(None);
    assert_code(
        app.enrollments()
            .get_enrollment(authed(
                pb::GetEnrollmentRequest {
                    id: enrollment.id.clone(),
                },
                &other.token,
            ))
            .await,
        Code::NotFound,
    );
}

#[tokio::test]
async fn progress_input_is_checked_lesson_by_lesson() {
    let app = TestApp::spawn().await;
    let teacher = app.instructor(None);
    let student = app.student(None);
    let (course, lessons) = app.published_course(&teacher, 0, 2).await;
    let (_, foreign) = app.published_course(&teacher, 0, 1).await;
    let enrollment = app.enroll(&student, &course.id).await;
    let record = |lesson: String, status: i32, percent: i32, quiz: Option<i32>| {
        let mut client = app.enrollments();
        let request = authed(
            pb::RecordLessonProgressRequest {
                enrollment_id: enrollment.id.clone(),
                lesson_id: lesson,
                status,
                progress_percent: percent,
                watch_time_seconds: 10,
                quiz_score: quiz,
            },
            &student.token,
        );
        async move { client.record_lesson_progress(request).await }
    };
    let status = assert_code(
        record(foreign[0].clone(), 1, 10, None).await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), vec!["lesson_id"]);
    let status = assert_code(
        record(lessons[0].clone(), 0, 101, Some(120)).await,
        Code::InvalidArgument,
    );
    let mut fields = violated_fields(&status);
    fields.sort();
    assert_eq!(fields, vec!["progress_percent", "quiz_score", "status"]);
    let status = assert_code(
        record(lessons[1].clone(), 1, 10, Some(50)).await,
        Code::InvalidArgument,
    );
    assert_eq!(
        violated_fields(&status),
        vec!["quiz_score"],
        "lesson 1 is a video"
    );
    assert_code(
        record(Uuid::now_v7().to_string(), 1, 10, None).await,
        Code::NotFound,
    );
    // Someone else's enrollment does not exist for this caller.
    let other = app.student(None);
    assert_code(
        app.enrollments()
            .record_lesson_progress(authed(
                pb::RecordLessonProgressRequest {
                    enrollment_id: enrollment.id.clone(),
                    lesson_id: lessons[0].clone(),
                    status: 1,
                    ..Default::default()
                },
                &other.token,
            ))
            .await,
        Code::NotFound,
    );
}

#[tokio::test]
async fn two_hundred_concurrent_enrollments_are_counted_exactly() {
    let app = TestApp::spawn().await;
    let teacher = app.instructor(None);
    let (course, _) = app.published_course(&teacher, 0, 1).await;
    let students: Vec<User> = (0..200).map(|_| app.student(None)).collect();
    let attempts = students.iter().map(|student| {
        let mut client = app.enrollments();
        let request = authed(
            pb::EnrollRequest {
                course_id: course.id.clone(),
            },
            &student.token,
        );
        async move { client.enroll(request).await }
    });
    let results = futures::future::join_all(attempts).await;
    assert!(
        results.iter().all(|r| r.is_ok()),
        "{:?}",
        results.iter().find(|r| r.is_err())
    );
    // The same students again, concurrently: all refused, nothing counted twice.
    let again = students.iter().take(50).map(|student| {
        let mut client = app.enrollments();
        let request = authed(
            pb::EnrollRequest {
                course_id: course.id.clone(),
            },
            &student.token,
        );
        async move { client.enroll(request).await }
    });
    let again = futures::future::join_all(again).await;
    assert!(
        again
            .iter()
            .all(|r| r.as_ref().is_err_and(|s| s.code() == Code::AlreadyExists))
    );
    let stats = app
        .course(&teacher, &course.id)
        .await
        .unwrap()
        .statistics
        .unwrap();
    assert_eq!(stats.enrolled_count, 200);

    use lyceum_platform::verify::Reconciliation;
    let drift = lyceum_learning::jobs::course_statistics::CourseStatistics
        .check(&app.learning)
        .await
        .unwrap();
    assert!(drift.is_empty(), "{drift:?}");
}

#[tokio::test]
async fn payments_that_do_not_cover_the_enrollment_or_were_refunded_grant_nothing() {
    let app = TestApp::spawn().await;
    let teacher = app.instructor(None);
    let student = app.student(None);
    let (course, _) = app.published_course(&teacher, 4900, 1).await;
    let enrollment = app.enroll(&student, &course.id).await;
    let payment = |id: &str, payer: &User, amount: i64| events::PaymentSucceeded {
        payment_id: id.into(),
        payer_id: payer.id.to_string(),
        amount_minor: amount,
        currency: "USD".into(),
        related_entity_type: "course_enrollment".into(),
        related_entity_id: enrollment.id.clone(),
        ..Default::default()
    };
    let (cheap, stranger_paid, refunded, good) = (
        Uuid::now_v7().to_string(),
        Uuid::now_v7().to_string(),
        Uuid::now_v7().to_string(),
        Uuid::now_v7().to_string(),
    );
    // One cent; someone else's money; a payment refunded in full before its success arrives.
    app.publish_payment_event("succeeded", &payment(&cheap, &student, 1))
        .await;
    app.publish_payment_event(
        "succeeded",
        &payment(&stranger_paid, &app.student(None), 4900),
    )
    .await;
    app.publish_payment_event(
        "refunded",
        &events::PaymentRefunded {
            payment_id: refunded.clone(),
            related_entity_type: "course_enrollment".into(),
            related_entity_id: enrollment.id.clone(),
            refunded_minor: 4900,
            total_refunded_minor: 4900,
            currency: "USD".into(),
            fully_refunded: true,
        },
    )
    .await;
    app.publish_payment_event("succeeded", &payment(&refunded, &student, 4900))
        .await;
    // Only the proper payment, last in line, activates the enrollment.
    app.publish_payment_event("succeeded", &payment(&good, &student, 4900))
        .await;
    let get = || async {
        app.enrollments()
            .get_enrollment(authed(
                pb::GetEnrollmentRequest {
                    id: enrollment.id.clone(),
                },
                &student.token,
            ))
            .await
            .unwrap()
            .into_inner()
            .enrollment
            .unwrap()
    };
    eventually("activation", || async {
        get().await.status == pb::EnrollmentStatus::Active as i32
    })
    .await;
    let active = get().await;
    assert_eq!(active.payment_id, good);
    assert_eq!(active.price_paid.unwrap().amount_minor, 4900);
}

#[tokio::test]
async fn the_teaching_team_cancels_a_students_enrollment_under_its_own_policies() {
    let app = TestApp::spawn().await;
    let teacher = app.instructor(None);
    let student = app.student(None);
    let stranger = app.student(None);
    let (course, _) = app.published_course(&teacher, 0, 1).await;
    let enrollment = app.enroll(&student, &course.id).await;
    let cancel = |token: &str| {
        authed(
            pb::CancelEnrollmentRequest {
                id: enrollment.id.clone(),
            },
            token,
        )
    };
    assert_code(
        app.enrollments()
            .cancel_enrollment(cancel(&stranger.token))
            .await,
        Code::NotFound,
    );
    // The course's owner manages its students: the update passes the staff policy and
    // the column rules (cancelling is the one change staff may make).
    let cancelled = app
        .enrollments()
        .cancel_enrollment(cancel(&teacher.token))
        .await
        .unwrap()
        .into_inner()
        .enrollment
        .unwrap();
    assert_eq!(cancelled.status, pb::EnrollmentStatus::Cancelled as i32);
    assert_eq!(
        app.course(&teacher, &course.id)
            .await
            .unwrap()
            .statistics
            .unwrap()
            .enrolled_count,
        0
    );
}

/// `domain::enrollment::decide_enroll` is the rule; Enroll's one statement applies it inside
/// the database. For every state a course can be in, the RPC answers what the rule decides.
#[tokio::test]
async fn enroll_rules_agree_with_the_database() {
    use lyceum_learning::domain::enrollment::{
        EnrollDecision, EnrollRefusal, EnrollmentTerms, decide_enroll,
    };
    use lyceum_learning::domain::{CourseStatus, EnrollmentStatus, EnrollmentType};

    let app = TestApp::spawn().await;
    let teacher = app.instructor(None);
    // Sees every course, drafts included, so the answer is the rule's and not NOT_FOUND.
    let admin = app.user(None, &[("user", false), ("admin", false)]);
    for status in [
        CourseStatus::Draft,
        CourseStatus::Published,
        CourseStatus::Archived,
    ] {
        for enrollment_type in [
            EnrollmentType::Open,
            EnrollmentType::CohortOnly,
            EnrollmentType::Hybrid,
        ] {
            for price_minor in [0, 4999] {
                let case = format!("{status} {enrollment_type} at {price_minor}");
                let course = app.draft_course(&teacher, &case, price_minor).await;
                app.add_lessons(&teacher, &course.id, 1).await;
                app.courses()
                    .update_course(authed(
                        pb::UpdateCourseRequest {
                            course: Some(pb::Course {
                                id: course.id.clone(),
                                enrollment_type: enrollment_type.to_proto(),
                                ..Default::default()
                            }),
                            update_mask: Some(prost_types::FieldMask {
                                paths: vec!["enrollment_type".into()],
                            }),
                        },
                        &teacher.token,
                    ))
                    .await
                    .expect("set the enrollment type");
                if status != CourseStatus::Draft {
                    app.courses()
                        .publish_course(authed(
                            pb::PublishCourseRequest {
                                id: course.id.clone(),
                            },
                            &teacher.token,
                        ))
                        .await
                        .expect("publish");
                }
                if status == CourseStatus::Archived {
                    app.courses()
                        .archive_course(authed(
                            pb::ArchiveCourseRequest {
                                id: course.id.clone(),
                            },
                            &teacher.token,
                        ))
                        .await
                        .expect("archive");
                }

                let terms = EnrollmentTerms {
                    status,
                    enrollment_type,
                    price_minor,
                };
                let enroll = || async {
                    app.enrollments()
                        .enroll(authed(
                            pb::EnrollRequest {
                                course_id: course.id.clone(),
                            },
                            &admin.token,
                        ))
                        .await
                };
                let answer = enroll().await;
                match decide_enroll(&terms, None) {
                    Ok(EnrollDecision::Open(opened)) => {
                        let enrollment = answer
                            .unwrap_or_else(|e| panic!("{case}: enroll refused: {e:?}"))
                            .into_inner()
                            .enrollment
                            .unwrap();
                        assert_eq!(enrollment.status, opened.to_proto(), "{case}");
                        let again = enroll().await;
                        assert_eq!(
                            decide_enroll(&terms, Some(opened)),
                            Err(EnrollRefusal::AlreadyEnrolled)
                        );
                        assert_code(again, Code::AlreadyExists);
                        // Cancelled, it comes back in the status the rule decides.
                        app.enrollments()
                            .cancel_enrollment(authed(
                                pb::CancelEnrollmentRequest {
                                    id: enrollment.id.clone(),
                                },
                                &admin.token,
                            ))
                            .await
                            .expect("cancel");
                        let Ok(EnrollDecision::Reopen(reopened)) =
                            decide_enroll(&terms, Some(EnrollmentStatus::Cancelled))
                        else {
                            panic!("{case}: a cancelled enrollment is reopened")
                        };
                        let back = enroll()
                            .await
                            .unwrap_or_else(|e| panic!("{case}: reopen refused: {e:?}"))
                            .into_inner()
                            .enrollment
                            .unwrap();
                        assert_eq!(back.id, enrollment.id, "{case}: the same enrollment");
                        assert_eq!(back.status, reopened.to_proto(), "{case}");
                    }
                    Ok(EnrollDecision::Reopen(_)) => unreachable!("no enrollment exists yet"),
                    Err(refusal) => {
                        let status = assert_code(answer, Code::FailedPrecondition);
                        assert_eq!(status.message(), refusal.to_string(), "{case}");
                    }
                }
            }
        }
    }
}
