//! Alias operations with Qdrant's JSON shape (`POST /collections/aliases` actions).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum AliasOperation {
    CreateAlias { collection_name: String, alias_name: String },
    DeleteAlias { alias_name: String },
    RenameAlias { old_alias_name: String, new_alias_name: String },
}

/// One alias and its collection (`GET /aliases` entries).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AliasDescription {
    pub alias_name: String,
    pub collection_name: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qdrant_shape() {
        let op: AliasOperation =
            serde_json::from_str(r#"{"create_alias": {"collection_name": "c", "alias_name": "a"}}"#).unwrap();
        assert_eq!(op, AliasOperation::CreateAlias { collection_name: "c".into(), alias_name: "a".into() });
    }
}
