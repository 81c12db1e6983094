use chrono::Utc;
use lyceum_platform::auth::{Principal, optional_principal, require_principal};
use lyceum_platform::convert::{from_timestamp, optional_id, page_size, parse_id, required_id};
use lyceum_platform::{ApiError, Violations};
use lyceum_proto::learning::v1 as pb;
use lyceum_proto::learning::v1::certificate_service_server::CertificateService;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{LearningApi, decode_position, paginate, wire};
use crate::domain::certificate::{
    CertificateRefusal, CertificateType, certificate_number, looks_like_number,
};
use crate::domain::{BoundedText, CertificateId, TextList, UserId};
use crate::events::certificates::{announce_issued, certificate_changed};
use crate::store::certificates::{self, CertificateRow, NewCertificate};
use crate::store::{Tx, workshops};

type RevokeReason = BoundedText<1000, true>;

/// An IssueCertificate request, validated: exactly one source.
struct IssueCertificate {
    user_id: Uuid,
    source: Source,
    skills: Vec<String>,
    expires_at: Option<chrono::DateTime<Utc>>,
}

#[derive(Clone, Copy)]
enum Source {
    Course(Uuid),
    Workshop(Uuid),
}

impl TryFrom<pb::IssueCertificateRequest> for IssueCertificate {
    type Error = ApiError;

    fn try_from(req: pb::IssueCertificateRequest) -> Result<Self, ApiError> {
        let mut v = Violations::new();
        let user_id = required_id(&mut v, "user_id", &req.user_id);
        let course = optional_id(&mut v, "course_id", &req.course_id).flatten();
        let workshop = optional_id(&mut v, "workshop_id", &req.workshop_id).flatten();
        let source = match (course, workshop) {
            (Some(course), None) => Some(Source::Course(course)),
            (None, Some(workshop)) => Some(Source::Workshop(workshop)),
            (Some(_), Some(_)) => {
                v.add("workshop_id", "name a course or a workshop, not both");
                None
            }
            (None, None) if req.course_id.is_empty() && req.workshop_id.is_empty() => {
                v.add("course_id", "a course or a workshop is required");
                None
            }
            (None, None) => None,
        };
        let skills = v
            .check("skills", TextList::<20>::parse(&req.skills))
            .map(|s| s.into_inner());
        let expires_at = req
            .expire_time
            .as_ref()
            .and_then(|t| v.check("expire_time", from_timestamp(t)));
        if expires_at.is_some_and(|t| t <= Utc::now()) {
            v.add("expire_time", "must be in the future");
        }
        v.into_result()?;
        let (Some(user_id), Some(source), Some(skills)) = (user_id, source, skills) else {
            unreachable!("parsed when there are no violations")
        };
        Ok(Self {
            user_id,
            source,
            skills,
            expires_at,
        })
    }
}

/// What a certificate names of its source, once the caller's right to it is checked.
struct Certified {
    certificate_type: CertificateType,
    course_id: Option<Uuid>,
    workshop_id: Option<Uuid>,
    instructor_id: Uuid,
    organization_id: Option<Uuid>,
    title: String,
}

impl LearningApi {
    /// The certificate's source, when the caller is on its team or an admin: NOT_FOUND
    /// when they cannot see it, PERMISSION_DENIED when they may not certify for it.
    async fn certifiable(
        &self,
        tx: &mut Tx,
        principal: &Principal,
        source: Source,
    ) -> Result<Certified, ApiError> {
        let team_only = || {
            ApiError::PermissionDenied(
                "certificates are issued and revoked by the teaching team or an admin".into(),
            )
        };
        match source {
            Source::Course(id) => {
                let (course, access) = super::visible_course(tx, Some(principal), id).await?;
                if !(access.manage_team || access.manage_students || access.edit) {
                    return Err(team_only());
                }
                Ok(Certified {
                    certificate_type: CertificateType::Course,
                    course_id: Some(course.id),
                    workshop_id: None,
                    instructor_id: course.instructor_id,
                    organization_id: course.organization_id,
                    title: course.title,
                })
            }
            Source::Workshop(id) => {
                let workshop = workshops::get(tx, id)
                    .await?
                    .ok_or_else(|| ApiError::not_found("workshop"))?;
                let access = self.workshop_access(tx, Some(principal), &workshop).await?;
                if !access.view {
                    return Err(ApiError::not_found("workshop"));
                }
                if !access.run {
                    return Err(team_only());
                }
                Ok(Certified {
                    certificate_type: CertificateType::Workshop,
                    course_id: None,
                    workshop_id: Some(workshop.id),
                    instructor_id: workshop.instructor_id,
                    organization_id: workshop.organization_id,
                    title: workshop.title,
                })
            }
        }
    }

    async fn issue_certificate_(
        &self,
        request: Request<pb::IssueCertificateRequest>,
    ) -> Result<pb::IssueCertificateResponse, ApiError> {
        let principal = require_principal(&request)?;
        let IssueCertificate {
            user_id,
            source,
            skills,
            expires_at,
        } = request.into_inner().try_into()?;
        let mut tx = self.tx_for(Some(&principal)).await?;
        let certified = self.certifiable(&mut tx, &principal, source).await?;
        let user = UserId::new(user_id);
        if !certificates::has_completed(&mut tx, certified.course_id, certified.workshop_id, user)
            .await?
        {
            return Err(ApiError::FailedPrecondition(
                CertificateRefusal::NotCompleted.to_string(),
            ));
        }
        let issued_at = Utc::now();
        let row = certificates::insert(
            &mut tx,
            NewCertificate {
                id: CertificateId::new(Uuid::now_v7()),
                number: certificate_number(certified.certificate_type, issued_at),
                user_id: user,
                certificate_type: certified.certificate_type,
                course_id: certified.course_id,
                workshop_id: certified.workshop_id,
                instructor_id: UserId::new(certified.instructor_id),
                organization_id: certified.organization_id,
                title: certified.title,
                skills,
                issued_at,
                expires_at,
                issued_by: Some(UserId::new(principal.subject)),
            },
        )
        .await?;
        announce_issued(&mut tx, &row).await?;
        tx.commit().await?;
        Ok(pb::IssueCertificateResponse {
            certificate: Some(wire::certificate(row, Utc::now())),
        })
    }

    async fn get_certificate_(
        &self,
        request: Request<pb::GetCertificateRequest>,
    ) -> Result<pb::GetCertificateResponse, ApiError> {
        let principal = require_principal(&request)?;
        let id = parse_id("id", &request.get_ref().id)?;
        let mut tx = self.tx_for(Some(&principal)).await?;
        // Row security shows the recipient, the team and admins their certificates.
        let row = certificates::get(&mut tx, id)
            .await?
            .ok_or_else(|| ApiError::not_found("certificate"))?;
        tx.commit().await?;
        Ok(pb::GetCertificateResponse {
            certificate: Some(wire::certificate(row, Utc::now())),
        })
    }

    async fn list_certificates_(
        &self,
        request: Request<pb::ListCertificatesRequest>,
    ) -> Result<pb::ListCertificatesResponse, ApiError> {
        let principal = require_principal(&request)?;
        let req = request.into_inner();
        let mut v = Violations::new();
        let limit = page_size(&mut v, req.page_size);
        let after = decode_position(&mut v, &req.page_token);
        v.into_result()?;
        let mut tx = self.tx_for(Some(&principal)).await?;
        let rows =
            certificates::list_of_user(&mut tx, UserId::new(principal.subject), after, limit + 1)
                .await?;
        tx.commit().await?;
        let (rows, next_page_token) = paginate(rows, limit, |c| (c.issued_at, c.id));
        let now = Utc::now();
        Ok(pb::ListCertificatesResponse {
            certificates: rows
                .into_iter()
                .map(|row| wire::certificate(row, now))
                .collect(),
            next_page_token,
        })
    }

    async fn verify_certificate_(
        &self,
        request: Request<pb::VerifyCertificateRequest>,
    ) -> Result<pb::VerifyCertificateResponse, ApiError> {
        let principal = optional_principal(&request);
        let number = request.into_inner().number.trim().to_ascii_uppercase();
        if !looks_like_number(&number) {
            return Err(ApiError::invalid(
                "number",
                "is not a certificate number (CERT-COURSE-YYYYMMDD-XXXXXXXXXXXX)",
            ));
        }
        let mut tx = self.tx_for(principal.as_ref()).await?;
        let found = certificates::verify(&mut tx, &number)
            .await?
            .ok_or_else(|| ApiError::not_found("certificate"))?;
        tx.commit().await?;
        Ok(wire::verification(found, Utc::now()))
    }

    async fn revoke_certificate_(
        &self,
        request: Request<pb::RevokeCertificateRequest>,
    ) -> Result<pb::RevokeCertificateResponse, ApiError> {
        let principal = require_principal(&request)?;
        let req = request.into_inner();
        let mut v = Violations::new();
        let id = required_id(&mut v, "id", &req.id);
        let reason = v.check("reason", RevokeReason::parse(&req.reason));
        v.into_result()?;
        let (Some(id), Some(reason)) = (id, reason) else {
            unreachable!("parsed when there are no violations")
        };
        let mut tx = self.tx_for(Some(&principal)).await?;
        let stored = certificates::get(&mut tx, id)
            .await?
            .ok_or_else(|| ApiError::not_found("certificate"))?;
        let source = match (stored.course_id, stored.workshop_id) {
            (Some(course), _) => Source::Course(course),
            (None, Some(workshop)) => Source::Workshop(workshop),
            (None, None) => return Err(ApiError::not_found("certificate")),
        };
        self.certifiable(&mut tx, &principal, source)
            .await
            .map_err(|error| match error {
                // The recipient sees the certificate but not always its source.
                ApiError::NotFound(_) => ApiError::PermissionDenied(
                    "certificates are revoked by the teaching team or an admin".into(),
                ),
                other => other,
            })?;
        let row: CertificateRow = certificates::revoke(&mut tx, id, reason.as_str())
            .await?
            .ok_or_else(|| {
                ApiError::FailedPrecondition(CertificateRefusal::AlreadyRevoked.to_string())
            })?;
        tx.publish(certificate_changed(&row, "revoked")).await?;
        if let Some(course_id) = row.course_id {
            // The revoked certificate no longer shows on the student's progress.
            tx.begin_bookkeeping("certificate on progress").await?;
            certificates::show_on_progress(&mut tx, row.user_id, course_id, "").await?;
            tx.end_bookkeeping().await?;
        }
        tx.commit().await?;
        Ok(pb::RevokeCertificateResponse {
            certificate: Some(wire::certificate(row, Utc::now())),
        })
    }
}

#[tonic::async_trait]
impl CertificateService for LearningApi {
    async fn issue_certificate(
        &self,
        r: Request<pb::IssueCertificateRequest>,
    ) -> Result<Response<pb::IssueCertificateResponse>, Status> {
        Ok(Response::new(self.issue_certificate_(r).await?))
    }
    async fn get_certificate(
        &self,
        r: Request<pb::GetCertificateRequest>,
    ) -> Result<Response<pb::GetCertificateResponse>, Status> {
        Ok(Response::new(self.get_certificate_(r).await?))
    }
    async fn list_certificates(
        &self,
        r: Request<pb::ListCertificatesRequest>,
    ) -> Result<Response<pb::ListCertificatesResponse>, Status> {
        Ok(Response::new(self.list_certificates_(r).await?))
    }
    async fn verify_certificate(
        &self,
        r: Request<pb::VerifyCertificateRequest>,
    ) -> Result<Response<pb::VerifyCertificateResponse>, Status> {
        Ok(Response::new(self.verify_certificate_(r).await?))
    }
    async fn revoke_certificate(
        &self,
        r: Request<pb::RevokeCertificateRequest>,
    ) -> Result<Response<pb::RevokeCertificateResponse>, Status> {
        Ok(Response::new(self.revoke_certificate_(r).await?))
    }
}
