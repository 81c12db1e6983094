//! Drip content through the gRPC API, with learning's clock moved by the test: a lesson
//! released on day 7 is an outline on day 6 (and takes no progress), and whole on day 7.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{Duration, Utc};
use common::*;
use lyceum_proto::learning::v1 as pb;
use lyceum_testkit::{assert_code, authed, violated_fields};
use tonic::Code;

#[tokio::test]
async fn a_lesson_released_on_day_seven_is_withheld_on_day_six_and_given_on_day_seven() {
    // Days the test has moved learning's clock forward.
    let days = Arc::new(AtomicI64::new(0));
    let offset = days.clone();
    let app = TestApp::spawn_with_clock(Arc::new(move || {
        Utc::now() + Duration::days(offset.load(Ordering::SeqCst))
    }))
    .await;
    let teacher = app.instructor(None);
    let student = app.student(None);
    let course = app.draft_course(&teacher, "Week by week", 0).await;
    let lessons = app.add_lessons(&teacher, &course.id, 2).await;
    let update = |schedule: serde_json::Value| pb::UpdateCourseRequest {
        course: Some(pb::Course {
            id: course.id.clone(),
            drip_content: true,
            drip_schedule: Some(lyceum_platform::convert::json_to_struct(&schedule)),
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["drip_content".into(), "drip_schedule".into()],
        }),
    };
    // A schedule names lessons by id, with days 0 to 3650.
    let status = assert_code(
        app.courses()
            .update_course(authed(
                update(serde_json::json!({ "week-2": 7 })),
                &teacher.token,
            ))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["course.drip_schedule"]);
    app.courses()
        .update_course(authed(
            update(serde_json::json!({ lessons[1].clone(): 7 })),
            &teacher.token,
        ))
        .await
        .unwrap();
    app.courses()
        .publish_course(authed(
            pb::PublishCourseRequest {
                id: course.id.clone(),
            },
            &teacher.token,
        ))
        .await
        .unwrap();
    let enrollment = app.enroll(&student, &course.id).await;

    let content = |who: &User| {
        let mut client = app.courses();
        let (token, id) = (who.token.clone(), course.id.clone());
        async move {
            client
                .list_course_content(authed(
                    pb::ListCourseContentRequest { course_id: id },
                    &token,
                ))
                .await
                .unwrap()
                .into_inner()
                .modules
                .remove(0)
                .lessons
        }
    };
    let progress_on = |lesson: &str| pb::RecordLessonProgressRequest {
        enrollment_id: enrollment.id.clone(),
        lesson_id: lesson.into(),
        status: pb::LessonProgressStatus::InProgress as i32,
        progress_percent: 10,
        watch_time_seconds: 60,
        quiz_score: None,
    };

    days.store(6, Ordering::SeqCst);
    let on_day_six = content(&student).await;
    assert!(!on_day_six[0].withheld && on_day_six[0].release_time.is_none());
    assert_eq!(on_day_six[0].body, "The body of lesson 0");
    let held = &on_day_six[1];
    assert!(held.withheld);
    assert!(held.body.is_empty() && held.content_url.is_empty());
    assert!(held.release_time.is_some());
    assert_eq!(held.title, "Lesson 1", "the outline still shows");
    assert_code(
        app.enrollments()
            .record_lesson_progress(authed(progress_on(&lessons[1]), &student.token))
            .await,
        Code::FailedPrecondition,
    );
    // The teaching team always sees the whole course.
    assert!(!content(&teacher).await[1].withheld);

    days.store(7, Ordering::SeqCst);
    let on_day_seven = content(&student).await;
    assert!(!on_day_seven[1].withheld);
    assert_eq!(on_day_seven[1].body, "The body of lesson 1");
    assert_eq!(on_day_seven[1].release_time, held.release_time);
    app.enrollments()
        .record_lesson_progress(authed(progress_on(&lessons[1]), &student.token))
        .await
        .unwrap();
}
