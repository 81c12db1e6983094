//! What the services' code assumes of their schemas, checked against the migrated schemas:
//! every unique constraint a store maps to a request field exists under that name, so a
//! renamed constraint fails here instead of answering ALREADY_EXISTS on no field.

use lyceum_platform::error::UniqueField;
use lyceum_testkit::TestDatabase;

#[tokio::test]
async fn every_mapped_unique_constraint_exists_under_its_name() {
    let db = TestDatabase::create().await;
    let services: [(&lyceum_platform::db::ServiceSchema, &[UniqueField]); 2] = [
        (
            &lyceum_identity::SCHEMA,
            lyceum_identity::store::UNIQUE_FIELDS,
        ),
        (
            &lyceum_learning::SCHEMA,
            lyceum_learning::store::UNIQUE_FIELDS,
        ),
    ];
    let mut conn = db.admin_connection().await;
    for (schema, uniques) in services {
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
