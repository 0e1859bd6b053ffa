//! Point identifiers: an unsigned integer or a UUID, as in Qdrant.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use crate::Error;

/// External id of a point. JSON: a non-negative integer or a UUID string.
///
/// Ordering puts every numeric id before every UUID, as Qdrant's scroll does.
/// Binary encodings (postcard in the WAL and segment files) get a tagged form instead, since they
/// cannot tell an integer from a string on their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PointId {
    Num(u64),
    Uuid(Uuid),
}

impl PointId {
    /// Stable 64-bit hash used for slot routing (`slot = hash mod 65536`).
    pub fn stable_hash(&self) -> u64 {
        // FNV-1a over a tagged little-endian encoding: stable across platforms and releases.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut feed = |b: u8| {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        };
        match self {
            PointId::Num(n) => {
                feed(0);
                n.to_le_bytes().into_iter().for_each(&mut feed);
            }
            PointId::Uuid(u) => {
                feed(1);
                u.as_bytes().iter().copied().for_each(&mut feed);
            }
        }
        h
    }
}

/// The tagged form used by binary encodings.
#[derive(Serialize, Deserialize)]
enum TaggedId {
    Num(u64),
    Uuid([u8; 16]),
}

#[cfg(feature = "schema")]
impl schemars::JsonSchema for PointId {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ExtendedPointId".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A point id: an unsigned integer or a UUID",
            "anyOf": [
                { "type": "integer", "format": "uint64", "minimum": 0 },
                { "type": "string", "format": "uuid" }
            ]
        })
    }
}

impl Serialize for PointId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match (s.is_human_readable(), self) {
            (true, PointId::Num(n)) => s.serialize_u64(*n),
            (true, PointId::Uuid(u)) => s.collect_str(u),
            (false, PointId::Num(n)) => TaggedId::Num(*n).serialize(s),
            (false, PointId::Uuid(u)) => TaggedId::Uuid(*u.as_bytes()).serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for PointId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if !d.is_human_readable() {
            return Ok(match TaggedId::deserialize(d)? {
                TaggedId::Num(n) => PointId::Num(n),
                TaggedId::Uuid(b) => PointId::Uuid(Uuid::from_bytes(b)),
            });
        }
        struct IdVisitor;
        impl Visitor<'_> for IdVisitor {
            type Value = PointId;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an unsigned integer or a UUID")
            }

            fn visit_u64<E: de::Error>(self, n: u64) -> Result<PointId, E> {
                Ok(PointId::Num(n))
            }

            fn visit_i64<E: de::Error>(self, n: i64) -> Result<PointId, E> {
                u64::try_from(n).map(PointId::Num).map_err(|_| {
                    E::custom(format!(
                        "value {n} is not a valid point ID, valid values are either an unsigned integer or a UUID"
                    ))
                })
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<PointId, E> {
                Uuid::parse_str(v).map(PointId::Uuid).map_err(|_| {
                    E::custom(format!(
                        "value {v} is not a valid point ID, valid values are either an unsigned integer or a UUID"
                    ))
                })
            }
        }
        d.deserialize_any(IdVisitor)
    }
}

impl From<u64> for PointId {
    fn from(n: u64) -> Self {
        PointId::Num(n)
    }
}

impl From<Uuid> for PointId {
    fn from(u: Uuid) -> Self {
        PointId::Uuid(u)
    }
}

impl fmt::Display for PointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PointId::Num(n) => write!(f, "{n}"),
            PointId::Uuid(u) => write!(f, "{u}"),
        }
    }
}

impl FromStr for PointId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(n) = s.parse::<u64>() {
            return Ok(PointId::Num(n));
        }
        Uuid::parse_str(s).map(PointId::Uuid).map_err(|_| {
            Error::BadInput(format!("invalid point id {s:?}: expected an unsigned integer or a UUID"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_forms() {
        let n: PointId = serde_json::from_str("7").unwrap();
        assert_eq!(n, PointId::Num(7));
        let u: PointId = serde_json::from_str("\"550e8400-e29b-41d4-a716-446655440000\"").unwrap();
        assert!(matches!(u, PointId::Uuid(_)));
        assert_eq!(serde_json::to_string(&u).unwrap(), "\"550e8400-e29b-41d4-a716-446655440000\"");
        assert!(serde_json::from_str::<PointId>("-1").is_err());
        assert!(serde_json::from_str::<PointId>("\"nope\"").is_err());
        assert!(n < u);
        for id in [n, u] {
            let bytes = postcard::to_allocvec(&id).unwrap();
            assert_eq!(postcard::from_bytes::<PointId>(&bytes).unwrap(), id);
        }
    }

    #[test]
    fn parse() {
        assert_eq!("12".parse::<PointId>().unwrap(), PointId::Num(12));
        assert!("x".parse::<PointId>().is_err());
    }
}
