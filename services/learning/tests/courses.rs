//! Courses: lifecycle, visibility, content, co-teaching, catalogue, bad input.

mod common;

use common::*;
use lyceum_proto::learning::v1 as pb;
use lyceum_testkit::{assert_code, authed, violated_fields};
use tonic::Code;
use uuid::Uuid;

#[tokio::test]
async fn a_course_goes_from_draft_to_published_to_archived_and_publishes_its_events() {
    let app = TestApp::spawn().await;
    let teacher = app.instructor(None);
    let stranger = app.student(None);
    let course = app.draft_course(&teacher, "Distributed systems", 0).await;
    assert_eq!(course.status, pb::CourseStatus::Draft as i32);

    // Drafts are the teaching team's; a course without lessons cannot be published.
    assert_code(app.course(&stranger, &course.id).await, Code::NotFound);
    assert_code(
        app.courses()
            .publish_course(authed(
                pb::PublishCourseRequest {
                    id: course.id.clone(),
                },
                &teacher.token,
            ))
            .await,
        Code::FailedPrecondition,
    );
    app.add_lessons(&teacher, &course.id, 2).await;
    assert_code(
        app.courses()
            .publish_course(authed(
                pb::PublishCourseRequest {
                    id: course.id.clone(),
                },
                &stranger.token,
            ))
            .await,
        Code::NotFound,
    );
    let published = app
        .courses()
        .publish_course(authed(
            pb::PublishCourseRequest {
                id: course.id.clone(),
            },
            &teacher.token,
        ))
        .await
        .unwrap()
        .into_inner()
        .course
        .unwrap();
    assert_eq!(published.status, pb::CourseStatus::Published as i32);
    assert_eq!(published.statistics.unwrap().lesson_count, 2);
    assert_eq!(
        app.course(&stranger, &course.id).await.unwrap().title,
        "Distributed systems"
    );
    // Published courses are public, even without a token.
    app.courses()
        .get_course(pb::GetCourseRequest {
            id: course.id.clone(),
        })
        .await
        .unwrap();

    app.courses()
        .archive_course(authed(
            pb::ArchiveCourseRequest {
                id: course.id.clone(),
            },
            &teacher.token,
        ))
        .await
        .unwrap();
    assert_code(
        app.courses()
            .publish_course(authed(
                pb::PublishCourseRequest {
                    id: course.id.clone(),
                },
                &teacher.token,
            ))
            .await,
        Code::FailedPrecondition,
    );
    assert_code(app.course(&stranger, &course.id).await, Code::NotFound);
    assert_eq!(
        app.outbox_subjects().await,
        vec!["learning.course.published", "learning.course.archived"]
    );
}

#[tokio::test]
async fn course_fields_of_the_seeds_round_trip_and_updates_follow_the_mask() {
    let app = TestApp::spawn().await;
    let teacher = app.instructor(None);
    let course = pb::Course {
        title: "Cohort leadership".into(),
        description: "Lead teams through change".into(),
        category: "leadership".into(),
        tags: vec!["coaching".into(), "change".into()],
        what_you_will_learn: vec!["Run retrospectives".into()],
        target_audience: vec!["Team leads".into()],
        price: Some(pb::Money {
            amount_minor: 19_900,
            currency: "EUR".into(),
        }),
        certificate: Some(pb::CertificateSettings {
            enabled: true,
            template_url: "https://cdn.example/cert.pdf".into(),
        }),
        allow_comments: Some(false),
        allow_questions: Some(true),
        drip_content: true,
        drip_schedule: Some(lyceum_platform::convert::json_to_struct(
            &serde_json::json!({ uuid::Uuid::now_v7().to_string(): 7 }),
        )),
        cohort_based: true,
        default_duration_weeks: 6,
        enrollment_type: pb::EnrollmentType::Hybrid as i32,
        ..Default::default()
    };
    let created = app
        .courses()
        .create_course(authed(
            pb::CreateCourseRequest {
                course: Some(course.clone()),
            },
            &teacher.token,
        ))
        .await
        .unwrap()
        .into_inner()
        .course
        .unwrap();
    assert_eq!(created.instructor_id, teacher.id.to_string());
    assert_eq!(created.price, course.price);
    assert_eq!(created.certificate, course.certificate);
    assert_eq!(
        (
            created.cohort_based,
            created.default_duration_weeks,
            created.drip_content
        ),
        (true, 6, true)
    );
    assert_eq!(created.enrollment_type, pb::EnrollmentType::Hybrid as i32);
    assert_eq!(created.drip_schedule, course.drip_schedule);

    let updated = app
        .courses()
        .update_course(authed(
            pb::UpdateCourseRequest {
                course: Some(pb::Course {
                    id: created.id.clone(),
                    title: "Leading cohorts".into(),
                    category: "ignored".into(),
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
        .course
        .unwrap();
    assert_eq!(
        (updated.title.as_str(), updated.category.as_str()),
        ("Leading cohorts", "leadership")
    );
}

#[tokio::test]
async fn bad_course_input_names_the_fields() {
    let app = TestApp::spawn().await;
    let teacher = app.instructor(None);
    let status = assert_code(
        app.courses()
            .create_course(authed(
                pb::CreateCourseRequest {
                    course: Some(pb::Course {
                        title: String::new(),
                        price: Some(pb::Money {
                            amount_minor: -100,
                            currency: "USD".into(),
                        }),
                        default_duration_weeks: 500,
                        tags: vec!["x".repeat(101)],
                        enrollment_type: 9,
                        ..Default::default()
                    }),
                },
                &teacher.token,
            ))
            .await,
        Code::InvalidArgument,
    );
    let mut fields = violated_fields(&status);
    fields.sort();
    assert_eq!(
        fields,
        vec![
            "course.default_duration_weeks",
            "course.enrollment_type",
            "course.price",
            "course.tags",
            "course.title"
        ]
    );

    let status = assert_code(
        app.courses()
            .get_course(pb::GetCourseRequest {
                id: "not-a-uuid".into(),
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), vec!["id"]);
    assert_code(
        app.courses()
            .get_course(pb::GetCourseRequest {
                id: Uuid::now_v7().to_string(),
            })
            .await,
        Code::NotFound,
    );

    // Students may not create courses.
    let student = app.student(None);
    assert_code(
        app.courses()
            .create_course(authed(
                pb::CreateCourseRequest {
                    course: Some(pb::Course {
                        title: "Mine".into(),
                        ..Default::default()
                    }),
                },
                &student.token,
            ))
            .await,
        Code::PermissionDenied,
    );
}

#[tokio::test]
async fn co_instructors_act_within_their_permissions() {
    let app = TestApp::spawn().await;
    let owner = app.instructor(None);
    let editor = app.instructor(None);
    let assistant = app.instructor(None);
    let course = app.draft_course(&owner, "Team taught", 0).await;
    for (who, role, permissions) in [
        (
            &editor,
            pb::InstructorRole::CoInstructor,
            vec![pb::InstructorPermission::EditContent as i32],
        ),
        (
            &assistant,
            pb::InstructorRole::Assistant,
            vec![pb::InstructorPermission::ViewContent as i32],
        ),
    ] {
        app.courses()
            .add_course_instructor(authed(
                pb::AddCourseInstructorRequest {
                    course_id: course.id.clone(),
                    instructor_id: who.id.to_string(),
                    role: role as i32,
                    permissions,
                },
                &owner.token,
            ))
            .await
            .unwrap();
    }
    // Both see the draft; only the editor may add content; neither manages the team.
    app.course(&assistant, &course.id).await.unwrap();
    app.add_lessons(&editor, &course.id, 1).await;
    assert_code(
        app.courses()
            .create_module(authed(
                pb::CreateModuleRequest {
                    course_id: course.id.clone(),
                    title: "Nope".into(),
                    description: String::new(),
                },
                &assistant.token,
            ))
            .await,
        Code::PermissionDenied,
    );
    assert_code(
        app.courses()
            .remove_course_instructor(authed(
                pb::RemoveCourseInstructorRequest {
                    course_id: course.id.clone(),
                    instructor_id: assistant.id.to_string(),
                },
                &editor.token,
            ))
            .await,
        Code::PermissionDenied,
    );
    // Editors edit content, not what the course costs or whether it is published.
    assert_code(
        app.courses()
            .update_course(authed(
                pb::UpdateCourseRequest {
                    course: Some(pb::Course {
                        id: course.id.clone(),
                        price: Some(pb::Money {
                            amount_minor: 0,
                            currency: "USD".into(),
                        }),
                        ..Default::default()
                    }),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["price".into()],
                    }),
                },
                &editor.token,
            ))
            .await,
        Code::PermissionDenied,
    );
    assert_code(
        app.courses()
            .publish_course(authed(
                pb::PublishCourseRequest {
                    id: course.id.clone(),
                },
                &editor.token,
            ))
            .await,
        Code::PermissionDenied,
    );
    let team = app
        .courses()
        .list_course_instructors(authed(
            pb::ListCourseInstructorsRequest {
                course_id: course.id.clone(),
            },
            &owner.token,
        ))
        .await
        .unwrap()
        .into_inner()
        .instructors;
    assert_eq!(team.len(), 2);
}

#[tokio::test]
async fn lessons_must_belong_to_the_course_they_are_added_to() {
    let app = TestApp::spawn().await;
    let owner = app.instructor(None);
    let first = app.draft_course(&owner, "First", 0).await;
    let second = app.draft_course(&owner, "Second", 0).await;
    let module = app
        .courses()
        .create_module(authed(
            pb::CreateModuleRequest {
                course_id: first.id.clone(),
                title: "M".into(),
                description: String::new(),
            },
            &owner.token,
        ))
        .await
        .unwrap()
        .into_inner()
        .module
        .unwrap();
    let status = assert_code(
        app.courses()
            .create_lesson(authed(
                pb::CreateLessonRequest {
                    course_id: second.id.clone(),
                    module_id: module.id,
                    title: "Misplaced".into(),
                    r#type: pb::LessonType::Article as i32,
                    ..Default::default()
                },
                &owner.token,
            ))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), vec!["module_id"]);
}

#[tokio::test]
async fn the_catalogue_filters_searches_and_pages() {
    let app = TestApp::spawn().await;
    let teacher = app.instructor(None);
    let other = app.instructor(None);
    let titles = [
        ("Async Rust in depth", 0),
        ("PostgreSQL internals", 4900),
        ("Leading remote teams", 9900),
    ];
    for (title, price) in titles {
        let course = app.draft_course(&teacher, title, price).await;
        app.add_lessons(&teacher, &course.id, 1).await;
        app.courses()
            .publish_course(authed(
                pb::PublishCourseRequest { id: course.id },
                &teacher.token,
            ))
            .await
            .unwrap();
    }
    app.draft_course(&other, "Unpublished Rust secrets", 0)
        .await;

    let list = |request: pb::ListCoursesRequest| async {
        app.courses()
            .list_courses(request)
            .await
            .unwrap()
            .into_inner()
    };
    let search = list(pb::ListCoursesRequest {
        query: "rust".into(),
        ..Default::default()
    })
    .await;
    assert_eq!(
        search
            .courses
            .iter()
            .map(|c| c.title.as_str())
            .collect::<Vec<_>>(),
        vec!["Async Rust in depth"]
    );
    let paid = list(pb::ListCoursesRequest {
        min_price_minor: 1,
        max_price_minor: 5000,
        ..Default::default()
    })
    .await;
    assert_eq!(paid.courses.len(), 1);
    assert_eq!(paid.courses[0].title, "PostgreSQL internals");
    let free = list(pb::ListCoursesRequest {
        free_only: true,
        ..Default::default()
    })
    .await;
    assert_eq!(free.courses.len(), 1);
    let tagged = list(pb::ListCoursesRequest {
        tags: vec!["rust".into(), "backend".into()],
        category: "engineering".into(),
        ..Default::default()
    })
    .await;
    assert_eq!(tagged.courses.len(), 3);
    let by_teacher = list(pb::ListCoursesRequest {
        instructor_id: other.id.to_string(),
        ..Default::default()
    })
    .await;
    assert!(
        by_teacher.courses.is_empty(),
        "drafts are not in the catalogue"
    );

    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = list(pb::ListCoursesRequest {
            page_size: 2,
            page_token: token,
            ..Default::default()
        })
        .await;
        seen.extend(page.courses.into_iter().map(|c| c.title));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(
        seen,
        vec![
            "Leading remote teams",
            "PostgreSQL internals",
            "Async Rust in depth"
        ]
    );

    let status = assert_code(
        app.courses()
            .list_courses(pb::ListCoursesRequest {
                min_price_minor: -5,
                page_token: "zzz".into(),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
    );
    let mut fields = violated_fields(&status);
    fields.sort();
    assert_eq!(fields, vec!["min_price_minor", "page_token"]);
}

#[tokio::test]
async fn organization_courses_stay_inside_their_organization_in_the_service_and_in_rls() {
    let app = TestApp::spawn().await;
    let (org_a, org_b) = (Uuid::now_v7(), Uuid::now_v7());
    let teacher_b = app.instructor(Some(org_b));
    let student_a = app.student(Some(org_a));
    let student_b = app.student(Some(org_b));

    let private = app
        .courses()
        .create_course(authed(
            pb::CreateCourseRequest {
                course: Some(pb::Course {
                    title: "B internal onboarding".into(),
                    organization_id: org_b.to_string(),
                    visibility: pb::CourseVisibility::Organization as i32,
                    ..Default::default()
                }),
            },
            &teacher_b.token,
        ))
        .await
        .unwrap()
        .into_inner()
        .course
        .unwrap();
    app.add_lessons(&teacher_b, &private.id, 1).await;
    app.courses()
        .publish_course(authed(
            pb::PublishCourseRequest {
                id: private.id.clone(),
            },
            &teacher_b.token,
        ))
        .await
        .unwrap();
    let draft = app.draft_course(&teacher_b, "B draft", 0).await;

    assert_code(app.course(&student_a, &private.id).await, Code::NotFound);
    assert_code(app.course(&student_a, &draft.id).await, Code::NotFound);
    assert_code(
        app.enrollments()
            .enroll(authed(
                pb::EnrollRequest {
                    course_id: private.id.clone(),
                },
                &student_a.token,
            ))
            .await,
        Code::NotFound,
    );
    app.course(&student_b, &private.id)
        .await
        .expect("members of B see it");
    let catalogue_a = app
        .courses()
        .list_courses(authed(pb::ListCoursesRequest::default(), &student_a.token))
        .await
        .unwrap()
        .into_inner()
        .courses;
    assert!(catalogue_a.is_empty());

    // The database agrees: as learning's own role with A's context, B's courses do not exist.
    use lyceum_platform::db::TenantContext;
    let as_a = TenantContext {
        user_id: Some(student_a.id),
        org_id: Some(org_a),
        roles: vec!["user".into()],
    };
    let mut tx = app.learning.begin(&as_a).await.unwrap();
    let visible: i64 =
        sqlx::query_scalar("SELECT count(*) FROM courses WHERE organization_id = $1")
            .bind(org_b)
            .fetch_one(tx.conn())
            .await
            .unwrap();
    assert_eq!(visible, 0);
    let lessons: i64 =
        sqlx::query_scalar("SELECT count(*) FROM course_lessons WHERE course_id = $1::uuid")
            .bind(&private.id)
            .fetch_one(tx.conn())
            .await
            .unwrap();
    assert_eq!(lessons, 0);
    tx.rollback().await.unwrap();
    let as_b = TenantContext {
        user_id: Some(student_b.id),
        org_id: Some(org_b),
        roles: vec!["user".into()],
    };
    let mut tx = app.learning.begin(&as_b).await.unwrap();
    let visible: i64 =
        sqlx::query_scalar("SELECT count(*) FROM courses WHERE organization_id = $1")
            .bind(org_b)
            .fetch_one(tx.conn())
            .await
            .unwrap();
    assert_eq!(
        visible, 1,
        "the control: B's member sees the published one, not the draft"
    );
}

#[tokio::test]
async fn lesson_content_is_for_students_and_previews_for_everyone() {
    let app = TestApp::spawn().await;
    let teacher = app.instructor(None);
    let course = app.draft_course(&teacher, "Secrets of the trade", 0).await;
    let module = app
        .courses()
        .create_module(authed(
            pb::CreateModuleRequest {
                course_id: course.id.clone(),
                title: "M".into(),
                description: String::new(),
            },
            &teacher.token,
        ))
        .await
        .unwrap()
        .into_inner()
        .module
        .unwrap();
    for (title, preview) in [("Free taste", true), ("The real thing", false)] {
        app.courses()
            .create_lesson(authed(
                pb::CreateLessonRequest {
                    course_id: course.id.clone(),
                    module_id: module.id.clone(),
                    title: title.into(),
                    r#type: pb::LessonType::Article as i32,
                    body: format!("{title} body"),
                    content_url: "https://cdn.example/video.mp4".into(),
                    preview,
                    ..Default::default()
                },
                &teacher.token,
            ))
            .await
            .unwrap();
    }
    app.courses()
        .publish_course(authed(
            pb::PublishCourseRequest {
                id: course.id.clone(),
            },
            &teacher.token,
        ))
        .await
        .unwrap();
    let bodies = |token: Option<String>| {
        let mut client = app.courses();
        let course_id = course.id.clone();
        async move {
            let request = pb::ListCourseContentRequest { course_id };
            let request = match token {
                Some(token) => authed(request, &token),
                None => tonic::Request::new(request),
            };
            client
                .list_course_content(request)
                .await
                .unwrap()
                .into_inner()
                .modules[0]
                .lessons
                .iter()
                .map(|l| l.body.clone())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        bodies(None).await,
        vec!["Free taste body".to_string(), String::new()]
    );
    let student = app.student(None);
    assert_eq!(bodies(Some(student.token.clone())).await[1], "");
    app.enroll(&student, &course.id).await;
    assert_eq!(
        bodies(Some(student.token.clone())).await[1],
        "The real thing body"
    );
    assert_eq!(
        bodies(Some(teacher.token.clone())).await[1],
        "The real thing body"
    );
}
