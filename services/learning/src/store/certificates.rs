//! Certificates, and the user directory their public verification names recipients from.

use chrono::{DateTime, Utc};
use lyceum_platform::ApiError;
use uuid::Uuid;

use super::{Tx, write_error};
use crate::domain::certificate::CertificateType;
use crate::domain::{CertificateId, UserId};

#[derive(Debug, Clone)]
pub struct CertificateRow {
    pub id: Uuid,
    pub number: String,
    pub user_id: Uuid,
    pub certificate_type: CertificateType,
    pub course_id: Option<Uuid>,
    pub workshop_id: Option<Uuid>,
    pub instructor_id: Uuid,
    pub organization_id: Option<Uuid>,
    pub title: String,
    pub skills: Vec<String>,
    pub issued_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub issued_by: Option<Uuid>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoke_reason: Option<String>,
}

/// A certificate about to be issued.
#[derive(Debug, Clone)]
pub struct NewCertificate {
    pub id: CertificateId,
    pub number: String,
    pub user_id: UserId,
    pub certificate_type: CertificateType,
    pub course_id: Option<Uuid>,
    pub workshop_id: Option<Uuid>,
    pub instructor_id: UserId,
    pub organization_id: Option<Uuid>,
    pub title: String,
    pub skills: Vec<String>,
    pub issued_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub issued_by: Option<UserId>,
}

/// Issues a certificate on request; a live one for the same user and source answers
/// ALREADY_EXISTS on the source's field.
pub async fn insert(tx: &mut Tx, new: NewCertificate) -> Result<CertificateRow, ApiError> {
    sqlx::query_as!(
        CertificateRow,
        "INSERT INTO certificates (id, number, user_id, certificate_type, course_id, workshop_id,
            instructor_id, organization_id, title, skills, issued_at, expires_at, issued_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
         RETURNING id, number, user_id, certificate_type, course_id, workshop_id, instructor_id,
                   organization_id, title, skills, issued_at, expires_at, issued_by, revoked_at,
                   revoke_reason",
        new.id.get(),
        new.number,
        new.user_id.get(),
        new.certificate_type as _,
        new.course_id,
        new.workshop_id,
        new.instructor_id.get(),
        new.organization_id,
        new.title,
        &new.skills,
        new.issued_at,
        new.expires_at,
        new.issued_by.map(UserId::get)
    )
    .fetch_one(tx.conn())
    .await
    .map_err(|e| write_error(e, "certificate"))
}

/// Issues a certificate automatically; `None` when the user already holds a live one for
/// the source (a completion delivered twice issues once).
pub async fn insert_if_none(
    tx: &mut Tx,
    new: NewCertificate,
) -> Result<Option<CertificateRow>, sqlx::Error> {
    sqlx::query_as!(
        CertificateRow,
        "INSERT INTO certificates (id, number, user_id, certificate_type, course_id, workshop_id,
            instructor_id, organization_id, title, skills, issued_at, expires_at, issued_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
         ON CONFLICT DO NOTHING
         RETURNING id, number, user_id, certificate_type, course_id, workshop_id, instructor_id,
                   organization_id, title, skills, issued_at, expires_at, issued_by, revoked_at,
                   revoke_reason",
        new.id.get(),
        new.number,
        new.user_id.get(),
        new.certificate_type as _,
        new.course_id,
        new.workshop_id,
        new.instructor_id.get(),
        new.organization_id,
        new.title,
        &new.skills,
        new.issued_at,
        new.expires_at,
        new.issued_by.map(UserId::get)
    )
    .fetch_optional(tx.conn())
    .await
}

pub async fn get(tx: &mut Tx, id: Uuid) -> Result<Option<CertificateRow>, sqlx::Error> {
    sqlx::query_as!(
        CertificateRow,
        "SELECT id, number, user_id, certificate_type, course_id, workshop_id, instructor_id,
                organization_id, title, skills, issued_at, expires_at, issued_by, revoked_at,
                revoke_reason
         FROM certificates WHERE id = $1",
        id
    )
    .fetch_optional(tx.conn())
    .await
}

/// Revokes a live certificate; `None` when it was revoked already (or is not the
/// caller's to revoke: row security hides it from the update).
pub async fn revoke(
    tx: &mut Tx,
    id: Uuid,
    reason: &str,
) -> Result<Option<CertificateRow>, ApiError> {
    sqlx::query_as!(
        CertificateRow,
        "UPDATE certificates SET revoked_at = now(), revoke_reason = $2
         WHERE id = $1 AND revoked_at IS NULL
         RETURNING id, number, user_id, certificate_type, course_id, workshop_id, instructor_id,
                   organization_id, title, skills, issued_at, expires_at, issued_by, revoked_at,
                   revoke_reason",
        id,
        reason
    )
    .fetch_optional(tx.conn())
    .await
    .map_err(|e| write_error(e, "certificate"))
}

/// A user's certificates, newest first, after the page position `after`.
pub async fn list_of_user(
    tx: &mut Tx,
    user_id: UserId,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<CertificateRow>, sqlx::Error> {
    let (after_time, after_id) = after.unzip();
    sqlx::query_as!(
        CertificateRow,
        "SELECT id, number, user_id, certificate_type, course_id, workshop_id, instructor_id,
                organization_id, title, skills, issued_at, expires_at, issued_by, revoked_at,
                revoke_reason
         FROM certificates
         WHERE user_id = $1
           AND ($2::timestamptz IS NULL OR (issued_at, id) < ($2, $3::uuid))
         ORDER BY issued_at DESC, id DESC
         LIMIT $4",
        user_id.get(),
        after_time,
        after_id,
        limit
    )
    .fetch_all(tx.conn())
    .await
}

/// What public verification shows.
#[derive(Debug, Clone)]
pub struct Verification {
    pub number: String,
    pub recipient_name: String,
    pub certificate_type: CertificateType,
    pub title: String,
    pub skills: Vec<String>,
    pub issued_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

pub async fn verify(tx: &mut Tx, number: &str) -> Result<Option<Verification>, sqlx::Error> {
    sqlx::query_as!(
        Verification,
        r#"SELECT number AS "number!", recipient_name AS "recipient_name!",
                  certificate_type AS "certificate_type!: CertificateType", title AS "title!",
                  skills AS "skills!", issued_at AS "issued_at!", expires_at, revoked_at
           FROM verify_certificate($1)"#,
        number
    )
    .fetch_optional(tx.conn())
    .await
}

/// Whether the user completed the course or attended the workshop, whatever the caller
/// may see.
pub async fn has_completed(
    tx: &mut Tx,
    course_id: Option<Uuid>,
    workshop_id: Option<Uuid>,
    user_id: UserId,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT has_completed($1, $2, $3) AS "completed!""#,
        course_id,
        workshop_id,
        user_id.get()
    )
    .fetch_one(tx.conn())
    .await
}

/// Shows the course certificate on the student's progress (bookkeeping); `None` clears it.
pub async fn show_on_progress(
    tx: &mut Tx,
    user_id: Uuid,
    course_id: Uuid,
    certificate_url: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE student_progress SET certificate_url = $3 WHERE student_id = $1 AND course_id = $2",
        user_id,
        course_id,
        certificate_url
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// A user's name as identity published it; older versions are ignored (bookkeeping).
pub async fn directory_entry(
    tx: &mut Tx,
    user_id: Uuid,
    full_name: &str,
    version: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO user_directory AS d (user_id, full_name, version) VALUES ($1, $2, $3)
         ON CONFLICT (user_id) DO UPDATE
           SET full_name = EXCLUDED.full_name, version = EXCLUDED.version, updated_at = now()
           WHERE d.version < EXCLUDED.version",
        user_id,
        full_name,
        version
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}
