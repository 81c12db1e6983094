//! Setting up a running stack as its users do: the first platform admin made with the
//! CLI, password sign-in, and a course with one lesson.

use lyceum_proto::identity::v1 as idpb;
use lyceum_proto::learning::v1 as lpb;
use lyceum_testkit::authed;
use tonic::Status;
use tonic::transport::Channel;

/// The password every user the suites create signs in with.
pub const PASSWORD: &str = "Correct-Horse-42";

/// The first platform admin, as an operator makes one: `lyceum admin bootstrap`.
pub fn bootstrap_platform_admin(database_url: &str, email: &str) {
    let bootstrap = std::process::Command::new(env!("CARGO_BIN_EXE_lyceum"))
        .args([
            "admin",
            "bootstrap",
            "--email",
            email,
            "--database-url",
            database_url,
        ])
        .env("LYCEUM_ADMIN_PASSWORD", PASSWORD)
        .env("LYCEUM_DEV_MODE", "1")
        .env("RUST_LOG", "warn")
        .output()
        .expect("lyceum admin bootstrap runs");
    assert!(bootstrap.status.success(), "{bootstrap:?}");
}

/// Signs in with [`PASSWORD`]: the access token of a new session.
pub async fn sign_in(channel: &Channel, email: &str) -> Result<String, Status> {
    let tokens = idpb::auth_service_client::AuthServiceClient::new(channel.clone())
        .authenticate(idpb::AuthenticateRequest {
            email: email.into(),
            password: PASSWORD.into(),
        })
        .await?
        .into_inner()
        .tokens
        .ok_or_else(|| Status::internal("no tokens in the answer"))?;
    Ok(tokens.access_token)
}

/// What a course made by [`course_with_one_lesson`] is like.
pub struct NewCourse<'a> {
    pub title: &'a str,
    /// Empty for none.
    pub organization_id: &'a str,
    pub visibility: lpb::CourseVisibility,
    pub price_minor: i64,
    pub publish: bool,
}

/// The ids of a course with one module and one article lesson, made by `teacher`.
pub struct CourseWithLesson {
    pub course_id: String,
    pub module_id: String,
    pub lesson_id: String,
}

pub async fn course_with_one_lesson(
    channel: &Channel,
    teacher: &str,
    new: NewCourse<'_>,
) -> CourseWithLesson {
    let mut courses = lpb::course_service_client::CourseServiceClient::new(channel.clone());
    let course = courses
        .create_course(authed(
            lpb::CreateCourseRequest {
                course: Some(lpb::Course {
                    title: new.title.into(),
                    organization_id: new.organization_id.into(),
                    visibility: new.visibility as i32,
                    price: Some(lpb::Money {
                        amount_minor: new.price_minor,
                        currency: "USD".into(),
                    }),
                    ..Default::default()
                }),
            },
            teacher,
        ))
        .await
        .expect("create a course")
        .into_inner()
        .course
        .unwrap();
    let module = courses
        .create_module(authed(
            lpb::CreateModuleRequest {
                course_id: course.id.clone(),
                title: "Module".into(),
                ..Default::default()
            },
            teacher,
        ))
        .await
        .expect("create a module")
        .into_inner()
        .module
        .unwrap();
    let lesson = courses
        .create_lesson(authed(
            lpb::CreateLessonRequest {
                course_id: course.id.clone(),
                module_id: module.id.clone(),
                title: "Lesson".into(),
                r#type: lpb::LessonType::Article as i32,
                ..Default::default()
            },
            teacher,
        ))
        .await
        .expect("create a lesson")
        .into_inner()
        .lesson
        .unwrap();
    if new.publish {
        courses
            .publish_course(authed(
                lpb::PublishCourseRequest {
                    id: course.id.clone(),
                },
                teacher,
            ))
            .await
            .expect("publish");
    }
    CourseWithLesson {
        course_id: course.id,
        module_id: module.id,
        lesson_id: lesson.id,
    }
}
