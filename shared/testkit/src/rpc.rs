//! Calling the services the way clients do, and reading their answers.

use lyceum_proto::identity::v1 as idpb;
use lyceum_proto::identity::v1::auth_service_client::AuthServiceClient;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

/// `message` as a request carrying `token` as its bearer credentials.
pub fn authed<T>(message: T, token: &str) -> Request<T> {
    lyceum_platform::auth::with_bearer(Request::new(message), token)
}

/// Asserts that a call failed with `code` and returns its status for further checks.
#[track_caller]
pub fn assert_code<T: std::fmt::Debug>(result: Result<T, Status>, code: Code) -> Status {
    match result {
        Ok(value) => panic!("expected {code:?}, got success: {value:?}"),
        Err(status) => {
            assert_eq!(status.code(), code, "unexpected status: {status:?}");
            status
        }
    }
}

/// The field paths of a status's `BadRequest` details (none without such details).
pub fn violated_fields(status: &Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}

/// Creates a service account with `scopes` as `admin` and exchanges its secret for a
/// token, as an operator setting one up would: (account id, access token).
pub async fn service_account(
    auth: &mut AuthServiceClient<Channel>,
    admin: &str,
    name: &str,
    scopes: &[&str],
) -> (String, String) {
    let created = auth
        .create_service_account(authed(
            idpb::CreateServiceAccountRequest {
                name: name.into(),
                scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            },
            admin,
        ))
        .await
        .expect("create service account")
        .into_inner();
    let id = created.service_account.expect("service account").id;
    let token = auth
        .authenticate_service_account(idpb::AuthenticateServiceAccountRequest {
            service_account_id: id.clone(),
            client_secret: created.client_secret,
        })
        .await
        .expect("service account token")
        .into_inner()
        .tokens
        .expect("tokens")
        .access_token;
    (id, token)
}
