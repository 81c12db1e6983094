//! Generates the Rust code of every Lyceum protobuf package, with a vendored `protoc`
//! so that no system-wide installation is needed.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // Build scripts run single-threaded, so changing our own environment is sound here.
    unsafe { std::env::set_var("PROTOC", protoc) };

    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let protos = [
        root.join("lyceum/common/v1/money.proto"),
        root.join("lyceum/identity/v1/identity.proto"),
        root.join("lyceum/events/v1/envelope.proto"),
        root.join("lyceum/events/v1/identity.proto"),
        root.join("lyceum/events/v1/learning.proto"),
        root.join("lyceum/events/v1/instructor.proto"),
        root.join("lyceum/learning/v1/learning.proto"),
        root.join("lyceum/learning/v1/workshops.proto"),
        root.join("lyceum/learning/v1/certificates.proto"),
        root.join("lyceum/learning/v1/resources.proto"),
        root.join("lyceum/learning/v1/assessments.proto"),
        root.join("lyceum/instructor/v1/instructor.proto"),
    ];
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);

    // Type names let event payloads be packed into `google.protobuf.Any`.
    let mut config = prost_build::Config::new();
    config.enable_type_names();
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("lyceum_descriptor.bin"))
        .compile_with_config(config, &protos, std::slice::from_ref(&root))?;

    println!("cargo:rerun-if-changed={}", root.display());
    Ok(())
}
