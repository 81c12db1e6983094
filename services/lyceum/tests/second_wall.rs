//! Row-level security as an independent second wall: every rule is checked as the
//! service's own database role, with a tenant context that lacks the right, the way a
//! handler that forgot its authorization check would reach the database.

mod common;

use common::report_size;
use lyceum_platform::db::{Database, ServiceSchema, TenantContext};
use lyceum_testkit::TestDatabase;
use sqlx::{AssertSqlSafe, PgConnection};
use uuid::Uuid;

/// Every schema `lyceum migrate` builds: a new service joins by joining this list.
const SCHEMAS: [ServiceSchema; 3] = lyceum_schema::ALL;

/// One table of each schema, to knock on from the other services.
fn a_table_of(schema: &str) -> &'static str {
    match schema {
        "identity" => "identity.users",
        "learning" => "learning.courses",
        "instructor" => "instructor.payments",
        other => panic!("unknown schema {other}"),
    }
}

async fn migrated() -> TestDatabase {
    let db = TestDatabase::create().await;
    for schema in &SCHEMAS {
        db.migrate(schema).await;
    }
    db
}

fn user(id: Uuid, org: Option<Uuid>, roles: &[&str]) -> TenantContext {
    TenantContext {
        user_id: Some(id),
        org_id: org,
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
    }
}

async fn seed(conn: &mut PgConnection, statement: &str) {
    sqlx::raw_sql(AssertSqlSafe(statement.to_owned()))
        .execute(conn)
        .await
        .unwrap_or_else(|e| panic!("seeding `{statement}`: {e}"));
}

/// Runs one statement as the service role under `context` and returns the SQLSTATE it
/// failed with, or None when it succeeded. The transaction is rolled back either way.
async fn attempt(db: &Database, context: &TenantContext, statement: &str) -> Option<String> {
    let mut tx = db.begin(context).await.unwrap();
    let outcome = sqlx::raw_sql(AssertSqlSafe(statement.to_owned()))
        .execute(tx.conn())
        .await;
    tx.rollback().await.unwrap();
    match outcome {
        Ok(_) => None,
        Err(sqlx::Error::Database(e)) => Some(e.code().unwrap_or_default().into_owned()),
        Err(other) => panic!("`{statement}` failed outside the database: {other}"),
    }
}

async fn refused(db: &Database, context: &TenantContext, statement: &str) {
    assert_eq!(
        attempt(db, context, statement).await.as_deref(),
        Some("42501"),
        "`{statement}` must be refused as insufficient privilege"
    );
}

async fn allowed(db: &Database, context: &TenantContext, statement: &str) {
    assert_eq!(
        attempt(db, context, statement).await,
        None,
        "`{statement}` is the control and must succeed"
    );
}

async fn count(db: &Database, context: &TenantContext, query: &str) -> i64 {
    let mut tx = db.begin(context).await.unwrap();
    let n: i64 = sqlx::query_scalar(AssertSqlSafe(query.to_owned()))
        .fetch_one(tx.conn())
        .await
        .unwrap_or_else(|e| panic!("`{query}`: {e}"));
    tx.rollback().await.unwrap();
    n
}

#[tokio::test]
async fn no_service_role_reaches_another_services_schema() {
    let test_db = migrated().await;
    let mut cells = 0;
    for own in &SCHEMAS {
        let db = test_db.service_database(own).await;
        for other in SCHEMAS.iter().filter(|o| o.name != own.name) {
            let table = a_table_of(other.name);
            // As the runtime role with the broadest context a token can carry...
            let admin = user(Uuid::now_v7(), None, &["admin", "service"]);
            let code = attempt(&db, &admin, &format!("SELECT 1 FROM {table} LIMIT 1")).await;
            assert_eq!(code.as_deref(), Some("42501"), "{} reads {table}", own.name);
            // ...and as its system role, which bypasses row-level security at home.
            let mut tx = db.begin_system("test").await.unwrap();
            let outcome = sqlx::raw_sql(AssertSqlSafe(format!("SELECT 1 FROM {table} LIMIT 1")))
                .execute(tx.conn())
                .await;
            tx.rollback().await.unwrap();
            assert!(outcome.is_err(), "{}'s system role reads {table}", own.name);
            cells += 2;
        }
    }
    assert_eq!(cells, 12, "3 services × 2 other schemas × 2 roles");
}

#[tokio::test]
async fn the_system_role_cannot_log_in_and_is_reached_only_by_name() {
    let test_db = migrated().await;
    let mut admin = test_db.admin_connection().await;
    for schema in &SCHEMAS {
        let (can_login, bypasses): (bool, bool) =
            sqlx::query_as("SELECT rolcanlogin, rolbypassrls FROM pg_roles WHERE rolname = $1")
                .bind(schema.system_role())
                .fetch_one(&mut admin)
                .await
                .unwrap();
        assert!(!can_login && bypasses, "{}", schema.system_role());
        let (inherits, bypasses): (bool, bool) =
            sqlx::query_as("SELECT rolinherit, rolbypassrls FROM pg_roles WHERE rolname = $1")
                .bind(schema.runtime_role())
                .fetch_one(&mut admin)
                .await
                .unwrap();
        assert!(
            !inherits && !bypasses,
            "{} must switch to its system role explicitly",
            schema.runtime_role()
        );
    }
}

#[tokio::test]
async fn a_context_that_names_system_opens_nothing() {
    let test_db = migrated().await;
    let mut admin = test_db.admin_connection().await;
    let owner = Uuid::now_v7();
    let draft = Uuid::now_v7();
    seed(
        &mut admin,
        &format!(
            "INSERT INTO learning.courses (id, instructor_id, title) VALUES ('{draft}', '{owner}', 'Draft');
             INSERT INTO learning.outbox (id, subject, envelope) VALUES ('{}', 'learning.x', '\\x00');",
            Uuid::now_v7()
        ),
    )
    .await;
    let db = test_db.service_database(&lyceum_learning::SCHEMA).await;
    let claims_system = TenantContext {
        user_id: None,
        org_id: None,
        roles: vec!["system".into()],
    };
    assert_eq!(
        count(&db, &claims_system, "SELECT count(*) FROM courses").await,
        0
    );
    assert_eq!(
        count(&db, &claims_system, "SELECT count(*) FROM outbox").await,
        0
    );
    assert_eq!(
        count(&db, &claims_system, "SELECT count(*) FROM inbox").await,
        0
    );
    refused(
        &db,
        &claims_system,
        &format!(
            "INSERT INTO inbox (consumer, event_id) VALUES ('x', '{}')",
            Uuid::now_v7()
        ),
    )
    .await;
    // Any caller may still append to the outbox in its own transaction.
    allowed(
        &db,
        &claims_system,
        &format!(
            "INSERT INTO outbox (id, subject, envelope) VALUES ('{}', 'learning.y', '\\x00')",
            Uuid::now_v7()
        ),
    )
    .await;
    // The control: the named system role sees both.
    let mut tx = db.begin_system("test").await.unwrap();
    let seen: i64 =
        sqlx::query_scalar("SELECT (SELECT count(*) FROM courses) + (SELECT count(*) FROM outbox)")
            .fetch_one(tx.conn())
            .await
            .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(seen, 2);
}

#[tokio::test]
async fn security_definer_functions_pin_search_path_and_nothing_is_executable_by_public() {
    let test_db = migrated().await;
    let mut admin = test_db.admin_connection().await;
    let schemas: Vec<&str> = SCHEMAS.iter().map(|s| s.name).collect();
    let unpinned: Vec<String> = sqlx::query_scalar(
        "SELECT n.nspname || '.' || p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname = ANY ($1) AND p.prosecdef
           AND NOT EXISTS (SELECT 1 FROM unnest(coalesce(p.proconfig, '{}')) c
                           WHERE c LIKE 'search\\_path=%' AND c LIKE '%pg\\_temp')",
    )
    .bind(&schemas)
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert!(
        unpinned.is_empty(),
        "unpinned SECURITY DEFINER functions: {unpinned:?}"
    );
    let definers: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname = 'learning' AND p.prosecdef",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert!(
        definers >= 2,
        "the control: learning has SECURITY DEFINER functions"
    );
    let public: Vec<String> = sqlx::query_scalar(
        "SELECT n.nspname || '.' || p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname = ANY ($1)
           AND (p.proacl IS NULL OR EXISTS (SELECT 1 FROM aclexplode(p.proacl) a
                                           WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE'))",
    )
    .bind(&schemas)
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert!(
        public.is_empty(),
        "functions PUBLIC may execute: {public:?}"
    );
}

#[tokio::test]
async fn a_temporary_table_cannot_take_over_a_draft_course() {
    let test_db = migrated().await;
    let mut admin = test_db.admin_connection().await;
    let owner = Uuid::now_v7();
    let stranger = Uuid::now_v7();
    let draft = Uuid::now_v7();
    seed(
        &mut admin,
        &format!(
            "INSERT INTO learning.courses (id, instructor_id, title) VALUES ('{draft}', '{owner}', 'Draft')"
        ),
    )
    .await;
    let db = test_db.service_database(&lyceum_learning::SCHEMA).await;
    let as_stranger = user(stranger, None, &["user", "instructor"]);
    let mut tx = db.begin(&as_stranger).await.unwrap();
    // Temporary tables come first in an unpinned search_path: these would make teaches()
    // and can_view_course() answer yes for the stranger.
    sqlx::raw_sql(AssertSqlSafe(format!(
        "CREATE TEMP TABLE course_instructors (course_id uuid, instructor_id uuid, permissions text[]);
         INSERT INTO pg_temp.course_instructors VALUES ('{draft}', '{stranger}', '{{edit_content}}');
         CREATE TEMP TABLE courses (id uuid, instructor_id uuid, status text, visibility text, organization_id uuid);
         INSERT INTO pg_temp.courses VALUES ('{draft}', '{stranger}', 'published', 'public', NULL);
         GRANT SELECT ON pg_temp.courses, pg_temp.course_instructors TO PUBLIC;"
    )))
    .execute(tx.conn())
    .await
    .unwrap();
    let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM learning.courses WHERE id = $1")
        .bind(draft)
        .fetch_one(tx.conn())
        .await
        .unwrap();
    let taken = sqlx::query("UPDATE learning.courses SET title = 'Mine' WHERE id = $1")
        .bind(draft)
        .execute(tx.conn())
        .await
        .unwrap()
        .rows_affected();
    tx.rollback().await.unwrap();
    assert_eq!(
        (seen, taken),
        (0, 0),
        "the stranger saw or changed the draft"
    );
}

#[tokio::test]
async fn learning_column_rules_hold_for_callers_who_lack_the_right() {
    let test_db = migrated().await;
    let mut admin = test_db.admin_connection().await;
    let (owner, co, student, voter, stranger) = (
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
    );
    let org = Uuid::now_v7();
    let (paid, org_course) = (Uuid::now_v7(), Uuid::now_v7());
    let (pending, done) = (Uuid::now_v7(), Uuid::now_v7());
    let (review, org_review) = (Uuid::now_v7(), Uuid::now_v7());
    seed(
        &mut admin,
        &format!(
            "INSERT INTO learning.courses (id, instructor_id, title, status, price_minor) VALUES
               ('{paid}', '{owner}', 'Paid', 'published', 5000);
             INSERT INTO learning.courses (id, instructor_id, organization_id, title, status, visibility) VALUES
               ('{org_course}', '{owner}', '{org}', 'In house', 'published', 'organization');
             INSERT INTO learning.course_instructors (course_id, instructor_id, role, permissions) VALUES
               ('{paid}', '{co}', 'co_instructor', '{{edit_content,respond_to_reviews}}');
             INSERT INTO learning.enrollments (id, course_id, student_id, instructor_id, status, price_minor) VALUES
               ('{pending}', '{paid}', '{student}', '{owner}', 'pending_payment', 5000);
             INSERT INTO learning.enrollments (id, course_id, student_id, instructor_id, organization_id, status) VALUES
               ('{done}', '{org_course}', '{student}', '{owner}', '{org}', 'completed');
             INSERT INTO learning.course_reviews (id, course_id, student_id, enrollment_id, instructor_id, rating) VALUES
               ('{review}', '{paid}', '{student}', '{pending}', '{owner}', 4),
               ('{org_review}', '{org_course}', '{student}', '{done}', '{owner}', 5);
             INSERT INTO learning.review_votes (review_id, voter_id) VALUES
               ('{review}', '{voter}'), ('{org_review}', '{voter}');"
        ),
    )
    .await;
    let db = test_db.service_database(&lyceum_learning::SCHEMA).await;
    let as_student = user(student, None, &["user"]);
    let as_co = user(co, None, &["user", "instructor"]);
    let as_stranger = user(stranger, None, &["user"]);

    // A student changes neither the status, nor the price, nor the payment.
    for change in [
        "status = 'active'",
        "price_minor = 0",
        "currency = 'EUR'",
        &format!("payment_id = '{}'", Uuid::now_v7()),
    ] {
        refused(
            &db,
            &as_student,
            &format!("UPDATE enrollments SET {change} WHERE id = '{pending}'"),
        )
        .await;
    }
    // Nor does an enrollment start paid for, or at another price.
    let other_student = Uuid::now_v7();
    refused(
        &db,
        &user(other_student, None, &["user"]),
        &format!(
            "INSERT INTO enrollments (id, course_id, student_id, instructor_id, status, price_minor)
             VALUES ('{}', '{paid}', '{other_student}', '{owner}', 'active', 0)",
            Uuid::now_v7()
        ),
    )
    .await;
    // The controls: the student's own legal moves.
    allowed(
        &db,
        &as_student,
        &format!("UPDATE enrollments SET status = 'cancelled', cancelled_at = now() WHERE id = '{pending}'"),
    )
    .await;
    allowed(
        &db,
        &user(other_student, None, &["user"]),
        &format!(
            "INSERT INTO enrollments (id, course_id, student_id, instructor_id, status, price_minor)
             VALUES ('{}', '{paid}', '{other_student}', '{owner}', 'pending_payment', 5000)",
            Uuid::now_v7()
        ),
    )
    .await;

    // A co-instructor edits content but never the owner or the statistics.
    refused(
        &db,
        &as_co,
        &format!("UPDATE courses SET instructor_id = '{co}' WHERE id = '{paid}'"),
    )
    .await;
    refused(
        &db,
        &as_co,
        &format!("UPDATE courses SET enrolled_count = 1000 WHERE id = '{paid}'"),
    )
    .await;
    allowed(
        &db,
        &as_co,
        &format!("UPDATE courses SET title = 'Better title' WHERE id = '{paid}'"),
    )
    .await;

    // A review's author cannot answer it or count votes; the teaching team can answer.
    refused(
        &db,
        &as_student,
        &format!("UPDATE course_reviews SET helpful_count = 99 WHERE id = '{review}'"),
    )
    .await;
    refused(
        &db,
        &as_student,
        &format!("UPDATE course_reviews SET instructor_response = 'Great!' WHERE id = '{review}'"),
    )
    .await;
    allowed(
        &db,
        &as_co,
        &format!(
            "UPDATE course_reviews SET instructor_response = 'Thanks', responded_at = now() WHERE id = '{review}'"
        ),
    )
    .await;

    // Votes show only where their course does: not the organization's course to a stranger.
    let votes = |id: Uuid| format!("SELECT count(*) FROM review_votes WHERE review_id = '{id}'");
    assert_eq!(count(&db, &as_stranger, &votes(org_review)).await, 0);
    assert_eq!(
        count(&db, &as_stranger, &votes(review)).await,
        1,
        "public course"
    );
    let member = user(Uuid::now_v7(), Some(org), &["user", "member"]);
    assert_eq!(count(&db, &member, &votes(org_review)).await, 1, "member");
}

#[tokio::test]
async fn certificates_are_issued_by_the_team_revoked_once_and_never_rewritten() {
    let test_db = migrated().await;
    let mut admin = test_db.admin_connection().await;
    let (owner, student, stranger) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let (course, certificate) = (Uuid::now_v7(), Uuid::now_v7());
    seed(
        &mut admin,
        &format!(
            "INSERT INTO learning.courses (id, instructor_id, title, status) VALUES
               ('{course}', '{owner}', 'Certified', 'published');
             INSERT INTO learning.certificates (id, number, user_id, certificate_type, course_id,
                 instructor_id, title) VALUES
               ('{certificate}', 'CERT-COURSE-20261205-000000000001', '{student}', 'course',
                '{course}', '{owner}', 'Certified');"
        ),
    )
    .await;
    let db = test_db.service_database(&lyceum_learning::SCHEMA).await;
    let as_owner = user(owner, None, &["user", "instructor"]);
    let as_student = user(student, None, &["user"]);
    let issue = |by: Uuid| {
        format!(
            "INSERT INTO certificates (id, number, user_id, certificate_type, course_id,
                 instructor_id, title, issued_by)
             VALUES ('{}', 'CERT-COURSE-20261205-000000000002', '{student}', 'course',
                     '{course}', '{owner}', 'Forged', '{by}')",
            Uuid::now_v7()
        )
    };
    // A student cannot certify themselves; the team issues in its own name only.
    refused(&db, &as_student, &issue(student)).await;
    refused(&db, &as_owner, &issue(student)).await;
    // One live certificate per user and course.
    assert_eq!(
        attempt(&db, &as_owner, &issue(owner)).await.as_deref(),
        Some("23505")
    );
    // The team revokes, and nothing else.
    refused(
        &db,
        &as_owner,
        &format!("UPDATE certificates SET title = 'Renamed' WHERE id = '{certificate}'"),
    )
    .await;
    allowed(
        &db,
        &as_owner,
        &format!(
            "UPDATE certificates SET revoked_at = now(), revoke_reason = 'x' WHERE id = '{certificate}'"
        ),
    )
    .await;
    // The recipient reads it but cannot revoke or unrevoke it; strangers see nothing.
    let mine = format!("SELECT count(*) FROM certificates WHERE id = '{certificate}'");
    assert_eq!(count(&db, &as_student, &mine).await, 1);
    assert_eq!(count(&db, &user(stranger, None, &["user"]), &mine).await, 0);
    assert_eq!(
        affected(
            &db,
            &as_student,
            &format!("UPDATE certificates SET revoked_at = now(), revoke_reason = 'x' WHERE id = '{certificate}'")
        )
        .await,
        0
    );
    seed(
        &mut admin,
        &format!(
            "UPDATE learning.certificates SET revoked_at = now(), revoke_reason = 'x' WHERE id = '{certificate}'"
        ),
    )
    .await;
    refused(
        &db,
        &as_owner,
        &format!(
            "UPDATE certificates SET revoked_at = NULL, revoke_reason = NULL WHERE id = '{certificate}'"
        ),
    )
    .await;
    // Verification is a function anyone's context may call, and shows no ids.
    assert_eq!(
        count(
            &db,
            &TenantContext::anonymous(),
            "SELECT count(*) FROM verify_certificate('CERT-COURSE-20261205-000000000001')"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &db,
            &TenantContext::anonymous(),
            "SELECT count(*) FROM certificates"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn only_never_published_drafts_are_deleted_and_only_by_their_owner() {
    let test_db = migrated().await;
    let mut admin = test_db.admin_connection().await;
    let owner = Uuid::now_v7();
    let (draft, published, unpublished) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    seed(
        &mut admin,
        &format!(
            "INSERT INTO learning.courses (id, instructor_id, title, status, published_at) VALUES
               ('{draft}', '{owner}', 'Draft', 'draft', NULL),
               ('{published}', '{owner}', 'Live', 'published', now()),
               ('{unpublished}', '{owner}', 'Archived', 'archived', now());"
        ),
    )
    .await;
    let db = test_db.service_database(&lyceum_learning::SCHEMA).await;
    let as_owner = user(owner, None, &["user", "instructor"]);
    let delete = |id: Uuid| format!("DELETE FROM courses WHERE id = '{id}'");
    assert_eq!(affected(&db, &as_owner, &delete(published)).await, 0);
    assert_eq!(affected(&db, &as_owner, &delete(unpublished)).await, 0);
    assert_eq!(
        affected(
            &db,
            &user(Uuid::now_v7(), None, &["user", "instructor"]),
            &delete(draft)
        )
        .await,
        0
    );
    assert_eq!(affected(&db, &as_owner, &delete(draft)).await, 1);
    // The course's revenue is the service's to keep.
    refused(
        &db,
        &as_owner,
        &format!("UPDATE courses SET total_revenue_minor = 100 WHERE id = '{published}'"),
    )
    .await;
}

#[tokio::test]
async fn workshop_rules_hold_for_callers_who_lack_the_right() {
    let test_db = migrated().await;
    let mut admin = test_db.admin_connection().await;
    let (owner, helper, student, stranger) = (
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
    );
    let (paid, draft) = (Uuid::now_v7(), Uuid::now_v7());
    let (registered, pending) = (Uuid::now_v7(), Uuid::now_v7());
    let workshop = |id: Uuid, status: &str, price: i64| {
        format!(
            "INSERT INTO learning.workshops (id, instructor_id, title, pillar, level, format,
                start_time, end_time, time_zone, capacity, price_minor, status)
             VALUES ('{id}', '{owner}', 'Change', 'coaching', 'beginner', 'online',
                now() + interval '7 days', now() + interval '8 days', 'UTC', 10, {price}, '{status}');"
        )
    };
    seed(
        &mut admin,
        &format!(
            "{}{}
             INSERT INTO learning.workshop_facilitators (workshop_id, facilitator_id, role) VALUES
               ('{paid}', '{helper}', 'assistant');
             INSERT INTO learning.workshop_registrations (id, workshop_id, user_id, instructor_id,
                 status, price_minor, payment_id) VALUES
               ('{registered}', '{paid}', '{student}', '{owner}', 'registered', 4000, '{}');
             INSERT INTO learning.workshop_registrations (id, workshop_id, user_id, instructor_id,
                 status, price_minor, hold_until) VALUES
               ('{pending}', '{paid}', '{stranger}', '{owner}', 'pending_payment', 4000,
                now() + interval '30 minutes');",
            workshop(paid, "published", 4000),
            workshop(draft, "draft", 0),
            Uuid::now_v7()
        ),
    )
    .await;
    let db = test_db.service_database(&lyceum_learning::SCHEMA).await;
    let as_owner = user(owner, None, &["user", "instructor"]);
    let as_helper = user(helper, None, &["user"]);
    let as_student = user(student, None, &["user"]);
    let as_stranger = user(stranger, None, &["user"]);

    // Statistics and the featured flag are not the owner's to write.
    for change in [
        "attended_count = 3",
        "feedback_count = 1, satisfaction_sum = 5",
        "featured = true",
    ] {
        refused(
            &db,
            &as_owner,
            &format!("UPDATE workshops SET {change} WHERE id = '{paid}'"),
        )
        .await;
    }
    allowed(
        &db,
        &user(Uuid::now_v7(), None, &["admin"]),
        &format!("UPDATE workshops SET featured = true WHERE id = '{paid}'"),
    )
    .await;
    allowed(
        &db,
        &as_owner,
        &format!("UPDATE workshops SET title = 'Changed' WHERE id = '{paid}'"),
    )
    .await;
    // Others' drafts stay out of sight, and nobody else edits a workshop.
    let drafts = format!("SELECT count(*) FROM workshops WHERE id = '{draft}'");
    assert_eq!(count(&db, &as_student, &drafts).await, 0);
    assert_eq!(
        affected(
            &db,
            &as_helper,
            &format!("UPDATE workshops SET title = 'Mine' WHERE id = '{paid}'")
        )
        .await,
        0
    );

    // A registrant registers at the workshop's terms, unpaid, and moves only by cancelling.
    let newcomer = Uuid::now_v7();
    let register = |price: i64, status: &str, payment: &str| {
        format!(
            "INSERT INTO workshop_registrations (id, workshop_id, user_id, instructor_id, status,
                 price_minor, payment_id, hold_until)
             VALUES ('{}', '{paid}', '{newcomer}', '{owner}', '{status}', {price}, {payment},
                     CASE WHEN '{status}' = 'pending_payment' THEN now() + interval '30 minutes' END)",
            Uuid::now_v7()
        )
    };
    let as_newcomer = user(newcomer, None, &["user"]);
    refused(&db, &as_newcomer, &register(1, "pending_payment", "NULL")).await;
    refused(&db, &as_newcomer, &register(4000, "registered", "NULL")).await;
    refused(
        &db,
        &as_newcomer,
        &register(4000, "pending_payment", &format!("'{}'", Uuid::now_v7())),
    )
    .await;
    allowed(
        &db,
        &as_newcomer,
        &register(4000, "pending_payment", "NULL"),
    )
    .await;
    for change in [
        "status = 'completed'",
        "status = 'cancelled', cancel_reason = 'staff'",
        "price_minor = 0",
        "payment_id = NULL",
    ] {
        refused(
            &db,
            &as_student,
            &format!("UPDATE workshop_registrations SET {change} WHERE id = '{registered}'"),
        )
        .await;
    }
    allowed(
        &db,
        &as_student,
        &format!(
            "UPDATE workshop_registrations SET status = 'cancelled', cancel_reason = 'registrant'
             WHERE id = '{registered}'"
        ),
    )
    .await;
    // Registrations are their registrant's and the team's.
    let registrations =
        format!("SELECT count(*) FROM workshop_registrations WHERE workshop_id = '{paid}'");
    assert_eq!(count(&db, &as_student, &registrations).await, 1);
    assert_eq!(count(&db, &as_helper, &registrations).await, 2);
    assert_eq!(
        count(&db, &user(Uuid::now_v7(), None, &["user"]), &registrations).await,
        0
    );
    // Facilitators mark attendance and cancel as staff; a pending payment is not theirs
    // to confirm, nor a workshop cancellation theirs to claim.
    allowed(
        &db,
        &as_helper,
        &format!(
            "UPDATE workshop_registrations SET status = 'completed' WHERE id = '{registered}'"
        ),
    )
    .await;
    refused(
        &db,
        &as_helper,
        &format!("UPDATE workshop_registrations SET status = 'registered', hold_until = NULL WHERE id = '{pending}'"),
    )
    .await;
    refused(
        &db,
        &as_helper,
        &format!(
            "UPDATE workshop_registrations SET status = 'cancelled', cancel_reason = 'workshop_cancelled'
             WHERE id = '{pending}'"
        ),
    )
    .await;
    // Feedback only from an attendee, for their own registration.
    let feedback = |registration: Uuid| {
        format!(
            "INSERT INTO workshop_feedback (id, workshop_id, registration_id, user_id, overall_satisfaction)
             VALUES ('{}', '{paid}', '{registration}', '{student}', 5)",
            Uuid::now_v7()
        )
    };
    refused(&db, &as_student, &feedback(registered)).await;
    refused(&db, &as_stranger, &feedback(pending)).await;
    seed(
        &mut admin,
        &format!("UPDATE learning.workshop_registrations SET status = 'completed' WHERE id = '{registered}'"),
    )
    .await;
    allowed(&db, &as_student, &feedback(registered)).await;
}

#[tokio::test]
async fn identity_column_rules_hold_for_callers_who_lack_the_right() {
    let test_db = migrated().await;
    let mut admin = test_db.admin_connection().await;
    let org = Uuid::now_v7();
    let (alice, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let session = Uuid::now_v7();
    seed(
        &mut admin,
        &format!(
            "INSERT INTO identity.organizations (id, name, slug) VALUES ('{org}', 'Acme', 'acme');
             INSERT INTO identity.users (id, organization_id, email) VALUES
               ('{alice}', '{org}', 'alice@example.com'), ('{bob}', '{org}', 'bob@example.com');
             INSERT INTO identity.role_grants (id, user_id, role, organization_id) VALUES
               ('{}', '{alice}', 'org_admin', '{org}'), ('{}', '{bob}', 'member', '{org}');
             INSERT INTO identity.sessions (id, user_id, expires_at, revoked_at, revoked_reason) VALUES
               ('{session}', '{bob}', now() + interval '1 day', now(), 'logout');",
            Uuid::now_v7(),
            Uuid::now_v7()
        ),
    )
    .await;
    let db = test_db.service_database(&lyceum_identity::SCHEMA).await;
    let as_bob = user(bob, Some(org), &["user", "member"]);
    let as_alice = user(alice, Some(org), &["user", "org_admin"]);

    refused(
        &db,
        &as_bob,
        &format!("UPDATE users SET status = 'inactive' WHERE id = '{bob}'"),
    )
    .await;
    refused(
        &db,
        &as_bob,
        &format!("UPDATE users SET organization_id = NULL WHERE id = '{bob}'"),
    )
    .await;
    allowed(
        &db,
        &as_bob,
        &format!("UPDATE users SET full_name = 'Bob' WHERE id = '{bob}'"),
    )
    .await;
    // An org admin grants roles in their organization, never to themselves.
    refused(
        &db,
        &as_alice,
        &format!(
            "INSERT INTO role_grants (id, user_id, role, organization_id) VALUES ('{}', '{alice}', 'team_lead', '{org}')",
            Uuid::now_v7()
        ),
    )
    .await;
    refused(
        &db,
        &as_alice,
        &format!("DELETE FROM role_grants WHERE user_id = '{alice}'"),
    )
    .await;
    allowed(
        &db,
        &as_alice,
        &format!(
            "INSERT INTO role_grants (id, user_id, role, organization_id) VALUES ('{}', '{bob}', 'team_lead', '{org}')",
            Uuid::now_v7()
        ),
    )
    .await;
    allowed(
        &db,
        &as_alice,
        &format!("UPDATE users SET status = 'suspended' WHERE id = '{bob}'"),
    )
    .await;
    // A revoked session stays revoked.
    refused(
        &db,
        &as_bob,
        &format!(
            "UPDATE sessions SET revoked_at = NULL, revoked_reason = NULL WHERE id = '{session}'"
        ),
    )
    .await;
}

#[tokio::test]
async fn instructor_column_rules_hold_for_callers_who_lack_the_right() {
    let test_db = migrated().await;
    let mut admin = test_db.admin_connection().await;
    let instructor = Uuid::now_v7();
    let bio = "A".repeat(60);
    seed(
        &mut admin,
        &format!("INSERT INTO instructor.instructor_profiles (instructor_id, bio) VALUES ('{instructor}', '{bio}')"),
    )
    .await;
    let db = test_db.service_database(&lyceum_instructor::SCHEMA).await;
    let as_instructor = user(instructor, None, &["user", "instructor"]);
    for flag in ["verified", "featured"] {
        refused(
            &db,
            &as_instructor,
            &format!(
                "UPDATE instructor_profiles SET {flag} = true WHERE instructor_id = '{instructor}'"
            ),
        )
        .await;
    }
    let newcomer = Uuid::now_v7();
    refused(
        &db,
        &user(newcomer, None, &["user", "instructor"]),
        &format!("INSERT INTO instructor_profiles (instructor_id, bio, verified) VALUES ('{newcomer}', '{bio}', true)"),
    )
    .await;
    allowed(
        &db,
        &as_instructor,
        &format!(
            "UPDATE instructor_profiles SET bio = '{bio}B' WHERE instructor_id = '{instructor}'"
        ),
    )
    .await;
    allowed(
        &db,
        &user(Uuid::now_v7(), None, &["admin"]),
        &format!(
            "UPDATE instructor_profiles SET verified = true WHERE instructor_id = '{instructor}'"
        ),
    )
    .await;

    // Profiles and settings belong to instructors: a caller without the role writes
    // neither, even their own.
    let student = Uuid::now_v7();
    let as_student = user(student, None, &["user"]);
    refused(
        &db,
        &as_student,
        &format!(
            "INSERT INTO instructor_profiles (instructor_id, bio) VALUES ('{student}', '{bio}')"
        ),
    )
    .await;
    refused(
        &db,
        &as_student,
        &format!("INSERT INTO instructor_settings (instructor_id) VALUES ('{student}')"),
    )
    .await;
    allowed(
        &db,
        &user(student, None, &["user", "instructor"]),
        &format!("INSERT INTO instructor_settings (instructor_id) VALUES ('{student}')"),
    )
    .await;

    // A payer records a pending payment, never one that already succeeded or carries a fee.
    let payer = Uuid::now_v7();
    let payment = |status: &str, fee: &str| {
        format!(
            "INSERT INTO payments (id, request_id, request_fingerprint, payer_id, amount_minor, currency,
                                   provider, payment_type, invoice_number, status, fee_minor)
             VALUES ('{}', '{}', 'f', '{payer}', 1000, 'USD', 'manual', 'other', '{}', '{status}', {fee})",
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7()
        )
    };
    let as_payer = user(payer, None, &["user"]);
    refused(&db, &as_payer, &payment("succeeded", "NULL")).await;
    refused(&db, &as_payer, &payment("pending", "0")).await;
    allowed(&db, &as_payer, &payment("pending", "NULL")).await;
}

#[tokio::test]
async fn service_accounts_reach_only_what_their_scopes_name() {
    let test_db = migrated().await;
    let mut admin = test_db.admin_connection().await;
    let (user_id, course) = (Uuid::now_v7(), Uuid::now_v7());
    seed(
        &mut admin,
        &format!(
            "INSERT INTO identity.users (id, email) VALUES ('{user_id}', 'someone@example.com');
             INSERT INTO learning.courses (id, instructor_id, title) VALUES ('{course}', '{}', 'Draft');
             INSERT INTO instructor.payments (id, request_id, request_fingerprint, payer_id, amount_minor,
                                              currency, provider, payment_type, invoice_number)
             VALUES ('{}', 'r', 'f', '{user_id}', 1000, 'USD', 'manual', 'other', 'INV-1');",
            Uuid::now_v7(),
            Uuid::now_v7()
        ),
    )
    .await;
    let account = |scopes: &[&str]| TenantContext {
        user_id: Some(Uuid::now_v7()),
        org_id: None,
        roles: std::iter::once("service".to_owned())
            .chain(scopes.iter().map(|s| format!("scope:{s}")))
            .collect(),
    };
    let identity = test_db.service_database(&lyceum_identity::SCHEMA).await;
    let learning = test_db.service_database(&lyceum_learning::SCHEMA).await;
    let instructor = test_db.service_database(&lyceum_instructor::SCHEMA).await;
    let users = "SELECT count(*) FROM users";
    let payments = "SELECT count(*) FROM payments";
    assert_eq!(count(&identity, &account(&["users:read"]), users).await, 1);
    assert_eq!(
        count(&identity, &account(&["payments:write"]), users).await,
        0
    );
    assert_eq!(
        count(&instructor, &account(&["payments:write"]), payments).await,
        1
    );
    assert_eq!(
        count(&instructor, &account(&["users:read"]), payments).await,
        0
    );
    // Reading is not writing, and no scope makes an account an administrator anywhere.
    let changed = {
        let mut tx = identity.begin(&account(&["users:read"])).await.unwrap();
        let n = sqlx::query("UPDATE users SET full_name = 'x'")
            .execute(tx.conn())
            .await
            .unwrap()
            .rows_affected();
        tx.rollback().await.unwrap();
        n
    };
    assert_eq!(changed, 0);
    let with_admin_role = TenantContext {
        roles: vec!["service".into(), "admin".into(), "scope:users:read".into()],
        ..account(&[])
    };
    assert_eq!(
        count(&learning, &with_admin_role, "SELECT count(*) FROM courses").await,
        0,
        "a draft course stays hidden from a service account claiming admin"
    );
    assert_eq!(
        count(
            &identity,
            &with_admin_role,
            "SELECT count(*) FROM password_credentials"
        )
        .await,
        0
    );
}

/// Rows a statement changed as the service role under `context` (rolled back).
async fn affected(db: &Database, context: &TenantContext, statement: &str) -> u64 {
    let mut tx = db.begin(context).await.unwrap();
    let n = sqlx::raw_sql(AssertSqlSafe(statement.to_owned()))
        .execute(tx.conn())
        .await
        .unwrap_or_else(|e| panic!("`{statement}`: {e}"))
        .rows_affected();
    tx.rollback().await.unwrap();
    n
}

#[tokio::test]
async fn enrollments_name_their_courses_parties_and_callers_set_no_versions() {
    let test_db = migrated().await;
    let mut admin = test_db.admin_connection().await;
    let (owner, accomplice, student) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let (org, other_org) = (Uuid::now_v7(), Uuid::now_v7());
    let (free, draft, in_house, cohort_only) = (
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
    );
    let active = Uuid::now_v7();
    seed(
        &mut admin,
        &format!(
            "INSERT INTO learning.courses (id, instructor_id, title, status) VALUES
               ('{free}', '{owner}', 'Free', 'published'), ('{draft}', '{owner}', 'Draft', 'draft');
             INSERT INTO learning.courses (id, instructor_id, organization_id, title, status, visibility) VALUES
               ('{in_house}', '{owner}', '{other_org}', 'In house', 'published', 'organization');
             INSERT INTO learning.courses (id, instructor_id, title, status, enrollment_type) VALUES
               ('{cohort_only}', '{owner}', 'Cohorts', 'published', 'cohort_only');
             INSERT INTO learning.enrollments (id, course_id, student_id, instructor_id, status) VALUES
               ('{active}', '{free}', '{student}', '{owner}', 'active');"
        ),
    )
    .await;
    let db = test_db.service_database(&lyceum_learning::SCHEMA).await;
    let newcomer = Uuid::now_v7();
    let as_newcomer = user(newcomer, Some(org), &["user", "member"]);
    let enroll = |course: Uuid, instructor: Uuid, org: Option<Uuid>, cohort: Option<Uuid>| {
        let quote = |v: Option<Uuid>| v.map_or("NULL".to_owned(), |v| format!("'{v}'"));
        format!(
            "INSERT INTO enrollments (id, course_id, student_id, instructor_id, organization_id, cohort_id, status)
             VALUES ('{}', '{course}', '{newcomer}', '{instructor}', {}, {}, 'active')",
            Uuid::now_v7(),
            quote(org),
            quote(cohort)
        )
    };
    // Revenue follows the enrollment's instructor: a caller cannot name another one.
    refused(&db, &as_newcomer, &enroll(free, accomplice, None, None)).await;
    refused(&db, &as_newcomer, &enroll(free, owner, Some(org), None)).await;
    refused(
        &db,
        &as_newcomer,
        &enroll(free, owner, None, Some(Uuid::now_v7())),
    )
    .await;
    // Only published courses open to the caller take enrollments.
    refused(&db, &as_newcomer, &enroll(draft, owner, None, None)).await;
    refused(
        &db,
        &as_newcomer,
        &enroll(in_house, owner, Some(other_org), None),
    )
    .await;
    refused(&db, &as_newcomer, &enroll(cohort_only, owner, None, None)).await;
    allowed(&db, &as_newcomer, &enroll(free, owner, None, None)).await;

    // Callers delete neither enrollments nor progress.
    let as_student = user(student, None, &["user"]);
    let gone = affected(
        &db,
        &as_student,
        &format!("DELETE FROM enrollments WHERE id = '{active}'"),
    )
    .await;
    assert_eq!(gone, 0);
    // The version of an enrollment's events is the database's: a caller's value is ignored.
    let mut tx = db.begin(&as_student).await.unwrap();
    let version: String = sqlx::query_scalar(AssertSqlSafe(format!(
        "UPDATE enrollments SET updated_at = 'infinity' WHERE id = '{active}' RETURNING updated_at::text"
    )))
    .fetch_one(tx.conn())
    .await
    .unwrap();
    tx.rollback().await.unwrap();
    assert_ne!(version, "infinity");
}

#[tokio::test]
async fn a_co_instructor_neither_moves_a_course_nor_sets_its_version() {
    let test_db = migrated().await;
    let mut admin = test_db.admin_connection().await;
    let (owner, co) = (Uuid::now_v7(), Uuid::now_v7());
    let (org_a, org_b) = (Uuid::now_v7(), Uuid::now_v7());
    let course = Uuid::now_v7();
    seed(
        &mut admin,
        &format!(
            "INSERT INTO learning.courses (id, instructor_id, organization_id, title, status, version)
               VALUES ('{course}', '{owner}', '{org_a}', 'Course', 'published', 7);
             INSERT INTO learning.course_instructors (course_id, instructor_id, role, permissions) VALUES
               ('{course}', '{co}', 'co_instructor', '{{edit_content}}');"
        ),
    )
    .await;
    let db = test_db.service_database(&lyceum_learning::SCHEMA).await;
    // The co-instructor administers another organization: that is not enough to take the
    // course there, and so not enough to take it over.
    let as_co = user(co, Some(org_b), &["user", "instructor", "org_admin"]);
    refused(
        &db,
        &as_co,
        &format!("UPDATE courses SET organization_id = '{org_b}' WHERE id = '{course}'"),
    )
    .await;
    let mut tx = db.begin(&as_co).await.unwrap();
    let version: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
        "UPDATE courses SET title = 'Edited', version = 9223372036854775807 WHERE id = '{course}' RETURNING version"
    )))
    .fetch_one(tx.conn())
    .await
    .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(
        version, 8,
        "one version later, whatever the statement asked for"
    );
}

#[tokio::test]
async fn reviews_sessions_and_scoped_writes_stay_within_their_rules() {
    let test_db = migrated().await;
    let mut admin = test_db.admin_connection().await;
    let (owner, student, user_id) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let (taken, other) = (Uuid::now_v7(), Uuid::now_v7());
    let (enrollment, session, transaction) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    seed(
        &mut admin,
        &format!(
            "INSERT INTO learning.courses (id, instructor_id, title, status) VALUES
               ('{taken}', '{owner}', 'Taken', 'published'), ('{other}', '{owner}', 'Other', 'published');
             INSERT INTO learning.enrollments (id, course_id, student_id, instructor_id, status) VALUES
               ('{enrollment}', '{taken}', '{student}', '{owner}', 'completed');
             INSERT INTO identity.users (id, email) VALUES ('{user_id}', 'u@example.com');
             INSERT INTO identity.sessions (id, user_id, expires_at) VALUES
               ('{session}', '{user_id}', now() + interval '30 days');
             INSERT INTO instructor.revenue_transactions (id, instructor_id, transaction_type, amount_minor,
                 currency, fee_bps, platform_fee_minor, instructor_earnings_minor)
               VALUES ('{transaction}', '{owner}', 'course_enrollment', 1000, 'USD', 2000, 200, 800);"
        ),
    )
    .await;
    // A completed enrollment in one course writes no review of another.
    let learning = test_db.service_database(&lyceum_learning::SCHEMA).await;
    let review = |course: Uuid| {
        format!(
            "INSERT INTO course_reviews (id, course_id, student_id, enrollment_id, instructor_id, rating)
             VALUES ('{}', '{course}', '{student}', '{enrollment}', '{owner}', 5)",
            Uuid::now_v7()
        )
    };
    let as_student = user(student, None, &["user"]);
    refused(&learning, &as_student, &review(other)).await;
    allowed(&learning, &as_student, &review(taken)).await;

    // A user ends their session but never lengthens it.
    let identity = test_db.service_database(&lyceum_identity::SCHEMA).await;
    let as_user = user(user_id, None, &["user"]);
    refused(
        &identity,
        &as_user,
        &format!(
            "UPDATE sessions SET expires_at = now() + interval '10 years' WHERE id = '{session}'"
        ),
    )
    .await;
    allowed(
        &identity,
        &as_user,
        &format!("UPDATE sessions SET revoked_at = now(), revoked_reason = 'logout' WHERE id = '{session}'"),
    )
    .await;

    // payments:write books refunds, never sales; payouts:write only settles; neither deletes.
    let instructor = test_db.service_database(&lyceum_instructor::SCHEMA).await;
    let account = |scope: &str| TenantContext {
        user_id: Some(Uuid::now_v7()),
        org_id: None,
        roles: vec!["service".into(), format!("scope:{scope}")],
    };
    let booking = |kind: &str, amount: i64| {
        format!(
            "INSERT INTO revenue_transactions (id, instructor_id, transaction_type, amount_minor, currency,
                 fee_bps, platform_fee_minor, instructor_earnings_minor)
             VALUES ('{}', '{owner}', '{kind}', {amount}, 'USD', 2000, {}, {})",
            Uuid::now_v7(),
            amount / 5,
            amount - amount / 5
        )
    };
    refused(
        &instructor,
        &account("payments:write"),
        &booking("course_enrollment", 1000),
    )
    .await;
    allowed(
        &instructor,
        &account("payments:write"),
        &booking("refund", -1000),
    )
    .await;
    for scope in ["payments:write", "payouts:write"] {
        let deleted = affected(
            &instructor,
            &account(scope),
            "DELETE FROM revenue_transactions",
        )
        .await;
        assert_eq!(deleted, 0, "{scope} deleted revenue");
    }
    refused(
        &instructor,
        &account("payouts:write"),
        &format!(
            "UPDATE revenue_transactions SET payout_status = 'paid', payout_id = '{}',
                 instructor_earnings_minor = 1000, platform_fee_minor = 0 WHERE id = '{transaction}'",
            Uuid::now_v7()
        ),
    )
    .await;
    allowed(
        &instructor,
        &account("payouts:write"),
        &format!(
            "UPDATE revenue_transactions SET payout_status = 'paid', payout_id = '{}' WHERE id = '{transaction}'",
            Uuid::now_v7()
        ),
    )
    .await;
}

#[tokio::test]
async fn a_callers_context_reaches_the_database_verbatim_whatever_its_role_names_hold() {
    let test_db = migrated().await;
    let db = test_db.service_database(&lyceum_learning::SCHEMA).await;
    for roles in [
        vec!["user".to_owned(), "org_admin".to_owned()],
        vec!["it's".to_owned(), "'); SELECT 1; --".to_owned()],
        vec!["back\\slash".to_owned(), "\\'".to_owned()],
        vec![],
    ] {
        let context = TenantContext {
            user_id: Some(Uuid::now_v7()),
            org_id: Some(Uuid::now_v7()),
            roles: roles.clone(),
        };
        let mut tx = db.begin(&context).await.unwrap();
        let seen: (String, String, String) = sqlx::query_as(
            "SELECT current_setting('lyceum.user_id'), current_setting('lyceum.org_id'),
                    current_setting('lyceum.roles')",
        )
        .fetch_one(tx.conn())
        .await
        .unwrap();
        tx.rollback().await.unwrap();
        assert_eq!(
            seen,
            (
                context.user_id.unwrap().to_string(),
                context.org_id.unwrap().to_string(),
                roles.join(",")
            )
        );
    }
    // A NUL cannot be text: refused by the database, not smuggled in.
    let nul = TenantContext {
        user_id: Some(Uuid::now_v7()),
        org_id: None,
        roles: vec!["a\0b".to_owned()],
    };
    assert!(db.begin(&nul).await.is_err());
}

/// Tables of `schema` that `role` may touch although row-level security is off on them.
async fn tables_open_without_rls(conn: &mut PgConnection, schema: &str, role: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relrowsecurity
           AND has_table_privilege($2, c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
         ORDER BY 1",
    )
    .bind(schema)
    .bind(role)
    .fetch_all(conn)
    .await
    .unwrap()
}

/// The walls read from the catalogue, for every schema `lyceum_schema::ALL` migrates: a
/// new service, or a new migration that forgets a wall, fails here without a new test.
#[tokio::test]
async fn the_catalogue_shows_every_wall_for_every_service_schema() {
    let test_db = migrated().await;
    let mut admin = test_db.admin_connection().await;
    let mut tables = 0;
    for schema in &SCHEMAS {
        for role in [schema.runtime_role(), schema.system_role()] {
            let (superuser, create_role, create_db): (bool, bool, bool) = sqlx::query_as(
                "SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = $1",
            )
            .bind(&role)
            .fetch_one(&mut admin)
            .await
            .unwrap();
            assert!(
                !superuser && !create_role && !create_db,
                "{role} is privileged"
            );
            let owned: Vec<String> = sqlx::query_scalar(
                "SELECT relname::text FROM pg_class WHERE relowner = $1::regrole
                 UNION ALL SELECT nspname::text FROM pg_namespace WHERE nspowner = $1::regrole
                 UNION ALL SELECT proname::text FROM pg_proc WHERE proowner = $1::regrole",
            )
            .bind(&role)
            .fetch_all(&mut admin)
            .await
            .unwrap();
            assert!(
                owned.is_empty(),
                "{role} owns {owned:?}; only the owner role may"
            );
            let open = tables_open_without_rls(&mut admin, schema.name, &role).await;
            assert!(
                open.is_empty(),
                "{role} reaches {open:?} without row-level security"
            );
            for other in SCHEMAS.iter().filter(|o| o.name != schema.name) {
                let (usage, reachable): (bool, i64) = sqlx::query_as(
                    "SELECT has_schema_privilege($2, $1, 'USAGE'),
                            (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                             WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm')
                               AND has_table_privilege($2, c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER'))",
                )
                .bind(other.name)
                .bind(&role)
                .fetch_one(&mut admin)
                .await
                .unwrap();
                assert!(
                    !usage && reachable == 0,
                    "{role} uses schema {} ({reachable} tables)",
                    other.name
                );
            }
        }
        let (runtime_bypasses,): (bool,) =
            sqlx::query_as("SELECT rolbypassrls FROM pg_roles WHERE rolname = $1")
                .bind(schema.runtime_role())
                .fetch_one(&mut admin)
                .await
                .unwrap();
        assert!(!runtime_bypasses, "{} bypasses RLS", schema.runtime_role());
        let (count,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')",
        )
        .bind(schema.name)
        .fetch_one(&mut admin)
        .await
        .unwrap();
        tables += count;
    }
    report_size(&format!(
        "database walls: {} service schemas, {tables} tables, 2 roles each",
        SCHEMAS.len()
    ));

    // The control: a table a migration grants without enabling row-level security is found.
    let learning = &lyceum_learning::SCHEMA;
    seed(
        &mut admin,
        &format!(
            "CREATE TABLE learning.planted (id int);
             GRANT SELECT ON learning.planted TO {}",
            learning.runtime_role()
        ),
    )
    .await;
    assert_eq!(
        tables_open_without_rls(&mut admin, learning.name, &learning.runtime_role()).await,
        ["planted"]
    );
}

/// The resource library's matrix under RLS alone: as the learning service role with each
/// caller's tenant context, every access level shows its published resource to exactly
/// the callers `domain::resource` lets read it (the API's tests check the same matrix
/// through gRPC), drafts only to their writers; and only writers write, with the author,
/// organization and course fixed.
#[tokio::test]
async fn resources_show_each_access_level_to_exactly_its_callers_under_rls() {
    let test_db = migrated().await;
    let mut admin = test_db.admin_connection().await;
    let (org, other_org) = (Uuid::now_v7(), Uuid::now_v7());
    let (author, course) = (Uuid::now_v7(), Uuid::now_v7());
    let [
        member,
        outsider,
        active,
        completed,
        cancelled,
        pending,
        assistant,
        editor,
    ] = std::array::from_fn(|_| Uuid::now_v7());
    let levels = [
        "public",
        "registered",
        "organization_members",
        "enrolled_students",
    ];
    let ids: Vec<Uuid> = levels.iter().map(|_| Uuid::now_v7()).collect();
    let draft = Uuid::now_v7();
    let mut statements = format!(
        "INSERT INTO learning.courses (id, instructor_id, organization_id, title, status, published_at)
           VALUES ('{course}', '{author}', '{org}', 'Course', 'published', now());
         INSERT INTO learning.course_instructors (course_id, instructor_id, role, permissions) VALUES
           ('{course}', '{assistant}', 'assistant', '{{view_content}}'),
           ('{course}', '{editor}', 'co_instructor', '{{edit_content}}');"
    );
    for (student, status) in [
        (active, "active"),
        (completed, "completed"),
        (cancelled, "cancelled"),
        (pending, "pending_payment"),
    ] {
        statements.push_str(&format!(
            "INSERT INTO learning.enrollments (id, course_id, student_id, instructor_id, organization_id, status)
               VALUES ('{}', '{course}', '{student}', '{author}', '{org}', '{status}');",
            Uuid::now_v7()
        ));
    }
    for (id, level) in ids.iter().zip(levels) {
        statements.push_str(&format!(
            "INSERT INTO learning.resources (id, author_id, organization_id, course_id, type, title,
                 body, access_level, status, published_at)
               VALUES ('{id}', '{author}', '{org}', '{course}', 'article', 'For {level}', 'Text',
                       '{level}', 'published', now());"
        ));
    }
    statements.push_str(&format!(
        "INSERT INTO learning.resources (id, author_id, organization_id, course_id, type, title,
             body, access_level)
           VALUES ('{draft}', '{author}', '{org}', '{course}', 'article', 'Draft', 'Text', 'public');"
    ));
    seed(&mut admin, &statements).await;
    let db = test_db.service_database(&lyceum_learning::SCHEMA).await;

    // (caller, name, the levels it reads, reads the draft)
    let matrix: Vec<(TenantContext, &str, Vec<&str>, bool)> = vec![
        (
            TenantContext::anonymous(),
            "anonymous",
            vec!["public"],
            false,
        ),
        (
            user(Uuid::now_v7(), None, &["user"]),
            "a signed-in user",
            vec!["public", "registered"],
            false,
        ),
        (
            user(member, Some(org), &["user", "member"]),
            "a member of the organization",
            vec!["public", "registered", "organization_members"],
            false,
        ),
        (
            user(outsider, Some(other_org), &["user", "member"]),
            "a member of another organization",
            vec!["public", "registered"],
            false,
        ),
        (
            user(active, Some(other_org), &["user"]),
            "an enrolled student (active)",
            vec!["public", "registered", "enrolled_students"],
            false,
        ),
        (
            user(completed, None, &["user"]),
            "an enrolled student (completed)",
            vec!["public", "registered", "enrolled_students"],
            false,
        ),
        (
            user(cancelled, None, &["user"]),
            "a student whose enrollment was cancelled",
            vec!["public", "registered"],
            false,
        ),
        (
            user(pending, None, &["user"]),
            "a student whose enrollment awaits payment",
            vec!["public", "registered"],
            false,
        ),
        (
            user(assistant, Some(other_org), &["user", "instructor"]),
            "the course's assistant",
            vec!["public", "registered", "enrolled_students"],
            false,
        ),
        (
            user(editor, Some(other_org), &["user", "instructor"]),
            "a co-instructor who edits content",
            levels.to_vec(),
            true,
        ),
        (
            user(Uuid::now_v7(), Some(org), &["user", "org_admin"]),
            "the organization's admin",
            levels.to_vec(),
            true,
        ),
        (
            user(author, Some(org), &["user", "instructor"]),
            "the author",
            levels.to_vec(),
            true,
        ),
        (
            user(Uuid::now_v7(), None, &["user", "admin"]),
            "a platform admin",
            levels.to_vec(),
            true,
        ),
    ];
    for (context, name, readable, reads_draft) in &matrix {
        for (id, level) in ids.iter().zip(levels) {
            let seen = count(
                &db,
                context,
                &format!("SELECT count(*) FROM resources WHERE id = '{id}'"),
            )
            .await;
            assert_eq!(
                seen,
                i64::from(readable.contains(&level)),
                "{name} and the {level} resource"
            );
        }
        let drafts = count(
            &db,
            context,
            &format!("SELECT count(*) FROM resources WHERE id = '{draft}'"),
        )
        .await;
        assert_eq!(drafts, i64::from(*reads_draft), "{name} and the draft");
        // A search (the listing's query) finds the same.
        let found = count(
            &db,
            context,
            "SELECT count(*) FROM resources
             WHERE search_vector @@ websearch_to_tsquery('english', 'text')",
        )
        .await;
        assert_eq!(
            found,
            readable.len() as i64 + i64::from(*reads_draft),
            "{name} searching"
        );
    }

    // Only writers write: a reader's update or delete touches nothing.
    let (public, members) = (ids[0], ids[2]);
    let as_member = user(member, Some(org), &["user", "member"]);
    let as_assistant = user(assistant, Some(other_org), &["user", "instructor"]);
    for reader in [&as_member, &as_assistant] {
        assert_eq!(
            affected(
                &db,
                reader,
                &format!("UPDATE resources SET title = 'Mine' WHERE id = '{public}'")
            )
            .await,
            0
        );
        assert_eq!(
            affected(
                &db,
                reader,
                &format!("DELETE FROM resources WHERE id = '{members}'")
            )
            .await,
            0
        );
    }
    let as_author = user(author, Some(org), &["user", "instructor"]);
    let as_editor = user(editor, Some(org), &["user", "instructor"]);
    allowed(
        &db,
        &as_editor,
        &format!("UPDATE resources SET title = 'Revised' WHERE id = '{public}'"),
    )
    .await;
    // The author, organization and course are fixed for callers.
    for change in [
        format!("author_id = '{member}'"),
        format!("organization_id = '{other_org}'"),
        "course_id = NULL, access_level = 'public'".to_owned(),
    ] {
        refused(
            &db,
            &as_author,
            &format!("UPDATE resources SET {change} WHERE id = '{public}'"),
        )
        .await;
    }
    // New resources: the caller's own, in their organization, on a course only from its
    // team (with edit_content), the course's organization, and otherwise as instructors.
    let insert = |author: Uuid, org: Option<Uuid>, course: Option<Uuid>| {
        let org = org.map_or("NULL".to_owned(), |o| format!("'{o}'"));
        let course = course.map_or("NULL".to_owned(), |c| format!("'{c}'"));
        format!(
            "INSERT INTO resources (id, author_id, organization_id, course_id, type, title, body,
                 access_level)
               VALUES ('{}', '{author}', {org}, {course}, 'article', 'New', 'Text', 'registered')",
            Uuid::now_v7()
        )
    };
    allowed(&db, &as_author, &insert(author, Some(org), None)).await;
    allowed(&db, &as_editor, &insert(editor, Some(org), Some(course))).await;
    // The row-level policy refuses with 42501 too.
    refused(&db, &as_author, &insert(member, Some(org), None)).await;
    refused(&db, &as_author, &insert(author, Some(other_org), None)).await;
    refused(&db, &as_member, &insert(member, Some(org), None)).await;
    refused(
        &db,
        &user(assistant, Some(org), &["user", "instructor"]),
        &insert(assistant, Some(org), Some(course)),
    )
    .await;
    // On the team but outside the course's organization: the course's resource is refused.
    refused(&db, &as_editor, &insert(editor, None, Some(course))).await;
}

#[tokio::test]
async fn assessment_scores_and_statuses_are_the_services_and_assessments_their_owners() {
    let test_db = migrated().await;
    let mut admin = test_db.admin_connection().await;
    let (org, other_org) = (Uuid::now_v7(), Uuid::now_v7());
    let (owner, colleague, org_admin, outsider) = (
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
    );
    let (template, scale, text, other_template, foreign_question) = (
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
    );
    let (assessment, completed) = (Uuid::now_v7(), Uuid::now_v7());
    seed(
        &mut admin,
        &format!(
            "INSERT INTO learning.assessment_templates (id, organization_id, created_by, name) VALUES
               ('{template}', '{org}', '{org_admin}', 'Ours'),
               ('{other_template}', '{other_org}', '{outsider}', 'Theirs');
             INSERT INTO learning.assessment_questions
                 (id, template_id, position, dimension, answer_type, prompt, weight) VALUES
               ('{scale}', '{template}', 0, 'velocity', 'scale', 'Fast?', 2),
               ('{text}', '{template}', 1, 'cultural', 'text', 'Why?', 0),
               ('{foreign_question}', '{other_template}', 0, 'velocity', 'scale', 'Fast?', 1);
             INSERT INTO learning.assessments (id, template_id, user_id, organization_id,
                 assessment_type) VALUES
               ('{assessment}', '{template}', '{owner}', '{org}', 'full');
             INSERT INTO learning.assessments (id, template_id, user_id, organization_id,
                 assessment_type, status, velocity_score, results, completed_at) VALUES
               ('{completed}', '{template}', '{owner}', '{org}', 'quick', 'completed', 50,
                '{{}}', now());
             INSERT INTO learning.org_adaptability_months
                 (organization_id, month, completed_count, scored_count, overall_sum) VALUES
               ('{org}', date_trunc('month', now())::date, 1, 1, 50);"
        ),
    )
    .await;
    let db = test_db.service_database(&lyceum_learning::SCHEMA).await;
    let as_owner = user(owner, Some(org), &["user"]);
    let as_colleague = user(colleague, Some(org), &["user"]);
    let as_org_admin = user(org_admin, Some(org), &["user", "org_admin"]);
    let as_outsider = user(outsider, Some(other_org), &["user", "org_admin"]);

    // Scores, results, counts and completion are the service's, even on one's own.
    for change in [
        "velocity_score = 99",
        "answer_count = 7",
        "results = '{}'::jsonb, status = 'completed', completed_at = now()",
        "recommendations = '[]'::jsonb",
        "user_id = gen_random_uuid()",
        "organization_id = NULL",
    ] {
        refused(
            &db,
            &as_owner,
            &format!("UPDATE assessments SET {change} WHERE id = '{assessment}'"),
        )
        .await;
    }
    // The one move a caller makes: abandoning their own assessment in progress, and never
    // reopening a completed one.
    allowed(
        &db,
        &as_owner,
        &format!(
            "UPDATE assessments SET status = 'abandoned', abandoned_at = now()
             WHERE id = '{assessment}'"
        ),
    )
    .await;
    refused(
        &db,
        &as_owner,
        &format!(
            "UPDATE assessments SET status = 'in_progress', completed_at = NULL, results = NULL
             WHERE id = '{completed}'"
        ),
    )
    .await;
    // A new assessment starts in progress without scores, for oneself in one's own org.
    refused(
        &db,
        &as_owner,
        &format!(
            "INSERT INTO assessments (id, template_id, user_id, organization_id, assessment_type,
                 velocity_score)
             VALUES (gen_random_uuid(), '{template}', '{owner}', '{org}', 'full', 80)"
        ),
    )
    .await;
    refused(
        &db,
        &as_owner,
        &format!(
            "INSERT INTO assessments (id, template_id, user_id, organization_id, assessment_type)
             VALUES (gen_random_uuid(), '{template}', '{colleague}', '{org}', 'full')"
        ),
    )
    .await;
    refused(
        &db,
        &as_owner,
        &format!(
            "INSERT INTO assessments (id, template_id, user_id, organization_id, assessment_type)
             VALUES (gen_random_uuid(), '{template}', '{owner}', '{other_org}', 'full')"
        ),
    )
    .await;

    // Answers: the owner's, while in progress, to their template's questions as weighted.
    let answer = |by: Uuid, question: Uuid, weight: &str, value: &str, text: &str| {
        format!(
            "INSERT INTO assessment_answers (id, assessment_id, question_id, user_id, dimension,
                 weight, value, text_answer)
             SELECT gen_random_uuid(), '{assessment}', '{question}', '{by}', q.dimension, {weight},
                    {value}, {text}
               FROM assessment_questions q WHERE q.id = '{question}'"
        )
    };
    allowed(
        &db,
        &as_owner,
        &answer(owner, scale, "q.weight", "70", "NULL"),
    )
    .await;
    allowed(
        &db,
        &as_owner,
        &answer(owner, text, "q.weight", "NULL", "'because'"),
    )
    .await;
    refused(&db, &as_owner, &answer(owner, scale, "5", "70", "NULL")).await;
    refused(
        &db,
        &as_owner,
        &answer(owner, text, "q.weight", "70", "NULL"),
    )
    .await;
    refused(
        &db,
        &as_colleague,
        &answer(colleague, scale, "q.weight", "70", "NULL"),
    )
    .await;
    refused(
        &db,
        &as_colleague,
        &answer(owner, scale, "q.weight", "70", "NULL"),
    )
    .await;
    // Another organization's question is not the owner's to see, let alone answer.
    assert_eq!(
        affected(
            &db,
            &as_owner,
            &answer(owner, foreign_question, "q.weight", "70", "NULL")
        )
        .await,
        0
    );
    // Sums and the monthly rollup: read by those who see them, written by nobody.
    refused(
        &db,
        &as_owner,
        &format!(
            "INSERT INTO assessment_dimension_sums (assessment_id, dimension, weighted_sum,
                 weight_total) VALUES ('{assessment}', 'velocity', 100, 1)"
        ),
    )
    .await;
    for caller in [&as_org_admin, &as_owner] {
        refused(
            &db,
            caller,
            &format!(
                "INSERT INTO org_adaptability_months (organization_id, month, completed_count)
                 VALUES ('{org}', '2020-01-01', 5)"
            ),
        )
        .await;
        assert_eq!(
            affected(
                &db,
                caller,
                &format!("UPDATE org_adaptability_months SET completed_count = 9 WHERE organization_id = '{org}'")
            )
            .await,
            0
        );
    }
    let months =
        format!("SELECT count(*) FROM org_adaptability_months WHERE organization_id = '{org}'");
    assert_eq!(count(&db, &as_org_admin, &months).await, 1);
    assert_eq!(count(&db, &as_owner, &months).await, 0);
    assert_eq!(count(&db, &as_outsider, &months).await, 0);

    // Who sees what: the owner and their org's admin the assessments; colleagues and
    // outsiders neither them nor (outsiders) the organization's templates; the org admin
    // reads but never changes a member's assessment.
    let assessments = format!("SELECT count(*) FROM assessments WHERE user_id = '{owner}'");
    assert_eq!(count(&db, &as_owner, &assessments).await, 2);
    assert_eq!(count(&db, &as_org_admin, &assessments).await, 2);
    assert_eq!(count(&db, &as_colleague, &assessments).await, 0);
    assert_eq!(count(&db, &as_outsider, &assessments).await, 0);
    let templates = format!("SELECT count(*) FROM assessment_templates WHERE id = '{template}'");
    assert_eq!(count(&db, &as_colleague, &templates).await, 1);
    assert_eq!(count(&db, &as_outsider, &templates).await, 0);
    assert_eq!(
        affected(
            &db,
            &as_org_admin,
            &format!(
                "UPDATE assessments SET status = 'abandoned', abandoned_at = now()
                 WHERE id = '{assessment}'"
            )
        )
        .await,
        0
    );
    // Templates are created by their organization's admins only, and never changed.
    refused(
        &db,
        &as_colleague,
        &format!(
            "INSERT INTO assessment_templates (id, organization_id, created_by, name)
             VALUES (gen_random_uuid(), '{org}', '{colleague}', 'Mine')"
        ),
    )
    .await;
    allowed(
        &db,
        &as_org_admin,
        &format!(
            "INSERT INTO assessment_templates (id, organization_id, created_by, name)
             VALUES (gen_random_uuid(), '{org}', '{org_admin}', 'Another')"
        ),
    )
    .await;
    assert_eq!(
        affected(
            &db,
            &as_org_admin,
            &format!("UPDATE assessment_questions SET weight = 9 WHERE id = '{scale}'")
        )
        .await,
        0
    );
}
