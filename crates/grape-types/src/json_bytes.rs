//! Serde adapter that stores JSON values as JSON text inside binary encodings (postcard), which cannot
//! represent self-describing values directly.

use serde::{de::Error as _, Deserialize, Deserializer, Serialize, Serializer};

pub fn serialize<T: Serialize, S: Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
    let text = serde_json::to_vec(value).map_err(serde::ser::Error::custom)?;
    serde_bytes_compat::serialize(&text, s)
}

pub fn deserialize<'de, T: serde::de::DeserializeOwned, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
    let bytes: Vec<u8> = Vec::deserialize(d)?;
    serde_json::from_slice(&bytes).map_err(D::Error::custom)
}

mod serde_bytes_compat {
    use serde::Serializer;

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(bytes.iter())
    }
}
