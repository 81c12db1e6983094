use chrono::{DateTime, Utc};
use lyceum_platform::ApiError;
use uuid::Uuid;

use super::{Tx, write_error};
use crate::domain::LessonType;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ModuleRow {
    pub id: Uuid,
    pub course_id: Uuid,
    pub title: String,
    pub description: String,
    pub position: i32,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LessonRow {
    pub id: Uuid,
    pub module_id: Uuid,
    pub course_id: Uuid,
    pub title: String,
    pub lesson_type: LessonType,
    pub content_url: String,
    pub body: String,
    pub duration_seconds: i32,
    pub position: i32,
    pub preview: bool,
}

/// Appends a module at the end of the course (the caller holds the course's lock).
pub async fn append_module(
    tx: &mut Tx,
    course_id: Uuid,
    title: String,
    description: String,
) -> Result<ModuleRow, ApiError> {
    sqlx::query_as!(
        ModuleRow,
        "INSERT INTO course_modules (id, course_id, title, description, position)
         VALUES ($1, $2, $3, $4,
                 (SELECT coalesce(max(position) + 1, 0) FROM course_modules WHERE course_id = $2))
         RETURNING id, course_id, title, description, position, created_at",
        Uuid::now_v7(),
        course_id,
        title,
        description
    )
    .fetch_one(tx.conn())
    .await
    .map_err(|e| write_error(e, "course"))
}

pub async fn get_module(tx: &mut Tx, id: Uuid) -> Result<Option<ModuleRow>, sqlx::Error> {
    sqlx::query_as!(
        ModuleRow,
        "SELECT id, course_id, title, description, position, created_at FROM course_modules WHERE id = $1",
        id
    )
    .fetch_optional(tx.conn())
    .await
}

pub struct NewLesson {
    pub module_id: Uuid,
    pub course_id: Uuid,
    pub title: String,
    pub lesson_type: LessonType,
    pub content_url: String,
    pub body: String,
    pub duration_seconds: i32,
    pub preview: bool,
}

/// Appends a lesson at the end of its module (the caller holds the course's lock).
pub async fn append_lesson(tx: &mut Tx, new: NewLesson) -> Result<LessonRow, ApiError> {
    sqlx::query_as!(
        LessonRow,
        "INSERT INTO course_lessons (id, module_id, course_id, title, lesson_type, content_url, body,
                                     duration_seconds, preview, position)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,
                 (SELECT coalesce(max(position) + 1, 0) FROM course_lessons WHERE module_id = $2))
         RETURNING id, module_id, course_id, title, lesson_type, content_url, body, duration_seconds,
                   position, preview",
        Uuid::now_v7(),
        new.module_id,
        new.course_id,
        new.title,
        new.lesson_type as _,
        new.content_url,
        new.body,
        new.duration_seconds,
        new.preview
    )
    .fetch_one(tx.conn())
    .await
    .map_err(|e| write_error(e, "module"))
}

pub async fn get_lesson(tx: &mut Tx, id: Uuid) -> Result<Option<LessonRow>, sqlx::Error> {
    sqlx::query_as!(
        LessonRow,
        "SELECT id, module_id, course_id, title, lesson_type, content_url, body, duration_seconds,
                position, preview
         FROM course_lessons WHERE id = $1",
        id
    )
    .fetch_optional(tx.conn())
    .await
}

pub async fn modules_of(tx: &mut Tx, course_id: Uuid) -> Result<Vec<ModuleRow>, sqlx::Error> {
    sqlx::query_as!(
        ModuleRow,
        "SELECT id, course_id, title, description, position, created_at FROM course_modules
         WHERE course_id = $1 ORDER BY position",
        course_id
    )
    .fetch_all(tx.conn())
    .await
}

pub async fn lessons_of(tx: &mut Tx, course_id: Uuid) -> Result<Vec<LessonRow>, sqlx::Error> {
    sqlx::query_as!(
        LessonRow,
        "SELECT l.id, l.module_id, l.course_id, l.title, l.lesson_type, l.content_url, l.body,
                l.duration_seconds, l.position, l.preview
         FROM course_lessons l JOIN course_modules m ON m.id = l.module_id
         WHERE l.course_id = $1 ORDER BY m.position, l.position",
        course_id
    )
    .fetch_all(tx.conn())
    .await
}

/// The total duration of a course's lessons, in seconds.
pub async fn course_duration(tx: &mut Tx, course_id: Uuid) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(
        "SELECT coalesce(sum(duration_seconds), 0)::bigint AS \"total!\" FROM course_lessons WHERE course_id = $1",
        course_id
    )
        .fetch_one(tx.conn())
        .await
}

pub async fn update_module(
    tx: &mut Tx,
    id: Uuid,
    title: &str,
    description: &str,
) -> Result<Option<ModuleRow>, ApiError> {
    sqlx::query_as!(
        ModuleRow,
        "UPDATE course_modules SET title = $2, description = $3 WHERE id = $1
         RETURNING id, course_id, title, description, position, created_at",
        id,
        title,
        description
    )
    .fetch_optional(tx.conn())
    .await
    .map_err(|e| write_error(e, "module"))
}

/// Deletes a module with its lessons and closes the gap in the course's positions; returns
/// how many lessons went with it (the caller holds the course's lock).
pub async fn delete_module(tx: &mut Tx, module: &ModuleRow) -> Result<i64, ApiError> {
    let lessons = sqlx::query_scalar!(
        r#"WITH gone AS (DELETE FROM course_lessons WHERE module_id = $1 RETURNING 1)
           SELECT count(*) AS "count!" FROM gone"#,
        module.id
    )
    .fetch_one(tx.conn())
    .await?;
    sqlx::query!("DELETE FROM course_modules WHERE id = $1", module.id)
        .execute(tx.conn())
        .await?;
    renumber_modules(tx, module.course_id).await?;
    Ok(lessons)
}

/// Positions 0, 1, 2, … in the current order (the unique key is checked at commit).
async fn renumber_modules(tx: &mut Tx, course_id: Uuid) -> Result<(), ApiError> {
    defer_position_keys(tx).await?;
    sqlx::query!(
        "UPDATE course_modules m SET position = o.position
         FROM (SELECT id, (row_number() OVER (ORDER BY position) - 1)::int AS position
               FROM course_modules WHERE course_id = $1) o
         WHERE m.id = o.id AND m.position <> o.position",
        course_id
    )
    .execute(tx.conn())
    .await
    .map_err(|e| write_error(e, "course"))?;
    Ok(())
}

async fn renumber_lessons(tx: &mut Tx, module_id: Uuid) -> Result<(), ApiError> {
    defer_position_keys(tx).await?;
    sqlx::query!(
        "UPDATE course_lessons l SET position = o.position
         FROM (SELECT id, (row_number() OVER (ORDER BY position) - 1)::int AS position
               FROM course_lessons WHERE module_id = $1) o
         WHERE l.id = o.id AND l.position <> o.position",
        module_id
    )
    .execute(tx.conn())
    .await
    .map_err(|e| write_error(e, "module"))?;
    Ok(())
}

async fn defer_position_keys(tx: &mut Tx) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(
        "SET CONSTRAINTS learning.course_modules_course_id_position_key,
                         learning.course_lessons_module_id_position_key DEFERRED",
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Gives the course's modules the order of `ids`, which names each of them once (checked
/// by the caller against `modules_of`, under the course's lock).
pub async fn reorder_modules(tx: &mut Tx, course_id: Uuid, ids: &[Uuid]) -> Result<(), ApiError> {
    defer_position_keys(tx).await?;
    sqlx::query!(
        "UPDATE course_modules m SET position = (o.position - 1)::int
         FROM unnest($2::uuid[]) WITH ORDINALITY AS o(id, position)
         WHERE m.id = o.id AND m.course_id = $1",
        course_id,
        ids
    )
    .execute(tx.conn())
    .await
    .map_err(|e| write_error(e, "course"))?;
    Ok(())
}

pub async fn lessons_of_module(
    tx: &mut Tx,
    module_id: Uuid,
) -> Result<Vec<LessonRow>, sqlx::Error> {
    sqlx::query_as!(
        LessonRow,
        "SELECT id, module_id, course_id, title, lesson_type, content_url, body, duration_seconds,
                position, preview
         FROM course_lessons WHERE module_id = $1 ORDER BY position",
        module_id
    )
    .fetch_all(tx.conn())
    .await
}

pub async fn reorder_lessons(tx: &mut Tx, module_id: Uuid, ids: &[Uuid]) -> Result<(), ApiError> {
    defer_position_keys(tx).await?;
    sqlx::query!(
        "UPDATE course_lessons l SET position = (o.position - 1)::int
         FROM unnest($2::uuid[]) WITH ORDINALITY AS o(id, position)
         WHERE l.id = o.id AND l.module_id = $1",
        module_id,
        ids
    )
    .execute(tx.conn())
    .await
    .map_err(|e| write_error(e, "module"))?;
    Ok(())
}

/// Every editable field of a lesson.
pub struct LessonFields {
    pub title: String,
    pub lesson_type: LessonType,
    pub content_url: String,
    pub body: String,
    pub duration_seconds: i32,
    pub preview: bool,
}

pub async fn update_lesson(
    tx: &mut Tx,
    id: Uuid,
    fields: LessonFields,
) -> Result<Option<LessonRow>, ApiError> {
    sqlx::query_as!(
        LessonRow,
        "UPDATE course_lessons SET title = $2, lesson_type = $3, content_url = $4, body = $5,
                duration_seconds = $6, preview = $7
         WHERE id = $1
         RETURNING id, module_id, course_id, title, lesson_type, content_url, body,
                   duration_seconds, position, preview",
        id,
        fields.title,
        fields.lesson_type as _,
        fields.content_url,
        fields.body,
        fields.duration_seconds,
        fields.preview
    )
    .fetch_optional(tx.conn())
    .await
    .map_err(|e| write_error(e, "lesson"))
}

pub async fn delete_lesson(tx: &mut Tx, lesson: &LessonRow) -> Result<(), ApiError> {
    sqlx::query!("DELETE FROM course_lessons WHERE id = $1", lesson.id)
        .execute(tx.conn())
        .await?;
    renumber_lessons(tx, lesson.module_id).await
}
