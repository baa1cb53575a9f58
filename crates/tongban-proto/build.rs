//! Compiles `proto/` with protox (pure Rust, no system protoc) and feeds the
//! descriptor set to tonic-prost-build, and to pbjson-build for the serde
//! impls behind the CLI's `--json` (proto3 JSON mapping, proto field names).

use std::path::PathBuf;

const FILES: &[&str] = &[
    "tongban/common/v1/common.proto",
    "tongban/federation/v1/federation.proto",
    "tongban/window/v1/window.proto",
    "tongban/review/v1/review.proto",
    "tongban/audit/v1/audit.proto",
    "tongban/mail/v1/mail.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read at run time, not baked in with env!: the same compiled build
    // script may serve another checkout of the workspace.
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    // protox does not announce its inputs to cargo; do it ourselves so a proto
    // edit (and only a proto edit) rebuilds this crate.
    println!("cargo:rerun-if-changed={}", root.display());
    for file in FILES {
        println!("cargo:rerun-if-changed={}", root.join(file).display());
    }
    let fds = protox::compile(FILES, [&root])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let descriptors = prost::Message::encode_to_vec(&fds);
    std::fs::write(out.join("tongban_descriptor.bin"), &descriptors)?;
    // Every field is emitted, defaults included, so a script sees the same
    // keys whatever the case's state; snake_case names as in the .proto.
    pbjson_build::Builder::new()
        .register_descriptors(&descriptors)?
        .preserve_proto_field_names()
        .emit_fields()
        .build(&[".tongban"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .bytes(".tongban.common.v1.MaterialChunk.data")
        .compile_fds(fds)?;
    Ok(())
}
