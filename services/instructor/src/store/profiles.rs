use uuid::Uuid;

use super::Tx;

#[derive(Debug, Clone)]
pub struct ProfileRow {
    pub instructor_id: Uuid,
    pub bio: String,
    pub expertise_tags: Vec<String>,
    pub pillars: Vec<String>,
    pub education: Vec<String>,
    pub certifications: Vec<String>,
    pub work_experience: Vec<String>,
    pub social_links: serde_json::Value,
    pub verified: bool,
    pub featured: bool,
    pub total_students: i64,
    pub total_courses: i64,
    pub total_workshops: i64,
    pub rating_sum: i64,
    pub review_count: i64,
}

pub struct ProfileContent {
    pub bio: String,
    pub expertise_tags: Vec<String>,
    pub pillars: Vec<String>,
    pub education: Vec<String>,
    pub certifications: Vec<String>,
    pub work_experience: Vec<String>,
    pub social_links: serde_json::Value,
}

pub async fn upsert(
    tx: &mut Tx,
    instructor_id: Uuid,
    content: ProfileContent,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO instructor_profiles (instructor_id, bio, expertise_tags, pillars, education, certifications,
            work_experience, social_links)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (instructor_id) DO UPDATE SET bio = EXCLUDED.bio, expertise_tags = EXCLUDED.expertise_tags,
            pillars = EXCLUDED.pillars, education = EXCLUDED.education, certifications = EXCLUDED.certifications,
            work_experience = EXCLUDED.work_experience, social_links = EXCLUDED.social_links, updated_at = now()",
        instructor_id,
        content.bio,
        &content.expertise_tags,
        &content.pillars,
        &content.education,
        &content.certifications,
        &content.work_experience,
        content.social_links
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

pub async fn get(tx: &mut Tx, instructor_id: Uuid) -> Result<Option<ProfileRow>, sqlx::Error> {
    sqlx::query_as!(
        ProfileRow,
        r#"SELECT p.instructor_id, p.bio, p.expertise_tags, p.pillars, p.education,
                  p.certifications, p.work_experience, p.social_links, p.verified, p.featured,
                  coalesce(s.total_students, 0) AS "total_students!",
                  coalesce(s.total_courses, 0) AS "total_courses!",
                  coalesce(s.total_workshops, 0) AS "total_workshops!",
                  coalesce(s.rating_sum, 0) AS "rating_sum!",
                  coalesce(s.review_count, 0) AS "review_count!"
           FROM instructor_profiles p
           LEFT JOIN instructor_stats s ON s.instructor_id = p.instructor_id
           WHERE p.instructor_id = $1"#,
        instructor_id
    )
    .fetch_optional(tx.conn())
    .await
}

pub async fn set_flags(
    tx: &mut Tx,
    instructor_id: Uuid,
    verified: bool,
    featured: bool,
) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query!(
        "UPDATE instructor_profiles SET verified = $2, featured = $3, updated_at = now() WHERE instructor_id = $1",
        instructor_id,
        verified,
        featured
    )
        .execute(tx.conn())
        .await?
        .rows_affected()
        == 1)
}

pub async fn search(
    tx: &mut Tx,
    tag: Option<&str>,
    pillar: Option<&str>,
    limit: i64,
) -> Result<Vec<ProfileRow>, sqlx::Error> {
    sqlx::query_as!(
        ProfileRow,
        r#"SELECT p.instructor_id, p.bio, p.expertise_tags, p.pillars, p.education,
                  p.certifications, p.work_experience, p.social_links, p.verified, p.featured,
                  coalesce(s.total_students, 0) AS "total_students!",
                  coalesce(s.total_courses, 0) AS "total_courses!",
                  coalesce(s.total_workshops, 0) AS "total_workshops!",
                  coalesce(s.rating_sum, 0) AS "rating_sum!",
                  coalesce(s.review_count, 0) AS "review_count!"
           FROM instructor_profiles p
           LEFT JOIN instructor_stats s ON s.instructor_id = p.instructor_id
           WHERE ($1::text IS NULL OR p.expertise_tags @> ARRAY[$1])
             AND ($2::text IS NULL OR p.pillars @> ARRAY[$2])
           ORDER BY p.featured DESC,
                    CASE WHEN coalesce(s.review_count, 0) = 0 THEN 0
                         ELSE s.rating_sum::float8 / s.review_count END DESC,
                    p.instructor_id
           LIMIT $3"#,
        tag,
        pillar,
        limit
    )
    .fetch_all(tx.conn())
    .await
}

#[derive(Debug, Clone)]
pub struct SettingsRow {
    pub instructor_id: Uuid,
    pub notification_preferences: serde_json::Value,
    pub teaching_preferences: serde_json::Value,
    pub payment_method: String,
    pub payment_details_encrypted: Option<Vec<u8>>,
    pub payout_schedule: String,
    pub calendar_sync: bool,
}

pub async fn settings(
    tx: &mut Tx,
    instructor_id: Uuid,
) -> Result<Option<SettingsRow>, sqlx::Error> {
    sqlx::query_as!(
        SettingsRow,
        "SELECT instructor_id, notification_preferences, teaching_preferences, payment_method,
                payment_details_encrypted, payout_schedule, calendar_sync
         FROM instructor_settings WHERE instructor_id = $1",
        instructor_id
    )
    .fetch_optional(tx.conn())
    .await
}

pub async fn save_settings(tx: &mut Tx, row: &SettingsRow) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO instructor_settings (instructor_id, notification_preferences, teaching_preferences,
            payment_method, payment_details_encrypted, payout_schedule, calendar_sync)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (instructor_id) DO UPDATE SET notification_preferences = EXCLUDED.notification_preferences,
            teaching_preferences = EXCLUDED.teaching_preferences, payment_method = EXCLUDED.payment_method,
            payment_details_encrypted = EXCLUDED.payment_details_encrypted,
            payout_schedule = EXCLUDED.payout_schedule, calendar_sync = EXCLUDED.calendar_sync, updated_at = now()",
        row.instructor_id,
        &row.notification_preferences,
        &row.teaching_preferences,
        &row.payment_method,
        row.payment_details_encrypted.as_deref(),
        &row.payout_schedule,
        row.calendar_sync
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Moves activity older than `days` to the archive, at most `batch` rows; returns how
/// many moved.
pub async fn archive_activity(tx: &mut Tx, days: i32, batch: i64) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query!(
        "WITH old AS (
           DELETE FROM student_activity WHERE id IN (
             SELECT id FROM student_activity WHERE occurred_at < now() - make_interval(days => $1) LIMIT $2)
           RETURNING *)
         INSERT INTO student_activity_archive SELECT * FROM old",
        days,
        batch
    )
    .execute(tx.conn())
    .await?
    .rows_affected())
}
