//! Payload index declarations (Qdrant's `field_schema`): a bare type name or `{"type": ..., options}`.

use serde::{Deserialize, Serialize};

use crate::text::{TextIndexParams, Tokenizer};
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

    /// Qdrant's `enable_hnsw` option (default true): whether payload-aware HNSW links are built from
    /// this index.
    pub fn enable_hnsw(&self) -> bool {
        self.params()
            .and_then(|p| p.options.get("enable_hnsw"))
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(true)
    }

    /// Checks that Grape can build this index for `field`: every option belongs to the index type and
    /// has the right type (errors name the option).
    pub fn validate(&self, field: &str) -> Result<()> {
        if field.is_empty() {
            return Err(Error::bad_input("field_name: must not be empty"));
        }
        let Some(p) = self.params() else { return Ok(()) };
        let bad = |msg: String| Err(Error::bad_input(format!("field_schema: {msg}")));
        if p.kind == PayloadSchemaType::Text {
            return self.tokenizer().map(|_| ());
        }
        let allowed = p.kind.flags();
        for (name, value) in &p.options {
            if !allowed.contains(&name.as_str()) {
                return match name.as_str() {
                    "memory" => {
                        bad("`memory` (memory placement) is not built in Grape; `on_disk` is accepted".into())
                    }
                    "prefix" if p.kind == PayloadSchemaType::Keyword => {
                        bad("`prefix` (keyword prefix matching) is not built in Grape".into())
                    }
                    n if TEXT_OPTIONS.contains(&n) => {
                        bad(format!("`{n}` is an option of text indexes, not of {} indexes", p.kind.name()))
                    }
                    n => bad(format!(
                        "unknown option `{n}` for a {} index; expected one of {}",
                        p.kind.name(),
                        allowed.join(", ")
                    )),
                };
            }
            if !(value.is_boolean() || value.is_null()) {
                return bad(format!("`{name}` must be a boolean, not {value}"));
            }
        }
        let flag = |n: &str| p.options.get(n).and_then(serde_json::Value::as_bool);
        if p.kind == PayloadSchemaType::Integer
            && flag("lookup") == Some(false)
            && flag("range") == Some(false)
        {
            return bad("an integer index needs `lookup` or `range` (both are false)".into());
        }
        Ok(())
    }

    /// The tokenizer of a text index (the default one for `"text"` without options); an error names the
    /// option Grape cannot honour. Not a text index: an error.
    pub fn tokenizer(&self) -> Result<Tokenizer> {
        if self.data_type() != PayloadSchemaType::Text {
            return Err(Error::bad_input(format!("{} indexes have no tokenizer", self.data_type().name())));
        }
        let Some(p) = self.params() else { return Ok(Tokenizer::word()) };
        let bad = |msg: String| Error::bad_input(format!("field_schema: {msg}"));
        if p.options.contains_key("memory") {
            return Err(bad(
                "`memory` (memory placement) is not built in Grape; `on_disk` is accepted".into()
            ));
        }
        let params: TextIndexParams = serde_json::from_value(serde_json::Value::Object(p.options.clone()))
            .map_err(|e| bad(format!("text index: {e}")))?;
        Tokenizer::new(&params).map_err(|e| bad(format!("text index: {e}")))
    }
}

/// Options only text indexes have (named in the error when given to another type).
const TEXT_OPTIONS: &[&str] = &[
    "tokenizer",
    "min_token_len",
    "max_token_len",
    "lowercase",
    "ascii_folding",
    "phrase_matching",
    "stopwords",
    "stemmer",
];

impl PayloadSchemaType {
    /// Qdrant's name of the type (`keyword`, `integer`, ...).
    pub fn name(self) -> &'static str {
        match self {
            PayloadSchemaType::Keyword => "keyword",
            PayloadSchemaType::Integer => "integer",
            PayloadSchemaType::Float => "float",
            PayloadSchemaType::Geo => "geo",
            PayloadSchemaType::Text => "text",
            PayloadSchemaType::Bool => "bool",
            PayloadSchemaType::Datetime => "datetime",
            PayloadSchemaType::Uuid => "uuid",
        }
    }

    /// The boolean options of a non-text index of this type.
    fn flags(self) -> &'static [&'static str] {
        match self {
            PayloadSchemaType::Keyword | PayloadSchemaType::Uuid => &["is_tenant", "on_disk", "enable_hnsw"],
            PayloadSchemaType::Integer => &["lookup", "range", "is_principal", "on_disk", "enable_hnsw"],
            PayloadSchemaType::Float | PayloadSchemaType::Datetime => {
                &["is_principal", "on_disk", "enable_hnsw"]
            }
            PayloadSchemaType::Bool | PayloadSchemaType::Geo | PayloadSchemaType::Text => {
                &["on_disk", "enable_hnsw"]
            }
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
        assert!(PayloadFieldSchema::Type(PayloadSchemaType::Geo).validate("loc").is_ok());
        assert!(PayloadFieldSchema::Type(PayloadSchemaType::Text).validate("t").is_ok());
    }

    #[test]
    fn enable_hnsw_defaults_to_true() {
        let schema = |v: serde_json::Value| serde_json::from_value::<PayloadFieldSchema>(v).unwrap();
        assert!(schema(json!("keyword")).enable_hnsw());
        assert!(schema(json!({"type": "integer", "lookup": true})).enable_hnsw());
        assert!(schema(json!({"type": "keyword", "enable_hnsw": true})).enable_hnsw());
        assert!(!schema(json!({"type": "keyword", "enable_hnsw": false})).enable_hnsw());
    }

    #[test]
    fn options_are_checked_per_type() {
        let check = |v: serde_json::Value| {
            serde_json::from_value::<PayloadFieldSchema>(v).unwrap().validate("f").map_err(|e| e.to_string())
        };
        for good in [
            json!({"type": "keyword", "is_tenant": true, "on_disk": true}),
            json!({"type": "uuid", "is_tenant": false}),
            json!({"type": "integer", "lookup": false, "range": true, "is_principal": true}),
            json!({"type": "float", "is_principal": true, "on_disk": false}),
            json!({"type": "datetime", "is_principal": true}),
            json!({"type": "geo", "on_disk": true}),
            json!({"type": "text", "tokenizer": "prefix", "min_token_len": 2, "max_token_len": 10,
                   "lowercase": true, "phrase_matching": true, "stopwords": {"languages": ["english"], "custom": ["x"]},
                   "stemmer": {"type": "snowball", "language": "english"}, "on_disk": true}),
        ] {
            assert!(check(good.clone()).is_ok(), "{good}: {:?}", check(good.clone()));
        }
        for (bad, says) in [
            (json!({"type": "keyword", "lookup": true}), "unknown option `lookup`"),
            (json!({"type": "integer", "is_tenant": true}), "unknown option `is_tenant`"),
            (json!({"type": "keyword", "tokenizer": "word"}), "option of text indexes"),
            (json!({"type": "integer", "lookup": false, "range": false}), "needs `lookup` or `range`"),
            (json!({"type": "bool", "on_disk": "yes"}), "must be a boolean"),
            (json!({"type": "text", "tokenizer": "sentencepiece"}), "unknown variant"),
            (json!({"type": "text", "is_tenant": true}), "unknown field `is_tenant`"),
            (json!({"type": "text", "stopwords": "elvish"}), "unknown language"),
            (json!({"type": "geo", "memory": "cold"}), "not built"),
        ] {
            let err = check(bad.clone()).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }
}
