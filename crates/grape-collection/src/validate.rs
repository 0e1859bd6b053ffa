//! Input validation and normalisation: everything that can be wrong with a request is found here, before
//! anything is written, so a rejected batch changes nothing.

use grape_index::distance::normalize;
use grape_types::operation::PointWrite;
use grape_types::{CollectionConfig, Distance, Error, PointStruct, Result, VectorsConfig};

/// Checks a query or stored vector against its configured size and finiteness.
pub fn check_vector(config: &CollectionConfig, name: &str, v: &[f32]) -> Result<Distance> {
    let params = config.params.vectors.get(name).ok_or_else(|| VectorsConfig::missing(name))?;
    if v.len() != params.size {
        return Err(Error::DimensionMismatch { expected: params.size, got: v.len() });
    }
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        return Err(Error::bad_input(format!(
            "vector{} has a non-finite component at index {i} ({})",
            if name.is_empty() { String::new() } else { format!(" {name:?}") },
            v[i]
        )));
    }
    Ok(params.distance)
}

/// Validates a query vector and returns it preprocessed for the metric (normalised for cosine).
pub fn prepare_query(config: &CollectionConfig, name: &str, v: &[f32]) -> Result<Vec<f32>> {
    let distance = check_vector(config, name, v)?;
    let mut q = v.to_vec();
    if distance == Distance::Cosine {
        normalize(&mut q);
    }
    Ok(q)
}

/// Validates a batch of points and converts them into log entries (cosine vectors normalised).
pub fn prepare_points(config: &CollectionConfig, points: Vec<PointStruct>) -> Result<Vec<PointWrite>> {
    if points.is_empty() {
        return Err(Error::bad_input("empty batch: at least one point is required"));
    }
    points
        .into_iter()
        .map(|p| {
            let mut vectors = p.vectors.into_named();
            for name in vectors.keys() {
                if config.params.vectors.get(name).is_none() {
                    return Err(VectorsConfig::missing(name));
                }
            }
            for (name, _) in config.params.vectors.iter() {
                if !vectors.contains_key(name) {
                    return Err(Error::bad_input(format!(
                        "point {}: missing vector {}",
                        p.id,
                        if name.is_empty() { "(unnamed)".to_string() } else { format!("{name:?}") }
                    )));
                }
            }
            for (name, v) in vectors.iter_mut() {
                if check_vector(config, name, v)? == Distance::Cosine {
                    normalize(v);
                }
            }
            Ok(PointWrite { id: p.id, vectors, payload: p.payload })
        })
        .collect()
}
