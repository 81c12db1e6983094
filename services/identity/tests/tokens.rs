//! Access and refresh tokens: verification failures, revocation, rotation, suspension,
//! signing-key rotation and service accounts.

mod common;

use std::sync::Arc;

use common::*;
use ed25519_dalek::SigningKey;
use lyceum_platform::auth::{GrantedRole, GrpcKeySource, TokenSigner, TokenVerifier};
use lyceum_proto::identity::v1 as pb;
use tonic::Code;

impl TestApp {
    /// The active signing key, read and unsealed the way identity does, to forge tokens
    /// that only differ from real ones in the claims under test.
    async fn active_signer(&self) -> TokenSigner {
        let mut conn = self.db.admin_connection().await;
        let (kid, sealed): (String, Vec<u8>) = sqlx::query_as(
            "SELECT kid, private_key_encrypted FROM identity.signing_keys
             WHERE retired_at IS NULL ORDER BY created_at DESC LIMIT 1",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        let seed: [u8; 32] = self.sealer.decrypt(&sealed).unwrap().try_into().unwrap();
        TokenSigner::new(kid, SigningKey::from_bytes(&seed))
    }
}

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

    let signer = app.active_signer().await;
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
async fn reusing_a_rotated_refresh_token_revokes_its_whole_family() {
    let app = TestApp::spawn().await;
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

    // The stolen first token comes back: refused, and the legitimate successor dies too.
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
async fn concurrent_refreshes_of_one_token_rotate_it_once() {
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
    let results = futures::future::join_all(attempts).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
}

#[tokio::test]
async fn rotated_signing_keys_keep_old_tokens_valid_and_remote_verifiers_learn_new_keys() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let remote = TokenVerifier::new(Arc::new(
        GrpcKeySource::new(&format!("http://{}", app.server.addr)).unwrap(),
    ));
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
async fn service_accounts_exchange_their_secret_for_a_service_token() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let user = app.create_user(None, "someone@example.org", "").await;
    let created = app
        .auth()
        .create_service_account(authed(
            pb::CreateServiceAccountRequest {
                name: "learning".into(),
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner();
    let account = created.service_account.unwrap();

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
    assert_eq!(
        claims_of(&token).kind,
        lyceum_platform::auth::PrincipalKind::Service
    );

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
}

#[tokio::test]
async fn a_disabled_service_account_loses_its_secret_and_its_tokens() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    app.create_user(None, "plain@example.org", "").await;
    let someone = app.login("plain@example.org", PASSWORD).await.access_token;
    let created = app
        .auth()
        .create_service_account(authed(
            pb::CreateServiceAccountRequest {
                name: "cohort".into(),
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
