use chrono::{DateTime, Utc};
use lyceum_platform::ApiError;
use uuid::Uuid;

use super::{Tx, write_error};
use crate::domain::{CourseId, InstructorRole, Permission, UserId};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InstructorRow {
    pub course_id: Uuid,
    pub instructor_id: Uuid,
    pub role: InstructorRole,
    pub permissions: Vec<Permission>,
    pub added_at: DateTime<Utc>,
}

/// Adds a member of the teaching team, or changes the role and permissions of one.
pub async fn upsert(
    tx: &mut Tx,
    course_id: CourseId,
    instructor_id: UserId,
    role: InstructorRole,
    permissions: &[Permission],
) -> Result<InstructorRow, ApiError> {
    sqlx::query_as!(
        InstructorRow,
        "INSERT INTO course_instructors (course_id, instructor_id, role, permissions) VALUES ($1, $2, $3, $4)
         ON CONFLICT (course_id, instructor_id) DO UPDATE SET role = EXCLUDED.role, permissions = EXCLUDED.permissions
         RETURNING course_id, instructor_id, role, permissions, added_at",
        course_id.get(),
        instructor_id.get(),
        role as _,
        permissions as _
    )
    .fetch_one(tx.conn())
    .await
    .map_err(|e| write_error(e, "course"))
}

pub async fn remove(
    tx: &mut Tx,
    course_id: CourseId,
    instructor_id: UserId,
) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query!(
        "DELETE FROM course_instructors WHERE course_id = $1 AND instructor_id = $2",
        course_id.get(),
        instructor_id.get()
    )
    .execute(tx.conn())
    .await?
    .rows_affected()
        == 1)
}

pub async fn list(tx: &mut Tx, course_id: Uuid) -> Result<Vec<InstructorRow>, sqlx::Error> {
    sqlx::query_as!(
        InstructorRow,
        "SELECT course_id, instructor_id, role, permissions, added_at FROM course_instructors
         WHERE course_id = $1 ORDER BY added_at",
        course_id
    )
    .fetch_all(tx.conn())
    .await
}

/// The permissions a user holds on a course as a co-instructor, if they are one.
pub async fn permissions_of(
    tx: &mut Tx,
    course_id: CourseId,
    user_id: UserId,
) -> Result<Option<Vec<Permission>>, sqlx::Error> {
    sqlx::query_scalar!(
        "SELECT permissions FROM course_instructors WHERE course_id = $1 AND instructor_id = $2",
        course_id.get(),
        user_id.get()
    )
    .fetch_optional(tx.conn())
    .await
}
