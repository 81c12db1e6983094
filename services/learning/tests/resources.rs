//! The resource library through the gRPC API: bad input, the matrix of access level ×
//! caller through GetResource, ListResources and search, drafts, who writes, deletion,
//! filters and pages.

mod common;

use std::collections::BTreeSet;

use common::*;
use lyceum_proto::learning::v1 as pb;
use lyceum_proto::learning::v1::resource_service_client::ResourceServiceClient;
use lyceum_testkit::{assert_code, authed, violated_fields};
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use uuid::Uuid;

fn resources(app: &TestApp) -> ResourceServiceClient<Channel> {
    ResourceServiceClient::new(app.server.channel.clone())
}

/// A request as `caller`, or without a token.
fn as_caller<T>(message: T, caller: Option<&User>) -> Request<T> {
    match caller {
        Some(user) => authed(message, &user.token),
        None => Request::new(message),
    }
}

fn article(title: &str, level: pb::ResourceAccessLevel) -> pb::Resource {
    pb::Resource {
        r#type: pb::ResourceType::Article as i32,
        title: title.into(),
        description: "A short guide".into(),
        body: "How to structure a tonic service with sqlx and row-level security.".into(),
        tags: vec!["rust".into()],
        access_level: level as i32,
        ..Default::default()
    }
}

async fn create(
    app: &TestApp,
    author: &User,
    resource: pb::Resource,
) -> Result<pb::Resource, Status> {
    resources(app)
        .create_resource(authed(
            pb::CreateResourceRequest {
                resource: Some(resource),
            },
            &author.token,
        ))
        .await
        .map(|r| r.into_inner().resource.unwrap())
}

async fn update(
    app: &TestApp,
    caller: &User,
    resource: pb::Resource,
    paths: &[&str],
) -> Result<pb::Resource, Status> {
    resources(app)
        .update_resource(authed(
            pb::UpdateResourceRequest {
                resource: Some(resource),
                update_mask: Some(prost_types::FieldMask {
                    paths: paths.iter().map(|p| (*p).to_owned()).collect(),
                }),
            },
            &caller.token,
        ))
        .await
        .map(|r| r.into_inner().resource.unwrap())
}

async fn publish(app: &TestApp, caller: &User, id: &str) -> pb::Resource {
    update(
        app,
        caller,
        pb::Resource {
            id: id.into(),
            status: pb::ResourceStatus::Published as i32,
            ..Default::default()
        },
        &["status"],
    )
    .await
    .expect("publish")
}

async fn get(app: &TestApp, caller: Option<&User>, id: &str) -> Result<pb::Resource, Status> {
    resources(app)
        .get_resource(as_caller(pb::GetResourceRequest { id: id.into() }, caller))
        .await
        .map(|r| r.into_inner().resource.unwrap())
}

async fn list(
    app: &TestApp,
    caller: Option<&User>,
    request: pb::ListResourcesRequest,
) -> pb::ListResourcesResponse {
    resources(app)
        .list_resources(as_caller(request, caller))
        .await
        .expect("list resources")
        .into_inner()
}

fn ids(page: &pb::ListResourcesResponse) -> BTreeSet<String> {
    page.resources.iter().map(|r| r.id.clone()).collect()
}

#[tokio::test]
async fn bad_input_gets_the_right_code_with_field_details() {
    let app = TestApp::spawn().await;
    let org = Uuid::now_v7();
    let author = app.instructor(Some(org));

    // Every broken field at once.
    let status = assert_code(
        create(
            &app,
            &author,
            pb::Resource {
                title: " ".into(),
                description: "x".repeat(2001),
                tags: vec!["".into()],
                organization_id: "not-a-uuid".into(),
                ..Default::default()
            },
        )
        .await,
        Code::InvalidArgument,
    );
    let fields = violated_fields(&status);
    for field in [
        "resource.type",
        "resource.title",
        "resource.description",
        "resource.tags",
        "resource.access_level",
        "resource.organization_id",
    ] {
        assert!(fields.contains(&field.to_owned()), "{field} in {fields:?}");
    }

    // Text PostgreSQL cannot store is the caller's mistake, not the service's (the kit
    // refuses a NUL anywhere in a request).
    assert_code(
        create(
            &app,
            &author,
            pb::Resource {
                tags: vec!["nul\0byte".into()],
                ..article("Tags", pb::ResourceAccessLevel::Public)
            },
        )
        .await,
        Code::InvalidArgument,
    );

    // Content follows the type; the access level needs its scope.
    let status = assert_code(
        create(
            &app,
            &author,
            pb::Resource {
                r#type: pb::ResourceType::Video as i32,
                title: "A video".into(),
                body: "text".into(),
                content_url: "ftp://example.com/v.mp4".into(),
                access_level: pb::ResourceAccessLevel::EnrolledStudents as i32,
                ..Default::default()
            },
        )
        .await,
        Code::InvalidArgument,
    );
    let fields = violated_fields(&status);
    for field in [
        "resource.content_url",
        "resource.body",
        "resource.course_id",
    ] {
        assert!(fields.contains(&field.to_owned()), "{field} in {fields:?}");
    }
    let status = assert_code(
        create(
            &app,
            &author,
            article("Members only", pb::ResourceAccessLevel::OrganizationMembers),
        )
        .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["resource.organization_id"]);
    let status = assert_code(
        create(
            &app,
            &author,
            pb::Resource {
                r#type: 42,
                access_level: 42,
                status: 42,
                ..article("Unknown enums", pb::ResourceAccessLevel::Public)
            },
        )
        .await,
        Code::InvalidArgument,
    );
    assert_eq!(
        violated_fields(&status).len(),
        3,
        "{:?}",
        violated_fields(&status)
    );

    // Reads and updates.
    let status = assert_code(
        get(&app, Some(&author), "nope").await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["id"]);
    let status = assert_code(
        resources(&app)
            .list_resources(authed(
                pb::ListResourcesRequest {
                    page_size: -1,
                    page_token: "garbage".into(),
                    course_id: "x".into(),
                    r#type: 9,
                    ..Default::default()
                },
                &author.token,
            ))
            .await,
        Code::InvalidArgument,
    );
    let fields = violated_fields(&status);
    for field in ["page_size", "page_token", "course_id", "type"] {
        assert!(fields.contains(&field.to_owned()), "{field} in {fields:?}");
    }
    let created = create(
        &app,
        &author,
        article("Fine", pb::ResourceAccessLevel::Public),
    )
    .await
    .unwrap();
    let status = assert_code(
        update(
            &app,
            &author,
            pb::Resource {
                id: created.id.clone(),
                organization_id: Uuid::now_v7().to_string(),
                ..Default::default()
            },
            &["organization_id", "author_id"],
        )
        .await,
        Code::InvalidArgument,
    );
    assert!(violated_fields(&status).iter().all(|f| f == "update_mask"));
    // An article turned into a video needs its URL and loses its body in the same update.
    let status = assert_code(
        update(
            &app,
            &author,
            pb::Resource {
                id: created.id.clone(),
                r#type: pb::ResourceType::Video as i32,
                ..Default::default()
            },
            &["type"],
        )
        .await,
        Code::InvalidArgument,
    );
    assert_eq!(
        violated_fields(&status),
        ["resource.content_url", "resource.body"]
    );
    let video = update(
        &app,
        &author,
        pb::Resource {
            id: created.id.clone(),
            r#type: pb::ResourceType::Video as i32,
            content_url: "https://cdn.example.com/intro.mp4".into(),
            ..Default::default()
        },
        &["type", "content_url", "body"],
    )
    .await
    .unwrap();
    assert_eq!(video.r#type, pb::ResourceType::Video as i32);
    assert!(video.body.is_empty());
    // Without a token, writes are UNAUTHENTICATED.
    assert_code(
        resources(&app)
            .delete_resource(Request::new(pb::DeleteResourceRequest { id: created.id }))
            .await,
        Code::Unauthenticated,
    );
}

/// The matrix: each access level × anonymous, a signed-in user, a member of the
/// resource's organization, a member of another organization, an enrolled student (active
/// or completed, from another organization), a student whose enrollment was cancelled, a
/// co-instructor of the course, and the author. Checked through GetResource,
/// ListResources (filtered and not) and search.
#[tokio::test]
async fn each_access_level_shows_its_resources_to_exactly_its_callers() {
    let app = TestApp::spawn().await;
    let org = Uuid::now_v7();
    let other_org = Uuid::now_v7();
    let author = app.instructor(Some(org));
    let (course, lessons) = app.published_course(&author, 0, 1).await;

    let anonymous: Option<User> = None;
    let user = app.student(None);
    let member = app.student(Some(org));
    let outsider = app.student(Some(other_org));
    let enrolled = app.student(Some(other_org));
    app.enroll(&enrolled, &course.id).await;
    let graduate = app.student(None);
    let enrollment = app.enroll(&graduate, &course.id).await;
    app.complete(&graduate, &enrollment.id, &lessons).await;
    let dropped = app.student(Some(org));
    let dropped_enrollment = app.enroll(&dropped, &course.id).await;
    app.enrollments()
        .cancel_enrollment(authed(
            pb::CancelEnrollmentRequest {
                id: dropped_enrollment.id,
            },
            &dropped.token,
        ))
        .await
        .expect("cancel the enrollment");
    let assistant = app.instructor(Some(other_org));
    app.courses()
        .add_course_instructor(authed(
            pb::AddCourseInstructorRequest {
                course_id: course.id.clone(),
                instructor_id: assistant.id.to_string(),
                role: pb::InstructorRole::Assistant as i32,
                permissions: vec![pb::InstructorPermission::ViewContent as i32],
            },
            &author.token,
        ))
        .await
        .expect("add an assistant");

    let word = "zebrafish";
    let mut made = Vec::new();
    for level in [
        pb::ResourceAccessLevel::Public,
        pb::ResourceAccessLevel::Registered,
        pb::ResourceAccessLevel::OrganizationMembers,
        pb::ResourceAccessLevel::EnrolledStudents,
    ] {
        let resource = create(
            &app,
            &author,
            pb::Resource {
                organization_id: org.to_string(),
                course_id: course.id.clone(),
                ..article(&format!("{word} {level:?}"), level)
            },
        )
        .await
        .unwrap();
        assert_eq!(resource.status, pb::ResourceStatus::Draft as i32);
        publish(&app, &author, &resource.id).await;
        made.push((level, resource.id));
    }
    let draft = create(
        &app,
        &author,
        pb::Resource {
            organization_id: org.to_string(),
            course_id: course.id.clone(),
            ..article(&format!("{word} draft"), pb::ResourceAccessLevel::Public)
        },
    )
    .await
    .unwrap();

    use pb::ResourceAccessLevel::*;
    // (caller, name, the levels it sees, sees the draft)
    let matrix: Vec<(Option<&User>, &str, Vec<pb::ResourceAccessLevel>, bool)> = vec![
        (anonymous.as_ref(), "anonymous", vec![Public], false),
        (
            Some(&user),
            "signed-in user",
            vec![Public, Registered],
            false,
        ),
        (
            Some(&member),
            "member of the organization",
            vec![Public, Registered, OrganizationMembers],
            false,
        ),
        (
            Some(&outsider),
            "member of another organization",
            vec![Public, Registered],
            false,
        ),
        (
            Some(&enrolled),
            "enrolled student (active)",
            vec![Public, Registered, EnrolledStudents],
            false,
        ),
        (
            Some(&graduate),
            "enrolled student (completed)",
            vec![Public, Registered, EnrolledStudents],
            false,
        ),
        (
            Some(&dropped),
            "not enrolled (cancelled), a member",
            vec![Public, Registered, OrganizationMembers],
            false,
        ),
        (
            Some(&assistant),
            "the course's assistant",
            vec![Public, Registered, EnrolledStudents],
            false,
        ),
        (
            Some(&author),
            "the author",
            vec![Public, Registered, OrganizationMembers, EnrolledStudents],
            true,
        ),
    ];
    for (caller, name, levels, sees_draft) in matrix {
        let mut expected = BTreeSet::new();
        for (level, id) in &made {
            let visible = levels.contains(level);
            match get(&app, caller, id).await {
                Ok(resource) => {
                    assert!(visible, "{name} reads the {level:?} resource");
                    assert_eq!(&resource.id, id);
                }
                Err(status) => {
                    assert!(
                        !visible,
                        "{name} cannot read the {level:?} resource: {status:?}"
                    );
                    assert_eq!(status.code(), Code::NotFound, "{name}, {level:?}");
                }
            }
            if visible {
                expected.insert(id.clone());
            }
        }
        match get(&app, caller, &draft.id).await {
            Ok(_) => assert!(sees_draft, "{name} reads the draft"),
            Err(status) => {
                assert!(!sees_draft, "{name}: {status:?}");
                assert_eq!(status.code(), Code::NotFound);
            }
        }
        let all = list(&app, caller, pb::ListResourcesRequest::default()).await;
        assert_eq!(ids(&all), expected, "{name}: the library");
        let search = list(
            &app,
            caller,
            pb::ListResourcesRequest {
                query: word.into(),
                ..Default::default()
            },
        )
        .await;
        assert_eq!(ids(&search), expected, "{name}: search");
        let of_course = list(
            &app,
            caller,
            pb::ListResourcesRequest {
                course_id: course.id.clone(),
                organization_id: org.to_string(),
                ..Default::default()
            },
        )
        .await;
        assert_eq!(ids(&of_course), expected, "{name}: the course's resources");
        let drafts = list(
            &app,
            caller,
            pb::ListResourcesRequest {
                status: pb::ResourceStatus::Draft as i32,
                ..Default::default()
            },
        )
        .await;
        assert_eq!(
            ids(&drafts),
            if sees_draft {
                BTreeSet::from([draft.id.clone()])
            } else {
                BTreeSet::new()
            },
            "{name}: drafts"
        );
    }
}

#[tokio::test]
async fn writers_are_the_author_the_course_team_and_the_organizations_admins() {
    let app = TestApp::spawn().await;
    let org = Uuid::now_v7();
    let author = app.instructor(Some(org));
    let colleague = app.instructor(Some(org));
    let org_admin = app.org_admin(org);
    let member = app.student(Some(org));
    let platform = app.user(None, &[("user", false), ("admin", false)]);
    let (course, _) = app.published_course(&author, 0, 1).await;

    // Creating needs the instructor role, and stays in the caller's organization.
    assert_code(
        create(
            &app,
            &member,
            article("Mine", pb::ResourceAccessLevel::Public),
        )
        .await,
        Code::PermissionDenied,
    );
    assert_code(
        create(
            &app,
            &author,
            pb::Resource {
                organization_id: Uuid::now_v7().to_string(),
                ..article("Elsewhere", pb::ResourceAccessLevel::OrganizationMembers)
            },
        )
        .await,
        Code::PermissionDenied,
    );
    // A course's resources are its team's: a colleague who can see the course is refused.
    assert_code(
        create(
            &app,
            &colleague,
            pb::Resource {
                course_id: course.id.clone(),
                ..article("Not my course", pb::ResourceAccessLevel::EnrolledStudents)
            },
        )
        .await,
        Code::PermissionDenied,
    );
    // ... and a course's resource belongs to the course's organization.
    let status = assert_code(
        create(
            &app,
            &platform,
            pb::Resource {
                course_id: course.id.clone(),
                organization_id: Uuid::now_v7().to_string(),
                ..article("Wrong place", pb::ResourceAccessLevel::Public)
            },
        )
        .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["resource.organization_id"]);
    // A co-instructor who edits content writes the course's resources; the organization
    // is the course's.
    app.courses()
        .add_course_instructor(authed(
            pb::AddCourseInstructorRequest {
                course_id: course.id.clone(),
                instructor_id: colleague.id.to_string(),
                role: pb::InstructorRole::CoInstructor as i32,
                permissions: vec![pb::InstructorPermission::EditContent as i32],
            },
            &author.token,
        ))
        .await
        .unwrap();
    let course_resource = create(
        &app,
        &colleague,
        pb::Resource {
            course_id: course.id.clone(),
            ..article("Week one notes", pb::ResourceAccessLevel::EnrolledStudents)
        },
    )
    .await
    .unwrap();
    assert_eq!(course_resource.organization_id, org.to_string());
    assert_eq!(course_resource.author_id, colleague.id.to_string());
    // The course's owner edits it too.
    update(
        &app,
        &author,
        pb::Resource {
            id: course_resource.id.clone(),
            title: "Week one, revised".into(),
            ..Default::default()
        },
        &["title"],
    )
    .await
    .unwrap();

    // An organization's resource: others of the organization see it and may not write it;
    // its admins may.
    let resource = create(
        &app,
        &author,
        pb::Resource {
            organization_id: org.to_string(),
            ..article(
                "Team handbook",
                pb::ResourceAccessLevel::OrganizationMembers,
            )
        },
    )
    .await
    .unwrap();
    publish(&app, &author, &resource.id).await;
    let retitle = pb::Resource {
        id: resource.id.clone(),
        title: "Hijacked".into(),
        ..Default::default()
    };
    assert_code(
        update(&app, &member, retitle.clone(), &["title"]).await,
        Code::PermissionDenied,
    );
    assert_code(
        update(&app, &colleague, retitle.clone(), &["title"]).await,
        Code::PermissionDenied,
    );
    // Outside the organization it does not exist.
    let stranger = app.instructor(Some(Uuid::now_v7()));
    assert_code(
        update(&app, &stranger, retitle.clone(), &["title"]).await,
        Code::NotFound,
    );
    let renamed = update(
        &app,
        &org_admin,
        pb::Resource {
            title: "Team handbook (2026)".into(),
            ..retitle.clone()
        },
        &["title"],
    )
    .await
    .unwrap();
    assert_eq!(renamed.title, "Team handbook (2026)");
    assert_eq!(renamed.author_id, author.id.to_string());
    // The org admin creates for the organization without the instructor role.
    create(
        &app,
        &org_admin,
        pb::Resource {
            organization_id: org.to_string(),
            ..article("Policies", pb::ResourceAccessLevel::OrganizationMembers)
        },
    )
    .await
    .unwrap();

    // Deleting is the writers' too, and is for good.
    assert_code(
        resources(&app)
            .delete_resource(authed(
                pb::DeleteResourceRequest {
                    id: resource.id.clone(),
                },
                &member.token,
            ))
            .await,
        Code::PermissionDenied,
    );
    resources(&app)
        .delete_resource(authed(
            pb::DeleteResourceRequest {
                id: resource.id.clone(),
            },
            &platform.token,
        ))
        .await
        .unwrap();
    assert_code(get(&app, Some(&author), &resource.id).await, Code::NotFound);
}

#[tokio::test]
async fn drafts_are_their_writers_until_published_and_unpublishing_hides_them_again() {
    let app = TestApp::spawn().await;
    let author = app.instructor(None);
    let reader = app.student(None);
    let resource = create(
        &app,
        &author,
        pb::Resource {
            r#type: pb::ResourceType::Template as i32,
            title: "Course outline template".into(),
            content_url: "https://files.example.com/outline.docx".into(),
            access_level: pb::ResourceAccessLevel::Registered as i32,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(resource.publish_time.is_none());
    assert_code(get(&app, Some(&reader), &resource.id).await, Code::NotFound);
    let published_events = || async {
        app.outbox_subjects()
            .await
            .into_iter()
            .filter(|s| s == "learning.resource.published")
            .count()
    };
    assert_eq!(published_events().await, 0, "a draft is not news");
    let published = publish(&app, &author, &resource.id).await;
    assert!(published.publish_time.is_some());
    assert_eq!(published_events().await, 1);
    // Editing a published resource publishes nothing new.
    update(
        &app,
        &author,
        pb::Resource {
            id: resource.id.clone(),
            description: "Sections, outcomes and a schedule".into(),
            ..Default::default()
        },
        &["description"],
    )
    .await
    .unwrap();
    assert_eq!(published_events().await, 1);
    assert_eq!(
        get(&app, Some(&reader), &resource.id).await.unwrap().id,
        resource.id
    );
    // Registered: not without a token.
    assert_code(get(&app, None, &resource.id).await, Code::NotFound);
    update(
        &app,
        &author,
        pb::Resource {
            id: resource.id.clone(),
            status: pb::ResourceStatus::Draft as i32,
            ..Default::default()
        },
        &["status"],
    )
    .await
    .unwrap();
    assert_code(get(&app, Some(&reader), &resource.id).await, Code::NotFound);
}

#[tokio::test]
async fn the_library_filters_by_type_tags_course_and_author_searches_and_pages() {
    let app = TestApp::spawn().await;
    let author = app.instructor(None);
    let other = app.instructor(None);
    let (course, _) = app.published_course(&author, 0, 1).await;
    let mut all = BTreeSet::new();
    for i in 0..5 {
        let resource = create(
            &app,
            &author,
            pb::Resource {
                tags: vec!["rust".into(), format!("week-{}", i % 2)],
                course_id: if i == 0 {
                    course.id.clone()
                } else {
                    String::new()
                },
                ..article(
                    &format!("Ownership lesson {i}"),
                    pb::ResourceAccessLevel::Public,
                )
            },
        )
        .await
        .unwrap();
        publish(&app, &author, &resource.id).await;
        all.insert(resource.id);
    }
    let video = create(
        &app,
        &other,
        pb::Resource {
            r#type: pb::ResourceType::Video as i32,
            title: "Async in practice".into(),
            description: "Futures, pinning and cancellation".into(),
            content_url: "https://videos.example.com/async".into(),
            access_level: pb::ResourceAccessLevel::Public as i32,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    publish(&app, &other, &video.id).await;

    let reader = app.student(None);
    // Pages of two, newest first, until the end.
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = list(
            &app,
            Some(&reader),
            pb::ListResourcesRequest {
                page_size: 2,
                page_token: token.clone(),
                author_id: author.id.to_string(),
                ..Default::default()
            },
        )
        .await;
        assert!(page.resources.len() <= 2);
        seen.extend(page.resources.iter().map(|r| r.id.clone()));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen.len(), 5);
    assert_eq!(seen.iter().cloned().collect::<BTreeSet<_>>(), all);
    let mut newest_first = seen.clone();
    newest_first.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, newest_first, "UUID v7 ids follow creation time");

    let videos = list(
        &app,
        None,
        pb::ListResourcesRequest {
            r#type: pb::ResourceType::Video as i32,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(ids(&videos), BTreeSet::from([video.id.clone()]));
    let tagged = list(
        &app,
        None,
        pb::ListResourcesRequest {
            tags: vec!["rust".into(), "week-0".into()],
            ..Default::default()
        },
    )
    .await;
    assert_eq!(tagged.resources.len(), 3);
    let of_course = list(
        &app,
        None,
        pb::ListResourcesRequest {
            course_id: course.id.clone(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(of_course.resources.len(), 1);
    // Search covers the description (and the body), with web search syntax.
    let found = list(
        &app,
        None,
        pb::ListResourcesRequest {
            query: "pinning -ownership".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(ids(&found), BTreeSet::from([video.id.clone()]));
    let found = list(
        &app,
        None,
        pb::ListResourcesRequest {
            query: "row-level security".into(),
            author_id: author.id.to_string(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(ids(&found), all);
    let found = list(
        &app,
        Some(&reader),
        pb::ListResourcesRequest {
            query: "ownership".into(),
            tags: vec!["week-1".into()],
            ..Default::default()
        },
    )
    .await;
    assert_eq!(found.resources.len(), 2, "lessons 1 and 3");
}
