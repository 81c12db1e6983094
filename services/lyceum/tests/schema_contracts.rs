//! What the services' code assumes of their schemas, checked against the migrated schemas:
//! every unique constraint a store maps to a request field exists under that name, and
//! every unique constraint a caller can hit is mapped, so a renamed or a new constraint
//! fails here instead of answering ALREADY_EXISTS on no field.

use lyceum_platform::db::ServiceSchema;
use lyceum_platform::error::UniqueField;
use lyceum_testkit::TestDatabase;

/// The services that map unique violations to fields, with their tables.
const MAPPING_SERVICES: [(&ServiceSchema, &[UniqueField]); 2] = [
    (
        &lyceum_identity::SCHEMA,
        lyceum_identity::store::UNIQUE_FIELDS,
    ),
    (
        &lyceum_learning::SCHEMA,
        lyceum_learning::store::UNIQUE_FIELDS,
    ),
];

#[tokio::test]
async fn every_mapped_unique_constraint_exists_under_its_name() {
    let db = TestDatabase::create().await;
    let mut conn = db.admin_connection().await;
    for (schema, uniques) in MAPPING_SERVICES {
        db.migrate(schema).await;
        for unique in uniques {
            // A unique constraint, or a unique index (expression indexes have no constraint).
            let found: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM pg_indexes
                                WHERE schemaname = $1 AND indexname = $2
                                  AND indexdef LIKE 'CREATE UNIQUE INDEX%')",
            )
            .bind(schema.name)
            .bind(unique.constraint)
            .fetch_one(&mut conn)
            .await
            .expect("query the catalog");
            assert!(
                found,
                "{}: no unique constraint or index named {} (mapped to field {})",
                schema.name, unique.constraint, unique.field
            );
        }
    }
}

/// Unique constraints no caller's write can collide with, so that they need no field:
/// `(constraint, why)`. Primary keys are left out as a class: they are ids the services
/// generate (UUIDv7) or the keys their statements upsert on.
const NOT_FROM_CALLERS: &[(&str, &str)] = &[
    (
        "refresh_tokens_token_hash_key",
        "the hash of a 256-bit token the service generates",
    ),
    (
        "capacity_claims_live_holder_key",
        "the kit's capacity claim answers a holder's second live claim itself",
    ),
    (
        "certificates_number_key",
        "60 random bits the service generates for every certificate",
    ),
    (
        "student_progress_student_id_course_id_key",
        "written with its enrollment, whose own unique key answers first",
    ),
];

/// The other direction: a unique constraint added by a migration is either mapped to the
/// field it answers on, or listed above with the reason no caller can hit it.
#[tokio::test]
async fn every_unique_constraint_a_caller_can_hit_is_mapped() {
    let db = TestDatabase::create().await;
    let mut conn = db.admin_connection().await;
    for (schema, uniques) in MAPPING_SERVICES {
        db.migrate(schema).await;
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT indexname::text FROM pg_indexes
             WHERE schemaname = $1 AND indexdef LIKE 'CREATE UNIQUE INDEX%'
               AND indexname NOT LIKE '%\\_pkey'",
        )
        .bind(schema.name)
        .fetch_all(&mut conn)
        .await
        .expect("query the catalog");
        let unmapped: Vec<&String> = names
            .iter()
            .filter(|name| {
                !uniques.iter().any(|u| u.constraint == name.as_str())
                    && !NOT_FROM_CALLERS.iter().any(|(n, _)| n == name)
            })
            .collect();
        assert!(
            unmapped.is_empty(),
            "{}: unique constraints without a field: {unmapped:?}",
            schema.name
        );
    }
}
