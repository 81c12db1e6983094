//! The cross-tenant attack matrix. Two organizations, A and B, each with an admin, an
//! instructor, a student, a team, courses (published and draft, visible to members
//! only), an enrollment with progress, a review, a paid payment and a payout. Every
//! unary method of every service `lyceum serve all` serves (found by reflection) is
//! called by each of
//! A's callers, and by callers who should get nowhere (no token, an expired token, a token
//! signed by an unknown key, a suspended user's token, a disabled service account's
//! token), with every id field aimed at B's objects and every page token taken from B's
//! own listing with the same method.
//!
//! It passes when no call that names B's objects succeeds, no answer carries anything of
//! B's the request did not already name (ids, emails, names, titles), and every refusal
//! is UNAUTHENTICATED, PERMISSION_DENIED or
//! NOT_FOUND. What is public by design is listed once, in [`PUBLIC_BY_DESIGN`], and what
//! one scope opens by design in [`SCOPED_BY_DESIGN`].

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::reflection::{RawCodec, Served};
use common::stack::{
    NewCourse, PASSWORD, bootstrap_platform_admin, course_with_one_lesson, sign_in,
};
use common::*;
use lyceum_platform::auth::{TokenSigner, scopes};
use lyceum_platform::crypto::SecretBox;
use lyceum_proto::identity::v1 as idpb;
use lyceum_proto::instructor::v1 as ipb;
use lyceum_proto::learning::v1 as lpb;
use lyceum_testkit::{TestDatabase, authed, claims_of, service_account};
use prost::encoding::{self, WireType};
use prost_types::field_descriptor_proto::{Label, Type};
use tonic::Code;
use tonic::transport::Channel;
use uuid::Uuid;

/// Answers that may carry another tenant's data because the method exists to publish it.
/// `(method, why)`; reviewed here and nowhere else.
const PUBLIC_BY_DESIGN: &[(&str, &str)] = &[
    (
        "/lyceum.identity.v1.AuthService/GetSigningKeys",
        "public keys are published for every service to verify tokens",
    ),
    (
        "/lyceum.learning.v1.CertificateService/VerifyCertificate",
        "certificates are verified publicly by number; the answer shows only what a certificate shows",
    ),
    (
        "/lyceum.instructor.v1.ProfileService/GetInstructorProfile",
        "instructor profiles are public pages",
    ),
    (
        "/lyceum.instructor.v1.ProfileService/SearchInstructors",
        "the instructor directory is public",
    ),
];

/// Answers one caller may get about every tenant because its scope grants exactly that:
/// `(caller, method, why)`.
const SCOPED_BY_DESIGN: &[(&str, &str, &str)] = &[
    (
        "a users:read service account",
        "/lyceum.identity.v1.UserService/GetUser",
        "users:read reads identity's users, for the services that show names",
    ),
    (
        "a users:read service account",
        "/lyceum.identity.v1.UserService/BatchGetUsers",
        "users:read reads identity's users, for the services that show names",
    ),
    (
        "a users:read service account",
        "/lyceum.identity.v1.UserService/ListUsers",
        "users:read reads identity's users, for the services that show names",
    ),
];

/// Reads that may answer successfully when asked about B, because they answer only with
/// what the caller may see (an empty page or batch, here): `(method, why)`.
const FILTERING_READS: &[(&str, &str)] = &[
    (
        "/lyceum.identity.v1.UserService/BatchGetUsers",
        "answers the users of the batch the caller may see, and skips the others",
    ),
    (
        "/lyceum.learning.v1.CourseService/ListCourses",
        "B's instructor or organization is a filter; the page holds only courses the caller may see",
    ),
    (
        "/lyceum.learning.v1.WorkshopService/ListWorkshops",
        "B's instructor or organization is a filter; the page holds only workshops the caller may see",
    ),
    (
        "/lyceum.learning.v1.ResourceService/ListResources",
        "B's course, organization or author is a filter; the page holds only resources the caller may see",
    ),
];

/// Refusals a caller may get: nothing about the target is revealed by them.
const REFUSALS: [Code; 3] = [
    Code::Unauthenticated,
    Code::PermissionDenied,
    Code::NotFound,
];

struct Person {
    id: String,
    email: String,
    name: String,
    token: String,
}

/// One organization and everything in it.
struct Tenant {
    org_id: String,
    admin: Person,
    instructor: Person,
    student: Person,
    team_id: String,
    team_name: String,
    course_id: String,
    course_title: String,
    draft_course_id: String,
    paid_course_id: String,
    module_id: String,
    lesson_id: String,
    enrollment_id: String,
    paid_enrollment_id: String,
    review_id: String,
    payment_id: String,
    /// A published workshop for the organization's members, and the student's
    /// registration for it.
    workshop_id: String,
    workshop_title: String,
    registration_id: String,
    /// The student's certificate of the course, issued by the instructor.
    certificate_id: String,
    certificate_number: String,
    /// A published resource of the library for the organization's members.
    resource_id: String,
    resource_title: String,
    /// An assessment template of the organization (by its admin), one of its questions,
    /// and the student's assessment of it with one answer.
    template_id: String,
    template_name: String,
    question_id: String,
    assessment_id: String,
    /// The student's membership grant.
    grant_id: String,
    /// The tenant's payment handler: a platform service account it uses.
    service_account_id: String,
    /// The instructor's paid-out earnings.
    payout_id: String,
}

impl Tenant {
    /// Everything of this tenant's that no other tenant may read.
    fn secrets(&self) -> Vec<String> {
        let mut secrets = vec![
            self.org_id.clone(),
            self.team_id.clone(),
            self.team_name.clone(),
            self.course_id.clone(),
            self.course_title.clone(),
            self.draft_course_id.clone(),
            self.paid_course_id.clone(),
            self.module_id.clone(),
            self.lesson_id.clone(),
            self.enrollment_id.clone(),
            self.paid_enrollment_id.clone(),
            self.review_id.clone(),
            self.payment_id.clone(),
            self.workshop_id.clone(),
            self.workshop_title.clone(),
            self.registration_id.clone(),
            self.certificate_id.clone(),
            self.certificate_number.clone(),
            self.resource_id.clone(),
            self.resource_title.clone(),
            self.template_id.clone(),
            self.template_name.clone(),
            self.question_id.clone(),
            self.assessment_id.clone(),
            self.grant_id.clone(),
            self.service_account_id.clone(),
            self.payout_id.clone(),
        ];
        for person in [&self.admin, &self.instructor, &self.student] {
            secrets.extend([person.id.clone(), person.email.clone(), person.name.clone()]);
        }
        secrets
    }

    /// The id a field of a request names, aimed at this tenant: by the field's name, or
    /// for `id` by the message it sits in (or the method's noun at the top level).
    fn id_for(&self, field: &str, owner: &str) -> Option<String> {
        let noun = match field {
            "id" => owner,
            other => other.strip_suffix("_id")?,
        };
        Some(match noun {
            "organization" | "Organization" => self.org_id.clone(),
            "team" | "Team" => self.team_id.clone(),
            "course" | "Course" | "CourseContent" | "CourseInstructor" => self.course_id.clone(),
            "module" | "Module" => self.module_id.clone(),
            "lesson" | "Lesson" => self.lesson_id.clone(),
            "enrollment" | "Enrollment" | "StudentProgress" => self.enrollment_id.clone(),
            "related_entity" => self.paid_enrollment_id.clone(),
            "review" | "Review" | "ReviewHelpful" | "ToReview" => self.review_id.clone(),
            "payment" | "Payment" => self.payment_id.clone(),
            "workshop" | "Workshop" | "Workshops" | "Facilitators" => self.workshop_id.clone(),
            "registration" | "Registration" => self.registration_id.clone(),
            "certificate" | "Certificate" => self.certificate_id.clone(),
            "resource" | "Resource" | "Resources" => self.resource_id.clone(),
            "template" | "Template" | "Templates" => self.template_id.clone(),
            "question" | "Question" => self.question_id.clone(),
            "assessment" | "Assessment" | "Assessments" => self.assessment_id.clone(),
            "facilitator" | "Facilitator" => self.instructor.id.clone(),
            "grant" => self.grant_id.clone(),
            "payout" | "Payout" => self.payout_id.clone(),
            "service_account" | "ServiceAccount" => self.service_account_id.clone(),
            "instructor" | "InstructorProfile" | "InstructorSettings" | "InstructorFlags"
            | "author" => self.instructor.id.clone(),
            "user" | "User" | "student" | "payer" | "UserRoles" | "Role" => self.student.id.clone(),
            _ => return None,
        })
    }
}

/// The resource a method acts on: `GetEnrollment` → `Enrollment`.
fn noun_of(method: &str) -> &str {
    const VERBS: &[&str] = &[
        "Get",
        "Update",
        "Delete",
        "Cancel",
        "Publish",
        "Archive",
        "Remove",
        "Refund",
        "Succeed",
        "Fail",
        "Disable",
        "List",
        "RespondTo",
        "Vote",
        "Set",
        "Upsert",
        "Add",
        "Record",
        "Create",
        "Has",
        "Revoke",
        "Grant",
        "BatchGet",
        "Complete",
        "Abandon",
    ];
    VERBS
        .iter()
        .filter_map(|verb| method.strip_prefix(verb))
        .min_by_key(|rest| rest.len())
        .unwrap_or(method)
}

/// An enum value that passes validation: the first real value, except where that one is
/// refused on its own (granting the platform-wide admin role inside an organization,
/// adding a second primary instructor).
fn enum_value(type_name: &str) -> i32 {
    match type_name {
        ".lyceum.identity.v1.Role" => idpb::Role::Instructor as i32,
        ".lyceum.learning.v1.InstructorRole" => lpb::InstructorRole::CoInstructor as i32,
        ".lyceum.learning.v1.FacilitatorRole" => lpb::FacilitatorRole::CoFacilitator as i32,
        _ => 1,
    }
}

/// The fields an update changes, per method: one harmless field each.
fn update_paths(method: &str) -> Vec<String> {
    let path = match method {
        "UpdateOrganization" | "UpdateTeam" => "name",
        "UpdateUser" => "full_name",
        "UpdateReview" => "rating",
        _ => "title",
    };
    vec![path.to_owned()]
}

/// Builds a well-formed request aimed at `target`: ids from the target, plausible values
/// elsewhere, so that only authorization stands between the caller and the target.
struct Builder<'a> {
    served: &'a Served,
    target: &'a Tenant,
    method: &'a str,
    /// A page token of the target's own listing with this method, when it has one.
    page_token: &'a str,
}

impl Builder<'_> {
    fn message(&self, type_name: &str, depth: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let Some(descriptor) = self.served.messages.get(type_name) else {
            return out;
        };
        let owner = if depth == 0 {
            noun_of(self.method)
        } else {
            type_name.rsplit('.').next().unwrap_or_default()
        };
        for field in &descriptor.field {
            let tag = field.number() as u32;
            let name = field.name();
            match field.r#type() {
                Type::String if field.label() == Label::Repeated => match name {
                    "ids" => {
                        for person in [&self.target.student, &self.target.instructor] {
                            encoding::string::encode(tag, &person.id, &mut out);
                        }
                    }
                    "scopes" => encoding::string::encode(tag, &"users:read".to_owned(), &mut out),
                    "module_ids" => encoding::string::encode(tag, &self.target.module_id, &mut out),
                    "lesson_ids" => encoding::string::encode(tag, &self.target.lesson_id, &mut out),
                    _ => {}
                },
                Type::String if name == "page_token" && !self.page_token.is_empty() => {
                    encoding::string::encode(tag, &self.page_token.to_owned(), &mut out)
                }
                Type::String if name == "page_token" => {}
                // A certificate names a course or a workshop, not both.
                Type::String if self.method == "IssueCertificate" && name == "workshop_id" => {}
                Type::String if name == "number" => {
                    encoding::string::encode(tag, &self.target.certificate_number, &mut out)
                }
                Type::String => {
                    let value = self
                        .target
                        .id_for(name, owner)
                        .unwrap_or_else(|| self.text(name));
                    if !value.is_empty() {
                        encoding::string::encode(tag, &value, &mut out);
                    }
                }
                Type::Enum => {
                    encoding::int32::encode(tag, &enum_value(field.type_name()), &mut out)
                }
                Type::Int32 | Type::Int64 => {
                    let value: i64 = match name {
                        "page_size" => 10,
                        "progress_percent" => 50,
                        "amount_minor" => 100,
                        "watch_time_seconds" => 60,
                        "year" => 2026,
                        // An early-bird price needs a cutoff, left out with it.
                        "early_bird_price_minor" => 0,
                        _ if name.contains("rating") => 5,
                        _ => 1,
                    };
                    if field.r#type() == Type::Int32 {
                        encoding::int32::encode(tag, &(value as i32), &mut out);
                    } else {
                        encoding::int64::encode(tag, &value, &mut out);
                    }
                }
                Type::Double => encoding::double::encode(tag, &10.0, &mut out),
                // Times in the future, in order: a start, then its end (an early-bird
                // cutoff would need a price to undercut: left out).
                Type::Message if field.type_name() == ".google.protobuf.Timestamp" => {
                    let days = match name {
                        "early_bird_end_time" => continue,
                        "end_time" | "start_before" => 8,
                        _ => 7,
                    };
                    let seconds = chrono::Utc::now().timestamp() + days * 86_400;
                    let mut time = Vec::new();
                    encoding::int64::encode(1, &seconds, &mut time);
                    nest(tag, &time, &mut out);
                }
                Type::Message if field.type_name() == ".google.protobuf.FieldMask" => {
                    let mut mask = Vec::new();
                    for path in update_paths(self.method) {
                        encoding::string::encode(1, &path, &mut mask);
                    }
                    nest(tag, &mask, &mut out);
                }
                Type::Message
                    if depth < 2
                        && field.label() != Label::Repeated
                        && !field.type_name().starts_with(".google.") =>
                {
                    let nested = self.message(field.type_name(), depth + 1);
                    nest(tag, &nested, &mut out);
                }
                _ => {}
            }
        }
        out
    }

    fn text(&self, field: &str) -> String {
        let unique = Uuid::now_v7().simple().to_string();
        match field {
            "email" => format!("attacker-{unique}@example.com"),
            "password" | "current_password" => PASSWORD.into(),
            "new_password" => "Another-Horse-43".into(),
            "slug" => format!("attack-{}", &unique[20..]),
            // A lowercase name with dashes, as service accounts need.
            "name" if self.method == "CreateServiceAccount" => format!("attack-{}", &unique[20..]),
            // Tokens and secrets the attacker does not have.
            "refresh_token" | "client_secret" => format!("stolen-{unique}"),
            "bio" => {
                "An instructor who writes long enough biographies for the profile rules.".into()
            }
            "currency" => "USD".into(),
            "request_id" | "provider_transaction_id" => unique,
            "name" | "title" | "full_name" | "text" | "description" | "reason" | "body"
            | "response" | "headline" => format!("Attack {}", &unique[24..]),
            _ => String::new(),
        }
    }
}

fn nest(tag: u32, bytes: &[u8], out: &mut Vec<u8>) {
    encoding::encode_key(tag, WireType::LengthDelimited, out);
    encoding::encode_varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

/// Calls the stack as the tests' users do.
struct Stack {
    channel: Channel,
}

impl Stack {
    fn users(&self) -> idpb::user_service_client::UserServiceClient<Channel> {
        idpb::user_service_client::UserServiceClient::new(self.channel.clone())
    }

    fn auth(&self) -> idpb::auth_service_client::AuthServiceClient<Channel> {
        idpb::auth_service_client::AuthServiceClient::new(self.channel.clone())
    }

    fn enrollments(&self) -> lpb::enrollment_service_client::EnrollmentServiceClient<Channel> {
        lpb::enrollment_service_client::EnrollmentServiceClient::new(self.channel.clone())
    }

    async fn sign_in(&self, email: &str) -> String {
        sign_in(&self.channel, email)
            .await
            .unwrap_or_else(|e| panic!("signing in {email}: {e}"))
    }

    /// A member of `org` created by `admin`, with `role` there when given, signed in.
    async fn member(
        &self,
        admin: &str,
        org: &str,
        label: &str,
        role: Option<idpb::Role>,
    ) -> Person {
        let unique = Uuid::now_v7().simple().to_string();
        let email = format!("{label}-{unique}@example.com");
        let name = format!("{label} {}", &unique[20..]);
        let user = self
            .users()
            .create_user(authed(
                idpb::CreateUserRequest {
                    email: email.clone(),
                    password: PASSWORD.into(),
                    full_name: name.clone(),
                    organization_id: org.into(),
                    ..Default::default()
                },
                admin,
            ))
            .await
            .expect("create a member")
            .into_inner()
            .user
            .unwrap();
        if let Some(role) = role {
            self.users()
                .grant_role(authed(
                    idpb::GrantRoleRequest {
                        user_id: user.id.clone(),
                        role: role as i32,
                        organization_id: org.into(),
                        expire_time: None,
                    },
                    admin,
                ))
                .await
                .expect("grant a role");
        }
        let token = self.sign_in(&email).await;
        Person {
            id: user.id,
            email,
            name,
            token,
        }
    }

    /// A course of the organization, visible to its members only, with one lesson.
    async fn course(
        &self,
        teacher: &Person,
        org: &str,
        title: &str,
        price: i64,
        publish: bool,
    ) -> (String, String, String) {
        let made = course_with_one_lesson(
            &self.channel,
            &teacher.token,
            NewCourse {
                title,
                organization_id: org,
                visibility: lpb::CourseVisibility::Organization,
                price_minor: price,
                publish,
            },
        )
        .await;
        (made.course_id, made.module_id, made.lesson_id)
    }

    async fn tenant(&self, platform_admin: &str, label: &str) -> Tenant {
        let unique = Uuid::now_v7().simple().to_string();
        let org_id =
            idpb::organization_service_client::OrganizationServiceClient::new(self.channel.clone())
                .create_organization(authed(
                    idpb::CreateOrganizationRequest {
                        name: format!("Organization {label}"),
                        slug: format!("org-{label}-{}", &unique[20..]).to_lowercase(),
                        ..Default::default()
                    },
                    platform_admin,
                ))
                .await
                .expect("create an organization")
                .into_inner()
                .organization
                .unwrap()
                .id;
        let admin = self
            .member(
                platform_admin,
                &org_id,
                &format!("admin{label}"),
                Some(idpb::Role::OrgAdmin),
            )
            .await;
        let instructor = self
            .member(
                &admin.token,
                &org_id,
                &format!("teacher{label}"),
                Some(idpb::Role::Instructor),
            )
            .await;
        let student = self
            .member(&admin.token, &org_id, &format!("student{label}"), None)
            .await;

        let mut orgs =
            idpb::organization_service_client::OrganizationServiceClient::new(self.channel.clone());
        let team_name = format!("Team {label} {}", &unique[24..]);
        let team_id = orgs
            .create_team(authed(
                idpb::CreateTeamRequest {
                    organization_id: org_id.clone(),
                    name: team_name.clone(),
                    ..Default::default()
                },
                &admin.token,
            ))
            .await
            .expect("create a team")
            .into_inner()
            .team
            .unwrap()
            .id;
        orgs.add_team_member(authed(
            idpb::AddTeamMemberRequest {
                team_id: team_id.clone(),
                user_id: student.id.clone(),
                ..Default::default()
            },
            &admin.token,
        ))
        .await
        .expect("add a team member");

        let course_title = format!("Secret course of {label} {}", &unique[24..]);
        let (course_id, module_id, lesson_id) = self
            .course(&instructor, &org_id, &course_title, 0, true)
            .await;
        let (draft_course_id, _, _) = self
            .course(&instructor, &org_id, &format!("Draft of {label}"), 0, false)
            .await;
        let (paid_course_id, _, _) = self
            .course(
                &instructor,
                &org_id,
                &format!("Paid course of {label}"),
                5_000,
                true,
            )
            .await;

        let mut enrollments = self.enrollments();
        let enrollment_id = enrollments
            .enroll(authed(
                lpb::EnrollRequest {
                    course_id: course_id.clone(),
                },
                &student.token,
            ))
            .await
            .expect("enroll")
            .into_inner()
            .enrollment
            .unwrap()
            .id;
        enrollments
            .record_lesson_progress(authed(
                lpb::RecordLessonProgressRequest {
                    enrollment_id: enrollment_id.clone(),
                    lesson_id: lesson_id.clone(),
                    status: lpb::LessonProgressStatus::Completed as i32,
                    progress_percent: 100,
                    watch_time_seconds: 60,
                    quiz_score: None,
                },
                &student.token,
            ))
            .await
            .expect("complete the course");
        let review_id = lpb::review_service_client::ReviewServiceClient::new(self.channel.clone())
            .create_review(authed(
                lpb::CreateReviewRequest {
                    course_id: course_id.clone(),
                    rating: 5,
                    title: format!("Review by {label}"),
                    text: "Loved it".into(),
                    ..Default::default()
                },
                &student.token,
            ))
            .await
            .expect("review")
            .into_inner()
            .review
            .unwrap()
            .id;
        let paid_enrollment_id = enrollments
            .enroll(authed(
                lpb::EnrollRequest {
                    course_id: paid_course_id.clone(),
                },
                &student.token,
            ))
            .await
            .expect("enroll in the paid course")
            .into_inner()
            .enrollment
            .unwrap()
            .id;
        let payment_id =
            ipb::payment_service_client::PaymentServiceClient::new(self.channel.clone())
                .record_payment(authed(
                    ipb::RecordPaymentRequest {
                        request_id: format!("checkout-{paid_enrollment_id}"),
                        instructor_id: instructor.id.clone(),
                        amount: Some(ipb::Money {
                            amount_minor: 5_000,
                            currency: "USD".into(),
                        }),
                        provider: ipb::PaymentProvider::Stripe as i32,
                        r#type: ipb::PaymentType::CourseEnrollment as i32,
                        related_entity_id: paid_enrollment_id.clone(),
                        ..Default::default()
                    },
                    &student.token,
                ))
                .await
                .expect("record a payment")
                .into_inner()
                .payment
                .unwrap()
                .id;
        let mut workshops =
            lpb::workshop_service_client::WorkshopServiceClient::new(self.channel.clone());
        let workshop_title = format!("Secret workshop of {label} {}", &unique[24..]);
        let start = chrono::Utc::now() + chrono::Duration::days(7);
        let workshop_id = workshops
            .create_workshop(authed(
                lpb::CreateWorkshopRequest {
                    workshop: Some(lpb::Workshop {
                        title: workshop_title.clone(),
                        organization_id: org_id.clone(),
                        visibility: lpb::CourseVisibility::Organization as i32,
                        pillar: lpb::Pillar::Coaching as i32,
                        level: lpb::WorkshopLevel::Beginner as i32,
                        format: lpb::WorkshopFormat::Online as i32,
                        start_time: Some(lyceum_platform::convert::timestamp(start)),
                        end_time: Some(lyceum_platform::convert::timestamp(
                            start + chrono::Duration::hours(2),
                        )),
                        capacity: 10,
                        ..Default::default()
                    }),
                },
                &instructor.token,
            ))
            .await
            .expect("create a workshop")
            .into_inner()
            .workshop
            .unwrap()
            .id;
        workshops
            .publish_workshop(authed(
                lpb::PublishWorkshopRequest {
                    id: workshop_id.clone(),
                },
                &instructor.token,
            ))
            .await
            .expect("publish the workshop");
        let registration_id = workshops
            .register(authed(
                lpb::RegisterRequest {
                    workshop_id: workshop_id.clone(),
                    request_id: String::new(),
                },
                &student.token,
            ))
            .await
            .expect("register")
            .into_inner()
            .registration
            .unwrap()
            .id;
        let certificate =
            lpb::certificate_service_client::CertificateServiceClient::new(self.channel.clone())
                .issue_certificate(authed(
                    lpb::IssueCertificateRequest {
                        user_id: student.id.clone(),
                        course_id: course_id.clone(),
                        ..Default::default()
                    },
                    &instructor.token,
                ))
                .await
                .expect("issue a certificate")
                .into_inner()
                .certificate
                .unwrap();
        let mut library =
            lpb::resource_service_client::ResourceServiceClient::new(self.channel.clone());
        let resource_title = format!("Secret handbook of {label} {}", &unique[24..]);
        let resource_id = library
            .create_resource(authed(
                lpb::CreateResourceRequest {
                    resource: Some(lpb::Resource {
                        organization_id: org_id.clone(),
                        r#type: lpb::ResourceType::Article as i32,
                        title: resource_title.clone(),
                        body: "For the organization's members only.".into(),
                        access_level: lpb::ResourceAccessLevel::OrganizationMembers as i32,
                        status: lpb::ResourceStatus::Published as i32,
                        ..Default::default()
                    }),
                },
                &instructor.token,
            ))
            .await
            .expect("create a resource")
            .into_inner()
            .resource
            .unwrap()
            .id;
        let mut assessments =
            lpb::assessment_service_client::AssessmentServiceClient::new(self.channel.clone());
        let template_name = format!("Secret assessment of {label} {}", &unique[24..]);
        let template = assessments
            .create_template(authed(
                lpb::CreateTemplateRequest {
                    template: Some(lpb::Template {
                        organization_id: org_id.clone(),
                        name: template_name.clone(),
                        questions: vec![lpb::Question {
                            dimension: lpb::Dimension::Velocity as i32,
                            answer_type: lpb::AnswerType::Scale as i32,
                            prompt: "How fast do you adapt?".into(),
                            weight: 1.0,
                            ..Default::default()
                        }],
                        ..Default::default()
                    }),
                },
                &admin.token,
            ))
            .await
            .expect("create an assessment template")
            .into_inner()
            .template
            .unwrap();
        let template_id = template.id.clone();
        let question_id = template.questions[0].id.clone();
        let assessment_id = assessments
            .start_assessment(authed(
                lpb::StartAssessmentRequest {
                    template_id: template_id.clone(),
                    r#type: lpb::AssessmentType::Quick as i32,
                    organization_id: org_id.clone(),
                },
                &student.token,
            ))
            .await
            .expect("start an assessment")
            .into_inner()
            .assessment
            .unwrap()
            .id;
        assessments
            .answer_question(authed(
                lpb::AnswerQuestionRequest {
                    assessment_id: assessment_id.clone(),
                    question_id: question_id.clone(),
                    value: Some(60),
                    text: String::new(),
                },
                &student.token,
            ))
            .await
            .expect("answer a question");
        let grant_id = self
            .users()
            .list_user_roles(authed(
                idpb::ListUserRolesRequest {
                    user_id: student.id.clone(),
                },
                &admin.token,
            ))
            .await
            .expect("list the student's roles")
            .into_inner()
            .grants
            .into_iter()
            .find(|g| g.organization_id == org_id)
            .expect("the student's membership")
            .id;
        let (service_account_id, operator) = service_account(
            &mut self.auth(),
            platform_admin,
            &format!("payments-{}", label.to_lowercase()),
            &[scopes::PAYMENTS_WRITE, scopes::PAYOUTS_WRITE],
        )
        .await;
        // The payment succeeds; once instructor has booked the sale (from learning's
        // activation event), its earnings are paid out.
        let mut payments =
            ipb::payment_service_client::PaymentServiceClient::new(self.channel.clone());
        payments
            .succeed_payment(authed(
                ipb::SucceedPaymentRequest {
                    id: payment_id.clone(),
                    provider_transaction_id: format!("ch_{label}"),
                },
                &operator,
            ))
            .await
            .expect("the payment succeeds");
        let mut payouts =
            ipb::revenue_service_client::RevenueServiceClient::new(self.channel.clone());
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let payout_id = loop {
            let outcome = payouts
                .create_payout(authed(
                    ipb::CreatePayoutRequest {
                        instructor_id: instructor.id.clone(),
                        request_id: format!("payout-{label}"),
                        currency: "USD".into(),
                    },
                    &operator,
                ))
                .await;
            match outcome {
                Ok(answer) => break answer.into_inner().payout.unwrap().id,
                Err(status) if std::time::Instant::now() < deadline => {
                    assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(status) => panic!("no earnings to pay out: {status:?}"),
            }
        };
        Tenant {
            org_id,
            admin,
            instructor,
            student,
            team_id,
            team_name,
            course_id,
            course_title,
            draft_course_id,
            paid_course_id,
            module_id,
            lesson_id,
            enrollment_id,
            paid_enrollment_id,
            review_id,
            payment_id,
            workshop_id,
            workshop_title,
            registration_id,
            certificate_id: certificate.id,
            certificate_number: certificate.number,
            resource_id,
            resource_title,
            template_id,
            template_name,
            question_id,
            assessment_id,
            grant_id,
            service_account_id,
            payout_id,
        }
    }
}

/// A variant of a live token of A's admin (a real session, so that only the variation
/// can refuse it): expiring `exp_offset` seconds after it was issued, signed by `signer`.
fn variant_of(token: &str, signer: &TokenSigner, exp_offset: i64) -> String {
    let mut claims = claims_of(token);
    claims.exp = claims.iat + exp_offset;
    signer.sign(&claims)
}

#[tokio::test]
async fn no_caller_reaches_another_tenants_data() {
    let db = TestDatabase::create().await;
    for schema in &lyceum_schema::ALL {
        db.migrate(schema).await;
    }
    let server = ServiceProcess::start(
        "all",
        &db.url,
        &lyceum_testkit::nats_url(),
        &unique_prefix("m"),
        None,
    )
    .await;
    let stack = Stack {
        channel: server.channel().await,
    };
    let admin_email = format!("platform-{}@example.com", Uuid::now_v7());
    bootstrap_platform_admin(&db.url, &admin_email);
    let platform_admin = stack.sign_in(&admin_email).await;
    let a = stack.tenant(&platform_admin, "A").await;
    let b = stack.tenant(&platform_admin, "B").await;

    // Callers that should get nowhere at all.
    let sealer = SecretBox::from_base64(lyceum_platform::config::DEVELOPMENT_DATA_KEY).unwrap();
    let signer = db.identity_signer(&sealer).await;
    let expired = variant_of(&a.admin.token, &signer, -60);
    let forger = TokenSigner::new(
        "unknown".to_owned(),
        ed25519_dalek::SigningKey::from_bytes(&[9; 32]),
    );
    let unknown_key = variant_of(&a.admin.token, &forger, 3600);
    let suspended = stack
        .member(&a.admin.token, &a.org_id, "suspended", None)
        .await;
    stack
        .users()
        .update_user(authed(
            idpb::UpdateUserRequest {
                user: Some(idpb::User {
                    id: suspended.id.clone(),
                    status: idpb::UserStatus::Suspended as i32,
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["status".into()],
                }),
            },
            &a.admin.token,
        ))
        .await
        .expect("suspend a user");
    let mut auth = stack.auth();
    let (disabled_id, disabled_token) = service_account(
        &mut auth,
        &platform_admin,
        "disabled-matrix",
        &[scopes::USERS_READ],
    )
    .await;
    auth.disable_service_account(authed(
        idpb::DisableServiceAccountRequest {
            service_account_id: disabled_id,
        },
        &platform_admin,
    ))
    .await
    .expect("disable a service account");

    let (_, reader_token) = service_account(
        &mut auth,
        &platform_admin,
        "reader-matrix",
        &[scopes::USERS_READ],
    )
    .await;
    let callers: Vec<(&str, Option<&str>)> = vec![
        ("a users:read service account", Some(&reader_token)),
        ("A's admin", Some(&a.admin.token)),
        ("A's instructor", Some(&a.instructor.token)),
        ("A's student", Some(&a.student.token)),
        ("no token", None),
        ("an expired token", Some(&expired)),
        ("a token of an unknown key", Some(&unknown_key)),
        ("a suspended user", Some(&suspended.token)),
        ("a disabled service account", Some(&disabled_token)),
    ];

    let served = Served::discover(stack.channel.clone()).await;
    let secrets = b.secrets();
    let public: HashMap<&str, &str> = PUBLIC_BY_DESIGN.iter().copied().collect();
    let mut grpc = tonic::client::Grpc::new(stack.channel.clone());
    let mut cells = 0;
    let mut continued = 0;
    let mut failures = Vec::new();
    for method in &served.methods {
        let name = method.path.rsplit('/').next().unwrap();
        let page_token = target_page_token(&mut grpc, &served, method, &b).await;
        continued += usize::from(!page_token.is_empty());
        for (caller, token) in &callers {
            let body = Builder {
                served: &served,
                target: &b,
                method: name,
                page_token: &page_token,
            }
            .message(&method.input, 0);
            let names_target = secrets.iter().any(|s| contains(&body, s.as_bytes()));
            let scoped = SCOPED_BY_DESIGN
                .iter()
                .any(|(who, path, _)| who == caller && *path == method.path);
            let mut request = tonic::Request::new(body.clone());
            request.set_timeout(Duration::from_secs(10));
            if let Some(token) = token {
                request
                    .metadata_mut()
                    .insert("authorization", format!("Bearer {token}").parse().unwrap());
            }
            grpc.ready().await.expect("the server takes requests");
            let outcome = grpc
                .unary(request, method.path.parse().unwrap(), RawCodec)
                .await;
            cells += 1;
            match outcome {
                // A write or a check that succeeds on B's objects is a breach even when
                // its answer only repeats the request (or is empty).
                Ok(_)
                    if names_target
                        && !public.contains_key(method.path.as_str())
                        && !scoped
                        && !FILTERING_READS.iter().any(|(path, _)| *path == method.path) =>
                {
                    failures.push(format!(
                        "{} as {caller}: succeeded on B's objects",
                        method.path
                    ))
                }
                Ok(response) => {
                    if public.contains_key(method.path.as_str()) || scoped {
                        continue;
                    }
                    let answer = response.into_inner();
                    let leaked: Vec<&String> = secrets
                        .iter()
                        .filter(|s| {
                            contains(&answer, s.as_bytes()) && !contains(&body, s.as_bytes())
                        })
                        .collect();
                    if !leaked.is_empty() {
                        failures.push(format!(
                            "{} as {caller}: answered with B's {leaked:?}",
                            method.path
                        ));
                    }
                }
                Err(status) if REFUSALS.contains(&status.code()) => {}
                Err(status) => failures.push(format!(
                    "{} as {caller}: {:?} {}",
                    method.path,
                    status.code(),
                    status.message()
                )),
            }
        }
    }
    report_size(&format!(
        "attack matrix: {} methods × {} callers = {cells} calls aimed at another tenant \
         ({continued} listings continuing B's page tokens); {} methods public by design, \
         {} open to one scope by design",
        served.methods.len(),
        callers.len(),
        PUBLIC_BY_DESIGN.len(),
        SCOPED_BY_DESIGN.len()
    ));
    assert!(served.methods.len() >= 30, "reflection found too little");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A page token the target's own users get from this listing (page size 1), so that the
/// attack continues the target's listing; empty when the method has none.
async fn target_page_token(
    grpc: &mut tonic::client::Grpc<Channel>,
    served: &Served,
    method: &common::reflection::Method,
    target: &Tenant,
) -> String {
    let Some(tag) = served.messages.get(&method.output).and_then(|output| {
        output
            .field
            .iter()
            .find(|f| f.name() == "next_page_token")
            .map(|f| f.number() as u32)
    }) else {
        return String::new();
    };
    let name = method.path.rsplit('/').next().unwrap();
    for owner in [&target.admin, &target.instructor, &target.student] {
        let mut body = Builder {
            served,
            target,
            method: name,
            page_token: "",
        }
        .message(&method.input, 0);
        // page_size 1, whatever the builder chose: the last value of a field wins.
        if let Some(size) = served.messages[&method.input]
            .field
            .iter()
            .find(|f| f.name() == "page_size")
        {
            encoding::int32::encode(size.number() as u32, &1, &mut body);
        }
        let mut request = tonic::Request::new(body);
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {}", owner.token).parse().unwrap(),
        );
        grpc.ready().await.expect("the server takes requests");
        if let Ok(response) = grpc
            .unary(request, method.path.parse().unwrap(), RawCodec)
            .await
            && let Some(token) = string_field(&response.into_inner(), tag)
            && !token.is_empty()
        {
            return token;
        }
    }
    String::new()
}

/// A top-level string field of an encoded message.
fn string_field(mut bytes: &[u8], wanted: u32) -> Option<String> {
    while !bytes.is_empty() {
        let (tag, wire_type) = encoding::decode_key(&mut bytes).ok()?;
        if tag == wanted && wire_type == WireType::LengthDelimited {
            let mut value = String::new();
            encoding::string::merge(wire_type, &mut value, &mut bytes, Default::default()).ok()?;
            return Some(value);
        }
        encoding::skip_field(wire_type, tag, &mut bytes, Default::default()).ok()?;
    }
    None
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}
