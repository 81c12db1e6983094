use std::collections::HashSet;

use chrono::{DateTime, Utc};
use lyceum_platform::auth::{Principal, optional_principal, require_principal};
use lyceum_platform::capacity;
use lyceum_platform::convert::{
    from_timestamp, optional_id, page_size, parse_id, required_id, update_mask,
};
use lyceum_platform::{ApiError, Violations};
use lyceum_proto::learning::v1 as pb;
use lyceum_proto::learning::v1::workshop_service_server::WorkshopService;
use prost_types::Timestamp;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{LearningApi, decode_position, paginate, wire};
use crate::domain::workshop::{
    CancelReason, FacilitatorRole, Pillar, RegisterDecision, RegistrationStatus, WorkshopAccess,
    WorkshopFormat, WorkshopLevel, WorkshopStanding, WorkshopStatus, decide_attendance,
    decide_register, decide_status_change, decide_workshop_creator, may_edit, may_give_feedback,
    parse_nps,
};
use crate::domain::{
    BoundedText, Money, OrganizationId, RegistrationId, TextList, UserId, Visibility, WorkshopId,
    parse_optional_rating, parse_rating,
};
use crate::events::workshops::{
    Move, Moved, SeatRequest, WORKSHOP_SEATS, cancel_registrations_of, change_registration,
    registration_changed, take_seat, workshop_status_changed, workshop_updated,
};
use crate::store::Tx;
use crate::store::registrations::{self, NewRegistration, RegistrationRow};
use crate::store::workshops::{self, NewFeedback, WorkshopFields, WorkshopFilter, WorkshopRow};

type Title = BoundedText<200, true>;
type Description = BoundedText<20000, false>;
type Location = BoundedText<500, false>;
type Url = BoundedText<2048, false>;
type TimeZone = BoundedText<64, false>;
type FeedbackText = BoundedText<5000, false>;
type CancelNote = BoundedText<1000, false>;

const UPDATABLE: &[&str] = &[
    "title",
    "description",
    "pillar",
    "level",
    "format",
    "start_time",
    "end_time",
    "time_zone",
    "location",
    "meeting_url",
    "capacity",
    "price",
    "early_bird",
    "outcomes",
    "tags",
    "prerequisites",
    "visibility",
    "featured",
    "certificate",
];

fn defaults() -> WorkshopFields {
    WorkshopFields {
        title: String::new(),
        description: String::new(),
        pillar: Pillar::Adaptability,
        level: WorkshopLevel::Beginner,
        format: WorkshopFormat::Online,
        start_time: DateTime::UNIX_EPOCH,
        end_time: DateTime::UNIX_EPOCH,
        time_zone: "UTC".into(),
        location: String::new(),
        meeting_url: String::new(),
        capacity: 0,
        price_minor: 0,
        currency: "USD".into(),
        early_bird_price_minor: None,
        early_bird_ends_at: None,
        outcomes: vec![],
        tags: vec![],
        prerequisites: vec![],
        visibility: Visibility::Public,
        featured: false,
        certificate_enabled: false,
        certificate_template_url: String::new(),
    }
}

fn required_time(
    v: &mut Violations,
    field: &str,
    raw: Option<&Timestamp>,
) -> Option<DateTime<Utc>> {
    match raw {
        None => {
            v.add(field, "is required");
            None
        }
        Some(t) => v.check(field, from_timestamp(t)),
    }
}

fn required_enum<T>(
    v: &mut Violations,
    field: &str,
    raw: i32,
    parse: fn(i32) -> Result<T, String>,
) -> Option<T> {
    if raw == 0 {
        v.add(field, "is required");
        return None;
    }
    v.check(field, parse(raw))
}

/// Validates one field of the request's workshop into `fields`, recording violations.
fn apply_field(v: &mut Violations, w: &pb::Workshop, path: &str, fields: &mut WorkshopFields) {
    let field = |name: &str| format!("workshop.{name}");
    match path {
        "title" => {
            if let Some(t) = v.check(&field("title"), Title::parse(&w.title)) {
                fields.title = t.into_inner();
            }
        }
        "description" => {
            if let Some(d) = v.check(&field("description"), Description::parse(&w.description)) {
                fields.description = d.into_inner();
            }
        }
        "pillar" => {
            if let Some(p) = required_enum(v, &field("pillar"), w.pillar, Pillar::from_proto) {
                fields.pillar = p;
            }
        }
        "level" => {
            if let Some(l) = required_enum(v, &field("level"), w.level, WorkshopLevel::from_proto) {
                fields.level = l;
            }
        }
        "format" => {
            if let Some(f) =
                required_enum(v, &field("format"), w.format, WorkshopFormat::from_proto)
            {
                fields.format = f;
            }
        }
        "start_time" => {
            if let Some(t) = required_time(v, &field("start_time"), w.start_time.as_ref()) {
                fields.start_time = t;
            }
        }
        "end_time" => {
            if let Some(t) = required_time(v, &field("end_time"), w.end_time.as_ref()) {
                fields.end_time = t;
            }
        }
        "time_zone" => match v.check(&field("time_zone"), TimeZone::parse(&w.time_zone)) {
            Some(zone) if zone.as_str().is_empty() => fields.time_zone = "UTC".into(),
            Some(zone) => fields.time_zone = zone.into_inner(),
            None => {}
        },
        "location" => {
            if let Some(l) = v.check(&field("location"), Location::parse(&w.location)) {
                fields.location = l.into_inner();
            }
        }
        "meeting_url" => {
            if let Some(u) = v.check(&field("meeting_url"), Url::parse(&w.meeting_url)) {
                fields.meeting_url = u.into_inner();
            }
        }
        // Its range is checked with the other terms.
        "capacity" => fields.capacity = w.capacity,
        "price" => {
            let price = w.price.clone().unwrap_or_default();
            if let Some(m) = v.check(
                &field("price"),
                Money::price(price.amount_minor, &price.currency),
            ) {
                fields.price_minor = m.minor;
                fields.currency = m.currency.as_str().to_owned();
            }
        }
        "early_bird" => match (w.early_bird_price_minor, w.early_bird_end_time.as_ref()) {
            (0, None) => {
                fields.early_bird_price_minor = None;
                fields.early_bird_ends_at = None;
            }
            (_, None) => v.add(
                field("early_bird_end_time"),
                "is required with an early-bird price (the seeds name no cutoff)",
            ),
            (price, Some(end)) => {
                if let Some(end) = v.check(&field("early_bird_end_time"), from_timestamp(end)) {
                    fields.early_bird_price_minor = Some(price);
                    fields.early_bird_ends_at = Some(end);
                }
            }
        },
        "outcomes" => {
            if let Some(t) = v.check(&field("outcomes"), TextList::<50>::parse(&w.outcomes)) {
                fields.outcomes = t.into_inner();
            }
        }
        "tags" => {
            if let Some(t) = v.check(&field("tags"), TextList::<30>::parse(&w.tags)) {
                fields.tags = t.into_inner();
            }
        }
        "prerequisites" => {
            if let Some(t) = v.check(
                &field("prerequisites"),
                TextList::<50>::parse(&w.prerequisites),
            ) {
                fields.prerequisites = t.into_inner();
            }
        }
        "visibility" => match w.visibility {
            0 => fields.visibility = Visibility::Public,
            n => {
                if let Some(vis) = v.check(&field("visibility"), Visibility::from_proto(n)) {
                    fields.visibility = vis;
                }
            }
        },
        "featured" => fields.featured = w.featured,
        "certificate" => {
            let certificate = w.certificate.clone().unwrap_or_default();
            fields.certificate_enabled = certificate.enabled;
            if let Some(u) = v.check(
                &field("certificate.template_url"),
                Url::parse(&certificate.template_url),
            ) {
                fields.certificate_template_url = u.into_inner();
            }
        }
        _ => {}
    }
}

/// The rules across fields: capacity, schedule and early bird together, and an
/// organization-only workshop needs an organization.
fn check_terms(v: &mut Violations, fields: &WorkshopFields, has_organization: bool) {
    for (name, message) in fields.terms().violations() {
        v.add(format!("workshop.{name}"), message);
    }
    if fields.visibility == Visibility::Organization && !has_organization {
        v.add(
            "workshop.visibility",
            "an organization-only workshop needs an organization",
        );
    }
}

/// A CreateWorkshop request, validated: every field, defaults where unset.
struct CreateWorkshop {
    fields: WorkshopFields,
    instructor: Option<Uuid>,
    organization: Option<Uuid>,
}

impl TryFrom<pb::CreateWorkshopRequest> for CreateWorkshop {
    type Error = ApiError;

    fn try_from(request: pb::CreateWorkshopRequest) -> Result<Self, ApiError> {
        let workshop = request.workshop.unwrap_or_default();
        let mut v = Violations::new();
        let mut fields = defaults();
        for path in UPDATABLE {
            apply_field(&mut v, &workshop, path, &mut fields);
        }
        let instructor = optional_id(&mut v, "workshop.instructor_id", &workshop.instructor_id);
        let organization = optional_id(
            &mut v,
            "workshop.organization_id",
            &workshop.organization_id,
        );
        if let Some(organization) = organization {
            check_terms(&mut v, &fields, organization.is_some());
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

/// An UpdateWorkshop request, validated as far as the request alone allows.
struct UpdateWorkshop {
    id: Uuid,
    paths: HashSet<String>,
    workshop: pb::Workshop,
}

impl TryFrom<pb::UpdateWorkshopRequest> for UpdateWorkshop {
    type Error = ApiError;

    fn try_from(req: pb::UpdateWorkshopRequest) -> Result<Self, ApiError> {
        let workshop = req.workshop.unwrap_or_default();
        let mut v = Violations::new();
        let id = required_id(&mut v, "workshop.id", &workshop.id);
        let paths = update_mask(&mut v, req.update_mask, UPDATABLE);
        v.into_result()?;
        let id = id.expect("parsed when there are no violations");
        Ok(Self {
            id,
            paths,
            workshop,
        })
    }
}

/// A ListWorkshops request, validated.
struct CatalogueQuery {
    filter: WorkshopFilter,
    limit: i64,
    after: Option<(DateTime<Utc>, Uuid)>,
}

fn optional_enum<T>(
    v: &mut Violations,
    field: &str,
    raw: i32,
    parse: fn(i32) -> Result<T, String>,
) -> Option<T> {
    match raw {
        0 => None,
        n => v.check(field, parse(n)),
    }
}

fn optional_time(
    v: &mut Violations,
    field: &str,
    raw: Option<&Timestamp>,
) -> Option<DateTime<Utc>> {
    raw.and_then(|t| v.check(field, from_timestamp(t)))
}

impl TryFrom<pb::ListWorkshopsRequest> for CatalogueQuery {
    type Error = ApiError;

    fn try_from(req: pb::ListWorkshopsRequest) -> Result<Self, ApiError> {
        let mut v = Violations::new();
        let limit = page_size(&mut v, req.page_size);
        let after = decode_position(&mut v, &req.page_token);
        let status = match req.status {
            0 => Some(WorkshopStatus::Published),
            n => v.check("status", WorkshopStatus::from_proto(n)),
        };
        let query = v
            .check("query", BoundedText::<200, false>::parse(&req.query))
            .map(|q| q.into_inner());
        let tags = v
            .check("tags", TextList::<10>::parse(&req.tags))
            .map(|t| t.into_inner());
        let pillar = optional_enum(&mut v, "pillar", req.pillar, Pillar::from_proto);
        let level = optional_enum(&mut v, "level", req.level, WorkshopLevel::from_proto);
        let format = optional_enum(&mut v, "format", req.format, WorkshopFormat::from_proto);
        let start_after = optional_time(&mut v, "start_after", req.start_after.as_ref());
        let start_before = optional_time(&mut v, "start_before", req.start_before.as_ref());
        if let (Some(after), Some(before)) = (start_after, start_before)
            && before <= after
        {
            v.add("start_before", "must be after start_after");
        }
        let instructor_id = optional_id(&mut v, "instructor_id", &req.instructor_id);
        let organization_id = optional_id(&mut v, "organization_id", &req.organization_id);
        v.into_result()?;
        let (Some(status), Some(query), Some(tags), Some(instructor_id), Some(organization_id)) =
            (status, query, tags, instructor_id, organization_id)
        else {
            unreachable!("parsed when there are no violations")
        };
        Ok(Self {
            limit,
            after,
            filter: WorkshopFilter {
                status: Some(status),
                query: Some(query).filter(|q| !q.is_empty()),
                pillar,
                level,
                format,
                tags,
                start_after,
                start_before,
                instructor_id,
                organization_id,
                featured_only: req.featured_only,
            },
        })
    }
}

/// A SubmitFeedback request, validated.
struct SubmitFeedback {
    workshop_id: Uuid,
    feedback: NewFeedback,
}

impl TryFrom<pb::SubmitFeedbackRequest> for SubmitFeedback {
    type Error = ApiError;

    fn try_from(req: pb::SubmitFeedbackRequest) -> Result<Self, ApiError> {
        let mut v = Violations::new();
        let workshop_id = required_id(&mut v, "workshop_id", &req.workshop_id);
        let overall = v.check(
            "overall_satisfaction",
            parse_rating(req.overall_satisfaction),
        );
        let content = v.check("content_rating", parse_optional_rating(req.content_rating));
        let delivery = v.check(
            "delivery_rating",
            parse_optional_rating(req.delivery_rating),
        );
        let interaction = v.check(
            "interaction_rating",
            parse_optional_rating(req.interaction_rating),
        );
        let nps = v.check("nps_score", parse_nps(req.nps_score));
        let went_well = v.check("what_went_well", FeedbackText::parse(&req.what_went_well));
        let improve = v.check(
            "what_could_improve",
            FeedbackText::parse(&req.what_could_improve),
        );
        v.into_result()?;
        let (
            Some(workshop_id),
            Some(overall),
            Some(content),
            Some(delivery),
            Some(interaction),
            Some(nps),
            Some(went_well),
            Some(improve),
        ) = (
            workshop_id,
            overall,
            content,
            delivery,
            interaction,
            nps,
            went_well,
            improve,
        )
        else {
            unreachable!("parsed when there are no violations")
        };
        Ok(Self {
            workshop_id,
            feedback: NewFeedback {
                overall_satisfaction: overall,
                content_rating: content,
                delivery_rating: delivery,
                interaction_rating: interaction,
                nps_score: nps,
                would_recommend: req.would_recommend,
                what_went_well: went_well.into_inner(),
                what_could_improve: improve.into_inner(),
            },
        })
    }
}

/// A Register request, validated.
struct Register {
    workshop_id: Uuid,
    request_id: Option<String>,
}

impl TryFrom<pb::RegisterRequest> for Register {
    type Error = ApiError;

    fn try_from(req: pb::RegisterRequest) -> Result<Self, ApiError> {
        let mut v = Violations::new();
        let workshop_id = required_id(&mut v, "workshop_id", &req.workshop_id);
        if req.request_id.chars().count() > 200 {
            v.add("request_id", "must be at most 200 characters");
        }
        v.into_result()?;
        Ok(Self {
            workshop_id: workshop_id.expect("parsed when there are no violations"),
            request_id: Some(req.request_id).filter(|r| !r.is_empty()),
        })
    }
}

fn two_ids(first: (&str, &str), second: (&str, &str)) -> Result<(Uuid, Uuid), ApiError> {
    let mut v = Violations::new();
    let a = required_id(&mut v, first.0, first.1);
    let b = required_id(&mut v, second.0, second.1);
    v.into_result()?;
    Ok((a.expect("parsed"), b.expect("parsed")))
}

impl LearningApi {
    /// A caller's rights on a workshop, loading whether they facilitate it only when they
    /// are neither owner nor admin.
    pub(super) async fn workshop_access(
        &self,
        tx: &mut Tx,
        principal: Option<&Principal>,
        workshop: &WorkshopRow,
    ) -> Result<WorkshopAccess, ApiError> {
        let scope = workshop.scope();
        let Some(principal) = principal else {
            return Ok(WorkshopAccess::decide(&scope, None, false));
        };
        let mut standing = WorkshopStanding::of(principal, &scope, false);
        if matches!(standing, WorkshopStanding::Outsider { .. })
            && workshops::facilitates(
                tx,
                WorkshopId::new(workshop.id),
                UserId::new(principal.subject),
            )
            .await?
        {
            standing = WorkshopStanding::Facilitator;
        }
        let access = WorkshopAccess::decide(&scope, Some(&standing), false);
        if access.view {
            return Ok(access);
        }
        // A registrant keeps sight of their workshop whatever becomes of it.
        let registered = registrations::lock_of_user(
            tx,
            WorkshopId::new(workshop.id),
            UserId::new(principal.subject),
        )
        .await?
        .is_some();
        Ok(WorkshopAccess::decide(&scope, Some(&standing), registered))
    }

    /// Loads a workshop the caller may see, or answers NOT_FOUND (existence does not leak).
    async fn visible_workshop(
        &self,
        tx: &mut Tx,
        principal: Option<&Principal>,
        id: Uuid,
    ) -> Result<(WorkshopRow, WorkshopAccess), ApiError> {
        let workshop = workshops::get(tx, id)
            .await?
            .ok_or_else(|| ApiError::not_found("workshop"))?;
        let access = self.workshop_access(tx, principal, &workshop).await?;
        if !access.view {
            return Err(ApiError::not_found("workshop"));
        }
        Ok((workshop, access))
    }

    async fn checked_time_zone(&self, tx: &mut Tx, zone: &str) -> Result<(), ApiError> {
        if workshops::is_time_zone(tx, zone).await? {
            Ok(())
        } else {
            Err(ApiError::invalid(
                "workshop.time_zone",
                "is not a time zone name such as Europe/Berlin",
            ))
        }
    }

    async fn create_workshop_(
        &self,
        request: Request<pb::CreateWorkshopRequest>,
    ) -> Result<pb::CreateWorkshopResponse, ApiError> {
        let principal = require_principal(&request)?;
        let CreateWorkshop {
            fields,
            instructor,
            organization,
        } = request.into_inner().try_into()?;
        let instructor_id = decide_workshop_creator(&principal, instructor, organization)
            .map_err(|refusal| ApiError::PermissionDenied(refusal.to_string()))?;
        if fields.featured && !principal.has_platform_access() {
            return Err(ApiError::PermissionDenied(
                "only platform admins feature workshops".into(),
            ));
        }
        let mut tx = self.tx_for(Some(&principal)).await?;
        self.checked_time_zone(&mut tx, &fields.time_zone).await?;
        let id = Uuid::now_v7();
        workshops::insert(
            &mut tx,
            WorkshopId::new(id),
            UserId::new(instructor_id),
            organization.map(OrganizationId::new),
            &fields,
        )
        .await?;
        capacity::create_pool(&mut tx, id, WORKSHOP_SEATS, i64::from(fields.capacity)).await?;
        let row = workshops::get(&mut tx, id)
            .await?
            .ok_or_else(|| ApiError::not_found("workshop"))?;
        tx.commit().await?;
        Ok(pb::CreateWorkshopResponse {
            workshop: Some(wire::workshop(row)),
        })
    }

    async fn get_workshop_(
        &self,
        request: Request<pb::GetWorkshopRequest>,
    ) -> Result<pb::GetWorkshopResponse, ApiError> {
        let principal = optional_principal(&request);
        let id = parse_id("id", &request.get_ref().id)?;
        let mut tx = self.tx_for(principal.as_ref()).await?;
        let (workshop, _) = self
            .visible_workshop(&mut tx, principal.as_ref(), id)
            .await?;
        tx.commit().await?;
        Ok(pb::GetWorkshopResponse {
            workshop: Some(wire::workshop(workshop)),
        })
    }

    async fn list_workshops_(
        &self,
        request: Request<pb::ListWorkshopsRequest>,
    ) -> Result<pb::ListWorkshopsResponse, ApiError> {
        let principal = optional_principal(&request);
        let CatalogueQuery {
            filter,
            limit,
            after,
        } = request.into_inner().try_into()?;
        // Row-level security leaves out what the caller may not see (other
        // organizations' restricted workshops, other instructors' drafts).
        let mut tx = self.tx_for(principal.as_ref()).await?;
        let rows = workshops::list(&mut tx, &filter, after, limit + 1).await?;
        tx.commit().await?;
        let (rows, next_page_token) = paginate(rows, limit, |w| (w.start_time, w.id));
        Ok(pb::ListWorkshopsResponse {
            workshops: rows.into_iter().map(wire::workshop).collect(),
            next_page_token,
        })
    }

    /// The workshop, locked, when the caller manages it and it is still editable.
    async fn managed_workshop(
        &self,
        tx: &mut Tx,
        principal: &Principal,
        id: Uuid,
    ) -> Result<WorkshopRow, ApiError> {
        let (_, access) = self.visible_workshop(tx, Some(principal), id).await?;
        if !access.manage {
            return Err(ApiError::PermissionDenied(
                "the workshop's owner and its organization's admins manage it".into(),
            ));
        }
        workshops::lock(tx, id)
            .await?
            .ok_or_else(|| ApiError::not_found("workshop"))
    }

    async fn update_workshop_(
        &self,
        request: Request<pb::UpdateWorkshopRequest>,
    ) -> Result<pb::UpdateWorkshopResponse, ApiError> {
        let principal = require_principal(&request)?;
        let UpdateWorkshop {
            id,
            paths,
            workshop,
        } = request.into_inner().try_into()?;
        let mut tx = self.tx_for(Some(&principal)).await?;
        let stored = self.managed_workshop(&mut tx, &principal, id).await?;
        may_edit(stored.status).map_err(|r| ApiError::FailedPrecondition(r.to_string()))?;
        let mut fields = WorkshopFields::from(&stored);
        let mut v = Violations::new();
        for path in &paths {
            apply_field(&mut v, &workshop, path, &mut fields);
        }
        check_terms(&mut v, &fields, stored.organization_id.is_some());
        let now = Utc::now();
        if stored.status == WorkshopStatus::Published
            && paths.contains("start_time")
            && fields.start_time <= now
        {
            v.add(
                "workshop.start_time",
                "a published workshop cannot move into the past",
            );
        }
        v.into_result()?;
        if fields.featured != stored.featured && !principal.has_platform_access() {
            return Err(ApiError::PermissionDenied(
                "only platform admins feature workshops".into(),
            ));
        }
        if paths.contains("time_zone") {
            self.checked_time_zone(&mut tx, &fields.time_zone).await?;
        }
        workshops::update(&mut tx, id, &fields).await?;
        if fields.capacity != stored.capacity {
            capacity::resize(&mut tx, id, i64::from(fields.capacity))
                .await
                .map_err(|error| match error {
                    capacity::CapacityError::BelowTaken { taken } => ApiError::FailedPrecondition(
                        format!("capacity cannot drop below the {taken} seats already taken"),
                    ),
                    other => other.into(),
                })?;
        }
        let row = workshops::get(&mut tx, id)
            .await?
            .ok_or_else(|| ApiError::not_found("workshop"))?;
        // Drafts are nobody else's business yet: their first event is `published`.
        if row.status != WorkshopStatus::Draft {
            tx.publish(workshop_updated(&row)).await?;
        }
        tx.commit().await?;
        Ok(pb::UpdateWorkshopResponse {
            workshop: Some(wire::workshop(row)),
        })
    }

    /// Publishes, archives or cancels; cancelling cancels the open registrations too.
    async fn change_workshop_status(
        &self,
        principal: &Principal,
        id: Uuid,
        next: WorkshopStatus,
        reason: &str,
    ) -> Result<(WorkshopRow, i64), ApiError> {
        let mut tx = self.tx_for(Some(principal)).await?;
        let workshop = self.managed_workshop(&mut tx, principal, id).await?;
        decide_status_change(workshop.status, next, workshop.start_time, Utc::now())
            .map_err(|r| ApiError::FailedPrecondition(r.to_string()))?;
        workshops::set_status(&mut tx, id, next, reason).await?;
        let row = workshops::get(&mut tx, id)
            .await?
            .ok_or_else(|| ApiError::not_found("workshop"))?;
        let cancelled = if next == WorkshopStatus::Cancelled {
            // The registrations are the registrants' rows: the service cancels them.
            tx.begin_bookkeeping("workshop cancellation").await?;
            let cancelled = cancel_registrations_of(&mut tx, &row).await?;
            tx.end_bookkeeping().await?;
            cancelled
        } else {
            0
        };
        let row = workshops::get(&mut tx, id)
            .await?
            .ok_or_else(|| ApiError::not_found("workshop"))?;
        tx.publish(workshop_status_changed(&row)).await?;
        tx.commit().await?;
        Ok((row, cancelled))
    }

    async fn add_facilitator_(
        &self,
        request: Request<pb::AddFacilitatorRequest>,
    ) -> Result<pb::AddFacilitatorResponse, ApiError> {
        let principal = require_principal(&request)?;
        let req = request.into_inner();
        let mut v = Violations::new();
        let workshop_id = required_id(&mut v, "workshop_id", &req.workshop_id);
        let facilitator_id = required_id(&mut v, "facilitator_id", &req.facilitator_id);
        let role = match req.role {
            0 => Some(FacilitatorRole::CoFacilitator),
            n if n == pb::FacilitatorRole::Primary as i32 => {
                v.add(
                    "role",
                    "the primary facilitator is the workshop's owner; add co-facilitators or assistants",
                );
                None
            }
            n => v.check("role", FacilitatorRole::from_proto(n)),
        };
        v.into_result()?;
        let (Some(workshop_id), Some(facilitator_id), Some(role)) =
            (workshop_id, facilitator_id, role)
        else {
            unreachable!("parsed when there are no violations")
        };
        let mut tx = self.tx_for(Some(&principal)).await?;
        let workshop = self
            .managed_workshop(&mut tx, &principal, workshop_id)
            .await?;
        if workshop.instructor_id == facilitator_id {
            return Err(ApiError::invalid(
                "facilitator_id",
                "is already the workshop's primary facilitator",
            ));
        }
        let row = workshops::upsert_facilitator(
            &mut tx,
            WorkshopId::new(workshop_id),
            UserId::new(facilitator_id),
            role,
        )
        .await?;
        tx.commit().await?;
        Ok(pb::AddFacilitatorResponse {
            facilitator: Some(wire::facilitator(row)),
        })
    }

    async fn remove_facilitator_(
        &self,
        request: Request<pb::RemoveFacilitatorRequest>,
    ) -> Result<pb::RemoveFacilitatorResponse, ApiError> {
        let principal = require_principal(&request)?;
        let req = request.get_ref();
        let (workshop_id, facilitator_id) = two_ids(
            ("workshop_id", &req.workshop_id),
            ("facilitator_id", &req.facilitator_id),
        )?;
        let mut tx = self.tx_for(Some(&principal)).await?;
        self.managed_workshop(&mut tx, &principal, workshop_id)
            .await?;
        if !workshops::remove_facilitator(
            &mut tx,
            WorkshopId::new(workshop_id),
            UserId::new(facilitator_id),
        )
        .await?
        {
            return Err(ApiError::not_found("workshop facilitator"));
        }
        tx.commit().await?;
        Ok(pb::RemoveFacilitatorResponse {})
    }

    async fn list_facilitators_(
        &self,
        request: Request<pb::ListFacilitatorsRequest>,
    ) -> Result<pb::ListFacilitatorsResponse, ApiError> {
        let principal = optional_principal(&request);
        let workshop_id = parse_id("workshop_id", &request.get_ref().workshop_id)?;
        let mut tx = self.tx_for(principal.as_ref()).await?;
        self.visible_workshop(&mut tx, principal.as_ref(), workshop_id)
            .await?;
        let rows = workshops::facilitators(&mut tx, WorkshopId::new(workshop_id)).await?;
        tx.commit().await?;
        Ok(pb::ListFacilitatorsResponse {
            facilitators: rows.into_iter().map(wire::facilitator).collect(),
        })
    }

    async fn register_(
        &self,
        request: Request<pb::RegisterRequest>,
    ) -> Result<pb::RegisterResponse, ApiError> {
        let principal = require_principal(&request)?;
        let Register {
            workshop_id,
            request_id,
        } = request.into_inner().try_into()?;
        let user = UserId::new(principal.subject);
        let mut tx = self.tx_for(Some(&principal)).await?;
        workshops::share_lock(&mut tx, workshop_id).await?;
        let workshop = workshops::get(&mut tx, workshop_id)
            .await?
            .ok_or_else(|| ApiError::not_found("workshop"))?;
        if !self
            .workshop_access(&mut tx, Some(&principal), &workshop)
            .await?
            .view
        {
            return Err(ApiError::not_found("workshop"));
        }
        let existing =
            registrations::lock_of_user(&mut tx, WorkshopId::new(workshop_id), user).await?;
        // A retry of a registration that holds its seat: the same request answers with it.
        if let (Some(existing), Some(request_id)) = (&existing, &request_id)
            && existing.status.holds_seat()
        {
            let seat = SeatRequest {
                request_id: request_id.clone(),
                hold_until: existing.hold_until,
            };
            take_seat(&mut tx, workshop_id, existing.id, &seat).await?;
            tx.commit().await?;
            return Ok(pb::RegisterResponse {
                registration: Some(wire::registration(existing.clone())),
            });
        }
        let now = Utc::now();
        let (price_minor, currency) = workshops::registration_price(&mut tx, workshop_id).await?;
        let decision = decide_register(
            workshop.status,
            workshop.start_time,
            price_minor,
            existing.as_ref().map(|r| r.status),
            now,
        )
        .map_err(|refusal| match refusal {
            crate::domain::workshop::RegisterRefusal::AlreadyRegistered => {
                ApiError::already_exists("workshop_id", refusal.to_string())
            }
            _ => ApiError::FailedPrecondition(refusal.to_string()),
        })?;
        let opening = match decision {
            RegisterDecision::Open(status) | RegisterDecision::Reopen(status) => status,
        };
        let hold_until = (opening == RegistrationStatus::PendingPayment)
            .then(|| now + crate::domain::workshop::PAYMENT_HOLD);
        let row = match (decision, &existing) {
            (RegisterDecision::Reopen(status), Some(existing)) => {
                registrations::reopen(
                    &mut tx,
                    RegistrationId::new(existing.id),
                    status,
                    price_minor,
                    &currency,
                    hold_until,
                )
                .await?
            }
            _ => {
                registrations::insert(
                    &mut tx,
                    NewRegistration {
                        id: RegistrationId::new(Uuid::now_v7()),
                        workshop_id: WorkshopId::new(workshop_id),
                        user_id: user,
                        instructor_id: UserId::new(workshop.instructor_id),
                        organization_id: workshop.organization_id,
                        status: opening,
                        price_minor,
                        currency,
                        hold_until,
                    },
                )
                .await?
            }
        };
        let seat = SeatRequest {
            request_id: request_id.unwrap_or_else(|| format!("register:{}", Uuid::now_v7())),
            hold_until,
        };
        // Last before the event and the commit: the pool's row is the hot spot.
        let Some(seats_remaining) = take_seat(&mut tx, workshop_id, row.id, &seat).await? else {
            // This request registered before and was cancelled since: it stands as it is.
            tx.rollback().await?;
            let existing = existing.ok_or_else(|| ApiError::not_found("registration"))?;
            return Ok(pb::RegisterResponse {
                registration: Some(wire::registration(existing)),
            });
        };
        tx.publish(registration_changed(
            &row,
            &workshop,
            seats_remaining,
            false,
        ))
        .await?;
        tx.commit().await?;
        Ok(pb::RegisterResponse {
            registration: Some(wire::registration(row)),
        })
    }

    /// A registration the caller may see (their own, or one of a workshop they run),
    /// locked, with its workshop and the caller's rights on that.
    async fn visible_registration(
        &self,
        tx: &mut Tx,
        principal: &Principal,
        id: Uuid,
    ) -> Result<(RegistrationRow, WorkshopRow, WorkshopAccess), ApiError> {
        let registration = registrations::lock(tx, id)
            .await?
            .ok_or_else(|| ApiError::not_found("registration"))?;
        let workshop = workshops::get(tx, registration.workshop_id)
            .await?
            .ok_or_else(|| ApiError::not_found("registration"))?;
        let access = self.workshop_access(tx, Some(principal), &workshop).await?;
        if registration.user_id != principal.subject && !access.run {
            return Err(ApiError::not_found("registration"));
        }
        Ok((registration, workshop, access))
    }

    async fn get_registration_(
        &self,
        request: Request<pb::GetRegistrationRequest>,
    ) -> Result<pb::GetRegistrationResponse, ApiError> {
        let principal = require_principal(&request)?;
        let id = parse_id("id", &request.get_ref().id)?;
        let mut tx = self.tx_for(Some(&principal)).await?;
        let registration = registrations::get(&mut tx, id)
            .await?
            .ok_or_else(|| ApiError::not_found("registration"))?;
        tx.commit().await?;
        Ok(pb::GetRegistrationResponse {
            registration: Some(wire::registration(registration)),
        })
    }

    async fn list_registrations_(
        &self,
        request: Request<pb::ListRegistrationsRequest>,
    ) -> Result<pb::ListRegistrationsResponse, ApiError> {
        let principal = require_principal(&request)?;
        let req = request.into_inner();
        let mut v = Violations::new();
        let workshop_id = optional_id(&mut v, "workshop_id", &req.workshop_id);
        let limit = page_size(&mut v, req.page_size);
        let after = decode_position(&mut v, &req.page_token);
        v.into_result()?;
        let workshop_id = workshop_id.expect("parsed when there are no violations");
        let mut tx = self.tx_for(Some(&principal)).await?;
        let rows = match workshop_id {
            Some(workshop_id) => {
                let (_, access) = self
                    .visible_workshop(&mut tx, Some(&principal), workshop_id)
                    .await?;
                if !access.run {
                    return Err(ApiError::PermissionDenied(
                        "a workshop's registrations are for its team".into(),
                    ));
                }
                registrations::list(
                    &mut tx,
                    None,
                    Some(WorkshopId::new(workshop_id)),
                    after,
                    limit + 1,
                )
                .await?
            }
            None => {
                registrations::list(
                    &mut tx,
                    Some(UserId::new(principal.subject)),
                    None,
                    after,
                    limit + 1,
                )
                .await?
            }
        };
        tx.commit().await?;
        let (rows, next_page_token) = paginate(rows, limit, |r| (r.registered_at, r.id));
        Ok(pb::ListRegistrationsResponse {
            registrations: rows.into_iter().map(wire::registration).collect(),
            next_page_token,
        })
    }

    async fn cancel_registration_(
        &self,
        request: Request<pb::CancelRegistrationRequest>,
    ) -> Result<pb::CancelRegistrationResponse, ApiError> {
        let principal = require_principal(&request)?;
        let id = parse_id("id", &request.get_ref().id)?;
        let mut tx = self.tx_for(Some(&principal)).await?;
        let (registration, workshop, access) =
            self.visible_registration(&mut tx, &principal, id).await?;
        // Cancelling again answers with the cancellation: its seat came back once.
        if registration.status == RegistrationStatus::Cancelled {
            tx.commit().await?;
            return Ok(pb::CancelRegistrationResponse {
                registration: Some(wire::registration(registration)),
            });
        }
        let reason = if registration.user_id == principal.subject {
            CancelReason::Registrant
        } else if access.run {
            CancelReason::Staff
        } else {
            return Err(ApiError::permission_denied());
        };
        let moved = change_registration(
            &mut tx,
            &registration,
            &workshop,
            RegistrationStatus::Cancelled,
            Move {
                cancel_reason: Some(reason),
                ..Move::default()
            },
        )
        .await?;
        let Moved::Done(row) = moved else {
            unreachable!("a cancellation takes no seat")
        };
        tx.commit().await?;
        Ok(pb::CancelRegistrationResponse {
            registration: Some(wire::registration(*row)),
        })
    }

    async fn mark_attendance_(
        &self,
        request: Request<pb::MarkAttendanceRequest>,
    ) -> Result<pb::MarkAttendanceResponse, ApiError> {
        let principal = require_principal(&request)?;
        let req = request.into_inner();
        let id = parse_id("registration_id", &req.registration_id)?;
        let mut tx = self.tx_for(Some(&principal)).await?;
        let (registration, workshop, access) =
            self.visible_registration(&mut tx, &principal, id).await?;
        if !access.run {
            return Err(ApiError::PermissionDenied(
                "the workshop's facilitators mark attendance".into(),
            ));
        }
        let next = decide_attendance(
            workshop.status,
            workshop.start_time,
            registration.status,
            req.attended,
            Utc::now(),
        )
        .map_err(|r| ApiError::FailedPrecondition(r.to_string()))?;
        let row = if next == registration.status {
            registration
        } else {
            match change_registration(&mut tx, &registration, &workshop, next, Move::default())
                .await?
            {
                Moved::Done(row) => *row,
                Moved::SeatReleasedEarlier => unreachable!("attendance takes no seat"),
            }
        };
        tx.commit().await?;
        Ok(pb::MarkAttendanceResponse {
            registration: Some(wire::registration(row)),
        })
    }

    async fn submit_feedback_(
        &self,
        request: Request<pb::SubmitFeedbackRequest>,
    ) -> Result<pb::SubmitFeedbackResponse, ApiError> {
        let principal = require_principal(&request)?;
        let SubmitFeedback {
            workshop_id,
            feedback,
        } = request.into_inner().try_into()?;
        let mut tx = self.tx_for(Some(&principal)).await?;
        let (workshop, _) = self
            .visible_workshop(&mut tx, Some(&principal), workshop_id)
            .await?;
        let user = UserId::new(principal.subject);
        let registration = registrations::lock_of_user(&mut tx, WorkshopId::new(workshop_id), user)
            .await?
            .filter(|r| may_give_feedback(r.status).is_ok())
            .ok_or_else(|| {
                ApiError::FailedPrecondition(
                    crate::domain::workshop::FeedbackRefusal::NotAttended.to_string(),
                )
            })?;
        let satisfaction = feedback.overall_satisfaction;
        let row = workshops::insert_feedback(
            &mut tx,
            WorkshopId::new(workshop_id),
            registration.id,
            user,
            feedback,
        )
        .await?;
        tx.begin_bookkeeping("workshop satisfaction").await?;
        let totals = workshops::add_feedback(&mut tx, workshop_id, satisfaction).await?;
        tx.end_bookkeeping().await?;
        tx.publish(crate::events::workshops::feedback_submitted(
            &row, &workshop, totals,
        ))
        .await?;
        tx.commit().await?;
        Ok(pb::SubmitFeedbackResponse {
            feedback: Some(wire::feedback(row)),
            statistics: Some(pb::WorkshopStatistics {
                registered_count: workshop.seats_taken(),
                attended_count: workshop.attended_count,
                feedback_count: totals.count,
                average_satisfaction: totals.average,
            }),
        })
    }

    async fn list_feedback_(
        &self,
        request: Request<pb::ListFeedbackRequest>,
    ) -> Result<pb::ListFeedbackResponse, ApiError> {
        let principal = require_principal(&request)?;
        let req = request.into_inner();
        let mut v = Violations::new();
        let workshop_id = required_id(&mut v, "workshop_id", &req.workshop_id);
        let limit = page_size(&mut v, req.page_size);
        let after = decode_position(&mut v, &req.page_token);
        v.into_result()?;
        let workshop_id = workshop_id.expect("parsed when there are no violations");
        let mut tx = self.tx_for(Some(&principal)).await?;
        let (_, access) = self
            .visible_workshop(&mut tx, Some(&principal), workshop_id)
            .await?;
        if !access.run {
            return Err(ApiError::PermissionDenied(
                "a workshop's feedback is for its team".into(),
            ));
        }
        let rows =
            workshops::list_feedback(&mut tx, WorkshopId::new(workshop_id), after, limit + 1)
                .await?;
        tx.commit().await?;
        let (rows, next_page_token) = paginate(rows, limit, |f| (f.created_at, f.id));
        Ok(pb::ListFeedbackResponse {
            feedback: rows.into_iter().map(wire::feedback).collect(),
            next_page_token,
        })
    }
}

#[tonic::async_trait]
impl WorkshopService for LearningApi {
    async fn create_workshop(
        &self,
        r: Request<pb::CreateWorkshopRequest>,
    ) -> Result<Response<pb::CreateWorkshopResponse>, Status> {
        Ok(Response::new(self.create_workshop_(r).await?))
    }
    async fn get_workshop(
        &self,
        r: Request<pb::GetWorkshopRequest>,
    ) -> Result<Response<pb::GetWorkshopResponse>, Status> {
        Ok(Response::new(self.get_workshop_(r).await?))
    }
    async fn list_workshops(
        &self,
        r: Request<pb::ListWorkshopsRequest>,
    ) -> Result<Response<pb::ListWorkshopsResponse>, Status> {
        Ok(Response::new(self.list_workshops_(r).await?))
    }
    async fn update_workshop(
        &self,
        r: Request<pb::UpdateWorkshopRequest>,
    ) -> Result<Response<pb::UpdateWorkshopResponse>, Status> {
        Ok(Response::new(self.update_workshop_(r).await?))
    }
    async fn publish_workshop(
        &self,
        r: Request<pb::PublishWorkshopRequest>,
    ) -> Result<Response<pb::PublishWorkshopResponse>, Status> {
        let principal = require_principal(&r)?;
        let id = parse_id("id", &r.get_ref().id)?;
        let (workshop, _) = self
            .change_workshop_status(&principal, id, WorkshopStatus::Published, "")
            .await?;
        Ok(Response::new(pb::PublishWorkshopResponse {
            workshop: Some(wire::workshop(workshop)),
        }))
    }
    async fn archive_workshop(
        &self,
        r: Request<pb::ArchiveWorkshopRequest>,
    ) -> Result<Response<pb::ArchiveWorkshopResponse>, Status> {
        let principal = require_principal(&r)?;
        let id = parse_id("id", &r.get_ref().id)?;
        let (workshop, _) = self
            .change_workshop_status(&principal, id, WorkshopStatus::Archived, "")
            .await?;
        Ok(Response::new(pb::ArchiveWorkshopResponse {
            workshop: Some(wire::workshop(workshop)),
        }))
    }
    async fn cancel_workshop(
        &self,
        r: Request<pb::CancelWorkshopRequest>,
    ) -> Result<Response<pb::CancelWorkshopResponse>, Status> {
        let principal = require_principal(&r)?;
        let req = r.get_ref();
        let mut v = Violations::new();
        let id = required_id(&mut v, "id", &req.id);
        let reason = v.check("reason", CancelNote::parse(&req.reason));
        v.into_result().map_err(Status::from)?;
        let (Some(id), Some(reason)) = (id, reason) else {
            unreachable!("parsed when there are no violations")
        };
        let (workshop, cancelled) = self
            .change_workshop_status(&principal, id, WorkshopStatus::Cancelled, reason.as_str())
            .await?;
        Ok(Response::new(pb::CancelWorkshopResponse {
            workshop: Some(wire::workshop(workshop)),
            cancelled_registrations: cancelled,
        }))
    }
    async fn add_facilitator(
        &self,
        r: Request<pb::AddFacilitatorRequest>,
    ) -> Result<Response<pb::AddFacilitatorResponse>, Status> {
        Ok(Response::new(self.add_facilitator_(r).await?))
    }
    async fn remove_facilitator(
        &self,
        r: Request<pb::RemoveFacilitatorRequest>,
    ) -> Result<Response<pb::RemoveFacilitatorResponse>, Status> {
        Ok(Response::new(self.remove_facilitator_(r).await?))
    }
    async fn list_facilitators(
        &self,
        r: Request<pb::ListFacilitatorsRequest>,
    ) -> Result<Response<pb::ListFacilitatorsResponse>, Status> {
        Ok(Response::new(self.list_facilitators_(r).await?))
    }
    async fn register(
        &self,
        r: Request<pb::RegisterRequest>,
    ) -> Result<Response<pb::RegisterResponse>, Status> {
        Ok(Response::new(self.register_(r).await?))
    }
    async fn get_registration(
        &self,
        r: Request<pb::GetRegistrationRequest>,
    ) -> Result<Response<pb::GetRegistrationResponse>, Status> {
        Ok(Response::new(self.get_registration_(r).await?))
    }
    async fn list_registrations(
        &self,
        r: Request<pb::ListRegistrationsRequest>,
    ) -> Result<Response<pb::ListRegistrationsResponse>, Status> {
        Ok(Response::new(self.list_registrations_(r).await?))
    }
    async fn cancel_registration(
        &self,
        r: Request<pb::CancelRegistrationRequest>,
    ) -> Result<Response<pb::CancelRegistrationResponse>, Status> {
        Ok(Response::new(self.cancel_registration_(r).await?))
    }
    async fn mark_attendance(
        &self,
        r: Request<pb::MarkAttendanceRequest>,
    ) -> Result<Response<pb::MarkAttendanceResponse>, Status> {
        Ok(Response::new(self.mark_attendance_(r).await?))
    }
    async fn submit_feedback(
        &self,
        r: Request<pb::SubmitFeedbackRequest>,
    ) -> Result<Response<pb::SubmitFeedbackResponse>, Status> {
        Ok(Response::new(self.submit_feedback_(r).await?))
    }
    async fn list_feedback(
        &self,
        r: Request<pb::ListFeedbackRequest>,
    ) -> Result<Response<pb::ListFeedbackResponse>, Status> {
        Ok(Response::new(self.list_feedback_(r).await?))
    }
}
