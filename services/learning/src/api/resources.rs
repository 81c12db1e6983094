use std::collections::HashSet;

use lyceum_platform::auth::{Principal, optional_principal, require_principal};
use lyceum_platform::convert::{optional_id, page_size, parse_id, required_id, update_mask};
use lyceum_platform::{ApiError, Violations};
use lyceum_proto::learning::v1 as pb;
use lyceum_proto::learning::v1::resource_service_server::ResourceService;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{LearningApi, decode_position, paginate, visible_course, wire};
use crate::domain::resource::{
    AccessLevel, CreateResourceRefusal, ResourceAccess, ResourceStatus, ResourceType,
    content_violations, decide_create, scope_violation,
};
use crate::domain::{BoundedText, CourseId, OrganizationId, ResourceId, TextList, UserId};
use crate::events::resources::{publishes, resource_published};
use crate::store::Tx;
use crate::store::resources::{self, ResourceFields, ResourceFilter, ResourceRow};

type Title = BoundedText<200, true>;
type Description = BoundedText<2000, false>;
type Body = BoundedText<100000, false>;
type Url = BoundedText<2048, false>;
type Tags = TextList<20>;

const UPDATABLE: &[&str] = &[
    "type",
    "title",
    "description",
    "body",
    "content_url",
    "tags",
    "access_level",
    "status",
];

fn defaults() -> ResourceFields {
    ResourceFields {
        resource_type: ResourceType::Article,
        title: String::new(),
        description: String::new(),
        body: String::new(),
        content_url: String::new(),
        tags: vec![],
        access_level: AccessLevel::Public,
        status: ResourceStatus::Draft,
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

/// Validates one field of the request's resource into `fields`, recording violations.
fn apply_field(v: &mut Violations, r: &pb::Resource, path: &str, fields: &mut ResourceFields) {
    let field = |name: &str| format!("resource.{name}");
    match path {
        "type" => {
            if let Some(t) = required_enum(v, &field("type"), r.r#type, ResourceType::from_proto) {
                fields.resource_type = t;
            }
        }
        "title" => {
            if let Some(t) = v.check(&field("title"), Title::parse(&r.title)) {
                fields.title = t.into_inner();
            }
        }
        "description" => {
            if let Some(d) = v.check(&field("description"), Description::parse(&r.description)) {
                fields.description = d.into_inner();
            }
        }
        "body" => {
            if let Some(b) = v.check(&field("body"), Body::parse(&r.body)) {
                fields.body = b.into_inner();
            }
        }
        "content_url" => {
            if let Some(u) = v.check(&field("content_url"), Url::parse(&r.content_url)) {
                fields.content_url = u.into_inner();
            }
        }
        "tags" => {
            if let Some(t) = v.check(&field("tags"), Tags::parse(&r.tags)) {
                fields.tags = t.into_inner();
            }
        }
        "access_level" => {
            if let Some(level) = required_enum(
                v,
                &field("access_level"),
                r.access_level,
                AccessLevel::from_proto,
            ) {
                fields.access_level = level;
            }
        }
        "status" => match r.status {
            0 => fields.status = ResourceStatus::Draft,
            n => {
                if let Some(status) = v.check(&field("status"), ResourceStatus::from_proto(n)) {
                    fields.status = status;
                }
            }
        },
        _ => {}
    }
}

/// The rules across fields: the content the type needs, and the scope the access level
/// needs (a course's resource has the course's organization; the handler checks that the
/// course has one).
fn check_fields(
    v: &mut Violations,
    fields: &ResourceFields,
    organization: Option<Uuid>,
    course: Option<Uuid>,
) {
    for (name, message) in
        content_violations(fields.resource_type, &fields.body, &fields.content_url)
    {
        v.add(format!("resource.{name}"), message);
    }
    if let Some((name, message)) = scope_violation(
        fields.access_level,
        organization.is_some() || course.is_some(),
        course.is_some(),
    ) {
        v.add(format!("resource.{name}"), message);
    }
}

/// A CreateResource request, validated: every field, defaults where unset.
struct CreateResource {
    fields: ResourceFields,
    organization: Option<Uuid>,
    course: Option<Uuid>,
}

impl TryFrom<pb::CreateResourceRequest> for CreateResource {
    type Error = ApiError;

    fn try_from(request: pb::CreateResourceRequest) -> Result<Self, ApiError> {
        let resource = request.resource.unwrap_or_default();
        let mut v = Violations::new();
        let mut fields = defaults();
        for path in UPDATABLE {
            apply_field(&mut v, &resource, path, &mut fields);
        }
        let organization = optional_id(
            &mut v,
            "resource.organization_id",
            &resource.organization_id,
        );
        let course = optional_id(&mut v, "resource.course_id", &resource.course_id);
        if let (Some(organization), Some(course)) = (organization, course) {
            check_fields(&mut v, &fields, organization, course);
        }
        v.into_result()?;
        let (Some(organization), Some(course)) = (organization, course) else {
            unreachable!("parsed when there are no violations")
        };
        Ok(Self {
            fields,
            organization,
            course,
        })
    }
}

/// An UpdateResource request, validated as far as the request alone allows.
struct UpdateResource {
    id: Uuid,
    paths: HashSet<String>,
    resource: pb::Resource,
}

impl TryFrom<pb::UpdateResourceRequest> for UpdateResource {
    type Error = ApiError;

    fn try_from(req: pb::UpdateResourceRequest) -> Result<Self, ApiError> {
        let resource = req.resource.unwrap_or_default();
        let mut v = Violations::new();
        let id = required_id(&mut v, "resource.id", &resource.id);
        let paths = update_mask(&mut v, req.update_mask, UPDATABLE);
        v.into_result()?;
        Ok(Self {
            id: id.expect("parsed when there are no violations"),
            paths,
            resource,
        })
    }
}

/// A ListResources request, validated.
struct LibraryQuery {
    filter: ResourceFilter,
    limit: i64,
    after: Option<(chrono::DateTime<chrono::Utc>, Uuid)>,
}

impl TryFrom<pb::ListResourcesRequest> for LibraryQuery {
    type Error = ApiError;

    fn try_from(req: pb::ListResourcesRequest) -> Result<Self, ApiError> {
        let mut v = Violations::new();
        let limit = page_size(&mut v, req.page_size);
        let after = decode_position(&mut v, &req.page_token);
        let status = match req.status {
            0 => Some(ResourceStatus::Published),
            n => v.check("status", ResourceStatus::from_proto(n)),
        };
        let resource_type = match req.r#type {
            0 => Some(None),
            n => v.check("type", ResourceType::from_proto(n)).map(Some),
        };
        let query = v
            .check("query", BoundedText::<200, false>::parse(&req.query))
            .map(|q| q.into_inner());
        let tags = v
            .check("tags", TextList::<10>::parse(&req.tags))
            .map(|t| t.into_inner());
        let course_id = optional_id(&mut v, "course_id", &req.course_id);
        let organization_id = optional_id(&mut v, "organization_id", &req.organization_id);
        let author_id = optional_id(&mut v, "author_id", &req.author_id);
        v.into_result()?;
        let (
            Some(status),
            Some(resource_type),
            Some(query),
            Some(tags),
            Some(course_id),
            Some(organization_id),
            Some(author_id),
        ) = (
            status,
            resource_type,
            query,
            tags,
            course_id,
            organization_id,
            author_id,
        )
        else {
            unreachable!("parsed when there are no violations")
        };
        Ok(Self {
            limit,
            after,
            filter: ResourceFilter {
                status: Some(status),
                query: Some(query).filter(|q| !q.is_empty()),
                resource_type,
                tags,
                course_id,
                organization_id,
                author_id,
            },
        })
    }
}

impl From<CreateResourceRefusal> for ApiError {
    fn from(refusal: CreateResourceRefusal) -> Self {
        ApiError::PermissionDenied(refusal.to_string())
    }
}

fn access_of(principal: Option<&Principal>, row: &ResourceRow) -> ResourceAccess {
    ResourceAccess::decide(&row.scope(), principal, row.course_standing())
}

impl LearningApi {
    /// Loads a resource the caller may see, or answers NOT_FOUND (existence does not leak).
    async fn visible_resource(
        &self,
        tx: &mut Tx,
        principal: Option<&Principal>,
        id: Uuid,
    ) -> Result<(ResourceRow, ResourceAccess), ApiError> {
        let resource = resources::get(tx, id)
            .await?
            .ok_or_else(|| ApiError::not_found("resource"))?;
        let access = access_of(principal, &resource);
        if !access.view {
            return Err(ApiError::not_found("resource"));
        }
        Ok((resource, access))
    }

    /// The resource, locked, when the caller may write it.
    async fn written_resource(
        &self,
        tx: &mut Tx,
        principal: &Principal,
        id: Uuid,
    ) -> Result<ResourceRow, ApiError> {
        let (_, access) = self.visible_resource(tx, Some(principal), id).await?;
        if !access.write {
            return Err(ApiError::PermissionDenied(
                "a resource is written by its author, its organization's admins and its course's team".into(),
            ));
        }
        resources::lock(tx, id)
            .await?
            .ok_or_else(|| ApiError::not_found("resource"))
    }

    async fn create_resource_(
        &self,
        request: Request<pb::CreateResourceRequest>,
    ) -> Result<pb::CreateResourceResponse, ApiError> {
        let principal = require_principal(&request)?;
        let CreateResource {
            fields,
            organization,
            course,
        } = request.into_inner().try_into()?;
        let mut tx = self.tx_for(Some(&principal)).await?;
        let (organization, standing) = match course {
            None => (organization, None),
            Some(course_id) => {
                let (course, _) = visible_course(&mut tx, Some(&principal), course_id).await?;
                if organization.is_some() && organization != course.organization_id {
                    return Err(ApiError::invalid(
                        "resource.organization_id",
                        "must be the course's organization (or empty)",
                    ));
                }
                if fields.access_level == AccessLevel::OrganizationMembers
                    && course.organization_id.is_none()
                {
                    return Err(ApiError::invalid(
                        "resource.organization_id",
                        "the course belongs to no organization, so its resources cannot be for organization members",
                    ));
                }
                let standing =
                    resources::course_standing(&mut tx, CourseId::new(course_id)).await?;
                (course.organization_id, Some(standing))
            }
        };
        decide_create(&principal, organization, standing)?;
        let id = Uuid::now_v7();
        resources::insert(
            &mut tx,
            ResourceId::new(id),
            UserId::new(principal.subject),
            organization.map(OrganizationId::new),
            course.map(CourseId::new),
            &fields,
        )
        .await?;
        let row = resources::get(&mut tx, id)
            .await?
            .ok_or_else(|| ApiError::not_found("resource"))?;
        if publishes(None, row.status) {
            tx.publish(resource_published(&row)).await?;
        }
        tx.commit().await?;
        Ok(pb::CreateResourceResponse {
            resource: Some(wire::resource(row)),
        })
    }

    async fn get_resource_(
        &self,
        request: Request<pb::GetResourceRequest>,
    ) -> Result<pb::GetResourceResponse, ApiError> {
        let principal = optional_principal(&request);
        let id = parse_id("id", &request.get_ref().id)?;
        let mut tx = self.tx_for(principal.as_ref()).await?;
        let (resource, _) = self
            .visible_resource(&mut tx, principal.as_ref(), id)
            .await?;
        tx.commit().await?;
        Ok(pb::GetResourceResponse {
            resource: Some(wire::resource(resource)),
        })
    }

    async fn list_resources_(
        &self,
        request: Request<pb::ListResourcesRequest>,
    ) -> Result<pb::ListResourcesResponse, ApiError> {
        let principal = optional_principal(&request);
        let LibraryQuery {
            filter,
            limit,
            after,
        } = request.into_inner().try_into()?;
        // Row-level security leaves out what the caller may not see; the domain's rule is
        // applied to what is left as well, so that the two walls must both fail to leak.
        let mut tx = self.tx_for(principal.as_ref()).await?;
        let rows = resources::list(&mut tx, &filter, after, limit + 1).await?;
        tx.commit().await?;
        let (rows, next_page_token) = paginate(rows, limit, |r| (r.created_at, r.id));
        Ok(pb::ListResourcesResponse {
            resources: rows
                .into_iter()
                .filter(|row| access_of(principal.as_ref(), row).view)
                .map(wire::resource)
                .collect(),
            next_page_token,
        })
    }

    async fn update_resource_(
        &self,
        request: Request<pb::UpdateResourceRequest>,
    ) -> Result<pb::UpdateResourceResponse, ApiError> {
        let principal = require_principal(&request)?;
        let UpdateResource {
            id,
            paths,
            resource,
        } = request.into_inner().try_into()?;
        let mut tx = self.tx_for(Some(&principal)).await?;
        let stored = self.written_resource(&mut tx, &principal, id).await?;
        let mut fields = ResourceFields::from(&stored);
        let mut v = Violations::new();
        for path in &paths {
            apply_field(&mut v, &resource, path, &mut fields);
        }
        check_fields(&mut v, &fields, stored.organization_id, stored.course_id);
        v.into_result()?;
        resources::update(&mut tx, id, &fields).await?;
        let row = resources::get(&mut tx, id)
            .await?
            .ok_or_else(|| ApiError::not_found("resource"))?;
        if publishes(Some(stored.status), row.status) {
            tx.publish(resource_published(&row)).await?;
        }
        tx.commit().await?;
        Ok(pb::UpdateResourceResponse {
            resource: Some(wire::resource(row)),
        })
    }

    async fn delete_resource_(
        &self,
        request: Request<pb::DeleteResourceRequest>,
    ) -> Result<pb::DeleteResourceResponse, ApiError> {
        let principal = require_principal(&request)?;
        let id = parse_id("id", &request.get_ref().id)?;
        let mut tx = self.tx_for(Some(&principal)).await?;
        self.written_resource(&mut tx, &principal, id).await?;
        resources::delete(&mut tx, id).await?;
        tx.commit().await?;
        Ok(pb::DeleteResourceResponse {})
    }
}

#[tonic::async_trait]
impl ResourceService for LearningApi {
    async fn create_resource(
        &self,
        r: Request<pb::CreateResourceRequest>,
    ) -> Result<Response<pb::CreateResourceResponse>, Status> {
        Ok(Response::new(self.create_resource_(r).await?))
    }
    async fn get_resource(
        &self,
        r: Request<pb::GetResourceRequest>,
    ) -> Result<Response<pb::GetResourceResponse>, Status> {
        Ok(Response::new(self.get_resource_(r).await?))
    }
    async fn list_resources(
        &self,
        r: Request<pb::ListResourcesRequest>,
    ) -> Result<Response<pb::ListResourcesResponse>, Status> {
        Ok(Response::new(self.list_resources_(r).await?))
    }
    async fn update_resource(
        &self,
        r: Request<pb::UpdateResourceRequest>,
    ) -> Result<Response<pb::UpdateResourceResponse>, Status> {
        Ok(Response::new(self.update_resource_(r).await?))
    }
    async fn delete_resource(
        &self,
        r: Request<pb::DeleteResourceRequest>,
    ) -> Result<Response<pb::DeleteResourceResponse>, Status> {
        Ok(Response::new(self.delete_resource_(r).await?))
    }
}
