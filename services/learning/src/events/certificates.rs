//! Certificates issued when a course is completed or a workshop attended (where its
//! certificate settings ask for one), from learning's own events, so that a completion
//! delivered twice issues once; the names of their recipients from identity's events.

use async_trait::async_trait;
use chrono::Utc;
use lyceum_platform::convert::{opt_id_to_string, timestamp};
use lyceum_platform::db::Tx;
use lyceum_platform::events::consumer::{ConsumerSpec, EventHandler};
use lyceum_platform::events::{Event, unpack};
use lyceum_proto::events::v1 as pb;
use uuid::Uuid;

use crate::domain::certificate::{CertificateType, certificate_number};
use crate::domain::{CertificateId, UserId};
use crate::store::certificates::{self, CertificateRow, NewCertificate};
use crate::store::{courses, workshops};

pub fn certificate_changed(row: &CertificateRow, status: &str) -> Event {
    let payload = pb::CertificateChanged {
        certificate_id: row.id.to_string(),
        number: row.number.clone(),
        user_id: row.user_id.to_string(),
        certificate_type: row.certificate_type.to_string(),
        course_id: opt_id_to_string(row.course_id),
        workshop_id: opt_id_to_string(row.workshop_id),
        instructor_id: row.instructor_id.to_string(),
        title: row.title.clone(),
        status: status.to_owned(),
        issue_time: Some(timestamp(row.issued_at)),
        revoke_reason: row.revoke_reason.clone().unwrap_or_default(),
    };
    Event::new(
        &format!("learning.certificate.{status}"),
        row.organization_id,
        &payload,
    )
}

/// Where a course certificate shows on the student's progress.
pub fn progress_url(number: &str) -> String {
    format!("/certificates/{number}")
}

/// After a certificate is issued: its event, and for a course its place on the student's
/// progress (the service's bookkeeping).
pub async fn announce_issued(tx: &mut Tx, row: &CertificateRow) -> Result<(), sqlx::Error> {
    tx.publish(certificate_changed(row, "issued")).await?;
    if let Some(course_id) = row.course_id {
        let caller_bookkeeping = tx.bookkeeping().is_some();
        if !caller_bookkeeping {
            tx.begin_bookkeeping("certificate on progress").await?;
        }
        certificates::show_on_progress(tx, row.user_id, course_id, &progress_url(&row.number))
            .await?;
        if !caller_bookkeeping {
            tx.end_bookkeeping().await?;
        }
    }
    Ok(())
}

pub fn consumer_spec() -> ConsumerSpec {
    ConsumerSpec::new("learning-certificates", "learning", "learning.>")
}

pub struct CertificateEvents;

#[async_trait]
impl EventHandler for CertificateEvents {
    async fn handle(&self, tx: &mut Tx, event: &pb::EventEnvelope) -> anyhow::Result<()> {
        let issued = match event.event_type.as_str() {
            "lyceum.learning.enrollment.completed" => {
                let enrollment: pb::EnrollmentChanged = unpack(event)?;
                let course_id = Uuid::try_parse(&enrollment.course_id)?;
                let Some(course) = courses::get(tx, course_id).await? else {
                    return Ok(());
                };
                if !course.certificate_enabled {
                    return Ok(());
                }
                certificates::insert_if_none(
                    tx,
                    automatic(
                        Uuid::try_parse(&enrollment.student_id)?,
                        CertificateType::Course,
                        (Some(course.id), None),
                        course.instructor_id,
                        course.organization_id,
                        &course.title,
                    ),
                )
                .await?
            }
            "lyceum.learning.workshop_registration.attended" => {
                let registration: pb::WorkshopRegistrationChanged = unpack(event)?;
                let workshop_id = Uuid::try_parse(&registration.workshop_id)?;
                let Some(workshop) = workshops::get(tx, workshop_id).await? else {
                    return Ok(());
                };
                if !workshop.certificate_enabled {
                    return Ok(());
                }
                certificates::insert_if_none(
                    tx,
                    automatic(
                        Uuid::try_parse(&registration.user_id)?,
                        CertificateType::Workshop,
                        (None, Some(workshop.id)),
                        workshop.instructor_id,
                        workshop.organization_id,
                        &workshop.title,
                    ),
                )
                .await?
            }
            _ => None,
        };
        if let Some(row) = issued {
            announce_issued(tx, &row).await?;
        }
        Ok(())
    }
}

fn automatic(
    user_id: Uuid,
    certificate_type: CertificateType,
    (course_id, workshop_id): (Option<Uuid>, Option<Uuid>),
    instructor_id: Uuid,
    organization_id: Option<Uuid>,
    title: &str,
) -> NewCertificate {
    let issued_at = Utc::now();
    NewCertificate {
        id: CertificateId::new(Uuid::now_v7()),
        number: certificate_number(certificate_type, issued_at),
        user_id: UserId::new(user_id),
        certificate_type,
        course_id,
        workshop_id,
        instructor_id: UserId::new(instructor_id),
        organization_id,
        title: title.to_owned(),
        skills: vec![],
        issued_at,
        expires_at: None,
        issued_by: None,
    }
}

pub fn directory_spec() -> ConsumerSpec {
    ConsumerSpec::new("learning-directory", "identity", "identity.user.*")
}

/// Users' names, for the certificates' public verification.
pub struct UserEvents;

#[async_trait]
impl EventHandler for UserEvents {
    async fn handle(&self, tx: &mut Tx, event: &pb::EventEnvelope) -> anyhow::Result<()> {
        let user = match event.event_type.as_str() {
            "lyceum.identity.user.created" => unpack::<pb::UserCreated>(event)?.user,
            "lyceum.identity.user.updated" => unpack::<pb::UserUpdated>(event)?.user,
            "lyceum.identity.user.suspended" => unpack::<pb::UserSuspended>(event)?.user,
            _ => None,
        };
        if let Some(user) = user {
            let id = Uuid::try_parse(&user.id)?;
            certificates::directory_entry(tx, id, &user.full_name, user.version).await?;
        }
        Ok(())
    }
}
