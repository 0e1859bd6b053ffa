//! Regenerates `src/generated/` from `proto/` with tonic/prost and the vendored protoc:
//! `cargo run -p grape-proto --features codegen --bin grape-proto-gen`.

#[path = "../digest.rs"]
mod digest;

use std::path::{Path, PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out = crate_dir.join("src/generated");
    std::fs::create_dir_all(&out)?;
    // prost-build runs the protoc named by PROTOC; the vendored one also brings the well-known types.
    std::env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?);
    let protos: Vec<PathBuf> = ["qdrant.proto"].iter().map(|p| crate_dir.join("proto").join(p)).collect();
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .build_transport(false)
        .emit_rerun_if_changed(false)
        .out_dir(&out)
        .compile_protos(&protos, &[crate_dir.join("proto"), protoc_bin_vendored::include_path()?])?;
    let digest = digest::inputs_digest(&crate_dir)?;
    std::fs::write(out.join("inputs.sha256"), format!("{digest}\n"))?;
    report(&out)?;
    Ok(())
}

fn report(out: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(out)? {
        let entry = entry?;
        println!("wrote {} ({} bytes)", entry.path().display(), entry.metadata()?.len());
    }
    Ok(())
}
