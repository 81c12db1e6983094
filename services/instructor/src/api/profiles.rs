use std::collections::HashMap;

use lyceum_platform::auth::{optional_principal, require_principal, roles};
use lyceum_platform::convert::{page_size, parse_id};
use lyceum_platform::db::TenantContext;
use lyceum_platform::text::BoundedText;
use lyceum_platform::{ApiError, Violations};
use lyceum_proto::instructor::v1 as pb;
use lyceum_proto::instructor::v1::profile_service_server::ProfileService;
use lyceum_proto::instructor::v1::settings_service_server::SettingsService;
use tonic::{Request, Response, Status};

use super::{InstructorApi, may_read_instructor};
use crate::store::profiles::{self, ProfileContent, ProfileRow, SettingsRow};

const PILLARS: &[&str] = &["adaptability", "coaching", "marketplace"];
const PAYOUT_SCHEDULES: &[&str] = &["weekly", "biweekly", "monthly"];

/// A list of short entries: at most `max` items of 1–300 characters.
fn entries(v: &mut Violations, field: &str, raw: &[String], max: usize) -> Vec<String> {
    if raw.len() > max {
        v.add(field, format!("must have at most {max} items"));
    }
    let mut items = Vec::new();
    for item in raw {
        let item = item.trim();
        if item.is_empty() || item.chars().count() > 300 {
            v.add(field, "items must be 1 to 300 characters");
            break;
        }
        if !items.iter().any(|x: &String| x == item) {
            items.push(item.to_owned());
        }
    }
    items
}

/// An UpsertInstructorProfile request, validated.
struct UpsertProfile {
    /// Trimmed, 50 to 2000 characters.
    bio: String,
    expertise_tags: Vec<String>,
    pillars: Vec<String>,
    education: Vec<String>,
    certifications: Vec<String>,
    work_experience: Vec<String>,
    social_links: HashMap<String, String>,
}

/// Profiles and settings are written by their own instructor: a request that names
/// someone else is refused, not quietly applied to the caller's own.
fn only_their_own(
    principal: &lyceum_platform::auth::Principal,
    named: Option<&str>,
    what: &str,
) -> Result<(), ApiError> {
    match named.filter(|id| !id.is_empty()) {
        Some(id) if !uuid::Uuid::parse_str(id).is_ok_and(|id| principal.is_user(id)) => Err(
            ApiError::PermissionDenied(format!("{what} is changed only by its own instructor")),
        ),
        _ => Ok(()),
    }
}

impl TryFrom<pb::UpsertInstructorProfileRequest> for UpsertProfile {
    type Error = ApiError;

    fn try_from(req: pb::UpsertInstructorProfileRequest) -> Result<Self, ApiError> {
        let profile = req.profile.unwrap_or_default();
        let mut v = Violations::new();
        let bio = profile.bio.trim().to_owned();
        if !(50..=2000).contains(&bio.chars().count()) {
            v.add("profile.bio", "must be 50 to 2000 characters");
        }
        let expertise_tags = entries(
            &mut v,
            "profile.expertise_tags",
            &profile.expertise_tags,
            30,
        );
        let pillars = entries(&mut v, "profile.pillars", &profile.pillars, 3);
        if pillars.iter().any(|p| !PILLARS.contains(&p.as_str())) {
            v.add(
                "profile.pillars",
                format!("must be among: {}", PILLARS.join(", ")),
            );
        }
        let education = entries(&mut v, "profile.education", &profile.education, 20);
        let certifications = entries(
            &mut v,
            "profile.certifications",
            &profile.certifications,
            30,
        );
        let work_experience = entries(
            &mut v,
            "profile.work_experience",
            &profile.work_experience,
            30,
        );
        if profile.social_links.len() > 20
            || profile
                .social_links
                .iter()
                .any(|(k, u)| k.len() > 50 || u.len() > 2048)
        {
            v.add(
                "profile.social_links",
                "at most 20 links, names up to 50 and URLs up to 2048 characters",
            );
        }
        v.into_result()?;
        Ok(Self {
            bio,
            expertise_tags,
            pillars,
            education,
            certifications,
            work_experience,
            social_links: profile.social_links,
        })
    }
}

/// A SearchInstructors request, validated.
struct SearchInstructors {
    limit: i64,
    expertise_tag: Option<String>,
    pillar: Option<String>,
}

impl TryFrom<pb::SearchInstructorsRequest> for SearchInstructors {
    type Error = ApiError;

    fn try_from(req: pb::SearchInstructorsRequest) -> Result<Self, ApiError> {
        let mut v = Violations::new();
        let limit = page_size(&mut v, req.page_size);
        if !req.pillar.is_empty() && !PILLARS.contains(&req.pillar.as_str()) {
            v.add("pillar", format!("must be among: {}", PILLARS.join(", ")));
        }
        if req.expertise_tag.chars().count() > 300 {
            v.add("expertise_tag", "must be at most 300 characters");
        }
        v.into_result()?;
        Ok(Self {
            limit,
            expertise_tag: Some(req.expertise_tag).filter(|t| !t.is_empty()),
            pillar: Some(req.pillar).filter(|p| !p.is_empty()),
        })
    }
}

/// An UpdateInstructorSettings request, validated.
struct UpdateSettings {
    payment_method: BoundedText<50, false>,
    payment_details: BoundedText<2000, false>,
    /// One of `PAYOUT_SCHEDULES`, monthly when unset.
    payout_schedule: String,
    notification_preferences: HashMap<String, bool>,
    teaching_preferences: HashMap<String, String>,
    calendar_sync: bool,
}

impl TryFrom<pb::UpdateInstructorSettingsRequest> for UpdateSettings {
    type Error = ApiError;

    fn try_from(req: pb::UpdateInstructorSettingsRequest) -> Result<Self, ApiError> {
        let settings = req.settings.unwrap_or_default();
        let mut v = Violations::new();
        let method = v.check(
            "settings.payment_method",
            BoundedText::<50, false>::parse(&settings.payment_method),
        );
        let details = v.check(
            "settings.payment_details",
            BoundedText::<2000, false>::parse(&settings.payment_details),
        );
        let schedule = if settings.payout_schedule.is_empty() {
            "monthly".to_owned()
        } else {
            settings.payout_schedule
        };
        if !PAYOUT_SCHEDULES.contains(&schedule.as_str()) {
            v.add(
                "settings.payout_schedule",
                format!("must be one of: {}", PAYOUT_SCHEDULES.join(", ")),
            );
        }
        if settings.notification_preferences.len() > 50 || settings.teaching_preferences.len() > 50
        {
            v.add("settings", "at most 50 preferences of each kind");
        }
        v.into_result()?;
        let (Some(payment_method), Some(payment_details)) = (method, details) else {
            unreachable!("parsed when there are no violations")
        };
        Ok(Self {
            payment_method,
            payment_details,
            payout_schedule: schedule,
            notification_preferences: settings.notification_preferences,
            teaching_preferences: settings.teaching_preferences,
            calendar_sync: settings.calendar_sync,
        })
    }
}

fn profile_message(row: ProfileRow) -> pb::InstructorProfile {
    let average_rating = if row.review_count > 0 {
        (row.rating_sum as f64 / row.review_count as f64 * 100.0).round() / 100.0
    } else {
        0.0
    };
    pb::InstructorProfile {
        instructor_id: row.instructor_id.to_string(),
        bio: row.bio,
        expertise_tags: row.expertise_tags,
        pillars: row.pillars,
        education: row.education,
        certifications: row.certifications,
        work_experience: row.work_experience,
        social_links: serde_json::from_value(row.social_links).unwrap_or_default(),
        verified: row.verified,
        featured: row.featured,
        statistics: Some(pb::InstructorStatistics {
            total_students: row.total_students,
            total_courses: row.total_courses,
            total_workshops: row.total_workshops,
            average_rating,
            total_reviews: row.review_count,
        }),
    }
}

impl InstructorApi {
    async fn upsert_profile_(
        &self,
        request: Request<pb::UpsertInstructorProfileRequest>,
    ) -> Result<pb::UpsertInstructorProfileResponse, ApiError> {
        let principal = require_principal(&request)?;
        let named = request
            .get_ref()
            .profile
            .as_ref()
            .map(|p| p.instructor_id.as_str());
        only_their_own(&principal, named, "a profile")?;
        let UpsertProfile {
            bio,
            expertise_tags,
            pillars,
            education,
            certifications,
            work_experience,
            social_links,
        } = request.into_inner().try_into()?;
        if !principal.has_role(roles::INSTRUCTOR, principal.organization_id) {
            return Err(ApiError::PermissionDenied(
                "profiles belong to instructors".into(),
            ));
        }
        let mut tx = self
            .db
            .begin(&TenantContext::for_principal(&principal))
            .await?;
        profiles::upsert(
            &mut tx,
            principal.subject,
            ProfileContent {
                bio,
                expertise_tags,
                pillars,
                education,
                certifications,
                work_experience,
                social_links: serde_json::to_value(&social_links)
                    .map_err(|e| ApiError::Internal(e.into()))?,
            },
        )
        .await?;
        let row = profiles::get(&mut tx, principal.subject)
            .await?
            .ok_or_else(|| ApiError::not_found("profile"))?;
        tx.commit().await?;
        Ok(pb::UpsertInstructorProfileResponse {
            profile: Some(profile_message(row)),
        })
    }

    async fn get_profile_(
        &self,
        request: Request<pb::GetInstructorProfileRequest>,
    ) -> Result<pb::GetInstructorProfileResponse, ApiError> {
        let principal = optional_principal(&request);
        let id = parse_id("instructor_id", &request.get_ref().instructor_id)?;
        let context = principal
            .as_ref()
            .map(TenantContext::for_principal)
            .unwrap_or_else(TenantContext::anonymous);
        let mut tx = self.db.begin(&context).await?;
        let row = profiles::get(&mut tx, id)
            .await?
            .ok_or_else(|| ApiError::not_found("profile"))?;
        tx.commit().await?;
        Ok(pb::GetInstructorProfileResponse {
            profile: Some(profile_message(row)),
        })
    }

    async fn set_flags_(
        &self,
        request: Request<pb::SetInstructorFlagsRequest>,
    ) -> Result<pb::SetInstructorFlagsResponse, ApiError> {
        let principal = require_principal(&request)?;
        let req = request.into_inner();
        let id = parse_id("instructor_id", &req.instructor_id)?;
        if !principal.has_platform_access() {
            return Err(ApiError::PermissionDenied(
                "verification and featuring are decided by platform admins".into(),
            ));
        }
        let mut tx = self
            .db
            .begin(&TenantContext::for_principal(&principal))
            .await?;
        if !profiles::set_flags(&mut tx, id, req.verified, req.featured).await? {
            return Err(ApiError::not_found("profile"));
        }
        let row = profiles::get(&mut tx, id)
            .await?
            .ok_or_else(|| ApiError::not_found("profile"))?;
        tx.commit().await?;
        Ok(pb::SetInstructorFlagsResponse {
            profile: Some(profile_message(row)),
        })
    }

    async fn search_(
        &self,
        request: Request<pb::SearchInstructorsRequest>,
    ) -> Result<pb::SearchInstructorsResponse, ApiError> {
        let SearchInstructors {
            limit,
            expertise_tag,
            pillar,
        } = request.into_inner().try_into()?;
        let mut tx = self.db.begin(&TenantContext::anonymous()).await?;
        let rows =
            profiles::search(&mut tx, expertise_tag.as_deref(), pillar.as_deref(), limit).await?;
        tx.commit().await?;
        Ok(pb::SearchInstructorsResponse {
            profiles: rows.into_iter().map(profile_message).collect(),
        })
    }

    fn settings_message(&self, row: SettingsRow) -> Result<pb::InstructorSettings, ApiError> {
        let payment_details = match &row.payment_details_encrypted {
            Some(sealed) => String::from_utf8(self.sealer.decrypt(sealed)?)
                .map_err(|e| ApiError::Internal(e.into()))?,
            None => String::new(),
        };
        Ok(pb::InstructorSettings {
            instructor_id: row.instructor_id.to_string(),
            notification_preferences: serde_json::from_value(row.notification_preferences)
                .unwrap_or_default(),
            teaching_preferences: serde_json::from_value(row.teaching_preferences)
                .unwrap_or_default(),
            payment_method: row.payment_method,
            payment_details,
            payout_schedule: row.payout_schedule,
            calendar_sync: row.calendar_sync,
        })
    }

    async fn get_settings_(
        &self,
        request: Request<pb::GetInstructorSettingsRequest>,
    ) -> Result<pb::GetInstructorSettingsResponse, ApiError> {
        let principal = require_principal(&request)?;
        let raw = &request.get_ref().instructor_id;
        let id = if raw.is_empty() {
            principal.subject
        } else {
            parse_id("instructor_id", raw)?
        };
        may_read_instructor(&principal, id)?;
        let mut tx = self
            .db
            .begin(&TenantContext::for_principal(&principal))
            .await?;
        let row = profiles::settings(&mut tx, id).await?;
        tx.commit().await?;
        let row = row.unwrap_or(SettingsRow {
            instructor_id: id,
            notification_preferences: serde_json::json!({}),
            teaching_preferences: serde_json::json!({}),
            payment_method: String::new(),
            payment_details_encrypted: None,
            payout_schedule: "monthly".into(),
            calendar_sync: false,
        });
        Ok(pb::GetInstructorSettingsResponse {
            settings: Some(self.settings_message(row)?),
        })
    }

    async fn update_settings_(
        &self,
        request: Request<pb::UpdateInstructorSettingsRequest>,
    ) -> Result<pb::UpdateInstructorSettingsResponse, ApiError> {
        let principal = require_principal(&request)?;
        let named = request
            .get_ref()
            .settings
            .as_ref()
            .map(|s| s.instructor_id.as_str());
        only_their_own(&principal, named, "settings")?;
        if !principal.has_role(roles::INSTRUCTOR, principal.organization_id) {
            return Err(ApiError::PermissionDenied(
                "settings belong to instructors".into(),
            ));
        }
        let UpdateSettings {
            payment_method,
            payment_details,
            payout_schedule,
            notification_preferences,
            teaching_preferences,
            calendar_sync,
        } = request.into_inner().try_into()?;
        let row = SettingsRow {
            instructor_id: principal.subject,
            notification_preferences: serde_json::to_value(&notification_preferences)
                .map_err(|e| ApiError::Internal(e.into()))?,
            teaching_preferences: serde_json::to_value(&teaching_preferences)
                .map_err(|e| ApiError::Internal(e.into()))?,
            payment_method: payment_method.into_inner(),
            payment_details_encrypted: Some(payment_details.as_str())
                .filter(|d| !d.is_empty())
                .map(|d| self.sealer.encrypt(d.as_bytes())),
            payout_schedule,
            calendar_sync,
        };
        let mut tx = self
            .db
            .begin(&TenantContext::for_principal(&principal))
            .await?;
        profiles::save_settings(&mut tx, &row).await?;
        tx.commit().await?;
        Ok(pb::UpdateInstructorSettingsResponse {
            settings: Some(self.settings_message(row)?),
        })
    }
}

#[tonic::async_trait]
impl ProfileService for InstructorApi {
    async fn get_instructor_profile(
        &self,
        r: Request<pb::GetInstructorProfileRequest>,
    ) -> Result<Response<pb::GetInstructorProfileResponse>, Status> {
        Ok(Response::new(self.get_profile_(r).await?))
    }
    async fn upsert_instructor_profile(
        &self,
        r: Request<pb::UpsertInstructorProfileRequest>,
    ) -> Result<Response<pb::UpsertInstructorProfileResponse>, Status> {
        Ok(Response::new(self.upsert_profile_(r).await?))
    }
    async fn set_instructor_flags(
        &self,
        r: Request<pb::SetInstructorFlagsRequest>,
    ) -> Result<Response<pb::SetInstructorFlagsResponse>, Status> {
        Ok(Response::new(self.set_flags_(r).await?))
    }
    async fn search_instructors(
        &self,
        r: Request<pb::SearchInstructorsRequest>,
    ) -> Result<Response<pb::SearchInstructorsResponse>, Status> {
        Ok(Response::new(self.search_(r).await?))
    }
}

#[tonic::async_trait]
impl SettingsService for InstructorApi {
    async fn get_instructor_settings(
        &self,
        r: Request<pb::GetInstructorSettingsRequest>,
    ) -> Result<Response<pb::GetInstructorSettingsResponse>, Status> {
        Ok(Response::new(self.get_settings_(r).await?))
    }
    async fn update_instructor_settings(
        &self,
        r: Request<pb::UpdateInstructorSettingsRequest>,
    ) -> Result<Response<pb::UpdateInstructorSettingsResponse>, Status> {
        Ok(Response::new(self.update_settings_(r).await?))
    }
}
