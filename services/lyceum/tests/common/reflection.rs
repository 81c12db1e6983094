//! The served API as reflection describes it, and calls made from raw bytes: what the
//! assurance suites use to reach every method of every service without knowing them.

use std::collections::HashMap;

use bytes::{Buf, BufMut};
use futures::StreamExt;
use prost::Message;
use prost_types::{DescriptorProto, FileDescriptorProto};
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

/// Passes request and response bytes through untouched: the suites build their own.
#[derive(Default)]
pub struct RawCodec;

pub struct RawEncoder;
pub struct RawDecoder;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

impl Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawDecoder {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}

pub struct Method {
    /// `/package.Service/Method`
    pub path: String,
    /// `.package.Message`
    pub input: String,
    /// `.package.Message`
    pub output: String,
}

/// The request types and unary methods the server says it serves.
#[derive(Default)]
pub struct Served {
    pub messages: HashMap<String, DescriptorProto>,
    pub methods: Vec<Method>,
    pub services: Vec<String>,
    /// Files already read, by name.
    files: std::collections::HashSet<String>,
}

impl Served {
    pub async fn discover(channel: Channel) -> Self {
        let mut reflection = ServerReflectionClient::new(channel);
        let names =
            match reflect(&mut reflection, MessageRequest::ListServices(String::new())).await {
                MessageResponse::ListServicesResponse(list) => list.service,
                other => panic!("unexpected reflection answer {other:?}"),
            };
        let mut served = Served::default();
        for service in names.into_iter().map(|s| s.name) {
            if service.starts_with("grpc.") {
                continue; // health and reflection: not ours
            }
            let files = match reflect(
                &mut reflection,
                MessageRequest::FileContainingSymbol(service.clone()),
            )
            .await
            {
                MessageResponse::FileDescriptorResponse(files) => files.file_descriptor_proto,
                other => panic!("unexpected reflection answer {other:?}"),
            };
            let mut pending: Vec<Vec<u8>> = files;
            while let Some(bytes) = pending.pop() {
                let file = FileDescriptorProto::decode(bytes.as_slice()).expect("a descriptor");
                served.add_methods(&file, &service);
                if !served.files.insert(file.name().to_owned()) {
                    continue;
                }
                let package = file.package();
                for message in &file.message_type {
                    served.add_message(&format!(".{package}"), message);
                }
                // Imported files (shared messages such as Money) by name, once each.
                for dependency in &file.dependency {
                    if served.files.contains(dependency) {
                        continue;
                    }
                    if let MessageResponse::FileDescriptorResponse(more) = reflect(
                        &mut reflection,
                        MessageRequest::FileByFilename(dependency.clone()),
                    )
                    .await
                    {
                        pending.extend(more.file_descriptor_proto);
                    }
                }
            }
            served.services.push(service);
        }
        served
    }

    fn add_methods(&mut self, file: &FileDescriptorProto, service: &str) {
        let package = file.package();
        for described in &file.service {
            if format!("{package}.{}", described.name()) != service {
                continue;
            }
            for method in &described.method {
                if method.client_streaming() || method.server_streaming() {
                    continue;
                }
                self.methods.push(Method {
                    path: format!("/{service}/{}", method.name()),
                    input: method.input_type().to_owned(),
                    output: method.output_type().to_owned(),
                });
            }
        }
    }

    fn add_message(&mut self, scope: &str, message: &DescriptorProto) {
        let name = format!("{scope}.{}", message.name());
        for nested in &message.nested_type {
            self.add_message(&name, nested);
        }
        self.messages.insert(name, message.clone());
    }
}

async fn reflect(
    client: &mut ServerReflectionClient<Channel>,
    request: MessageRequest,
) -> MessageResponse {
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    };
    let mut answers = client
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .expect("reflection answers")
        .into_inner();
    answers
        .next()
        .await
        .expect("a reflection answer")
        .expect("a reflection answer")
        .message_response
        .expect("a reflection answer")
}
