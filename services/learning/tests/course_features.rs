//! The course features part 1 left out, through the gRPC API: reordering modules and
//! lessons (dense, unique positions under concurrent reorders), updating and deleting
//! content, deleting drafts, the review switch, `course.updated`, and the course's revenue
//! from payment events.

mod common;

use common::*;
use lyceum_learning::jobs::course_statistics::CourseStatistics;
use lyceum_platform::verify::Reconciliation;
use lyceum_proto::events::v1 as events;
use lyceum_proto::learning::v1 as pb;
use lyceum_testkit::{assert_code, authed, eventually, violated_fields};
use tonic::Code;
use uuid::Uuid;

async fn modules(app: &TestApp, owner: &User, course_id: &str) -> Vec<pb::Module> {
    app.courses()
        .list_course_content(authed(
            pb::ListCourseContentRequest {
                course_id: course_id.into(),
            },
            &owner.token,
        ))
        .await
        .unwrap()
        .into_inner()
        .modules
}

async fn add_module(app: &TestApp, owner: &User, course_id: &str, title: &str) -> String {
    app.courses()
        .create_module(authed(
            pb::CreateModuleRequest {
                course_id: course_id.into(),
                title: title.into(),
                description: String::new(),
            },
            &owner.token,
        ))
        .await
        .unwrap()
        .into_inner()
        .module
        .unwrap()
        .id
}

#[tokio::test]
async fn concurrent_reorders_leave_dense_unique_positions_in_one_of_the_asked_orders() {
    let app = TestApp::spawn().await;
    let teacher = app.instructor(None);
    let course = app.draft_course(&teacher, "Ordered", 0).await;
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(add_module(&app, &teacher, &course.id, &format!("Module {i}")).await);
    }
    // Twenty orders at once, each a rotation of the modules.
    let orders: Vec<Vec<String>> = (0..20)
        .map(|shift| {
            let mut order = ids.clone();
            order.rotate_left(shift % ids.len());
            if shift % 2 == 1 {
                order.reverse();
            }
            order
        })
        .collect();
    let results = futures::future::join_all(orders.iter().map(|order| {
        let mut client = app.courses();
        let token = teacher.token.clone();
        let request = pb::ReorderModulesRequest {
            course_id: course.id.clone(),
            module_ids: order.clone(),
        };
        async move { client.reorder_modules(authed(request, &token)).await }
    }))
    .await;
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
    let now = modules(&app, &teacher, &course.id).await;
    let positions: Vec<i32> = now.iter().map(|m| m.position).collect();
    assert_eq!(positions, [0, 1, 2, 3, 4, 5]);
    let order: Vec<String> = now.iter().map(|m| m.id.clone()).collect();
    assert!(
        orders.contains(&order),
        "{order:?} is none of the asked orders"
    );

    // An order must name every module once.
    let status = assert_code(
        app.courses()
            .reorder_modules(authed(
                pb::ReorderModulesRequest {
                    course_id: course.id.clone(),
                    module_ids: ids[..5].to_vec(),
                },
                &teacher.token,
            ))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["module_ids"]);
    let status = assert_code(
        app.courses()
            .reorder_modules(authed(
                pb::ReorderModulesRequest {
                    course_id: course.id.clone(),
                    module_ids: vec![ids[0].clone(), ids[0].clone()],
                },
                &teacher.token,
            ))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["module_ids[1]"]);
    // Nobody else reorders.
    assert_code(
        app.courses()
            .reorder_modules(authed(
                pb::ReorderModulesRequest {
                    course_id: course.id.clone(),
                    module_ids: ids.clone(),
                },
                &app.instructor(None).token,
            ))
            .await,
        Code::NotFound,
    );

    // Lessons within a module likewise; deleting one closes the gap.
    let lessons = app.add_lessons(&teacher, &course.id, 4).await;
    let module_id = modules(&app, &teacher, &course.id)
        .await
        .into_iter()
        .find(|m| !m.lessons.is_empty())
        .unwrap()
        .id;
    let mut reversed = lessons.clone();
    reversed.reverse();
    let ordered = app
        .courses()
        .reorder_lessons(authed(
            pb::ReorderLessonsRequest {
                module_id: module_id.clone(),
                lesson_ids: reversed.clone(),
            },
            &teacher.token,
        ))
        .await
        .unwrap()
        .into_inner()
        .lessons;
    assert_eq!(
        ordered.iter().map(|l| l.id.clone()).collect::<Vec<_>>(),
        reversed
    );
    app.courses()
        .delete_lesson(authed(
            pb::DeleteLessonRequest {
                id: reversed[1].clone(),
            },
            &teacher.token,
        ))
        .await
        .unwrap();
    let left: Vec<(String, i32)> = modules(&app, &teacher, &course.id)
        .await
        .into_iter()
        .find(|m| m.id == module_id)
        .unwrap()
        .lessons
        .into_iter()
        .map(|l| (l.id, l.position))
        .collect();
    assert_eq!(
        left,
        [
            (reversed[0].clone(), 0),
            (reversed[2].clone(), 1),
            (reversed[3].clone(), 2)
        ]
    );
    let course_now = app.course(&teacher, &course.id).await.unwrap();
    assert_eq!(course_now.statistics.unwrap().lesson_count, 3);
    let drift = CourseStatistics.check(&app.learning).await.unwrap();
    assert!(drift.is_empty(), "{drift:?}");
}

#[tokio::test]
async fn content_is_edited_always_deleted_only_in_drafts_and_drafts_are_deleted_whole() {
    let app = TestApp::spawn().await;
    let teacher = app.instructor(None);
    let (course, lessons) = app.published_course(&teacher, 0, 2).await;
    let updated = app
        .courses()
        .update_lesson(authed(
            pb::UpdateLessonRequest {
                lesson: Some(pb::Lesson {
                    id: lessons[0].clone(),
                    title: "Renamed".into(),
                    duration_seconds: 90_000,
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["title".into(), "duration_seconds".into()],
                }),
            },
            &teacher.token,
        ))
        .await;
    let status = assert_code(updated, Code::InvalidArgument);
    assert_eq!(violated_fields(&status), ["lesson.duration_seconds"]);
    let renamed = app
        .courses()
        .update_lesson(authed(
            pb::UpdateLessonRequest {
                lesson: Some(pb::Lesson {
                    id: lessons[0].clone(),
                    title: "Renamed".into(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["title".into()],
                }),
            },
            &teacher.token,
        ))
        .await
        .unwrap()
        .into_inner()
        .lesson
        .unwrap();
    assert_eq!(renamed.title, "Renamed");
    assert_eq!(
        renamed.body, "The body of lesson 0",
        "fields outside the mask stay"
    );
    // A published course keeps its lessons and modules, and the course itself.
    assert_code(
        app.courses()
            .delete_lesson(authed(
                pb::DeleteLessonRequest {
                    id: lessons[1].clone(),
                },
                &teacher.token,
            ))
            .await,
        Code::FailedPrecondition,
    );
    assert_code(
        app.courses()
            .delete_course(authed(
                pb::DeleteCourseRequest {
                    id: course.id.clone(),
                },
                &teacher.token,
            ))
            .await,
        Code::FailedPrecondition,
    );

    let draft = app.draft_course(&teacher, "Scrapped", 0).await;
    let module = add_module(&app, &teacher, &draft.id, "Only module").await;
    app.courses()
        .update_module(authed(
            pb::UpdateModuleRequest {
                id: module.clone(),
                title: "Renamed module".into(),
                description: "Now with a description".into(),
            },
            &teacher.token,
        ))
        .await
        .unwrap();
    // Another instructor cannot see the draft; a student of the platform neither.
    assert_code(
        app.courses()
            .delete_course(authed(
                pb::DeleteCourseRequest {
                    id: draft.id.clone(),
                },
                &app.instructor(None).token,
            ))
            .await,
        Code::NotFound,
    );
    app.courses()
        .delete_course(authed(
            pb::DeleteCourseRequest {
                id: draft.id.clone(),
            },
            &teacher.token,
        ))
        .await
        .unwrap();
    assert_code(app.course(&teacher, &draft.id).await, Code::NotFound);
}

#[tokio::test]
async fn the_review_switch_is_enforced_and_listed_courses_announce_their_changes() {
    let app = TestApp::spawn().await;
    let teacher = app.instructor(None);
    let student = app.student(None);
    let (course, lessons) = app.published_course(&teacher, 0, 1).await;
    let enrollment = app.enroll(&student, &course.id).await;
    app.complete(&student, &enrollment.id, &lessons).await;
    let switch_off = pb::UpdateCourseRequest {
        course: Some(pb::Course {
            id: course.id.clone(),
            title: "Rust for services, second edition".into(),
            allow_comments: Some(false),
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["title".into(), "allow_comments".into()],
        }),
    };
    app.courses()
        .update_course(authed(switch_off, &teacher.token))
        .await
        .unwrap();
    let status = assert_code(
        app.reviews()
            .create_review(authed(
                pb::CreateReviewRequest {
                    course_id: course.id.clone(),
                    rating: 5,
                    ..Default::default()
                },
                &student.token,
            ))
            .await,
        Code::FailedPrecondition,
    );
    assert!(status.message().contains("reviews"), "{status:?}");
    let subjects = app.outbox_subjects().await;
    assert!(
        subjects.contains(&"learning.course.updated".to_owned()),
        "{subjects:?}"
    );
    // Drafts announce nothing until published.
    let draft = app.draft_course(&teacher, "Quiet draft", 0).await;
    app.courses()
        .update_course(authed(
            pb::UpdateCourseRequest {
                course: Some(pb::Course {
                    id: draft.id,
                    title: "Still quiet".into(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["title".into()],
                }),
            },
            &teacher.token,
        ))
        .await
        .unwrap();
    let updated = app
        .outbox_subjects()
        .await
        .into_iter()
        .filter(|s| s == "learning.course.updated")
        .count();
    assert_eq!(updated, 1);
}

#[tokio::test]
async fn a_course_earns_what_its_payments_bring_in_less_refunds() {
    let app = TestApp::spawn().await;
    let teacher = app.instructor(None);
    let (course, _) = app.published_course(&teacher, 4_900, 1).await;
    let (ann, ben) = (app.student(None), app.student(None));
    let mut payments = Vec::new();
    for student in [&ann, &ben] {
        let enrollment = app.enroll(student, &course.id).await;
        let payment_id = Uuid::now_v7().to_string();
        app.publish_payment_event(
            "succeeded",
            &events::PaymentSucceeded {
                payment_id: payment_id.clone(),
                payer_id: student.id.to_string(),
                amount_minor: 4_900,
                currency: "USD".into(),
                related_entity_type: "course_enrollment".into(),
                related_entity_id: enrollment.id.clone(),
                ..Default::default()
            },
        )
        .await;
        payments.push((payment_id, enrollment.id));
    }
    let revenue = || async {
        app.course(&teacher, &course.id)
            .await
            .unwrap()
            .total_revenue
            .unwrap()
            .amount_minor
    };
    eventually("both payments", || async { revenue().await == 9_800 }).await;
    // A partial refund comes off; the full refund of the other takes all of it.
    let refund = |payment: &(String, String), refunded: i64, total: i64, full: bool| {
        events::PaymentRefunded {
            payment_id: payment.0.clone(),
            related_entity_type: "course_enrollment".into(),
            related_entity_id: payment.1.clone(),
            refunded_minor: refunded,
            total_refunded_minor: total,
            currency: "USD".into(),
            fully_refunded: full,
        }
    };
    app.publish_payment_event("refunded", &refund(&payments[0], 900, 900, false))
        .await;
    app.publish_payment_event("refunded", &refund(&payments[1], 4_900, 4_900, true))
        .await;
    eventually("the refunds", || async { revenue().await == 4_000 }).await;
    let course_now = app.course(&teacher, &course.id).await.unwrap();
    assert_eq!(course_now.total_revenue.unwrap().currency, "USD");
    // With revenue in dollars, the course's currency stays: one sum, one currency.
    let status = assert_code(
        app.courses()
            .update_course(authed(
                pb::UpdateCourseRequest {
                    course: Some(pb::Course {
                        id: course.id.clone(),
                        price: Some(pb::Money {
                            amount_minor: 4_500,
                            currency: "EUR".into(),
                        }),
                        ..Default::default()
                    }),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["price".into()],
                    }),
                },
                &teacher.token,
            ))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["course.price"]);
}
