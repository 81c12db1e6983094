//! Tenant isolation, enforced twice: by the service from the caller's token, and by
//! row-level security for the service's own database role.

mod common;

use common::*;
use lyceum_identity::SCHEMA;
use lyceum_platform::db::TenantContext;
use lyceum_proto::identity::v1 as pb;
use lyceum_testkit::{assert_code, authed, claims_of, violated_fields};
use tonic::Code;
use uuid::Uuid;

struct TwoTenants {
    app: TestApp,
    org_a: pb::Organization,
    org_b: pb::Organization,
    alice: pb::User,
    alice_token: String,
    bert: pb::User,
    team_b: pb::Team,
}

async fn two_tenants() -> TwoTenants {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let org_a = app.create_org(&admin, "org-a").await;
    let org_b = app.create_org(&admin, "org-b").await;
    let (alice, alice_token) = app.org_admin_token(&admin, &org_a, "alice@a.example").await;
    let bert = app
        .create_user(Some(&admin), "bert@b.example", &org_b.id)
        .await;
    let team_b = app
        .orgs()
        .create_team(authed(
            pb::CreateTeamRequest {
                organization_id: org_b.id.clone(),
                name: "B team".into(),
                ..Default::default()
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .team
        .unwrap();
    TwoTenants {
        app,
        org_a,
        org_b,
        alice,
        alice_token,
        bert,
        team_b,
    }
}

#[tokio::test]
async fn an_org_admin_cannot_read_or_change_another_organizations_users_teams_or_grants() {
    let t = two_tenants().await;
    let (app, token) = (&t.app, t.alice_token.as_str());

    assert_code(
        app.users()
            .get_user(authed(
                pb::GetUserRequest {
                    id: t.bert.id.clone(),
                },
                token,
            ))
            .await,
        Code::NotFound,
    );
    assert_code(
        app.users()
            .list_users(authed(
                pb::ListUsersRequest {
                    organization_id: t.org_b.id.clone(),
                    ..Default::default()
                },
                token,
            ))
            .await,
        Code::NotFound,
    );
    assert_code(
        app.users()
            .update_user(authed(
                pb::UpdateUserRequest {
                    user: Some(pb::User {
                        id: t.bert.id.clone(),
                        full_name: "Hijacked".into(),
                        ..Default::default()
                    }),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["full_name".into()],
                    }),
                },
                token,
            ))
            .await,
        Code::NotFound,
    );
    assert_code(
        app.users()
            .list_user_roles(authed(
                pb::ListUserRolesRequest {
                    user_id: t.bert.id.clone(),
                },
                token,
            ))
            .await,
        Code::NotFound,
    );
    assert_code(
        app.users()
            .grant_role(authed(
                pb::GrantRoleRequest {
                    user_id: t.bert.id.clone(),
                    role: pb::Role::TeamLead as i32,
                    organization_id: t.org_b.id.clone(),
                    expire_time: None,
                },
                token,
            ))
            .await,
        Code::NotFound,
    );
    // Granting in B to a user of A is refused too: the scope is not Alice's.
    assert_code(
        app.users()
            .grant_role(authed(
                pb::GrantRoleRequest {
                    user_id: t.alice.id.clone(),
                    role: pb::Role::OrgAdmin as i32,
                    organization_id: t.org_b.id.clone(),
                    expire_time: None,
                },
                token,
            ))
            .await,
        Code::PermissionDenied,
    );
    assert_code(
        app.orgs()
            .get_organization(authed(
                pb::GetOrganizationRequest {
                    id: t.org_b.id.clone(),
                },
                token,
            ))
            .await,
        Code::NotFound,
    );
    assert_code(
        app.orgs()
            .update_organization(authed(
                pb::UpdateOrganizationRequest {
                    organization: Some(pb::Organization {
                        id: t.org_b.id.clone(),
                        name: "Mine now".into(),
                        ..Default::default()
                    }),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["name".into()],
                    }),
                },
                token,
            ))
            .await,
        Code::NotFound,
    );
    assert_code(
        app.orgs()
            .get_team(authed(
                pb::GetTeamRequest {
                    id: t.team_b.id.clone(),
                },
                token,
            ))
            .await,
        Code::NotFound,
    );
    assert_code(
        app.orgs()
            .delete_team(authed(
                pb::DeleteTeamRequest {
                    id: t.team_b.id.clone(),
                },
                token,
            ))
            .await,
        Code::NotFound,
    );
    assert_code(
        app.orgs()
            .add_team_member(authed(
                pb::AddTeamMemberRequest {
                    team_id: t.team_b.id.clone(),
                    user_id: t.alice.id.clone(),
                    role: 0,
                },
                token,
            ))
            .await,
        Code::NotFound,
    );
    let visible = app
        .orgs()
        .list_organizations(authed(pb::ListOrganizationsRequest::default(), token))
        .await
        .unwrap()
        .into_inner()
        .organizations;
    assert_eq!(
        visible.iter().map(|o| o.slug.as_str()).collect::<Vec<_>>(),
        vec!["org-a"]
    );
}

#[tokio::test]
async fn an_org_admin_manages_their_own_organization() {
    let t = two_tenants().await;
    let (app, token) = (&t.app, t.alice_token.as_str());
    let carol = app
        .create_user(Some(token), "carol@a.example", &t.org_a.id)
        .await;
    assert_eq!(carol.organization_id, t.org_a.id);
    let team = app
        .orgs()
        .create_team(authed(
            pb::CreateTeamRequest {
                organization_id: t.org_a.id.clone(),
                name: "Platform".into(),
                ..Default::default()
            },
            token,
        ))
        .await
        .unwrap()
        .into_inner()
        .team
        .unwrap();
    app.orgs()
        .add_team_member(authed(
            pb::AddTeamMemberRequest {
                team_id: team.id.clone(),
                user_id: carol.id.clone(),
                role: pb::TeamMemberRole::Lead as i32,
            },
            token,
        ))
        .await
        .unwrap();
    let members = app
        .orgs()
        .list_team_members(authed(
            pb::ListTeamMembersRequest {
                team_id: team.id.clone(),
                ..Default::default()
            },
            token,
        ))
        .await
        .unwrap()
        .into_inner()
        .members;
    assert_eq!(members.len(), 1);
    assert_code(
        app.orgs()
            .create_team(authed(
                pb::CreateTeamRequest {
                    organization_id: t.org_a.id.clone(),
                    name: "PLATFORM".into(),
                    ..Default::default()
                },
                token,
            ))
            .await,
        Code::AlreadyExists,
    );
    let users = app
        .users()
        .list_users(authed(
            pb::ListUsersRequest {
                organization_id: t.org_a.id.clone(),
                ..Default::default()
            },
            token,
        ))
        .await
        .unwrap()
        .into_inner()
        .users;
    let mut emails: Vec<_> = users.into_iter().map(|u| u.email).collect();
    emails.sort();
    assert_eq!(emails, vec!["alice@a.example", "carol@a.example"]);

    // Org admins cannot change their own billing tier; platform admins can.
    assert_code(
        app.orgs()
            .update_organization(authed(
                pb::UpdateOrganizationRequest {
                    organization: Some(pb::Organization {
                        id: t.org_a.id.clone(),
                        subscription_tier: pb::SubscriptionTier::Enterprise as i32,
                        ..Default::default()
                    }),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["subscription_tier".into()],
                    }),
                },
                token,
            ))
            .await,
        Code::PermissionDenied,
    );
}

#[tokio::test]
async fn row_level_security_hides_other_tenants_from_the_service_role() {
    let t = two_tenants().await;
    let org_a: Uuid = t.org_a.id.parse().unwrap();
    let org_b: Uuid = t.org_b.id.parse().unwrap();
    let alice: Uuid = t.alice.id.parse().unwrap();
    // The pool connects as lyceum_identity, exactly like the running service.
    let db = t.app.db.service_database(&SCHEMA).await;
    let as_alice = TenantContext {
        user_id: Some(alice),
        org_id: Some(org_a),
        roles: vec!["org_admin".into(), "user".into()],
    };

    let mut tx = db.begin(&as_alice).await.unwrap();
    for (table, column) in [
        ("users", "organization_id"),
        ("teams", "organization_id"),
        ("role_grants", "organization_id"),
        ("organizations", "id"),
    ] {
        let count: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {table} WHERE {column} = $1"
        )))
        .bind(org_b)
        .fetch_one(tx.conn())
        .await
        .unwrap();
        assert_eq!(count, 0, "{table} leaks rows of organization B");
    }
    let updated = sqlx::query("UPDATE users SET full_name = 'x' WHERE organization_id = $1")
        .bind(org_b)
        .execute(tx.conn())
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(updated, 0);
    let own: i64 = sqlx::query_scalar("SELECT count(*) FROM users WHERE organization_id = $1")
        .bind(org_a)
        .fetch_one(tx.conn())
        .await
        .unwrap();
    assert_eq!(own, 1, "the control: Alice sees her own organization");
    tx.rollback().await.unwrap();

    // Without any context, nothing at all is visible.
    let mut tx = db.begin(&TenantContext::anonymous()).await.unwrap();
    let any: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(tx.conn())
        .await
        .unwrap();
    assert_eq!(any, 0);
    let secrets: i64 = sqlx::query_scalar("SELECT count(*) FROM password_credentials")
        .fetch_one(tx.conn())
        .await
        .unwrap();
    assert_eq!(secrets, 0);
}

#[tokio::test]
async fn the_service_role_is_neither_superuser_nor_owner_and_cannot_bypass_rls() {
    let app = TestApp::spawn().await;
    let mut conn = app.db.admin_connection().await;
    let (superuser, bypass, create_role, create_db): (bool, bool, bool, bool) =
        sqlx::query_as("SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = 'lyceum_identity'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert!(!superuser && !bypass && !create_role && !create_db);
    let owned: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'identity' AND tableowner = 'lyceum_identity'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(owned, 0);
    let without_rls: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'identity' AND c.relkind = 'r' AND NOT c.relrowsecurity AND c.relname NOT IN ('_sqlx_migrations', '_lyceum_kit_migrations')",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert!(
        without_rls.is_empty(),
        "tables without RLS: {without_rls:?}"
    );
    let (creates_in_public, reads_migrations): (bool, bool) = sqlx::query_as(
        "SELECT has_schema_privilege('lyceum_identity', 'public', 'CREATE'),
                has_table_privilege('lyceum_identity', 'identity._sqlx_migrations', 'SELECT')
                OR has_table_privilege('lyceum_identity', 'identity._lyceum_kit_migrations', 'SELECT')",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert!(!creates_in_public && !reads_migrations);
}

#[tokio::test]
async fn expired_role_grants_appear_neither_in_tokens_nor_in_has_role() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let user = app.create_user(None, "teacher@example.org", "").await;
    let in_an_hour = prost_types::Timestamp {
        seconds: chrono::Utc::now().timestamp() + 3600,
        nanos: 0,
    };
    app.users()
        .grant_role(authed(
            pb::GrantRoleRequest {
                user_id: user.id.clone(),
                role: pb::Role::Instructor as i32,
                organization_id: String::new(),
                expire_time: Some(in_an_hour),
            },
            &admin,
        ))
        .await
        .unwrap();
    let has_instructor = |token: &str| {
        claims_of(token)
            .roles
            .iter()
            .any(|r| r.role == "instructor")
    };
    let has_role = || async {
        app.users()
            .has_role(authed(
                pb::HasRoleRequest {
                    user_id: user.id.clone(),
                    role: pb::Role::Instructor as i32,
                    organization_id: String::new(),
                },
                &admin,
            ))
            .await
            .unwrap()
            .into_inner()
            .has_role
    };
    assert!(has_instructor(
        &app.login("teacher@example.org", PASSWORD)
            .await
            .access_token
    ));
    assert!(has_role().await);

    let mut conn = app.db.admin_connection().await;
    sqlx::query("UPDATE identity.role_grants SET expires_at = now() - interval '1 second' WHERE role = 'instructor'")
        .execute(&mut conn)
        .await
        .unwrap();

    assert!(!has_instructor(
        &app.login("teacher@example.org", PASSWORD)
            .await
            .access_token
    ));
    assert!(!has_role().await);
    let roles = app
        .users()
        .list_user_roles(authed(
            pb::ListUserRolesRequest {
                user_id: user.id.clone(),
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .grants;
    assert!(roles.iter().all(|g| g.role != pb::Role::Instructor as i32));

    let past = prost_types::Timestamp {
        seconds: chrono::Utc::now().timestamp() - 10,
        nanos: 0,
    };
    let status = assert_code(
        app.users()
            .grant_role(authed(
                pb::GrantRoleRequest {
                    user_id: user.id.clone(),
                    role: pb::Role::Expert as i32,
                    organization_id: String::new(),
                    expire_time: Some(past),
                },
                &admin,
            ))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), vec!["expire_time"]);
}

#[tokio::test]
async fn org_admins_cannot_touch_those_who_outrank_them_and_suspension_ends_sessions() {
    let t = two_tenants().await;
    let (app, token) = (&t.app, t.alice_token.as_str());
    let admin = app.login(ADMIN_EMAIL, PASSWORD).await.access_token;
    // A platform admin whose home organization is A is beyond A's org admin.
    let boss = app
        .create_user(Some(&admin), "boss@a.example", &t.org_a.id)
        .await;
    app.users()
        .grant_role(authed(
            pb::GrantRoleRequest {
                user_id: boss.id.clone(),
                role: pb::Role::Admin as i32,
                organization_id: String::new(),
                expire_time: None,
            },
            &admin,
        ))
        .await
        .unwrap();
    let suspend = |id: &str| pb::UpdateUserRequest {
        user: Some(pb::User {
            id: id.into(),
            status: pb::UserStatus::Suspended as i32,
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["status".into()],
        }),
    };
    assert_code(
        app.users()
            .update_user(authed(suspend(&boss.id), token))
            .await,
        Code::PermissionDenied,
    );
    // Nor may an org admin reset a member's password (platform admins only).
    let carol = app
        .create_user(Some(token), "carol@a.example", &t.org_a.id)
        .await;
    assert_code(
        app.users()
            .change_password(authed(
                pb::ChangePasswordRequest {
                    user_id: carol.id.clone(),
                    current_password: String::new(),
                    new_password: "Another-Horse-43".into(),
                },
                token,
            ))
            .await,
        Code::PermissionDenied,
    );

    // Suspending a member ends their sessions, and reactivating them does not revive them.
    let carol_tokens = app.login("carol@a.example", PASSWORD).await;
    app.users()
        .update_user(authed(suspend(&carol.id), token))
        .await
        .unwrap();
    app.users()
        .update_user(authed(
            pb::UpdateUserRequest {
                user: Some(pb::User {
                    id: carol.id.clone(),
                    status: pb::UserStatus::Active as i32,
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["status".into()],
                }),
            },
            token,
        ))
        .await
        .unwrap();
    assert_code(
        app.auth()
            .refresh_token(pb::RefreshTokenRequest {
                refresh_token: carol_tokens.refresh_token,
            })
            .await,
        Code::Unauthenticated,
    );
    assert_code(
        app.users()
            .get_user(authed(
                pb::GetUserRequest {
                    id: carol.id.clone(),
                },
                &carol_tokens.access_token,
            ))
            .await,
        Code::Unauthenticated,
    );
}

#[tokio::test]
async fn revoking_a_role_ends_the_sessions_that_carried_it() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let user = app.create_user(None, "former@example.org", "").await;
    let grant = app
        .users()
        .grant_role(authed(
            pb::GrantRoleRequest {
                user_id: user.id.clone(),
                role: pb::Role::Admin as i32,
                organization_id: String::new(),
                expire_time: None,
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .grant
        .unwrap();
    let tokens = app.login("former@example.org", PASSWORD).await;
    app.users()
        .revoke_role(authed(
            pb::RevokeRoleRequest {
                grant_id: grant.id.clone(),
            },
            &admin,
        ))
        .await
        .unwrap();
    // The token still names the admin role, but its session is over.
    assert_code(
        app.users()
            .grant_role(authed(
                pb::GrantRoleRequest {
                    user_id: user.id.clone(),
                    role: pb::Role::Admin as i32,
                    organization_id: String::new(),
                    expire_time: None,
                },
                &tokens.access_token,
            ))
            .await,
        Code::Unauthenticated,
    );
    assert_code(
        app.auth()
            .refresh_token(pb::RefreshTokenRequest {
                refresh_token: tokens.refresh_token,
            })
            .await,
        Code::Unauthenticated,
    );
    assert_code(
        app.users()
            .revoke_role(authed(pb::RevokeRoleRequest { grant_id: grant.id }, &admin))
            .await,
        Code::NotFound,
    );
}
