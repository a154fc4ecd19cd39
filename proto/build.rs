//! Compiles every `.proto` under `throughcare/` with protox (pure Rust, so no
//! system `protoc`) and generates prost messages and tonic clients and servers.
//! The encoded descriptor set is kept for gRPC server reflection.

use std::path::{Path, PathBuf};

const SENSITIVE_MESSAGES: [&str; 4] = [
    ".throughcare.types.v1.PersonIdentifiers",
    ".throughcare.types.v1.PersonDetails",
    ".throughcare.types.v1.HealthSummary",
    ".throughcare.referrals.v1.SelfReportAnswers",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read when the script runs, not baked in when it is compiled: a build
    // script compiled for one checkout may be reused by another that shares
    // the target directory.
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let root = manifest_dir.as_path();
    let mut files = Vec::new();
    collect_protos(&root.join("throughcare"), &mut files)?;
    files.sort();
    println!("cargo:rerun-if-changed=throughcare");

    let descriptors = protox::compile(&files, [root])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("throughcare_descriptor.bin"),
        prost::Message::encode_to_vec(&descriptors),
    )?;

    // `prost::Name` gives every message its full name, used as the CloudEvents type.
    let mut config = tonic_prost_build::Config::new();
    config.enable_type_names();
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // These carry identifiers or health facts: their `Debug` is written by hand
        // in lib.rs and redacts them, so no `{:?}` can leak them into a log.
        .skip_debug(SENSITIVE_MESSAGES)
        .compile_fds_with_config(descriptors, config)?;
    Ok(())
}

fn collect_protos(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_protos(&path, out)?;
        } else if path.extension().is_some_and(|ext| ext == "proto") {
            println!("cargo:rerun-if-changed={}", path.display());
            out.push(path);
        }
    }
    Ok(())
}
