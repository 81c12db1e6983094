//! A fuzzer of our own, driven by server reflection: every unary method of every service
//! the binary serves gets random, boundary and hostile requests (huge and empty strings,
//! NUL, right-to-left marks, invalid UTF-8 in bytes, extreme and unknown numbers, deep
//! nesting, long lists, bytes that are not protobuf), with no token, a token signed by a
//! key nobody knows and a real user's token. Any INTERNAL (except for bytes that are not
//! protobuf), UNKNOWN, UNAVAILABLE, DEADLINE_EXCEEDED or a dead server fails the run.
//!
//! The seed is fixed (`LYCEUM_FUZZ_SEED=random` or a number to change it) and so is the
//! number of requests per method and caller (`LYCEUM_FUZZ_CASES`, default 12). A case
//! that fails is printed with its seed, method and request bytes; it becomes a
//! regression test in the suite of the service it broke.

mod common;

use std::time::Duration;

use common::reflection::{RawCodec, Served};
use common::stack;
use common::*;
use ed25519_dalek::SigningKey;
use lyceum_platform::auth::{GrantedRole, PrincipalKind, TokenSigner};
use lyceum_proto::identity::v1 as identity;
use lyceum_testkit::{TestDatabase, fresh_claims};
use prost::encoding::{self, WireType};
use prost_types::FieldDescriptorProto;
use prost_types::field_descriptor_proto::{Label, Type};
use tonic::Code;
use tonic::transport::Channel;

/// xorshift64*: small, fast and the same on every machine for a given seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn percent(&mut self, p: u64) -> bool {
        self.next() % 100 < p
    }

    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())].clone()
    }
}

/// Nesting deeper than this stops (Struct and Value nest without end).
const MAX_DEPTH: usize = 12;

/// A request stops growing past this size, whatever its lists and nesting ask for.
const MAX_REQUEST_BYTES: usize = 1 << 20;

/// Builds hostile but well-formed requests from the descriptors.
struct Generator<'a> {
    served: &'a Served,
    rng: Rng,
    /// Ids of real objects, so some requests reach past validation.
    known_ids: Vec<String>,
}

impl Generator<'_> {
    fn message(&mut self, type_name: &str, depth: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let Some(descriptor) = self.served.messages.get(type_name) else {
            return out;
        };
        for field in &descriptor.field {
            if self.rng.percent(25) || out.len() > MAX_REQUEST_BYTES {
                continue;
            }
            let count = if field.label() == Label::Repeated {
                self.rng.pick(&[0, 1, 2, 3, 3, 1000])
            } else {
                1
            };
            for _ in 0..count {
                if out.len() > MAX_REQUEST_BYTES {
                    break;
                }
                self.field(field, depth, &mut out);
            }
        }
        out
    }

    fn field(&mut self, field: &FieldDescriptorProto, depth: usize, out: &mut Vec<u8>) {
        let tag = field.number() as u32;
        match field.r#type() {
            Type::String => {
                let value = self.string(field.name());
                encoding::string::encode(tag, &value, out);
            }
            Type::Bytes => {
                let value = self.bytes();
                encoding::bytes::encode(tag, &value, out);
            }
            Type::Bool => encoding::bool::encode(tag, &self.rng.percent(50), out),
            Type::Int32 | Type::Enum => encoding::int32::encode(tag, &self.int32(), out),
            Type::Sint32 => encoding::sint32::encode(tag, &self.int32(), out),
            Type::Sfixed32 => encoding::sfixed32::encode(tag, &self.int32(), out),
            Type::Uint32 => encoding::uint32::encode(tag, &(self.int32() as u32), out),
            Type::Fixed32 => encoding::fixed32::encode(tag, &(self.int32() as u32), out),
            Type::Int64 => encoding::int64::encode(tag, &self.int64(), out),
            Type::Sint64 => encoding::sint64::encode(tag, &self.int64(), out),
            Type::Sfixed64 => encoding::sfixed64::encode(tag, &self.int64(), out),
            Type::Uint64 => encoding::uint64::encode(tag, &(self.int64() as u64), out),
            Type::Fixed64 => encoding::fixed64::encode(tag, &(self.int64() as u64), out),
            Type::Double => encoding::double::encode(tag, &self.double(), out),
            Type::Float => encoding::float::encode(tag, &(self.double() as f32), out),
            Type::Message if depth < MAX_DEPTH => {
                let nested = self.message(field.type_name(), depth + 1);
                encoding::encode_key(tag, WireType::LengthDelimited, out);
                encoding::encode_varint(nested.len() as u64, out);
                out.extend_from_slice(&nested);
            }
            Type::Message | Type::Group => {}
        }
    }

    fn string(&mut self, field: &str) -> String {
        let id_like = field == "id" || field.ends_with("_id") || field.ends_with("_ids");
        if id_like && !self.known_ids.is_empty() && self.rng.percent(40) {
            return self.rng.pick(&self.known_ids);
        }
        match self.rng.below(16) {
            0 => String::new(),
            1 => " ".into(),
            2 => "\0".into(),
            3 => "a\0b".into(),
            4 => "x".repeat(256 << 10),
            5 => "💥".repeat(5000),
            6 => "'; DROP TABLE users; --".into(),
            7 => "\u{202e}evil\u{202d}".into(),
            8 => "../../../../etc/passwd".into(),
            9 => uuid::Uuid::new_v4().to_string(),
            10 => uuid::Uuid::nil().to_string(),
            11 => "not-a-uuid".into(),
            12 => "person@example.com".into(),
            13 => "USD".into(),
            14 => "%s%n%x{}{{}}".into(),
            _ => (0..self.rng.below(300))
                .map(|_| char::from(32 + self.rng.below(95) as u8))
                .collect(),
        }
    }

    fn bytes(&mut self) -> Vec<u8> {
        match self.rng.below(4) {
            0 => Vec::new(),
            1 => vec![0xff, 0xfe, 0xfd, 0x00, 0xc3, 0x28],
            2 => vec![0; 1 << 16],
            _ => (0..self.rng.below(512))
                .map(|_| self.rng.next() as u8)
                .collect(),
        }
    }

    fn int32(&mut self) -> i32 {
        let random = self.rng.next() as i32;
        self.rng.pick(&[
            0,
            1,
            -1,
            2,
            3,
            5,
            7,
            99,
            100,
            101,
            i32::MAX,
            i32::MIN,
            random,
        ])
    }

    fn int64(&mut self) -> i64 {
        let random = self.rng.next() as i64;
        self.rng.pick(&[
            0,
            1,
            -1,
            100,
            4999,
            i64::from(i32::MAX) + 1,
            i64::MAX,
            i64::MIN,
            random,
        ])
    }

    fn double(&mut self) -> f64 {
        self.rng.pick(&[
            0.0,
            -0.0,
            0.5,
            20.0,
            100.0,
            100.01,
            -1.0,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MAX,
            f64::MIN_POSITIVE,
        ])
    }

    /// Bytes that are not a protobuf message.
    fn garbage(&mut self) -> Vec<u8> {
        let mut bytes: Vec<u8> = (0..1 + self.rng.below(64))
            .map(|_| self.rng.next() as u8)
            .collect();
        // A length-delimited field that claims more bytes than follow.
        bytes.splice(0..0, [0x0a, 0xff, 0xff, 0x03]);
        bytes
    }
}

/// Codes no request may get back: the server failed, not the caller.
fn is_server_failure(code: Code, request_was_protobuf: bool) -> bool {
    match code {
        Code::Internal => request_was_protobuf,
        // The fuzzer never cancels a call itself: a cancelled one is a stream the server reset.
        Code::Unknown
        | Code::Unavailable
        | Code::DeadlineExceeded
        | Code::DataLoss
        | Code::Cancelled => true,
        _ => false,
    }
}

fn seed() -> u64 {
    match std::env::var("LYCEUM_FUZZ_SEED").as_deref() {
        Ok("random") => {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        }
        Ok(number) => {
            let seed: u64 = number
                .parse()
                .expect("LYCEUM_FUZZ_SEED is a number or `random`");
            // xorshift never leaves zero: every value would be the same.
            assert_ne!(seed, 0, "LYCEUM_FUZZ_SEED must not be 0");
            seed
        }
        Err(_) => 0x5eed_1ce0_f00d_cafe,
    }
}

/// A real user's access token, from identity itself, and the user's id.
async fn signed_in_user(channel: Channel) -> (String, String) {
    let email = format!("fuzz-{}@example.com", uuid::Uuid::now_v7());
    let user = identity::user_service_client::UserServiceClient::new(channel.clone())
        .create_user(identity::CreateUserRequest {
            email: email.clone(),
            password: stack::PASSWORD.into(),
            full_name: "Fuzz Tester".into(),
            ..Default::default()
        })
        .await
        .expect("register")
        .into_inner()
        .user
        .unwrap();
    let token = stack::sign_in(&channel, &email).await.expect("sign in");
    (token, user.id)
}

/// The first platform admin, made as an operator makes one, signed in.
async fn platform_admin(db: &TestDatabase, channel: Channel) -> String {
    let email = format!("fuzz-admin-{}@example.com", uuid::Uuid::now_v7());
    stack::bootstrap_platform_admin(&db.url, &email);
    stack::sign_in(&channel, &email)
        .await
        .expect("the admin signs in")
}

/// A well-formed token for a platform admin, signed by a key identity never issued.
fn forged_token() -> String {
    let signer = TokenSigner::new("forged".to_owned(), SigningKey::from_bytes(&[7; 32]));
    signer.sign(&fresh_claims(
        PrincipalKind::User,
        None,
        vec![GrantedRole {
            role: "admin".into(),
            org: None,
        }],
        vec![],
    ))
}

#[tokio::test]
async fn no_request_makes_any_served_method_fail_as_the_server() {
    let db = TestDatabase::create().await;
    for schema in &lyceum_schema::ALL {
        db.migrate(schema).await;
    }
    let prefix = unique_prefix("z");
    let mut service =
        ServiceProcess::start("all", &db.url, &lyceum_testkit::nats_url(), &prefix, None).await;
    let channel = Channel::from_shared(service.addr())
        .unwrap()
        .connect()
        .await
        .expect("connect");
    let served = Served::discover(channel.clone()).await;
    let (user_token, user_id) = signed_in_user(channel.clone()).await;
    let admin_token = platform_admin(&db, channel.clone()).await;
    // The admin reaches past every authorization check, into the handlers' own code.
    let callers = [
        ("no token", None),
        ("forged token", Some(forged_token())),
        ("user token", Some(user_token)),
        ("platform admin", Some(admin_token)),
    ];
    let seed = seed();
    let cases: usize = std::env::var("LYCEUM_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(12);
    let mut generator = Generator {
        served: &served,
        rng: Rng(seed),
        known_ids: vec![user_id],
    };
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    let mut calls = 0;
    let mut failures = Vec::new();
    for method in &served.methods {
        for (caller, token) in &callers {
            for case in 0..=cases {
                // The last case of each caller is not protobuf at all.
                let is_protobuf = case < cases;
                let body = if is_protobuf {
                    generator.message(&method.input, 0)
                } else {
                    generator.garbage()
                };
                let mut request = tonic::Request::new(body.clone());
                request.set_timeout(Duration::from_secs(10));
                if let Some(token) = token {
                    request
                        .metadata_mut()
                        .insert("authorization", format!("Bearer {token}").parse().unwrap());
                }
                grpc.ready().await.expect("the server takes requests");
                let path = method.path.parse().unwrap();
                let outcome = tokio::time::timeout(
                    Duration::from_secs(15),
                    grpc.unary(request, path, RawCodec),
                )
                .await;
                calls += 1;
                let code = match outcome {
                    Err(_) => Code::DeadlineExceeded,
                    Ok(Ok(_)) => Code::Ok,
                    Ok(Err(status)) => status.code(),
                };
                if is_server_failure(code, is_protobuf) {
                    failures.push(format!(
                        "{} as {caller}: {code:?} for {} request bytes (seed {seed}, case {case}): {}",
                        method.path,
                        body.len(),
                        hex_prefix(&body)
                    ));
                }
            }
        }
    }
    report_size(&format!(
        "fuzz: {} services, {} unary methods × {} callers × {} requests = {calls} calls, seed {seed}",
        served.services.len(),
        served.methods.len(),
        callers.len(),
        cases + 1
    ));
    assert!(
        served.services.len() >= 3 && served.methods.len() >= 30,
        "reflection found too little: {:?}",
        served.services
    );
    assert!(service.is_running(), "the server died during the run");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn hex_prefix(bytes: &[u8]) -> String {
    let shown: String = bytes.iter().take(64).map(|b| format!("{b:02x}")).collect();
    if bytes.len() > 64 {
        format!("{shown}…")
    } else {
        shown
    }
}
