use std::collections::HashSet;

use lyceum_platform::auth::{Principal, optional_principal, require_principal};
use lyceum_platform::convert::{
    bounded_json, optional_id, page_size, parse_id, required_id, update_mask,
};
use lyceum_platform::{ApiError, Violations};
use lyceum_proto::learning::v1 as pb;
use lyceum_proto::learning::v1::course_service_server::CourseService;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{LearningApi, decode_position, paginate, visible_course, wire};
use crate::domain::access::decide_course_creator;
use crate::domain::course::{check_visibility, decide_status_change, needs_owner};
use crate::domain::drip::{DripSchedule, release_of};
use crate::domain::{
    BoundedText, CourseId, CourseStatus, EnrollmentType, InstructorRole, LessonType, Money,
    OrganizationId, Permission, TextList, UserId, Visibility,
};
use crate::events;
use crate::store::content::NewLesson;
use crate::store::courses::{CatalogueFilter, CourseFields, CourseRow};
use crate::store::{Tx, content, courses, instructors};

type Title = BoundedText<200, true>;
type Description = BoundedText<20000, false>;
type Category = BoundedText<100, false>;
type Url = BoundedText<2048, false>;
type ModuleDescription = BoundedText<5000, false>;
type LessonBody = BoundedText<100000, false>;

const UPDATABLE: &[&str] = &[
    "title",
    "description",
    "category",
    "tags",
    "what_you_will_learn",
    "target_audience",
    "price",
    "visibility",
    "certificate",
    "allow_comments",
    "allow_questions",
    "drip_content",
    "drip_schedule",
    "cohort_based",
    "default_duration_weeks",
    "enrollment_type",
];

fn fields_of(row: &CourseRow) -> CourseFields {
    CourseFields {
        title: row.title.clone(),
        description: row.description.clone(),
        category: row.category.clone(),
        tags: row.tags.clone(),
        what_you_will_learn: row.what_you_will_learn.clone(),
        target_audience: row.target_audience.clone(),
        price_minor: row.price_minor,
        currency: row.currency.clone(),
        visibility: row.visibility,
        certificate_enabled: row.certificate_enabled,
        certificate_template_url: row.certificate_template_url.clone(),
        allow_comments: row.allow_comments,
        allow_questions: row.allow_questions,
        drip_content: row.drip_content,
        drip_schedule: row.drip_schedule.clone(),
        cohort_based: row.cohort_based,
        default_duration_weeks: row.default_duration_weeks,
        enrollment_type: row.enrollment_type,
    }
}

fn defaults() -> CourseFields {
    CourseFields {
        title: String::new(),
        description: String::new(),
        category: String::new(),
        tags: vec![],
        what_you_will_learn: vec![],
        target_audience: vec![],
        price_minor: 0,
        currency: "USD".into(),
        visibility: Visibility::Public,
        certificate_enabled: false,
        certificate_template_url: String::new(),
        allow_comments: true,
        allow_questions: true,
        drip_content: false,
        drip_schedule: serde_json::json!({}),
        cohort_based: false,
        default_duration_weeks: None,
        enrollment_type: EnrollmentType::Open,
    }
}

/// Validates one field of the request's course into `fields`, recording violations.
fn apply_field(v: &mut Violations, course: &pb::Course, path: &str, fields: &mut CourseFields) {
    let field = |name: &str| format!("course.{name}");
    match path {
        "title" => {
            if let Some(t) = v.check(&field("title"), Title::parse(&course.title)) {
                fields.title = t.into_inner();
            }
        }
        "description" => {
            if let Some(d) = v.check(
                &field("description"),
                Description::parse(&course.description),
            ) {
                fields.description = d.into_inner();
            }
        }
        "category" => {
            if let Some(c) = v.check(&field("category"), Category::parse(&course.category)) {
                fields.category = c.into_inner();
            }
        }
        "tags" => {
            if let Some(t) = v.check(&field("tags"), TextList::<30>::parse(&course.tags)) {
                fields.tags = t.into_inner();
            }
        }
        "what_you_will_learn" => {
            if let Some(t) = v.check(
                &field("what_you_will_learn"),
                TextList::<50>::parse(&course.what_you_will_learn),
            ) {
                fields.what_you_will_learn = t.into_inner();
            }
        }
        "target_audience" => {
            if let Some(t) = v.check(
                &field("target_audience"),
                TextList::<50>::parse(&course.target_audience),
            ) {
                fields.target_audience = t.into_inner();
            }
        }
        "price" => {
            let price = course.price.clone().unwrap_or_default();
            if let Some(m) = v.check(
                &field("price"),
                Money::price(price.amount_minor, &price.currency),
            ) {
                fields.price_minor = m.minor;
                fields.currency = m.currency.as_str().to_owned();
            }
        }
        "visibility" => match course.visibility {
            0 => fields.visibility = Visibility::Public,
            n => {
                if let Some(vis) = v.check(&field("visibility"), Visibility::from_proto(n)) {
                    fields.visibility = vis;
                }
            }
        },
        "certificate" => {
            let certificate = course.certificate.clone().unwrap_or_default();
            fields.certificate_enabled = certificate.enabled;
            if let Some(u) = v.check(
                &field("certificate.template_url"),
                Url::parse(&certificate.template_url),
            ) {
                fields.certificate_template_url = u.into_inner();
            }
        }
        "allow_comments" => {
            if let Some(open) = course.allow_comments {
                fields.allow_comments = open;
            }
        }
        "allow_questions" => {
            if let Some(open) = course.allow_questions {
                fields.allow_questions = open;
            }
        }
        "drip_content" => fields.drip_content = course.drip_content,
        "drip_schedule" => {
            let schedule = bounded_json(v, &field("drip_schedule"), course.drip_schedule.clone());
            if v.check(&field("drip_schedule"), DripSchedule::parse(&schedule))
                .is_some()
            {
                fields.drip_schedule = schedule;
            }
        }
        "cohort_based" => fields.cohort_based = course.cohort_based,
        "default_duration_weeks" => match course.default_duration_weeks {
            0 => fields.default_duration_weeks = None,
            n if (1..=104).contains(&n) => fields.default_duration_weeks = Some(n),
            _ => v.add(
                field("default_duration_weeks"),
                "must be from 1 to 104 weeks (0 for none)",
            ),
        },
        "enrollment_type" => match course.enrollment_type {
            0 => fields.enrollment_type = EnrollmentType::Open,
            n => {
                if let Some(t) = v.check(&field("enrollment_type"), EnrollmentType::from_proto(n)) {
                    fields.enrollment_type = t;
                }
            }
        },
        _ => {}
    }
}

/// A ListCourses request, validated: the catalogue's filter and the page wanted.
struct CatalogueQuery {
    filter: CatalogueFilter,
    limit: i64,
    after: Option<(chrono::DateTime<chrono::Utc>, Uuid)>,
}

impl TryFrom<pb::ListCoursesRequest> for CatalogueQuery {
    type Error = ApiError;

    fn try_from(req: pb::ListCoursesRequest) -> Result<Self, ApiError> {
        let mut v = Violations::new();
        let limit = page_size(&mut v, req.page_size);
        let after = decode_position(&mut v, &req.page_token);
        let status = match req.status {
            0 => Some(CourseStatus::Published),
            n => v.check("status", CourseStatus::from_proto(n)),
        };
        let query = v
            .check("query", BoundedText::<200, false>::parse(&req.query))
            .map(|q| q.into_inner());
        let category = v
            .check("category", Category::parse(&req.category))
            .map(|c| c.into_inner());
        let tags = v
            .check("tags", TextList::<10>::parse(&req.tags))
            .map(|t| t.into_inner());
        let instructor_id = optional_id(&mut v, "instructor_id", &req.instructor_id);
        let organization_id = optional_id(&mut v, "organization_id", &req.organization_id);
        if req.min_price_minor < 0 {
            v.add("min_price_minor", "must not be negative");
        }
        if req.max_price_minor < 0 {
            v.add("max_price_minor", "must not be negative");
        }
        if req.max_price_minor > 0 && req.max_price_minor < req.min_price_minor {
            v.add("max_price_minor", "must not be below min_price_minor");
        }
        v.into_result()?;
        let (
            Some(status),
            Some(query),
            Some(category),
            Some(tags),
            Some(instructor_id),
            Some(organization_id),
        ) = (
            status,
            query,
            category,
            tags,
            instructor_id,
            organization_id,
        )
        else {
            unreachable!("parsed when there are no violations")
        };
        Ok(Self {
            limit,
            after,
            filter: CatalogueFilter {
                status,
                query: Some(query).filter(|q| !q.is_empty()),
                category: Some(category).filter(|c| !c.is_empty()),
                tags,
                instructor_id,
                organization_id,
                min_price_minor: Some(req.min_price_minor).filter(|p| *p > 0),
                max_price_minor: if req.free_only {
                    Some(0)
                } else {
                    Some(req.max_price_minor).filter(|p| *p > 0)
                },
            },
        })
    }
}

/// A CreateCourse request, validated: every field of the course, defaults where unset.
struct CreateCourse {
    fields: CourseFields,
    /// Who teaches it, when not the caller.
    instructor: Option<Uuid>,
    organization: Option<Uuid>,
}

impl TryFrom<pb::CreateCourseRequest> for CreateCourse {
    type Error = ApiError;

    fn try_from(request: pb::CreateCourseRequest) -> Result<Self, ApiError> {
        let course = request.course.unwrap_or_default();
        let mut v = Violations::new();
        let mut fields = defaults();
        for path in UPDATABLE {
            apply_field(&mut v, &course, path, &mut fields);
        }
        let instructor = optional_id(&mut v, "course.instructor_id", &course.instructor_id);
        let organization = optional_id(&mut v, "course.organization_id", &course.organization_id);
        if let Some(organization) = organization
            && let Err(message) = check_visibility(fields.visibility, organization.is_some())
        {
            v.add("course.visibility", message);
        }
        v.into_result()?;
        let (Some(instructor), Some(organization)) = (instructor, organization) else {
            unreachable!("parsed when there are no violations")
        };
        Ok(Self {
            fields,
            instructor,
            organization,
        })
    }
}

/// An UpdateCourse request, validated as far as the request alone allows: the course's
/// id and the fields its mask names. The new values are checked against the stored
/// course, once the caller may edit it.
struct UpdateCourse {
    id: Uuid,
    paths: HashSet<String>,
    course: pb::Course,
}

impl TryFrom<pb::UpdateCourseRequest> for UpdateCourse {
    type Error = ApiError;

    fn try_from(req: pb::UpdateCourseRequest) -> Result<Self, ApiError> {
        let course = req.course.unwrap_or_default();
        let mut v = Violations::new();
        let id = required_id(&mut v, "course.id", &course.id);
        let paths = update_mask(&mut v, req.update_mask, UPDATABLE);
        v.into_result()?;
        let id = id.expect("parsed when there are no violations");
        Ok(Self { id, paths, course })
    }
}

/// A CreateModule request, validated.
struct CreateModule {
    course_id: Uuid,
    title: Title,
    description: ModuleDescription,
}

impl TryFrom<pb::CreateModuleRequest> for CreateModule {
    type Error = ApiError;

    fn try_from(req: pb::CreateModuleRequest) -> Result<Self, ApiError> {
        let mut v = Violations::new();
        let course_id = required_id(&mut v, "course_id", &req.course_id);
        let title = v.check("title", Title::parse(&req.title));
        let description = v.check("description", ModuleDescription::parse(&req.description));
        v.into_result()?;
        let (Some(course_id), Some(title), Some(description)) = (course_id, title, description)
        else {
            unreachable!("parsed when there are no violations")
        };
        Ok(Self {
            course_id,
            title,
            description,
        })
    }
}

/// A CreateLesson request, validated.
struct CreateLesson {
    course_id: Uuid,
    module_id: Uuid,
    title: Title,
    lesson_type: LessonType,
    content_url: Url,
    body: LessonBody,
    duration_seconds: i32,
    preview: bool,
}

impl TryFrom<pb::CreateLessonRequest> for CreateLesson {
    type Error = ApiError;

    fn try_from(req: pb::CreateLessonRequest) -> Result<Self, ApiError> {
        let mut v = Violations::new();
        let course_id = required_id(&mut v, "course_id", &req.course_id);
        let module_id = required_id(&mut v, "module_id", &req.module_id);
        let title = v.check("title", Title::parse(&req.title));
        let lesson_type = v.check("type", LessonType::from_proto(req.r#type));
        let content_url = v.check("content_url", Url::parse(&req.content_url));
        let body = v.check("body", LessonBody::parse(&req.body));
        if !(0..=86_400).contains(&req.duration_seconds) {
            v.add("duration_seconds", "must be from 0 to 86400");
        }
        v.into_result()?;
        let (
            Some(course_id),
            Some(module_id),
            Some(title),
            Some(lesson_type),
            Some(content_url),
            Some(body),
        ) = (course_id, module_id, title, lesson_type, content_url, body)
        else {
            unreachable!("parsed when there are no violations")
        };
        Ok(Self {
            course_id,
            module_id,
            title,
            lesson_type,
            content_url,
            body,
            duration_seconds: req.duration_seconds,
            preview: req.preview,
        })
    }
}

/// An AddCourseInstructor request, validated: view-only when no permission is named.
struct AddCourseInstructor {
    course_id: Uuid,
    instructor_id: Uuid,
    role: InstructorRole,
    permissions: Vec<Permission>,
}

impl TryFrom<pb::AddCourseInstructorRequest> for AddCourseInstructor {
    type Error = ApiError;

    fn try_from(req: pb::AddCourseInstructorRequest) -> Result<Self, ApiError> {
        let mut v = Violations::new();
        let course_id = required_id(&mut v, "course_id", &req.course_id);
        let instructor_id = required_id(&mut v, "instructor_id", &req.instructor_id);
        let role = match req.role {
            0 => Some(InstructorRole::CoInstructor),
            n => v.check("role", InstructorRole::from_proto(n)),
        };
        let mut permissions: Vec<Permission> = Vec::new();
        for (i, p) in req.permissions.iter().enumerate() {
            if let Some(p) = v.check(&format!("permissions[{i}]"), Permission::from_proto(*p))
                && !permissions.contains(&p)
            {
                permissions.push(p);
            }
        }
        if role == Some(InstructorRole::Primary) {
            v.add(
                "role",
                "the primary instructor is the course's owner; add co-instructors or assistants",
            );
        }
        v.into_result()?;
        let (Some(course_id), Some(instructor_id), Some(role)) = (course_id, instructor_id, role)
        else {
            unreachable!("parsed when there are no violations")
        };
        if permissions.is_empty() {
            permissions.push(Permission::ViewContent);
        }
        Ok(Self {
            course_id,
            instructor_id,
            role,
            permissions,
        })
    }
}

/// A RemoveCourseInstructor request, validated.
struct RemoveCourseInstructor {
    course_id: Uuid,
    instructor_id: Uuid,
}

impl TryFrom<pb::RemoveCourseInstructorRequest> for RemoveCourseInstructor {
    type Error = ApiError;

    fn try_from(req: pb::RemoveCourseInstructorRequest) -> Result<Self, ApiError> {
        let mut v = Violations::new();
        let course_id = required_id(&mut v, "course_id", &req.course_id);
        let instructor_id = required_id(&mut v, "instructor_id", &req.instructor_id);
        v.into_result()?;
        let (Some(course_id), Some(instructor_id)) = (course_id, instructor_id) else {
            unreachable!("parsed when there are no violations")
        };
        Ok(Self {
            course_id,
            instructor_id,
        })
    }
}

impl LearningApi {
    async fn editable_course(
        &self,
        tx: &mut Tx,
        principal: &Principal,
        id: Uuid,
    ) -> Result<CourseRow, ApiError> {
        let (course, access) = visible_course(tx, Some(principal), id).await?;
        if !access.edit {
            return Err(ApiError::permission_denied());
        }
        Ok(course)
    }

    async fn create_course_(
        &self,
        request: Request<pb::CreateCourseRequest>,
    ) -> Result<pb::CreateCourseResponse, ApiError> {
        let principal = require_principal(&request)?;
        let CreateCourse {
            fields,
            instructor,
            organization,
        } = request.into_inner().try_into()?;
        let instructor_id = decide_course_creator(&principal, instructor, organization)?;
        let mut tx = self.tx_for(Some(&principal)).await?;
        let row = courses::insert(
            &mut tx,
            UserId::new(instructor_id),
            organization.map(OrganizationId::new),
            fields,
        )
        .await?;
        tx.commit().await?;
        Ok(pb::CreateCourseResponse {
            course: Some(wire::course(row)),
        })
    }

    async fn get_course_(
        &self,
        request: Request<pb::GetCourseRequest>,
    ) -> Result<pb::GetCourseResponse, ApiError> {
        let principal = optional_principal(&request);
        let id = parse_id("id", &request.get_ref().id)?;
        let mut tx = self.tx_for(principal.as_ref()).await?;
        let (course, _) = visible_course(&mut tx, principal.as_ref(), id).await?;
        tx.commit().await?;
        Ok(pb::GetCourseResponse {
            course: Some(wire::course(course)),
        })
    }

    async fn list_courses_(
        &self,
        request: Request<pb::ListCoursesRequest>,
    ) -> Result<pb::ListCoursesResponse, ApiError> {
        let principal = optional_principal(&request);
        let CatalogueQuery {
            filter,
            limit,
            after,
        } = request.into_inner().try_into()?;
        // Row-level security leaves out what the caller may not see (other organizations'
        // restricted courses, other instructors' drafts).
        let mut tx = self.tx_for(principal.as_ref()).await?;
        let rows = courses::list(&mut tx, &filter, after, limit + 1).await?;
        tx.commit().await?;
        let (rows, next_page_token) = paginate(rows, limit, |c| (c.created_at, c.id));
        Ok(pb::ListCoursesResponse {
            courses: rows.into_iter().map(wire::course).collect(),
            next_page_token,
        })
    }

    async fn update_course_(
        &self,
        request: Request<pb::UpdateCourseRequest>,
    ) -> Result<pb::UpdateCourseResponse, ApiError> {
        let principal = require_principal(&request)?;
        let UpdateCourse { id, paths, course } = request.into_inner().try_into()?;
        let mut tx = self.tx_for(Some(&principal)).await?;
        let stored = self.editable_course(&mut tx, &principal, id).await?;
        if needs_owner(paths.iter().map(String::as_str))
            && !super::course_access(&mut tx, Some(&principal), &stored)
                .await?
                .manage_team
        {
            return Err(ApiError::PermissionDenied(
                "price, visibility and enrollment type are changed by the course's owner".into(),
            ));
        }
        let mut fields = fields_of(&stored);
        let mut v = Violations::new();
        for path in &paths {
            apply_field(&mut v, &course, path, &mut fields);
        }
        if let Err(message) = check_visibility(fields.visibility, stored.organization_id.is_some())
        {
            v.add("course.visibility", message);
        }
        // The course's revenue is one sum in its currency: amounts in two are never added.
        if fields.currency != stored.currency && stored.total_revenue_minor != 0 {
            v.add(
                "course.price",
                format!(
                    "the course has revenue in {}; its currency stays",
                    stored.currency
                ),
            );
        }
        v.into_result()?;
        let row = courses::update(&mut tx, id, fields)
            .await?
            .ok_or_else(|| ApiError::not_found("course"))?;
        // Drafts are nobody else's business yet: their first event is `published`.
        if row.status != CourseStatus::Draft {
            tx.publish(events::course_updated(&row)).await?;
        }
        tx.commit().await?;
        Ok(pb::UpdateCourseResponse {
            course: Some(wire::course(row)),
        })
    }

    async fn change_status(
        &self,
        principal: &Principal,
        id: Uuid,
        next: CourseStatus,
    ) -> Result<CourseRow, ApiError> {
        let mut tx = self.tx_for(Some(principal)).await?;
        let (_, access) = visible_course(&mut tx, Some(principal), id).await?;
        if !access.manage_team {
            return Err(ApiError::PermissionDenied(
                "the course's owner publishes and archives it".into(),
            ));
        }
        let course = courses::lock(&mut tx, id)
            .await?
            .ok_or_else(|| ApiError::not_found("course"))?;
        decide_status_change(course.status, next, course.lesson_count)?;
        let row = courses::set_status(&mut tx, id, next).await?;
        tx.publish(events::course_status_changed(&row)).await?;
        tx.commit().await?;
        Ok(row)
    }

    async fn create_module_(
        &self,
        request: Request<pb::CreateModuleRequest>,
    ) -> Result<pb::CreateModuleResponse, ApiError> {
        let principal = require_principal(&request)?;
        let CreateModule {
            course_id,
            title,
            description,
        } = request.into_inner().try_into()?;
        let mut tx = self.tx_for(Some(&principal)).await?;
        self.editable_course(&mut tx, &principal, course_id).await?;
        // Positions are handed out under the course's lock.
        courses::lock(&mut tx, course_id).await?;
        let row = content::append_module(
            &mut tx,
            course_id,
            title.into_inner(),
            description.into_inner(),
        )
        .await?;
        tx.commit().await?;
        Ok(pb::CreateModuleResponse {
            module: Some(wire::module(row, vec![])),
        })
    }

    async fn create_lesson_(
        &self,
        request: Request<pb::CreateLessonRequest>,
    ) -> Result<pb::CreateLessonResponse, ApiError> {
        let principal = require_principal(&request)?;
        let CreateLesson {
            course_id,
            module_id,
            title,
            lesson_type,
            content_url,
            body,
            duration_seconds,
            preview,
        } = request.into_inner().try_into()?;
        let mut tx = self.tx_for(Some(&principal)).await?;
        self.editable_course(&mut tx, &principal, course_id).await?;
        courses::lock(&mut tx, course_id).await?;
        let module = content::get_module(&mut tx, module_id)
            .await?
            .ok_or_else(|| ApiError::not_found("module"))?;
        if module.course_id != course_id {
            return Err(ApiError::invalid("module_id", "belongs to another course"));
        }
        let row = content::append_lesson(
            &mut tx,
            NewLesson {
                module_id,
                course_id,
                title: title.into_inner(),
                lesson_type,
                content_url: content_url.into_inner(),
                body: body.into_inner(),
                duration_seconds,
                preview,
            },
        )
        .await?;
        tx.begin_bookkeeping("lesson count").await?;
        courses::add_lesson(&mut tx, course_id).await?;
        tx.commit().await?;
        Ok(pb::CreateLessonResponse {
            lesson: Some(wire::lesson(row)),
        })
    }

    async fn list_course_content_(
        &self,
        request: Request<pb::ListCourseContentRequest>,
    ) -> Result<pb::ListCourseContentResponse, ApiError> {
        let principal = optional_principal(&request);
        let course_id = parse_id("course_id", &request.get_ref().course_id)?;
        let mut tx = self.tx_for(principal.as_ref()).await?;
        let (_, access) = visible_course(&mut tx, principal.as_ref(), course_id).await?;
        // Everyone who sees the course sees its outline; the lessons' content is for its
        // students, its teaching team and admins (and preview lessons for everyone).
        let team = access.edit || access.manage_students || access.view && access.manage_team;
        // Learning students see the content released to them: the same rule as recording
        // progress.
        let learning_from = match &principal {
            Some(p) if !team => crate::store::enrollments::get_by_student(
                &mut tx,
                CourseId::new(course_id),
                UserId::new(p.subject),
            )
            .await?
            .filter(|e| crate::domain::enrollment::may_record_progress(e.status).is_ok())
            .map(|e| e.activated_at.unwrap_or(e.enrolled_at)),
            _ => None,
        };
        let modules = content::modules_of(&mut tx, course_id).await?;
        let lessons = content::lessons_of(&mut tx, course_id).await?;
        let course = crate::store::courses::get(&mut tx, course_id)
            .await?
            .ok_or_else(|| ApiError::not_found("course"))?;
        tx.commit().await?;
        let schedule = DripSchedule::parse(&course.drip_schedule).unwrap_or_default();
        let now = self.now();
        let mut lessons: Vec<pb::Lesson> = lessons
            .into_iter()
            .map(|row| {
                let (id, preview) = (row.id, row.preview);
                let mut lesson = wire::lesson(row);
                let shown = match learning_from {
                    _ if team => true,
                    Some(access_from) => {
                        let release =
                            release_of(course.drip_content, &schedule, id, access_from, now);
                        lesson.release_time = release.at.map(lyceum_platform::convert::timestamp);
                        lesson.withheld = !release.released && !preview;
                        release.released || preview
                    }
                    None => preview,
                };
                if !shown {
                    lesson.body.clear();
                    lesson.content_url.clear();
                }
                lesson
            })
            .collect();
        let modules = modules
            .into_iter()
            .map(|m| {
                let module_id = m.id.to_string();
                let (mine, rest): (Vec<_>, Vec<_>) =
                    lessons.drain(..).partition(|l| l.module_id == module_id);
                lessons = rest;
                wire::module(m, mine)
            })
            .collect();
        Ok(pb::ListCourseContentResponse { modules })
    }

    async fn add_course_instructor_(
        &self,
        request: Request<pb::AddCourseInstructorRequest>,
    ) -> Result<pb::AddCourseInstructorResponse, ApiError> {
        let principal = require_principal(&request)?;
        let AddCourseInstructor {
            course_id,
            instructor_id,
            role,
            permissions,
        } = request.into_inner().try_into()?;
        let mut tx = self.tx_for(Some(&principal)).await?;
        let (course, access) = visible_course(&mut tx, Some(&principal), course_id).await?;
        if !access.manage_team {
            return Err(ApiError::permission_denied());
        }
        if course.instructor_id == instructor_id {
            return Err(ApiError::invalid(
                "instructor_id",
                "is already the course's primary instructor",
            ));
        }
        let row = instructors::upsert(
            &mut tx,
            CourseId::new(course_id),
            UserId::new(instructor_id),
            role,
            &permissions,
        )
        .await?;
        tx.commit().await?;
        Ok(pb::AddCourseInstructorResponse {
            instructor: Some(wire::instructor(row)),
        })
    }

    async fn remove_course_instructor_(
        &self,
        request: Request<pb::RemoveCourseInstructorRequest>,
    ) -> Result<pb::RemoveCourseInstructorResponse, ApiError> {
        let principal = require_principal(&request)?;
        let RemoveCourseInstructor {
            course_id,
            instructor_id,
        } = request.into_inner().try_into()?;
        let mut tx = self.tx_for(Some(&principal)).await?;
        let (_, access) = visible_course(&mut tx, Some(&principal), course_id).await?;
        if !access.manage_team {
            return Err(ApiError::permission_denied());
        }
        if !instructors::remove(
            &mut tx,
            CourseId::new(course_id),
            UserId::new(instructor_id),
        )
        .await?
        {
            return Err(ApiError::not_found("course instructor"));
        }
        tx.commit().await?;
        Ok(pb::RemoveCourseInstructorResponse {})
    }

    async fn list_course_instructors_(
        &self,
        request: Request<pb::ListCourseInstructorsRequest>,
    ) -> Result<pb::ListCourseInstructorsResponse, ApiError> {
        let principal = optional_principal(&request);
        let course_id = parse_id("course_id", &request.get_ref().course_id)?;
        let mut tx = self.tx_for(principal.as_ref()).await?;
        visible_course(&mut tx, principal.as_ref(), course_id).await?;
        let rows = instructors::list(&mut tx, course_id).await?;
        tx.commit().await?;
        Ok(pb::ListCourseInstructorsResponse {
            instructors: rows.into_iter().map(wire::instructor).collect(),
        })
    }
}

/// Every id of a list exactly once, in order; `field` names the list.
fn distinct_ids(v: &mut Violations, field: &str, raw: &[String]) -> Vec<Uuid> {
    let mut ids = Vec::with_capacity(raw.len());
    for (i, id) in raw.iter().enumerate() {
        if let Some(id) = required_id(v, &format!("{field}[{i}]"), id) {
            if ids.contains(&id) {
                v.add(format!("{field}[{i}]"), "is named twice");
            }
            ids.push(id);
        }
    }
    if raw.is_empty() {
        v.add(field, "is required");
    }
    ids
}

/// A new order must name exactly what is there.
fn check_same_set(field: &str, wanted: &[Uuid], present: &[Uuid]) -> Result<(), ApiError> {
    let mut a = wanted.to_vec();
    let mut b = present.to_vec();
    a.sort();
    b.sort();
    if a == b {
        Ok(())
    } else {
        Err(ApiError::invalid(
            field,
            format!("must name each of the {} items exactly once", present.len()),
        ))
    }
}

impl LearningApi {
    /// The course, locked, when the caller may edit its content; with whether it is a
    /// draft (whose modules and lessons may be deleted).
    async fn editable_content(
        &self,
        tx: &mut Tx,
        principal: &Principal,
        course_id: Uuid,
    ) -> Result<CourseRow, ApiError> {
        self.editable_course(tx, principal, course_id).await?;
        courses::lock(tx, course_id)
            .await?
            .ok_or_else(|| ApiError::not_found("course"))
    }

    async fn delete_course_(
        &self,
        request: Request<pb::DeleteCourseRequest>,
    ) -> Result<pb::DeleteCourseResponse, ApiError> {
        let principal = require_principal(&request)?;
        let id = parse_id("id", &request.get_ref().id)?;
        let mut tx = self.tx_for(Some(&principal)).await?;
        let (course, access) = visible_course(&mut tx, Some(&principal), id).await?;
        if !access.manage_team {
            return Err(ApiError::PermissionDenied(
                "the course's owner deletes it".into(),
            ));
        }
        if course.status != CourseStatus::Draft || course.published_at.is_some() {
            return Err(ApiError::FailedPrecondition(
                "only drafts that were never published are deleted; archive the course instead"
                    .into(),
            ));
        }
        if !courses::delete_draft(&mut tx, id).await? {
            return Err(ApiError::not_found("course"));
        }
        self.course_terms.forget(id);
        tx.commit().await?;
        Ok(pb::DeleteCourseResponse {})
    }

    async fn update_module_(
        &self,
        request: Request<pb::UpdateModuleRequest>,
    ) -> Result<pb::UpdateModuleResponse, ApiError> {
        let principal = require_principal(&request)?;
        let req = request.into_inner();
        let mut v = Violations::new();
        let id = required_id(&mut v, "id", &req.id);
        let title = v.check("title", Title::parse(&req.title));
        let description = v.check("description", ModuleDescription::parse(&req.description));
        v.into_result()?;
        let (Some(id), Some(title), Some(description)) = (id, title, description) else {
            unreachable!("parsed when there are no violations")
        };
        let mut tx = self.tx_for(Some(&principal)).await?;
        let module = content::get_module(&mut tx, id)
            .await?
            .ok_or_else(|| ApiError::not_found("module"))?;
        self.editable_content(&mut tx, &principal, module.course_id)
            .await?;
        let row = content::update_module(&mut tx, id, title.as_str(), description.as_str())
            .await?
            .ok_or_else(|| ApiError::not_found("module"))?;
        let lessons = content::lessons_of_module(&mut tx, id).await?;
        tx.commit().await?;
        Ok(pb::UpdateModuleResponse {
            module: Some(wire::module(
                row,
                lessons.into_iter().map(wire::lesson).collect(),
            )),
        })
    }

    async fn delete_module_(
        &self,
        request: Request<pb::DeleteModuleRequest>,
    ) -> Result<pb::DeleteModuleResponse, ApiError> {
        let principal = require_principal(&request)?;
        let id = parse_id("id", &request.get_ref().id)?;
        let mut tx = self.tx_for(Some(&principal)).await?;
        let module = content::get_module(&mut tx, id)
            .await?
            .ok_or_else(|| ApiError::not_found("module"))?;
        let course = self
            .editable_content(&mut tx, &principal, module.course_id)
            .await?;
        if course.status != CourseStatus::Draft {
            return Err(ApiError::FailedPrecondition(
                "modules are deleted while the course is a draft (students' progress names them)"
                    .into(),
            ));
        }
        let lessons = content::delete_module(&mut tx, &module).await?;
        tx.begin_bookkeeping("lesson count").await?;
        courses::remove_lessons(&mut tx, module.course_id, lessons).await?;
        tx.commit().await?;
        Ok(pb::DeleteModuleResponse {})
    }

    async fn reorder_modules_(
        &self,
        request: Request<pb::ReorderModulesRequest>,
    ) -> Result<pb::ReorderModulesResponse, ApiError> {
        let principal = require_principal(&request)?;
        let req = request.into_inner();
        let mut v = Violations::new();
        let course_id = required_id(&mut v, "course_id", &req.course_id);
        let ids = distinct_ids(&mut v, "module_ids", &req.module_ids);
        v.into_result()?;
        let course_id = course_id.expect("parsed when there are no violations");
        let mut tx = self.tx_for(Some(&principal)).await?;
        // Under the course's lock: concurrent reorders apply one after the other.
        self.editable_content(&mut tx, &principal, course_id)
            .await?;
        let present: Vec<Uuid> = content::modules_of(&mut tx, course_id)
            .await?
            .iter()
            .map(|m| m.id)
            .collect();
        check_same_set("module_ids", &ids, &present)?;
        content::reorder_modules(&mut tx, course_id, &ids).await?;
        let modules = content::modules_of(&mut tx, course_id).await?;
        let mut lessons = content::lessons_of(&mut tx, course_id).await?;
        tx.commit().await?;
        Ok(pb::ReorderModulesResponse {
            modules: modules
                .into_iter()
                .map(|m| {
                    let (mine, rest): (Vec<_>, Vec<_>) =
                        lessons.drain(..).partition(|l| l.module_id == m.id);
                    lessons = rest;
                    wire::module(m, mine.into_iter().map(wire::lesson).collect())
                })
                .collect(),
        })
    }

    async fn update_lesson_(
        &self,
        request: Request<pb::UpdateLessonRequest>,
    ) -> Result<pb::UpdateLessonResponse, ApiError> {
        const LESSON_FIELDS: &[&str] = &[
            "title",
            "type",
            "content_url",
            "body",
            "duration_seconds",
            "preview",
        ];
        let principal = require_principal(&request)?;
        let req = request.into_inner();
        let lesson = req.lesson.unwrap_or_default();
        let mut v = Violations::new();
        let id = required_id(&mut v, "lesson.id", &lesson.id);
        let paths = update_mask(&mut v, req.update_mask, LESSON_FIELDS);
        v.into_result()?;
        let id = id.expect("parsed when there are no violations");
        let mut tx = self.tx_for(Some(&principal)).await?;
        let stored = content::get_lesson(&mut tx, id)
            .await?
            .ok_or_else(|| ApiError::not_found("lesson"))?;
        self.editable_content(&mut tx, &principal, stored.course_id)
            .await?;
        let mut fields = content::LessonFields {
            title: stored.title,
            lesson_type: stored.lesson_type,
            content_url: stored.content_url,
            body: stored.body,
            duration_seconds: stored.duration_seconds,
            preview: stored.preview,
        };
        let mut v = Violations::new();
        for path in &paths {
            match path.as_str() {
                "title" => {
                    if let Some(t) = v.check("lesson.title", Title::parse(&lesson.title)) {
                        fields.title = t.into_inner();
                    }
                }
                "type" => {
                    if let Some(t) = v.check("lesson.type", LessonType::from_proto(lesson.r#type)) {
                        fields.lesson_type = t;
                    }
                }
                "content_url" => {
                    if let Some(u) = v.check("lesson.content_url", Url::parse(&lesson.content_url))
                    {
                        fields.content_url = u.into_inner();
                    }
                }
                "body" => {
                    if let Some(b) = v.check("lesson.body", LessonBody::parse(&lesson.body)) {
                        fields.body = b.into_inner();
                    }
                }
                "duration_seconds" => {
                    if (0..=86_400).contains(&lesson.duration_seconds) {
                        fields.duration_seconds = lesson.duration_seconds;
                    } else {
                        v.add("lesson.duration_seconds", "must be from 0 to 86400");
                    }
                }
                "preview" => fields.preview = lesson.preview,
                _ => {}
            }
        }
        v.into_result()?;
        let row = content::update_lesson(&mut tx, id, fields)
            .await?
            .ok_or_else(|| ApiError::not_found("lesson"))?;
        tx.commit().await?;
        Ok(pb::UpdateLessonResponse {
            lesson: Some(wire::lesson(row)),
        })
    }

    async fn delete_lesson_(
        &self,
        request: Request<pb::DeleteLessonRequest>,
    ) -> Result<pb::DeleteLessonResponse, ApiError> {
        let principal = require_principal(&request)?;
        let id = parse_id("id", &request.get_ref().id)?;
        let mut tx = self.tx_for(Some(&principal)).await?;
        let lesson = content::get_lesson(&mut tx, id)
            .await?
            .ok_or_else(|| ApiError::not_found("lesson"))?;
        let course = self
            .editable_content(&mut tx, &principal, lesson.course_id)
            .await?;
        if course.status != CourseStatus::Draft {
            return Err(ApiError::FailedPrecondition(
                "lessons are deleted while the course is a draft (students' progress names them)"
                    .into(),
            ));
        }
        content::delete_lesson(&mut tx, &lesson).await?;
        tx.begin_bookkeeping("lesson count").await?;
        courses::remove_lessons(&mut tx, lesson.course_id, 1).await?;
        tx.commit().await?;
        Ok(pb::DeleteLessonResponse {})
    }

    async fn reorder_lessons_(
        &self,
        request: Request<pb::ReorderLessonsRequest>,
    ) -> Result<pb::ReorderLessonsResponse, ApiError> {
        let principal = require_principal(&request)?;
        let req = request.into_inner();
        let mut v = Violations::new();
        let module_id = required_id(&mut v, "module_id", &req.module_id);
        let ids = distinct_ids(&mut v, "lesson_ids", &req.lesson_ids);
        v.into_result()?;
        let module_id = module_id.expect("parsed when there are no violations");
        let mut tx = self.tx_for(Some(&principal)).await?;
        let module = content::get_module(&mut tx, module_id)
            .await?
            .ok_or_else(|| ApiError::not_found("module"))?;
        self.editable_content(&mut tx, &principal, module.course_id)
            .await?;
        let present: Vec<Uuid> = content::lessons_of_module(&mut tx, module_id)
            .await?
            .iter()
            .map(|l| l.id)
            .collect();
        check_same_set("lesson_ids", &ids, &present)?;
        content::reorder_lessons(&mut tx, module_id, &ids).await?;
        let lessons = content::lessons_of_module(&mut tx, module_id).await?;
        tx.commit().await?;
        Ok(pb::ReorderLessonsResponse {
            lessons: lessons.into_iter().map(wire::lesson).collect(),
        })
    }
}

#[tonic::async_trait]
impl CourseService for LearningApi {
    async fn create_course(
        &self,
        r: Request<pb::CreateCourseRequest>,
    ) -> Result<Response<pb::CreateCourseResponse>, Status> {
        Ok(Response::new(self.create_course_(r).await?))
    }
    async fn get_course(
        &self,
        r: Request<pb::GetCourseRequest>,
    ) -> Result<Response<pb::GetCourseResponse>, Status> {
        Ok(Response::new(self.get_course_(r).await?))
    }
    async fn list_courses(
        &self,
        r: Request<pb::ListCoursesRequest>,
    ) -> Result<Response<pb::ListCoursesResponse>, Status> {
        Ok(Response::new(self.list_courses_(r).await?))
    }
    async fn update_course(
        &self,
        r: Request<pb::UpdateCourseRequest>,
    ) -> Result<Response<pb::UpdateCourseResponse>, Status> {
        Ok(Response::new(self.update_course_(r).await?))
    }
    async fn publish_course(
        &self,
        r: Request<pb::PublishCourseRequest>,
    ) -> Result<Response<pb::PublishCourseResponse>, Status> {
        let principal = require_principal(&r)?;
        let id = parse_id("id", &r.get_ref().id)?;
        let course = self
            .change_status(&principal, id, CourseStatus::Published)
            .await?;
        Ok(Response::new(pb::PublishCourseResponse {
            course: Some(wire::course(course)),
        }))
    }
    async fn archive_course(
        &self,
        r: Request<pb::ArchiveCourseRequest>,
    ) -> Result<Response<pb::ArchiveCourseResponse>, Status> {
        let principal = require_principal(&r)?;
        let id = parse_id("id", &r.get_ref().id)?;
        let course = self
            .change_status(&principal, id, CourseStatus::Archived)
            .await?;
        Ok(Response::new(pb::ArchiveCourseResponse {
            course: Some(wire::course(course)),
        }))
    }
    async fn create_module(
        &self,
        r: Request<pb::CreateModuleRequest>,
    ) -> Result<Response<pb::CreateModuleResponse>, Status> {
        Ok(Response::new(self.create_module_(r).await?))
    }
    async fn delete_course(
        &self,
        r: Request<pb::DeleteCourseRequest>,
    ) -> Result<Response<pb::DeleteCourseResponse>, Status> {
        Ok(Response::new(self.delete_course_(r).await?))
    }
    async fn update_module(
        &self,
        r: Request<pb::UpdateModuleRequest>,
    ) -> Result<Response<pb::UpdateModuleResponse>, Status> {
        Ok(Response::new(self.update_module_(r).await?))
    }
    async fn delete_module(
        &self,
        r: Request<pb::DeleteModuleRequest>,
    ) -> Result<Response<pb::DeleteModuleResponse>, Status> {
        Ok(Response::new(self.delete_module_(r).await?))
    }
    async fn reorder_modules(
        &self,
        r: Request<pb::ReorderModulesRequest>,
    ) -> Result<Response<pb::ReorderModulesResponse>, Status> {
        Ok(Response::new(self.reorder_modules_(r).await?))
    }
    async fn update_lesson(
        &self,
        r: Request<pb::UpdateLessonRequest>,
    ) -> Result<Response<pb::UpdateLessonResponse>, Status> {
        Ok(Response::new(self.update_lesson_(r).await?))
    }
    async fn delete_lesson(
        &self,
        r: Request<pb::DeleteLessonRequest>,
    ) -> Result<Response<pb::DeleteLessonResponse>, Status> {
        Ok(Response::new(self.delete_lesson_(r).await?))
    }
    async fn reorder_lessons(
        &self,
        r: Request<pb::ReorderLessonsRequest>,
    ) -> Result<Response<pb::ReorderLessonsResponse>, Status> {
        Ok(Response::new(self.reorder_lessons_(r).await?))
    }
    async fn create_lesson(
        &self,
        r: Request<pb::CreateLessonRequest>,
    ) -> Result<Response<pb::CreateLessonResponse>, Status> {
        Ok(Response::new(self.create_lesson_(r).await?))
    }
    async fn list_course_content(
        &self,
        r: Request<pb::ListCourseContentRequest>,
    ) -> Result<Response<pb::ListCourseContentResponse>, Status> {
        Ok(Response::new(self.list_course_content_(r).await?))
    }
    async fn add_course_instructor(
        &self,
        r: Request<pb::AddCourseInstructorRequest>,
    ) -> Result<Response<pb::AddCourseInstructorResponse>, Status> {
        Ok(Response::new(self.add_course_instructor_(r).await?))
    }
    async fn remove_course_instructor(
        &self,
        r: Request<pb::RemoveCourseInstructorRequest>,
    ) -> Result<Response<pb::RemoveCourseInstructorResponse>, Status> {
        Ok(Response::new(self.remove_course_instructor_(r).await?))
    }
    async fn list_course_instructors(
        &self,
        r: Request<pb::ListCourseInstructorsRequest>,
    ) -> Result<Response<pb::ListCourseInstructorsResponse>, Status> {
        Ok(Response::new(self.list_course_instructors_(r).await?))
    }
}
