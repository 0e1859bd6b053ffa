//! Quantization messages <-> the engine's configuration: scalar (int8, quantile, always_ram), product
//! (compression ratio), binary (encoding, query encoding), the update diff with `Disabled`, and the
//! search-time `params.quantization`. Turbo quantization and storage tiers (`memory`) are refused.

use grape::quantization::{
    BinaryEncoding, BinaryQuantization, BinaryQuantizationConfig, BinaryQueryEncoding, CompressionRatio,
    Disabled, ProductQuantization, ProductQuantizationConfig, ScalarQuantization, ScalarQuantizationConfig,
    ScalarType,
};
use grape::{QuantizationConfig, QuantizationConfigDiff, QuantizationSearchParams};
use grape_proto::qdrant as pb;
use tonic::Status;

use super::{invalid, unsupported};

pub(super) fn quantization_config(q: pb::QuantizationConfig) -> Result<QuantizationConfig, Status> {
    use pb::quantization_config::Quantization as Q;
    match q.quantization {
        Some(Q::Scalar(s)) => Ok(QuantizationConfig::Scalar(scalar(s)?)),
        Some(Q::Product(p)) => Ok(QuantizationConfig::Product(product(p)?)),
        Some(Q::Binary(b)) => Ok(QuantizationConfig::Binary(binary(b)?)),
        Some(Q::Turboquant(_)) => Err(unsupported("quantization_config turboquant")),
        None => Err(invalid("quantization_config: one of scalar, product or binary is required")),
    }
}

pub(super) fn quantization_diff(q: pb::QuantizationConfigDiff) -> Result<QuantizationConfigDiff, Status> {
    use pb::quantization_config_diff::Quantization as Q;
    match q.quantization {
        Some(Q::Scalar(s)) => Ok(QuantizationConfigDiff::Scalar(scalar(s)?)),
        Some(Q::Product(p)) => Ok(QuantizationConfigDiff::Product(product(p)?)),
        Some(Q::Binary(b)) => Ok(QuantizationConfigDiff::Binary(binary(b)?)),
        Some(Q::Disabled(_)) => Ok(QuantizationConfigDiff::Disabled(Disabled::Disabled)),
        Some(Q::Turboquant(_)) => Err(unsupported("quantization_config turboquant")),
        None => Err(invalid("quantization_config: one of scalar, product, binary or disabled is required")),
    }
}

fn no_memory(memory: Option<i32>) -> Result<(), Status> {
    match memory {
        None => Ok(()),
        Some(m) if m == pb::Memory::Unknown as i32 => Ok(()),
        Some(_) => Err(unsupported("quantization_config memory (storage tier)")),
    }
}

fn scalar(s: pb::ScalarQuantization) -> Result<ScalarQuantization, Status> {
    no_memory(s.memory)?;
    match pb::QuantizationType::try_from(s.r#type) {
        Ok(pb::QuantizationType::Int8) => {}
        _ => return Err(invalid(format!("scalar quantization: unknown type {}", s.r#type))),
    }
    Ok(ScalarQuantization {
        scalar: ScalarQuantizationConfig {
            r#type: ScalarType::Int8,
            quantile: s.quantile,
            always_ram: s.always_ram,
        },
    })
}

fn product(p: pb::ProductQuantization) -> Result<ProductQuantization, Status> {
    no_memory(p.memory)?;
    let compression = match pb::CompressionRatio::try_from(p.compression) {
        Ok(pb::CompressionRatio::X4) => CompressionRatio::X4,
        Ok(pb::CompressionRatio::X8) => CompressionRatio::X8,
        Ok(pb::CompressionRatio::X16) => CompressionRatio::X16,
        Ok(pb::CompressionRatio::X32) => CompressionRatio::X32,
        Ok(pb::CompressionRatio::X64) => CompressionRatio::X64,
        Err(_) => {
            return Err(invalid(format!("product quantization: unknown compression {}", p.compression)))
        }
    };
    Ok(ProductQuantization { product: ProductQuantizationConfig { compression, always_ram: p.always_ram } })
}

fn binary(b: pb::BinaryQuantization) -> Result<BinaryQuantization, Status> {
    use pb::binary_quantization_query_encoding::{Setting, Variant};
    no_memory(b.memory)?;
    let encoding = match b.encoding.map(pb::BinaryQuantizationEncoding::try_from) {
        None => None,
        Some(Ok(pb::BinaryQuantizationEncoding::OneBit)) => Some(BinaryEncoding::OneBit),
        Some(Ok(pb::BinaryQuantizationEncoding::TwoBits)) => Some(BinaryEncoding::TwoBits),
        Some(Ok(pb::BinaryQuantizationEncoding::OneAndHalfBits)) => Some(BinaryEncoding::OneAndHalfBits),
        Some(Err(_)) => return Err(invalid("binary quantization: unknown encoding")),
    };
    let query_encoding = match b.query_encoding.and_then(|q| q.variant) {
        None => None,
        Some(Variant::Setting(s)) => Some(match Setting::try_from(s) {
            Ok(Setting::Default) => BinaryQueryEncoding::Default,
            Ok(Setting::Binary) => BinaryQueryEncoding::Binary,
            Ok(Setting::Scalar4Bits) => BinaryQueryEncoding::Scalar4bits,
            Ok(Setting::Scalar8Bits) => BinaryQueryEncoding::Scalar8bits,
            Err(_) => return Err(invalid("binary quantization: unknown query_encoding")),
        }),
    };
    Ok(BinaryQuantization {
        binary: BinaryQuantizationConfig { always_ram: b.always_ram, encoding, query_encoding },
    })
}

pub(super) fn quantization_out(q: QuantizationConfig) -> pb::QuantizationConfig {
    use pb::quantization_config::Quantization as Q;
    let quantization = match q {
        QuantizationConfig::Scalar(s) => Q::Scalar(pb::ScalarQuantization {
            r#type: pb::QuantizationType::Int8 as i32,
            quantile: s.scalar.quantile,
            always_ram: s.scalar.always_ram,
            memory: None,
        }),
        QuantizationConfig::Product(p) => Q::Product(pb::ProductQuantization {
            compression: match p.product.compression {
                CompressionRatio::X4 => pb::CompressionRatio::X4,
                CompressionRatio::X8 => pb::CompressionRatio::X8,
                CompressionRatio::X16 => pb::CompressionRatio::X16,
                CompressionRatio::X32 => pb::CompressionRatio::X32,
                CompressionRatio::X64 => pb::CompressionRatio::X64,
            } as i32,
            always_ram: p.product.always_ram,
            memory: None,
        }),
        QuantizationConfig::Binary(b) => {
            use pb::binary_quantization_query_encoding::{Setting, Variant};
            let b = b.binary;
            Q::Binary(pb::BinaryQuantization {
                always_ram: b.always_ram,
                encoding: b.encoding.map(|e| {
                    (match e {
                        BinaryEncoding::OneBit => pb::BinaryQuantizationEncoding::OneBit,
                        BinaryEncoding::TwoBits => pb::BinaryQuantizationEncoding::TwoBits,
                        BinaryEncoding::OneAndHalfBits => pb::BinaryQuantizationEncoding::OneAndHalfBits,
                    }) as i32
                }),
                query_encoding: b.query_encoding.map(|e| {
                    let setting = match e {
                        BinaryQueryEncoding::Default => Setting::Default,
                        BinaryQueryEncoding::Binary => Setting::Binary,
                        BinaryQueryEncoding::Scalar4bits => Setting::Scalar4Bits,
                        BinaryQueryEncoding::Scalar8bits => Setting::Scalar8Bits,
                    };
                    pb::BinaryQuantizationQueryEncoding { variant: Some(Variant::Setting(setting as i32)) }
                }),
                memory: None,
            })
        }
    };
    pb::QuantizationConfig { quantization: Some(quantization) }
}

/// The search-time `params.quantization`.
pub(super) fn search_params(q: pb::QuantizationSearchParams) -> Result<QuantizationSearchParams, Status> {
    if q.oversampling.is_some_and(|o| !o.is_finite() || o < 1.0) {
        return Err(invalid("params.quantization.oversampling: must be at least 1"));
    }
    Ok(QuantizationSearchParams {
        ignore: q.ignore.unwrap_or(false),
        rescore: q.rescore,
        oversampling: q.oversampling,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_round_trips() {
        use pb::quantization_config::Quantization as Q;
        let configs = [
            Q::Scalar(pb::ScalarQuantization {
                r#type: pb::QuantizationType::Int8 as i32,
                quantile: Some(0.99),
                always_ram: Some(true),
                memory: None,
            }),
            Q::Product(pb::ProductQuantization {
                compression: pb::CompressionRatio::X16 as i32,
                always_ram: None,
                memory: None,
            }),
            Q::Binary(pb::BinaryQuantization {
                always_ram: Some(false),
                encoding: Some(pb::BinaryQuantizationEncoding::TwoBits as i32),
                query_encoding: Some(pb::BinaryQuantizationQueryEncoding {
                    variant: Some(pb::binary_quantization_query_encoding::Variant::Setting(
                        pb::binary_quantization_query_encoding::Setting::Scalar8Bits as i32,
                    )),
                }),
                memory: None,
            }),
        ];
        for q in configs {
            let proto = pb::QuantizationConfig { quantization: Some(q) };
            assert_eq!(quantization_out(quantization_config(proto.clone()).unwrap()), proto);
        }
    }

    #[test]
    fn disabled_unknown_and_unbuilt() {
        let disabled = pb::QuantizationConfigDiff {
            quantization: Some(pb::quantization_config_diff::Quantization::Disabled(pb::Disabled {})),
        };
        assert_eq!(quantization_diff(disabled).unwrap().resolve(), None);
        let bad = pb::ScalarQuantization { r#type: 0, ..Default::default() };
        let e = quantization_config(pb::QuantizationConfig {
            quantization: Some(pb::quantization_config::Quantization::Scalar(bad)),
        });
        assert_eq!(e.unwrap_err().code(), tonic::Code::InvalidArgument);
        let turbo = pb::QuantizationConfig {
            quantization: Some(pb::quantization_config::Quantization::Turboquant(vec![])),
        };
        assert!(quantization_config(turbo).unwrap_err().message().contains("turboquant"));
        let e = quantization_config(pb::QuantizationConfig { quantization: None }).unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
    }
}
