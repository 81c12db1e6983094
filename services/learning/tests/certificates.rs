//! Certificates through the gRPC API: issued on completion and attendance exactly once,
//! verified publicly without a token and without personal data, revoked as history,
//! issued again under a new number; bad input.

mod common;

use chrono::{Duration, Utc};
use common::*;
use lyceum_proto::events::v1 as events;
use lyceum_proto::learning::v1 as pb;
use lyceum_proto::learning::v1::certificate_service_client::CertificateServiceClient;
use lyceum_testkit::{assert_code, authed, eventually, violated_fields};
use prost::Message;
use tonic::Code;
use tonic::transport::Channel;
use uuid::Uuid;

fn certificates(app: &TestApp) -> CertificateServiceClient<Channel> {
    CertificateServiceClient::new(app.server.channel.clone())
}

async fn my_certificates(app: &TestApp, user: &User) -> Vec<pb::Certificate> {
    certificates(app)
        .list_certificates(authed(pb::ListCertificatesRequest::default(), &user.token))
        .await
        .unwrap()
        .into_inner()
        .certificates
}

/// Publishes an envelope on `stream`'s subject as its producer's relay would, under a
/// fresh message id.
async fn publish(app: &TestApp, stream: &str, subject: &str, envelope: &events::EventEnvelope) {
    app.bus.ensure_stream(stream).await.unwrap();
    let message = async_nats::jetstream::message::PublishMessage::build()
        .message_id(Uuid::now_v7().to_string())
        .payload(envelope.encode_to_vec().into());
    app.bus
        .jetstream()
        .send_publish(app.bus.subject(subject), message)
        .await
        .unwrap()
        .await
        .unwrap();
}

/// Identity's event naming a user, so that verification can show the name.
async fn name_user(app: &TestApp, user: &User, full_name: &str, email: &str) {
    let payload = events::UserCreated {
        user: Some(events::UserSnapshot {
            id: user.id.to_string(),
            email: email.into(),
            full_name: full_name.into(),
            version: 1,
            ..Default::default()
        }),
    };
    let envelope = events::EventEnvelope {
        event_id: Uuid::now_v7().to_string(),
        event_type: "lyceum.identity.user.created".into(),
        source_service: "identity".into(),
        payload: Some(prost_types::Any::from_msg(&payload).unwrap()),
        ..Default::default()
    };
    publish(app, "identity", "identity.user.created", &envelope).await;
}

/// A published course with certificates on and `lessons` lessons.
async fn certified_course(
    app: &TestApp,
    owner: &User,
    lessons: usize,
) -> (pb::Course, Vec<String>) {
    let course = app
        .courses()
        .create_course(authed(
            pb::CreateCourseRequest {
                course: Some(pb::Course {
                    title: "Certified change leadership".into(),
                    price: Some(pb::Money {
                        amount_minor: 0,
                        currency: "USD".into(),
                    }),
                    certificate: Some(pb::CertificateSettings {
                        enabled: true,
                        template_url: String::new(),
                    }),
                    ..Default::default()
                }),
            },
            &owner.token,
        ))
        .await
        .unwrap()
        .into_inner()
        .course
        .unwrap();
    let lesson_ids = app.add_lessons(owner, &course.id, lessons).await;
    app.courses()
        .publish_course(authed(
            pb::PublishCourseRequest {
                id: course.id.clone(),
            },
            &owner.token,
        ))
        .await
        .unwrap();
    (course, lesson_ids)
}

#[tokio::test]
async fn completing_a_course_issues_one_certificate_that_anyone_can_verify_until_revoked() {
    let app = TestApp::spawn().await;
    let teacher = app.instructor(None);
    let student = app.student(None);
    let email = format!("ada-{}@example.com", Uuid::now_v7().simple());
    name_user(&app, &student, "Ada Lovelace", &email).await;
    let (course, lessons) = certified_course(&app, &teacher, 2).await;
    let enrollment = app.enroll(&student, &course.id).await;
    app.complete(&student, &enrollment.id, &lessons).await;

    eventually("the certificate", || async {
        my_certificates(&app, &student).await.len() == 1
    })
    .await;
    let issued = my_certificates(&app, &student).await.remove(0);
    assert_eq!(issued.r#type, pb::CertificateType::Course as i32);
    assert_eq!(issued.course_id, course.id);
    assert_eq!(issued.status, pb::CertificateStatus::Valid as i32);
    assert!(
        issued.number.starts_with("CERT-COURSE-"),
        "{}",
        issued.number
    );
    assert!(issued.issued_by.is_empty(), "issued automatically");
    // The student's progress shows it.
    let progress = app
        .enrollments()
        .get_student_progress(authed(
            pb::GetStudentProgressRequest {
                enrollment_id: enrollment.id.clone(),
            },
            &student.token,
        ))
        .await
        .unwrap()
        .into_inner()
        .progress
        .unwrap();
    assert!(progress.certificate_url.ends_with(&issued.number));

    // The completion delivered again (a redelivery under a new id, as a replay would):
    // still one certificate.
    let mut conn = app.db.admin_connection().await;
    let completed: Vec<u8> = sqlx::query_scalar(
        "SELECT envelope FROM learning.outbox WHERE subject = 'learning.enrollment.completed'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    let mut again = events::EventEnvelope::decode(completed.as_slice()).unwrap();
    let replay_id = Uuid::now_v7();
    again.event_id = replay_id.to_string();
    publish(&app, "learning", "learning.enrollment.completed", &again).await;
    eventually("the replay is applied", || async {
        let mut conn = app.db.admin_connection().await;
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM learning.inbox
             WHERE consumer = 'learning-certificates' AND event_id = $1",
        )
        .bind(replay_id)
        .fetch_one(&mut conn)
        .await
        .unwrap()
            == 1
    })
    .await;
    assert_eq!(my_certificates(&app, &student).await.len(), 1);
    let live: i64 = sqlx::query_scalar("SELECT count(*) FROM learning.certificates")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(live, 1);

    // Verification needs no token and shows no email and no id.
    let verify = |number: String| {
        let mut client = certificates(&app);
        async move {
            client
                .verify_certificate(tonic::Request::new(pb::VerifyCertificateRequest { number }))
                .await
        }
    };
    let shown = verify(issued.number.to_lowercase())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(shown.recipient_name, "Ada Lovelace");
    assert_eq!(shown.title, "Certified change leadership");
    assert_eq!(shown.status, pb::CertificateStatus::Valid as i32);
    let bytes = shown.encode_to_vec();
    for secret in [
        email.clone(),
        student.id.to_string(),
        course.id.clone(),
        issued.id.clone(),
        teacher.id.to_string(),
    ] {
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "verification revealed {secret}"
        );
    }

    // Only the team revokes; the certificate stays as history and verification says so.
    let revoke = |reason: &str| pb::RevokeCertificateRequest {
        id: issued.id.clone(),
        reason: reason.into(),
    };
    assert_code(
        certificates(&app)
            .revoke_certificate(authed(revoke("mine"), &student.token))
            .await,
        Code::PermissionDenied,
    );
    let revoked = certificates(&app)
        .revoke_certificate(authed(revoke("Plagiarised project"), &teacher.token))
        .await
        .unwrap()
        .into_inner()
        .certificate
        .unwrap();
    assert_eq!(revoked.status, pb::CertificateStatus::Revoked as i32);
    assert_eq!(revoked.revoke_reason, "Plagiarised project");
    assert_code(
        certificates(&app)
            .revoke_certificate(authed(revoke("twice"), &teacher.token))
            .await,
        Code::FailedPrecondition,
    );
    let shown = verify(issued.number.clone()).await.unwrap().into_inner();
    assert_eq!(shown.status, pb::CertificateStatus::Revoked as i32);
    assert_eq!(shown.revoke_time, revoked.revoke_time);
    let progress = app
        .enrollments()
        .get_student_progress(authed(
            pb::GetStudentProgressRequest {
                enrollment_id: enrollment.id.clone(),
            },
            &student.token,
        ))
        .await
        .unwrap()
        .into_inner()
        .progress
        .unwrap();
    assert!(progress.certificate_url.is_empty());

    // Issued again on request: a new number; the old one still verifies as revoked.
    let reissued = certificates(&app)
        .issue_certificate(authed(
            pb::IssueCertificateRequest {
                user_id: student.id.to_string(),
                course_id: course.id.clone(),
                skills: vec!["Facilitation".into()],
                ..Default::default()
            },
            &teacher.token,
        ))
        .await
        .unwrap()
        .into_inner()
        .certificate
        .unwrap();
    assert_ne!(reissued.number, issued.number);
    assert_eq!(reissued.issued_by, teacher.id.to_string());
    assert_eq!(reissued.skills, ["Facilitation"]);
    assert_eq!(
        verify(issued.number.clone())
            .await
            .unwrap()
            .into_inner()
            .status,
        pb::CertificateStatus::Revoked as i32
    );
    let subjects = app.outbox_subjects().await;
    let count = |s: &str| subjects.iter().filter(|x| x.as_str() == s).count();
    assert_eq!(
        (
            count("learning.certificate.issued"),
            count("learning.certificate.revoked")
        ),
        (2, 1)
    );
}

#[tokio::test]
async fn attending_a_workshop_issues_its_certificate_and_manual_issues_follow_the_rules() {
    let app = TestApp::spawn().await;
    let teacher = app.instructor(None);
    let mut spec = workshop_spec(&teacher, 10, 0, Duration::minutes(30));
    spec.certificate = Some(pb::CertificateSettings {
        enabled: true,
        template_url: String::new(),
    });
    let draft = app
        .workshops()
        .create_workshop(authed(
            pb::CreateWorkshopRequest {
                workshop: Some(spec),
            },
            &teacher.token,
        ))
        .await
        .unwrap()
        .into_inner()
        .workshop
        .unwrap();
    let workshop = app
        .workshops()
        .publish_workshop(authed(
            pb::PublishWorkshopRequest { id: draft.id },
            &teacher.token,
        ))
        .await
        .unwrap()
        .into_inner()
        .workshop
        .unwrap();
    let (ann, ben) = (app.student(None), app.student(None));
    let a = app.register(&ann, &workshop.id, "").await.unwrap();
    app.register(&ben, &workshop.id, "").await.unwrap();
    let issue = |user: &User| pb::IssueCertificateRequest {
        user_id: user.id.to_string(),
        workshop_id: workshop.id.clone(),
        ..Default::default()
    };
    // Not before attending; never by a registrant.
    assert_code(
        certificates(&app)
            .issue_certificate(authed(issue(&ben), &teacher.token))
            .await,
        Code::FailedPrecondition,
    );
    assert_code(
        certificates(&app)
            .issue_certificate(authed(issue(&ann), &ann.token))
            .await,
        Code::PermissionDenied,
    );
    app.workshops()
        .mark_attendance(authed(
            pb::MarkAttendanceRequest {
                registration_id: a.id.clone(),
                attended: true,
            },
            &teacher.token,
        ))
        .await
        .unwrap();
    eventually("the workshop certificate", || async {
        my_certificates(&app, &ann).await.len() == 1
    })
    .await;
    let issued = my_certificates(&app, &ann).await.remove(0);
    assert_eq!(issued.r#type, pb::CertificateType::Workshop as i32);
    assert!(issued.number.starts_with("CERT-WORKSHOP-"));
    // A second live certificate for the same workshop is refused on its field.
    let status = assert_code(
        certificates(&app)
            .issue_certificate(authed(issue(&ann), &teacher.token))
            .await,
        Code::AlreadyExists,
    );
    assert_eq!(violated_fields(&status), ["workshop_id"]);
    // The recipient and the team read it; others do not.
    assert_code(
        certificates(&app)
            .get_certificate(authed(
                pb::GetCertificateRequest {
                    id: issued.id.clone(),
                },
                &ben.token,
            ))
            .await,
        Code::NotFound,
    );
    certificates(&app)
        .get_certificate(authed(
            pb::GetCertificateRequest {
                id: issued.id.clone(),
            },
            &teacher.token,
        ))
        .await
        .unwrap();
}

#[tokio::test]
async fn bad_certificate_requests_get_the_right_code_with_field_details() {
    let app = TestApp::spawn().await;
    let teacher = app.instructor(None);
    let mut client = certificates(&app);
    let status = assert_code(
        client
            .verify_certificate(tonic::Request::new(pb::VerifyCertificateRequest {
                number: "CERT-COURSE-20261205-ABCDEFGHJKMN".into(),
            }))
            .await,
        Code::NotFound,
    );
    assert!(status.message().contains("certificate"));
    let status = assert_code(
        client
            .verify_certificate(tonic::Request::new(pb::VerifyCertificateRequest {
                number: "12345".into(),
            }))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["number"]);
    let status = assert_code(
        client
            .issue_certificate(authed(
                pb::IssueCertificateRequest {
                    user_id: "nope".into(),
                    course_id: Uuid::now_v7().to_string(),
                    workshop_id: Uuid::now_v7().to_string(),
                    skills: vec!["".into()],
                    expire_time: Some(lyceum_platform::convert::timestamp(
                        Utc::now() - Duration::days(1),
                    )),
                },
                &teacher.token,
            ))
            .await,
        Code::InvalidArgument,
    );
    let mut fields = violated_fields(&status);
    fields.sort();
    assert_eq!(fields, ["expire_time", "skills", "user_id", "workshop_id"]);
    let status = assert_code(
        client
            .revoke_certificate(authed(
                pb::RevokeCertificateRequest {
                    id: Uuid::now_v7().to_string(),
                    reason: String::new(),
                },
                &teacher.token,
            ))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["reason"]);
    assert_code(
        client
            .revoke_certificate(authed(
                pb::RevokeCertificateRequest {
                    id: Uuid::now_v7().to_string(),
                    reason: "unknown".into(),
                },
                &teacher.token,
            ))
            .await,
        Code::NotFound,
    );
}
