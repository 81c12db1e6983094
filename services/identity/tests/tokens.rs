//! Access and refresh tokens: verification failures, revocation, rotation, suspension,
//! signing-key rotation and service accounts.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use ed25519_dalek::SigningKey;
use lyceum_identity::IdentitySettings;
use lyceum_platform::auth::{
    GrantedRole, GrpcKeySource, PrincipalKind, TokenError, TokenSigner, TokenVerifier, scopes,
};
use lyceum_proto::identity::v1 as pb;
use lyceum_testkit::{assert_code, authed, claims_of, eventually_within, violated_fields};
use tonic::Code;

async fn get_self(app: &TestApp, user: &pb::User, token: &str) -> Result<pb::User, tonic::Status> {
    app.users()
        .get_user(authed(
            pb::GetUserRequest {
                id: user.id.clone(),
            },
            token,
        ))
        .await
        .map(|r| r.into_inner().user.unwrap())
}

#[tokio::test]
async fn expired_tampered_unknown_key_and_revoked_tokens_are_unauthenticated() {
    let app = TestApp::spawn().await;
    let user = app.create_user(None, "ada@example.org", "").await;
    let tokens = app.login("ada@example.org", PASSWORD).await;
    get_self(&app, &user, &tokens.access_token)
        .await
        .expect("a fresh token works");

    let signer = app.db.identity_signer(&app.sealer).await;
    let mut expired = claims_of(&tokens.access_token);
    expired.iat -= 7200;
    expired.exp -= 7200;
    assert_code(
        get_self(&app, &user, &signer.sign(&expired)).await,
        Code::Unauthenticated,
    );

    let mut elevated = claims_of(&tokens.access_token);
    elevated.roles.push(GrantedRole {
        role: "admin".into(),
        org: None,
    });
    let forged = signer.sign(&elevated);
    let mut parts: Vec<&str> = tokens.access_token.split('.').collect();
    parts[1] = forged.split('.').nth(1).unwrap();
    let tampered = parts.join(".");
    assert_code(
        get_self(&app, &user, &tampered).await,
        Code::Unauthenticated,
    );

    let stranger = TokenSigner::new("unknown-kid", SigningKey::from_bytes(&[9; 32]));
    assert_code(
        get_self(
            &app,
            &user,
            &stranger.sign(&claims_of(&tokens.access_token)),
        )
        .await,
        Code::Unauthenticated,
    );
    assert_code(
        get_self(&app, &user, "not.a.token").await,
        Code::Unauthenticated,
    );

    app.auth()
        .revoke_token(pb::RevokeTokenRequest {
            refresh_token: tokens.refresh_token.clone(),
        })
        .await
        .unwrap();
    assert_code(
        get_self(&app, &user, &tokens.access_token).await,
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
}

#[tokio::test]
async fn a_suspended_user_can_neither_log_in_nor_refresh() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let user = app.create_user(None, "mallory@example.org", "").await;
    let tokens = app.login("mallory@example.org", PASSWORD).await;

    app.users()
        .update_user(authed(
            pb::UpdateUserRequest {
                user: Some(pb::User {
                    id: user.id.clone(),
                    status: pb::UserStatus::Suspended as i32,
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["status".into()],
                }),
            },
            &admin,
        ))
        .await
        .expect("admin suspends the user");

    assert_code(
        app.auth()
            .authenticate(pb::AuthenticateRequest {
                email: "mallory@example.org".into(),
                password: PASSWORD.into(),
            })
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
        get_self(&app, &user, &tokens.access_token).await,
        Code::Unauthenticated,
    );
}

#[tokio::test]
async fn reusing_a_rotated_refresh_token_after_the_grace_window_revokes_its_whole_family() {
    let app = TestApp::spawn_with(IdentitySettings {
        refresh_grace: Duration::from_millis(500),
        ..Default::default()
    })
    .await;
    app.create_user(None, "eve@example.org", "").await;
    let first = app.login("eve@example.org", PASSWORD).await;
    let second = app
        .auth()
        .refresh_token(pb::RefreshTokenRequest {
            refresh_token: first.refresh_token.clone(),
        })
        .await
        .expect("first rotation")
        .into_inner()
        .tokens
        .unwrap();
    assert_ne!(first.refresh_token, second.refresh_token);

    // The stolen first token comes back after the grace window: refused, and the
    // legitimate successor dies too.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_code(
        app.auth()
            .refresh_token(pb::RefreshTokenRequest {
                refresh_token: first.refresh_token,
            })
            .await,
        Code::Unauthenticated,
    );
    assert_code(
        app.auth()
            .refresh_token(pb::RefreshTokenRequest {
                refresh_token: second.refresh_token,
            })
            .await,
        Code::Unauthenticated,
    );
    let me = claims_of(&second.access_token).sub.to_string();
    assert_code(
        app.users()
            .get_user(authed(pb::GetUserRequest { id: me }, &second.access_token))
            .await,
        Code::Unauthenticated,
    );
}

#[tokio::test]
async fn an_old_token_within_the_grace_window_is_reuse_once_its_successor_was_rotated() {
    let app = TestApp::spawn_with(IdentitySettings {
        refresh_grace: Duration::from_secs(30),
        ..Default::default()
    })
    .await;
    app.create_user(None, "mallory@example.org", "").await;
    let refresh = |token: String| {
        let mut auth = app.auth();
        async move {
            auth.refresh_token(pb::RefreshTokenRequest {
                refresh_token: token,
            })
            .await
            .map(|r| r.into_inner().tokens.unwrap())
        }
    };
    let a = app.login("mallory@example.org", PASSWORD).await;
    let b = refresh(a.refresh_token.clone()).await.expect("A -> B");
    let c = refresh(b.refresh_token.clone()).await.expect("B -> C");
    // A is still within its grace window, but its successor B has moved on: a copy of A
    // is being replayed, not a client asking twice.
    assert_code(
        refresh(a.refresh_token.clone()).await,
        Code::Unauthenticated,
    );
    assert_code(
        refresh(c.refresh_token.clone()).await,
        Code::Unauthenticated,
    );
    let mut conn = app.db.admin_connection().await;
    let reason: Option<String> = sqlx::query_scalar(
        "SELECT s.revoked_reason FROM identity.sessions s
           JOIN identity.users u ON u.id = s.user_id
         WHERE u.email = 'mallory@example.org'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(reason.as_deref(), Some("reuse_detected"));
}

#[tokio::test]
async fn concurrent_refreshes_of_one_token_all_get_the_same_new_pair() {
    let app = TestApp::spawn().await;
    app.create_user(None, "race@example.org", "").await;
    let tokens = app.login("race@example.org", PASSWORD).await;
    let attempts = (0..8).map(|_| {
        let mut auth = app.auth();
        let refresh_token = tokens.refresh_token.clone();
        async move {
            auth.refresh_token(pb::RefreshTokenRequest { refresh_token })
                .await
        }
    });
    let pairs: Vec<pb::TokenPair> = futures::future::join_all(attempts)
        .await
        .into_iter()
        .map(|r| r.expect("every refresh within the grace window succeeds"))
        .map(|r| r.into_inner().tokens.unwrap())
        .collect();
    assert!(pairs.iter().all(|p| *p == pairs[0]), "one pair for all");
    assert_ne!(pairs[0].refresh_token, tokens.refresh_token);

    // The token was rotated once: the session holds the first token and one successor.
    let mut conn = app.db.admin_connection().await;
    let rows: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM identity.refresh_tokens t JOIN identity.sessions s
           ON s.id = t.session_id WHERE s.revoked_at IS NULL",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(rows, 2);
    // The shared successor goes on working, and the session is alive.
    let next = app
        .auth()
        .refresh_token(pb::RefreshTokenRequest {
            refresh_token: pairs[0].refresh_token.clone(),
        })
        .await
        .expect("the successor rotates")
        .into_inner()
        .tokens
        .unwrap();
    let me = claims_of(&next.access_token).sub.to_string();
    app.users()
        .get_user(authed(pb::GetUserRequest { id: me }, &next.access_token))
        .await
        .expect("the session survived the double refresh");
}

#[tokio::test]
async fn rotated_signing_keys_keep_old_tokens_valid_and_remote_verifiers_learn_new_keys() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let remote = TokenVerifier::new(Arc::new(
        GrpcKeySource::new(&format!("http://{}", app.server.addr)).unwrap(),
    ))
    .with_key_refresh_interval(Duration::from_millis(1500));
    let old_kid = claims_header_kid(&admin);
    remote
        .verify(&admin)
        .await
        .expect("remote verifier fetches the first key");

    let rotated = app
        .auth()
        .rotate_signing_key(authed(pb::RotateSigningKeyRequest {}, &admin))
        .await
        .expect("admins rotate keys")
        .into_inner()
        .key
        .unwrap();
    assert_ne!(rotated.kid, old_kid);
    let keys = app
        .auth()
        .get_signing_keys(pb::GetSigningKeysRequest {})
        .await
        .unwrap()
        .into_inner()
        .keys;
    assert_eq!(keys.len(), 2);
    assert!(keys.iter().any(|k| k.kid == rotated.kid && k.active));

    let fresh = app.login(ADMIN_EMAIL, PASSWORD).await.access_token;
    assert_eq!(claims_header_kid(&fresh), rotated.kid);
    // Past the refresh interval, an unknown kid makes the remote verifier fetch again.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    remote
        .verify(&fresh)
        .await
        .expect("the new key is fetched on an unknown kid");
    remote
        .verify(&admin)
        .await
        .expect("the previous key still verifies");

    // A second rotation retires the first key. Identity refuses its tokens at once; the
    // remote verifier, which knew that key, stops accepting them after its interval.
    app.auth()
        .rotate_signing_key(authed(pb::RotateSigningKeyRequest {}, &fresh))
        .await
        .expect("rotate again");
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(
        remote.verify(&admin).await,
        Err(lyceum_platform::auth::TokenError::UnknownKey),
        "a retired key stops verifying on the interval"
    );
    remote
        .verify(&fresh)
        .await
        .expect("the previous-but-one key still verifies");

    app.create_user(None, "plain@example.org", "").await;
    let plain = app.login("plain@example.org", PASSWORD).await.access_token;
    assert_code(
        app.auth()
            .rotate_signing_key(authed(pb::RotateSigningKeyRequest {}, &plain))
            .await,
        Code::PermissionDenied,
    );
}

fn claims_header_kid(token: &str) -> String {
    use base64::Engine;
    let header = token.split('.').next().unwrap();
    let header: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .unwrap(),
    )
    .unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn service_accounts_exchange_their_secret_for_a_token_carrying_their_scopes() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let user = app.create_user(None, "someone@example.org", "").await;
    let created = app
        .auth()
        .create_service_account(authed(
            pb::CreateServiceAccountRequest {
                name: "learning".into(),
                scopes: vec![scopes::USERS_READ.into()],
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner();
    let account = created.service_account.unwrap();
    assert_eq!(account.scopes, vec![scopes::USERS_READ.to_owned()]);

    assert_code(
        app.auth()
            .authenticate_service_account(pb::AuthenticateServiceAccountRequest {
                service_account_id: account.id.clone(),
                client_secret: "wrong".into(),
            })
            .await,
        Code::Unauthenticated,
    );
    let token = app
        .auth()
        .authenticate_service_account(pb::AuthenticateServiceAccountRequest {
            service_account_id: account.id,
            client_secret: created.client_secret,
        })
        .await
        .unwrap()
        .into_inner()
        .tokens
        .unwrap()
        .access_token;
    let claims = claims_of(&token);
    assert_eq!(claims.kind, PrincipalKind::Service);
    assert_eq!(claims.scopes, vec![scopes::USERS_READ.to_owned()]);

    let users = app
        .users()
        .batch_get_users(authed(
            pb::BatchGetUsersRequest {
                ids: vec![user.id.clone(), uuid::Uuid::now_v7().to_string()],
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner()
        .users;
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].full_name, "User someone@example.org");

    // Unknown, repeated and missing scopes are bad input, each named.
    let status = assert_code(
        app.auth()
            .create_service_account(authed(
                pb::CreateServiceAccountRequest {
                    name: "broken".into(),
                    scopes: vec![
                        "admin".into(),
                        scopes::USERS_READ.into(),
                        scopes::USERS_READ.into(),
                    ],
                },
                &admin,
            ))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), vec!["scopes[0]", "scopes[2]"]);
    let status = assert_code(
        app.auth()
            .create_service_account(authed(
                pb::CreateServiceAccountRequest {
                    name: "nothing".into(),
                    scopes: vec![],
                },
                &admin,
            ))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), vec!["scopes"]);
}

#[tokio::test]
async fn no_service_account_grants_roles_changes_passwords_or_acts_as_an_admin() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let admin_id = claims_of(&admin).sub.to_string();
    let org = app.create_org(&admin, "acme").await;
    let member = app
        .create_user(Some(&admin), "member@acme.test", &org.id)
        .await;
    let (_, reader) = app
        .service_account(&admin, "reader", &[scopes::USERS_READ])
        .await;
    let (_, payments) = app.service_account(&admin, "payments", &scopes::ALL).await;

    for token in [&reader, &payments] {
        for (user_id, role, org_id) in [
            (&member.id, pb::Role::Admin, ""),
            (&member.id, pb::Role::OrgAdmin, org.id.as_str()),
        ] {
            let result = app
                .users()
                .grant_role(authed(
                    pb::GrantRoleRequest {
                        user_id: user_id.clone(),
                        role: role as i32,
                        organization_id: org_id.into(),
                        expire_time: None,
                    },
                    token,
                ))
                .await;
            assert_code(result, Code::PermissionDenied);
        }
        assert_code(
            app.users()
                .change_password(authed(
                    pb::ChangePasswordRequest {
                        user_id: admin_id.clone(),
                        current_password: String::new(),
                        new_password: "Taken-Over-Password-1".into(),
                    },
                    token,
                ))
                .await,
            Code::PermissionDenied,
        );
        assert_code(
            app.users()
                .update_user(authed(
                    pb::UpdateUserRequest {
                        user: Some(pb::User {
                            id: member.id.clone(),
                            status: pb::UserStatus::Suspended as i32,
                            ..Default::default()
                        }),
                        update_mask: Some(prost_types::FieldMask {
                            paths: vec!["status".into()],
                        }),
                    },
                    token,
                ))
                .await,
            Code::PermissionDenied,
        );
        assert_code(
            app.orgs()
                .create_organization(authed(
                    pb::CreateOrganizationRequest {
                        name: "Takeover".into(),
                        slug: "takeover".into(),
                        ..Default::default()
                    },
                    token,
                ))
                .await,
            Code::PermissionDenied,
        );
        assert_code(
            app.auth()
                .create_service_account(authed(
                    pb::CreateServiceAccountRequest {
                        name: "escalate".into(),
                        scopes: vec![scopes::USERS_READ.into()],
                    },
                    token,
                ))
                .await,
            Code::PermissionDenied,
        );
    }
    // Reading users is the scope's, not every service account's.
    app.users()
        .get_user(authed(
            pb::GetUserRequest {
                id: member.id.clone(),
            },
            &reader,
        ))
        .await
        .expect("users:read reads any user");
    let (_, payments_only) = app
        .service_account(&admin, "payments-only", &[scopes::PAYMENTS_WRITE])
        .await;
    assert_code(
        app.users()
            .get_user(authed(pb::GetUserRequest { id: member.id }, &payments_only))
            .await,
        Code::NotFound,
    );
    assert_code(
        app.users()
            .list_users(authed(pb::ListUsersRequest::default(), &payments_only))
            .await,
        Code::InvalidArgument,
    );
    // The admin's password still opens the admin's account.
    app.login(ADMIN_EMAIL, PASSWORD).await;
}

#[tokio::test]
async fn a_disabled_service_account_loses_its_secret_and_its_tokens_everywhere_within_seconds() {
    let app = TestApp::spawn().await;
    // Another service's verifier: keys over gRPC, disabled accounts from identity's events.
    let (_stop, following) = tokio::sync::watch::channel(false);
    let remote = Arc::new(TokenVerifier::new(Arc::new(
        GrpcKeySource::new(&format!("http://{}", app.server.addr)).unwrap(),
    )));
    remote.follow_disabled_service_accounts(app.bus.clone(), following.clone());
    let admin = app.admin_token().await;
    app.create_user(None, "plain@example.org", "").await;
    let someone = app.login("plain@example.org", PASSWORD).await.access_token;
    let created = app
        .auth()
        .create_service_account(authed(
            pb::CreateServiceAccountRequest {
                name: "cohort".into(),
                scopes: vec![scopes::USERS_READ.into()],
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner();
    let account = created.service_account.unwrap();
    assert!(account.disable_time.is_none());
    let exchange = pb::AuthenticateServiceAccountRequest {
        service_account_id: account.id.clone(),
        client_secret: created.client_secret,
    };
    let token = app
        .auth()
        .authenticate_service_account(exchange.clone())
        .await
        .unwrap()
        .into_inner()
        .tokens
        .unwrap()
        .access_token;
    eventually_within(
        "the remote verifier accepts the enabled account",
        Duration::from_secs(10),
        || async { remote.verify(&token).await.is_ok() },
    )
    .await;
    let disable = |id: &str, token: &str| {
        authed(
            pb::DisableServiceAccountRequest {
                service_account_id: id.to_owned(),
            },
            token,
        )
    };

    assert_code(
        app.auth()
            .disable_service_account(disable(&account.id, &someone))
            .await,
        Code::PermissionDenied,
    );
    assert_code(
        app.auth()
            .disable_service_account(disable(&uuid::Uuid::now_v7().to_string(), &admin))
            .await,
        Code::NotFound,
    );
    assert_code(
        app.auth()
            .disable_service_account(disable("not-an-id", &admin))
            .await,
        Code::InvalidArgument,
    );

    let disabled = app
        .auth()
        .disable_service_account(disable(&account.id, &admin))
        .await
        .unwrap()
        .into_inner()
        .service_account
        .unwrap();
    let disable_time = disabled.disable_time.expect("disabled");
    let again = app
        .auth()
        .disable_service_account(disable(&account.id, &admin))
        .await
        .unwrap()
        .into_inner()
        .service_account
        .unwrap();
    assert_eq!(
        again.disable_time,
        Some(disable_time),
        "the first time is kept"
    );

    assert_code(
        app.auth().authenticate_service_account(exchange).await,
        Code::Unauthenticated,
    );
    assert_code(
        app.users()
            .batch_get_users(authed(pb::BatchGetUsersRequest { ids: vec![] }, &token))
            .await,
        Code::Unauthenticated,
    );

    // Elsewhere: refused within seconds of the event, long before the token expires.
    let disabled_at = std::time::Instant::now();
    eventually_within(
        "the remote verifier refuses the disabled account",
        Duration::from_secs(10),
        || async { remote.verify(&token).await == Err(TokenError::Revoked) },
    )
    .await;
    assert!(disabled_at.elapsed() < Duration::from_secs(5));
    // A service started afterwards learns it from the stream before accepting any
    // service-account token: never accepted, at most "retry shortly" until caught up.
    let (_stop_late, following_late) = tokio::sync::watch::channel(false);
    let restarted = Arc::new(TokenVerifier::new(Arc::new(
        GrpcKeySource::new(&format!("http://{}", app.server.addr)).unwrap(),
    )));
    restarted.follow_disabled_service_accounts(app.bus.clone(), following_late);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match restarted.verify(&token).await {
            Err(TokenError::Revoked) => break,
            Err(TokenError::RevocationsUnavailable) => {}
            other => panic!("a restarted verifier answered {other:?}"),
        }
        assert!(std::time::Instant::now() < deadline, "never caught up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Disabling again publishes nothing more: one event for the account.
    let published: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM identity.outbox WHERE subject = 'identity.service_account.disabled'",
    )
    .fetch_one(&mut app.db.admin_connection().await)
    .await
    .unwrap();
    assert_eq!(published, 1);
}

#[tokio::test]
async fn the_admin_bootstrap_is_refused_once_an_admin_exists() {
    let app = TestApp::spawn().await;
    app.admin_token().await;
    let error = lyceum_identity::bootstrap_platform_admin(
        &app.database,
        "second@lyceum.test",
        PASSWORD,
        "Second",
    )
    .await
    .unwrap_err();
    assert!(error.to_string().contains("already exists"), "{error}");
}

#[tokio::test]
async fn a_stale_token_attached_to_a_refresh_does_not_block_it() {
    let app = TestApp::spawn().await;
    app.create_user(None, "habit@example.org", "").await;
    let tokens = app.login("habit@example.org", PASSWORD).await;
    let refreshed = app
        .auth()
        .refresh_token(authed(
            pb::RefreshTokenRequest {
                refresh_token: tokens.refresh_token,
            },
            "stale.expired.token",
        ))
        .await;
    assert!(refreshed.is_ok(), "{refreshed:?}");
    // Elsewhere a bad token is still refused.
    assert_code(
        app.users()
            .get_user(authed(
                pb::GetUserRequest {
                    id: uuid::Uuid::now_v7().to_string(),
                },
                "stale.expired.token",
            ))
            .await,
        Code::Unauthenticated,
    );
    // And text the database cannot store is bad input, not an internal error.
    let status = assert_code(
        app.users()
            .create_user(pb::CreateUserRequest {
                email: "nul@example.org".into(),
                password: PASSWORD.into(),
                full_name: "Null\u{0}Byte".into(),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), vec!["full_name"]);
}
