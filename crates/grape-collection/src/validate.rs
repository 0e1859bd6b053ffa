//! Input validation and normalisation: everything that can be wrong with a request is found here, before
//! anything is written, so a rejected batch changes nothing.

use grape_index::distance::normalize;
use grape_types::operation::PointWrite;
use grape_types::{
    CollectionConfig, Datatype, Distance, Error, PointStruct, Result, SparseVector, Vector, VectorParams,
    VectorsConfig,
};

/// Checks a query or stored vector against its configured size and finiteness.
pub fn check_vector<'c>(config: &'c CollectionConfig, name: &str, v: &[f32]) -> Result<&'c VectorParams> {
    let params = config.params.vectors.get(name).ok_or_else(|| match config.sparse(name) {
        Some(_) => Error::bad_input(format!("vector {name:?} is a sparse vector, got a dense vector")),
        None => VectorsConfig::missing(name),
    })?;
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
    Ok(params)
}

/// A stored uint8 vector takes integers in 0..=255 (fractions are rounded); anything else would be
/// silently changed by storing it, so it is refused.
fn check_uint8(name: &str, v: &[f32]) -> Result<()> {
    match v.iter().position(|x| !(-0.5..255.5).contains(x)) {
        None => Ok(()),
        Some(i) => Err(Error::bad_input(format!(
            "vector{} has datatype uint8 but component {i} is {}: values must be in 0..=255",
            if name.is_empty() { String::new() } else { format!(" {name:?}") },
            v[i]
        ))),
    }
}

/// Validates a query vector and returns it preprocessed for the metric (normalised for cosine).
pub fn prepare_query(config: &CollectionConfig, name: &str, v: &[f32]) -> Result<Vec<f32>> {
    let params = check_vector(config, name, v)?;
    let mut q = v.to_vec();
    if params.distance == Distance::Cosine {
        normalize(&mut q);
    }
    Ok(q)
}

/// Checks one stored vector against the configuration of its name and prepares it: cosine vectors
/// normalised, sparse vectors sorted by index.
fn prepare_stored(config: &CollectionConfig, name: &str, v: Vector) -> Result<Vector> {
    match v {
        Vector::Dense(mut v) => {
            if config.sparse(name).is_some() {
                return Err(Error::bad_input(format!(
                    "vector {name:?} is a sparse vector: give it as {{\"indices\": [...], \"values\": [...]}}"
                )));
            }
            let params = check_vector(config, name, &v)?;
            if params.is_multi() {
                return Err(Error::bad_input(format!(
                    "vector {name:?} is a multivector: give it as an array of vectors"
                )));
            }
            match params.datatype() {
                // uint8 rows cannot hold a unit vector; cosine divides by their norm when scoring.
                Datatype::Uint8 => check_uint8(name, &v)?,
                _ if params.distance == Distance::Cosine => normalize(&mut v),
                _ => {}
            }
            Ok(Vector::Dense(v))
        }
        Vector::Multi(rows) => prepare_multi(config, name, rows).map(Vector::Multi),
        Vector::Sparse(v) => {
            if config.sparse(name).is_none() {
                return Err(match config.params.vectors.get(name) {
                    Some(_) => Error::bad_input(format!("vector {name:?} is dense, got a sparse vector")),
                    None => VectorsConfig::missing(name),
                });
            }
            Ok(Vector::Sparse(v.validated(&format!("sparse vector {name:?}"))?))
        }
    }
}

/// Checks a multivector (stored or query) for the vector `name`: a multivector configuration, at least
/// one row, every row of the configured size and finite; cosine rows are normalised.
pub fn prepare_multi(
    config: &CollectionConfig,
    name: &str,
    mut rows: Vec<Vec<f32>>,
) -> Result<Vec<Vec<f32>>> {
    let params = config.params.vectors.get(name).ok_or_else(|| match config.sparse(name) {
        Some(_) => Error::bad_input(format!("vector {name:?} is a sparse vector, got a multivector")),
        None => VectorsConfig::missing(name),
    })?;
    if !params.is_multi() {
        return Err(Error::bad_input(format!(
            "vector {name:?} is a single dense vector, got a multivector (configure multivector_config)"
        )));
    }
    if rows.is_empty() {
        return Err(Error::bad_input(format!("multivector {name:?} must hold at least one vector")));
    }
    for row in rows.iter_mut() {
        check_vector(config, name, row)?;
        if params.distance == Distance::Cosine {
            normalize(row);
        }
    }
    Ok(rows)
}

/// Validates a sparse query vector for the sparse vector `name` and returns it sorted by index.
pub fn prepare_sparse_query(config: &CollectionConfig, name: &str, v: SparseVector) -> Result<SparseVector> {
    if config.sparse(name).is_none() {
        return Err(match config.params.vectors.get(name) {
            Some(_) => Error::bad_input(format!("vector {name:?} is dense, got a sparse query vector")),
            None => VectorsConfig::missing(name),
        });
    }
    v.validated(&format!("sparse query vector {name:?}"))
}

/// Validates a batch of points and converts them into log entries (cosine vectors normalised).
pub fn prepare_points(config: &CollectionConfig, points: Vec<PointStruct>) -> Result<Vec<PointWrite>> {
    if points.is_empty() {
        return Err(Error::bad_input("empty batch: at least one point is required"));
    }
    points
        .into_iter()
        .map(|p| {
            // A configured vector the point does not give is absent for this point (Qdrant's optional
            // vectors).
            let vectors = p
                .vectors
                .into_named()
                .into_iter()
                .map(|(name, v)| {
                    let v = prepare_stored(config, &name, v)?;
                    Ok((name, v))
                })
                .collect::<Result<_>>()?;
            Ok(PointWrite { id: p.id, vectors, payload: p.payload })
        })
        .collect()
}
