//! Qdrant's public gRPC API, as Grape serves it: our own `.proto` files in `proto/` (package `qdrant`,
//! with Qdrant's service, message and field names and field numbers, so the wire format is Qdrant's)
//! and the Rust code tonic/prost generate from them, committed in `src/generated/` so that building
//! needs no `protoc`.
//!
//! The files hold the subset of the API Grape serves. A message field of a feature Grape does not
//! build is declared as `bytes` under Qdrant's number: it still decodes (a message is length-delimited
//! on the wire), so a server can refuse it by name instead of dropping it unseen.
//!
//! Regenerate after editing `proto/`: `cargo run -p grape-proto --features codegen --bin grape-proto-gen`
//! (a test fails while the generated code is older than the .proto files).
//!
//! ```
//! use grape_proto::qdrant::{point_id::PointIdOptions, PointId};
//! use prost::Message;
//! let id = PointId { point_id_options: Some(PointIdOptions::Num(7)) };
//! assert_eq!(PointId::decode(id.encode_to_vec().as_slice()).unwrap(), id);
//! ```

/// The `qdrant` package: messages, `*_server` (service traits and tonic servers) and `*_client` stubs.
#[allow(clippy::all, clippy::pedantic, missing_docs, rustdoc::all)]
pub mod qdrant {
    include!("generated/qdrant.rs");
}

#[cfg(test)]
#[path = "digest.rs"]
mod digest;

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::qdrant;

    /// The generated code must come from the current .proto files and generator.
    #[test]
    fn generated_code_is_up_to_date() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let recorded = std::fs::read_to_string(dir.join("src/generated/inputs.sha256")).unwrap();
        let current = super::digest::inputs_digest(dir).unwrap();
        assert_eq!(
            recorded.trim(),
            current,
            "proto/ changed since src/generated/ was written: run \
             `cargo run -p grape-proto --features codegen --bin grape-proto-gen`"
        );
    }

    /// Field numbers of an opaque (`bytes`) field and of a real message field are encoded alike, so a
    /// client's message decodes into the opaque field.
    #[test]
    fn opaque_field_decodes_a_message() {
        let selector = qdrant::PointsIdsList { ids: vec![qdrant::PointId::default()] };
        let mut wire = Vec::new();
        // `strict_mode_config` (17) of CreateCollection is opaque.
        prost::encoding::message::encode(17, &selector, &mut wire);
        let create = qdrant::CreateCollection::decode(wire.as_slice()).unwrap();
        assert_eq!(create.strict_mode_config.as_deref(), Some(selector.encode_to_vec().as_slice()));
    }
}
