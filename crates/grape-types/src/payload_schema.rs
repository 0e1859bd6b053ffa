//! Payload index declarations (Qdrant's `field_schema`): a bare type name or `{"type": ..., options}`.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The value type a payload index is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum PayloadSchemaType {
    Keyword,
    Integer,
    Float,
    Geo,
    Text,
    Bool,
    Datetime,
    Uuid,
}

/// `field_schema` of a create-index request, and what collection info reports back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(untagged)]
pub enum PayloadFieldSchema {
    Type(PayloadSchemaType),
    Params(PayloadSchemaParams),
}

/// The object form: `type` plus type-specific options (`is_tenant`, `lookup`, `range`, `on_disk`, ...),
/// kept as given so collection info echoes them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PayloadSchemaParams {
    #[serde(rename = "type")]
    pub kind: PayloadSchemaType,
    #[serde(flatten)]
    pub options: serde_json::Map<String, serde_json::Value>,
}

impl PayloadFieldSchema {
    pub fn data_type(&self) -> PayloadSchemaType {
        match self {
            PayloadFieldSchema::Type(t) => *t,
            PayloadFieldSchema::Params(p) => p.kind,
        }
    }

    /// The options object, when the request gave one (reported as `params` in collection info).
    pub fn params(&self) -> Option<&PayloadSchemaParams> {
        match self {
            PayloadFieldSchema::Type(_) => None,
            PayloadFieldSchema::Params(p) => Some(p),
        }
    }

    /// Checks that Grape can build this index for `field`.
    pub fn validate(&self, field: &str) -> Result<()> {
        if field.is_empty() {
            return Err(Error::bad_input("field_name: must not be empty"));
        }
        match self.data_type() {
            PayloadSchemaType::Geo | PayloadSchemaType::Text => Err(Error::bad_input(format!(
                "field_schema: {:?} payload indexes are not built in Grape yet (filters on {field} still work \
                 without an index)",
                self.data_type()
            ))),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn both_forms_round_trip() {
        let t: PayloadFieldSchema = serde_json::from_value(json!("keyword")).unwrap();
        assert_eq!(t.data_type(), PayloadSchemaType::Keyword);
        let p: PayloadFieldSchema =
            serde_json::from_value(json!({"type": "integer", "lookup": true, "range": false})).unwrap();
        assert_eq!(p.data_type(), PayloadSchemaType::Integer);
        assert_eq!(
            serde_json::to_value(&p).unwrap(),
            json!({"type": "integer", "lookup": true, "range": false})
        );
        assert!(serde_json::from_value::<PayloadFieldSchema>(json!("keywords")).is_err());
        assert!(PayloadFieldSchema::Type(PayloadSchemaType::Geo).validate("loc").is_err());
    }
}
