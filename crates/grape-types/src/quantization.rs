//! Quantization configuration and search parameters, with Qdrant's JSON shapes and defaults.
//!
//! A collection's `quantization_config` applies to every dense vector; a vector's own
//! `quantization_config` (inside its params) overrides it. Collection updates take a
//! [`QuantizationConfigDiff`], which may also be the string `"Disabled"`.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// How stored vectors are compressed (Qdrant's `QuantizationConfig`, an untagged union). Parsing picks
/// the method by its key, so a bad value is reported with its field instead of "no variant matched".
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(untagged)]
pub enum QuantizationConfig {
    Scalar(ScalarQuantization),
    Product(ProductQuantization),
    Binary(BinaryQuantization),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ScalarQuantization {
    pub scalar: ScalarQuantizationConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ScalarQuantizationConfig {
    #[serde(rename = "type")]
    pub r#type: ScalarType,
    /// Share of the values the int8 range covers, in `[0.5, 1]`; the range is the whole value range
    /// when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantile: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub always_ram: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum ScalarType {
    Int8,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ProductQuantization {
    pub product: ProductQuantizationConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ProductQuantizationConfig {
    pub compression: CompressionRatio,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub always_ram: Option<bool>,
}

/// Size of float32 vectors over the size of their product codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum CompressionRatio {
    X4,
    X8,
    X16,
    X32,
    X64,
}

impl CompressionRatio {
    pub fn factor(self) -> usize {
        match self {
            CompressionRatio::X4 => 4,
            CompressionRatio::X8 => 8,
            CompressionRatio::X16 => 16,
            CompressionRatio::X32 => 32,
            CompressionRatio::X64 => 64,
        }
    }

    /// Dimensions per one-byte code: a float32 is 4 bytes, so a ratio of `r` packs `r / 4` of them.
    pub fn sub_dim(self) -> usize {
        self.factor() / 4
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct BinaryQuantization {
    pub binary: BinaryQuantizationConfig,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct BinaryQuantizationConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub always_ram: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<BinaryEncoding>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_encoding: Option<BinaryQueryEncoding>,
}

/// Bits per stored dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum BinaryEncoding {
    #[default]
    OneBit,
    TwoBits,
    OneAndHalfBits,
}

/// How the query is encoded against binary codes: as bits too (`default`, `binary`), or as 4- or 8-bit
/// scalars (asymmetric scoring, more accurate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum BinaryQueryEncoding {
    #[default]
    Default,
    Binary,
    Scalar4bits,
    Scalar8bits,
}

impl QuantizationConfig {
    pub fn always_ram(&self) -> bool {
        match self {
            QuantizationConfig::Scalar(s) => s.scalar.always_ram,
            QuantizationConfig::Product(p) => p.product.always_ram,
            QuantizationConfig::Binary(b) => b.binary.always_ram,
        }
        .unwrap_or(false)
    }

    /// Checks the parameters that do not depend on a vector (the scalar quantile).
    pub fn validate_params(&self) -> Result<()> {
        if let QuantizationConfig::Scalar(s) = self {
            if let Some(q) = s.scalar.quantile {
                if !(0.5..=1.0).contains(&q) {
                    return Err(Error::bad_input(format!(
                        "quantization_config.scalar.quantile: must be between 0.5 and 1, got {q}"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Checks the parameters against the vector dimension `dim` of vector `name` (for messages).
    pub fn validate(&self, name: &str, dim: usize) -> Result<()> {
        self.validate_params()?;
        let at = if name.is_empty() { String::new() } else { format!(" of vector {name:?}") };
        match self {
            QuantizationConfig::Scalar(_) => {}
            QuantizationConfig::Product(p) => {
                let sub = p.product.compression.sub_dim();
                if !dim.is_multiple_of(sub) {
                    return Err(Error::bad_input(format!(
                        "quantization_config.product.compression: x{} packs {sub} dimensions per code \
                         byte, which does not divide the dimension {dim}{at}",
                        p.product.compression.factor()
                    )));
                }
            }
            QuantizationConfig::Binary(_) => {}
        }
        Ok(())
    }
}

/// The empty marker of a disabled quantization in an update (`"Disabled"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum Disabled {
    Disabled,
}

/// A change of quantization in a collection update: a new configuration or `"Disabled"`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(untagged)]
pub enum QuantizationConfigDiff {
    Scalar(ScalarQuantization),
    Product(ProductQuantization),
    Binary(BinaryQuantization),
    Disabled(Disabled),
}

impl QuantizationConfigDiff {
    /// The configuration after the change (`None` = no quantization).
    pub fn resolve(&self) -> Option<QuantizationConfig> {
        match self {
            QuantizationConfigDiff::Scalar(s) => Some(QuantizationConfig::Scalar(s.clone())),
            QuantizationConfigDiff::Product(p) => Some(QuantizationConfig::Product(p.clone())),
            QuantizationConfigDiff::Binary(b) => Some(QuantizationConfig::Binary(b.clone())),
            QuantizationConfigDiff::Disabled(_) => None,
        }
    }
}

impl<'de> Deserialize<'de> for QuantizationConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        parse_method(serde_json::Value::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl<'de> Deserialize<'de> for QuantizationConfigDiff {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        if v.as_str() == Some("Disabled") {
            return Ok(QuantizationConfigDiff::Disabled(Disabled::Disabled));
        }
        Ok(match parse_method(v).map_err(serde::de::Error::custom)? {
            QuantizationConfig::Scalar(s) => QuantizationConfigDiff::Scalar(s),
            QuantizationConfig::Product(p) => QuantizationConfigDiff::Product(p),
            QuantizationConfig::Binary(b) => QuantizationConfigDiff::Binary(b),
        })
    }
}

fn parse_method(v: serde_json::Value) -> std::result::Result<QuantizationConfig, String> {
    const EXPECTED: &str =
        "quantization config must be an object with one key: `scalar`, `product` or `binary` (or \"Disabled\" in an update)";
    let serde_json::Value::Object(map) = v else { return Err(EXPECTED.into()) };
    let mut entries = map.into_iter();
    let (Some((key, inner)), None) = (entries.next(), entries.next()) else { return Err(EXPECTED.into()) };
    let err = |e: serde_json::Error| format!("{key}: {e}");
    Ok(match key.as_str() {
        "scalar" => QuantizationConfig::Scalar(ScalarQuantization {
            scalar: serde_json::from_value(inner).map_err(err)?,
        }),
        "product" => QuantizationConfig::Product(ProductQuantization {
            product: serde_json::from_value(inner).map_err(err)?,
        }),
        "binary" => QuantizationConfig::Binary(BinaryQuantization {
            binary: serde_json::from_value(inner).map_err(err)?,
        }),
        _ => return Err(EXPECTED.into()),
    })
}

/// Per-request quantization knobs (`params.quantization`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct QuantizationSearchParams {
    /// Search the original vectors only.
    #[serde(default)]
    pub ignore: bool,
    /// Re-score the quantized candidates with the original vectors. Unset: on for binary quantization,
    /// off for scalar and product (Qdrant's defaults).
    #[serde(default)]
    pub rescore: Option<bool>,
    /// Candidates taken from the quantized search per result wanted (at least 1; default 1).
    #[serde(default)]
    pub oversampling: Option<f64>,
}

impl QuantizationSearchParams {
    pub fn validate(&self) -> Result<()> {
        if let Some(o) = self.oversampling {
            if o.is_nan() || o < 1.0 {
                return Err(Error::bad_input(format!(
                    "params.quantization.oversampling: value {o} invalid, must be 1.0 or larger"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_qdrant_shapes() {
        let s: QuantizationConfig =
            serde_json::from_str(r#"{"scalar": {"type": "int8", "quantile": 0.99, "always_ram": true}}"#)
                .unwrap();
        assert!(s.always_ram());
        let p: QuantizationConfig =
            serde_json::from_str(r#"{"product": {"compression": "x16", "always_ram": false}}"#).unwrap();
        assert_eq!(
            p,
            QuantizationConfig::Product(ProductQuantization {
                product: ProductQuantizationConfig {
                    compression: CompressionRatio::X16,
                    always_ram: Some(false)
                }
            })
        );
        let b: QuantizationConfig = serde_json::from_str(
            r#"{"binary": {"encoding": "one_and_half_bits", "query_encoding": "scalar8bits"}}"#,
        )
        .unwrap();
        let QuantizationConfig::Binary(b) = b else { panic!("binary expected") };
        assert_eq!(b.binary.encoding, Some(BinaryEncoding::OneAndHalfBits));
        assert_eq!(b.binary.query_encoding, Some(BinaryQueryEncoding::Scalar8bits));
        assert_eq!(
            serde_json::to_string(&b).unwrap(),
            r#"{"binary":{"encoding":"one_and_half_bits","query_encoding":"scalar8bits"}}"#
        );
        let d: QuantizationConfigDiff = serde_json::from_str(r#""Disabled""#).unwrap();
        assert_eq!(d.resolve(), None);
        for bad in [
            r#"{"binary": {"encoding": "three_bits"}}"#,
            r#"{"scalar": {"type": "int4"}}"#,
            r#"{"product": {"compression": "x3"}}"#,
            r#""disabled""#,
        ] {
            assert!(serde_json::from_str::<QuantizationConfigDiff>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn validates_ranges() {
        let q = |quantile| {
            QuantizationConfig::Scalar(ScalarQuantization {
                scalar: ScalarQuantizationConfig {
                    r#type: ScalarType::Int8,
                    quantile: Some(quantile),
                    always_ram: None,
                },
            })
        };
        assert!(q(0.99).validate("", 8).is_ok());
        assert!(q(0.4).validate("", 8).unwrap_err().to_string().contains("quantile"));
        assert!(q(1.01).validate("", 8).is_err());
        let pq = |c| {
            QuantizationConfig::Product(ProductQuantization {
                product: ProductQuantizationConfig { compression: c, always_ram: None },
            })
        };
        assert!(pq(CompressionRatio::X16).validate("", 128).is_ok());
        assert!(pq(CompressionRatio::X16).validate("", 6).unwrap_err().to_string().contains("x16"));
        assert!(pq(CompressionRatio::X64).validate("img", 24).is_err());
        let bad = QuantizationSearchParams { oversampling: Some(0.5), ..Default::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("oversampling"));
        assert!(QuantizationSearchParams { oversampling: Some(1.0), ..Default::default() }
            .validate()
            .is_ok());
    }
}
