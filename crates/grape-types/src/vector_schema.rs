//! Named vectors added to or dropped from an existing collection: Qdrant's request body
//! (`PUT /collections/{c}/vectors/{name}`: `{"dense": {...}}` or `{"sparse": {...}}`) and the
//! *vector schema* of a configuration, the part that shapes stored data. The schema of a shard changes
//! only through its operation log ([`crate::Operation::CreateVector`] / [`crate::Operation::DeleteVector`]),
//! so replaying a log reproduces it; every other parameter of a vector can change in place.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{
    CollectionConfig, Datatype, Distance, Error, Modifier, MultiVectorConfig, Result, SparseIndexParams,
    SparseVectorParams, VectorParams, VectorsConfig, DEFAULT_VECTOR_NAME,
};

/// A vector added to an existing collection. Only what defines its space: storage, index and
/// quantization come from the collection's settings and can be changed later (Qdrant's
/// `VectorNameConfig`). Encoded in the WAL, so fields are never skipped when serializing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum NewVector {
    Dense(NewDenseVector),
    Sparse(NewSparseVector),
}

/// A new dense vector (or multivector, with `multivector_config`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct NewDenseVector {
    pub size: usize,
    pub distance: Distance,
    #[serde(default)]
    pub multivector_config: Option<MultiVectorConfig>,
    #[serde(default)]
    pub datatype: Option<Datatype>,
}

/// A new sparse vector.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct NewSparseVector {
    #[serde(default)]
    pub modifier: Option<Modifier>,
    #[serde(default)]
    pub datatype: Option<Datatype>,
}

/// What a stored vector's data depends on: two configurations of one name with the same shape can
/// read each other's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VectorShape {
    Dense { size: usize, distance: Distance, datatype: Datatype, multi: bool },
    Sparse,
}

impl NewVector {
    pub fn shape(&self) -> VectorShape {
        match self {
            NewVector::Dense(d) => VectorShape::Dense {
                size: d.size,
                distance: d.distance,
                datatype: d.datatype.unwrap_or_default(),
                multi: d.multivector_config.is_some(),
            },
            NewVector::Sparse(_) => VectorShape::Sparse,
        }
    }
}

fn dense_params(d: &NewDenseVector) -> VectorParams {
    VectorParams {
        datatype: d.datatype,
        multivector_config: d.multivector_config,
        ..VectorParams::new(d.size, d.distance)
    }
}

fn sparse_params(s: &NewSparseVector) -> SparseVectorParams {
    SparseVectorParams {
        index: s
            .datatype
            .map(|datatype| SparseIndexParams { datatype: Some(datatype), ..Default::default() }),
        modifier: s.modifier,
    }
}

fn dense_shape(p: &VectorParams) -> VectorShape {
    VectorShape::Dense { size: p.size, distance: p.distance, datatype: p.datatype(), multi: p.is_multi() }
}

impl CollectionConfig {
    /// Every vector (dense and sparse) as the request that would create it, sorted by name.
    pub fn vector_schema(&self) -> Vec<(String, NewVector)> {
        let dense = self.params.vectors.iter().map(|(name, p)| {
            let new = NewDenseVector {
                size: p.size,
                distance: p.distance,
                multivector_config: p.multivector_config,
                datatype: Some(p.datatype()),
            };
            (name.to_string(), NewVector::Dense(new))
        });
        let sparse = self.params.sparse_vectors.iter().flatten().map(|(name, p)| {
            let new =
                NewSparseVector { modifier: p.modifier, datatype: p.index.as_ref().and_then(|i| i.datatype) };
            (name.clone(), NewVector::Sparse(new))
        });
        let mut all: Vec<_> = dense.chain(sparse).collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// The shape of every vector by name.
    pub fn vector_shapes(&self) -> BTreeMap<String, VectorShape> {
        let dense = self.params.vectors.iter().map(|(n, p)| (n.to_string(), dense_shape(p)));
        let sparse =
            self.params.sparse_vectors.iter().flatten().map(|(n, _)| (n.clone(), VectorShape::Sparse));
        dense.chain(sparse).collect()
    }

    /// Whether `name` is a vector (dense or sparse) of this collection.
    pub fn has_vector(&self, name: &str) -> bool {
        self.params.vectors.get(name).is_some() || self.sparse(name).is_some()
    }

    /// Adds `name` unchecked, replacing a vector of that name (the log's semantics; requests go
    /// through [`CollectionConfig::with_vector`]).
    pub fn insert_vector(&mut self, name: &str, new: &NewVector) {
        self.remove_vector(name);
        match new {
            NewVector::Dense(d) => {
                let params = dense_params(d);
                let vectors = std::mem::replace(&mut self.params.vectors, VectorsConfig::none());
                self.params.vectors = match vectors {
                    // The first dense vector of a sparse-only collection named "" stays unnamed.
                    VectorsConfig::Multi(m) if m.is_empty() && name == DEFAULT_VECTOR_NAME => {
                        VectorsConfig::Single(params)
                    }
                    VectorsConfig::Multi(mut m) => {
                        m.insert(name.to_string(), params);
                        VectorsConfig::Multi(m)
                    }
                    VectorsConfig::Single(unnamed) => VectorsConfig::Multi(BTreeMap::from([
                        (DEFAULT_VECTOR_NAME.to_string(), unnamed),
                        (name.to_string(), params),
                    ])),
                };
            }
            NewVector::Sparse(s) => {
                self.params
                    .sparse_vectors
                    .get_or_insert_with(BTreeMap::new)
                    .insert(name.to_string(), sparse_params(s));
            }
        }
    }

    /// Removes `name` unchecked; returns whether it was there.
    pub fn remove_vector(&mut self, name: &str) -> bool {
        let dense = match &mut self.params.vectors {
            VectorsConfig::Single(_) => name == DEFAULT_VECTOR_NAME,
            VectorsConfig::Multi(m) => m.remove(name).is_some(),
        };
        if dense && matches!(self.params.vectors, VectorsConfig::Single(_)) {
            self.params.vectors = VectorsConfig::none();
        }
        let sparse = self.params.sparse_vectors.as_mut().is_some_and(|m| m.remove(name).is_some());
        if self.params.sparse_vectors.as_ref().is_some_and(BTreeMap::is_empty) {
            self.params.sparse_vectors = None;
        }
        dense || sparse
    }

    /// This configuration with the vector `name` added, checked as a request (Qdrant's
    /// `PUT /collections/{c}/vectors/{name}`): the name must be new and the parameters valid.
    pub fn with_vector(&self, name: &str, new: &NewVector) -> Result<CollectionConfig> {
        if name.is_empty() || name.len() > 255 {
            return Err(Error::bad_input("vector_name: must be 1 to 255 characters long"));
        }
        if self.has_vector(name) {
            return Err(Error::bad_input(format!("Vector {name} already exists in the collection")));
        }
        if let NewVector::Sparse(s) = new {
            if s.datatype == Some(Datatype::Uint8) {
                return Err(Error::bad_input("sparse.datatype: uint8 is not supported for sparse vectors"));
            }
        }
        let mut next = self.clone();
        next.insert_vector(name, new);
        next.validate()?;
        Ok(next)
    }

    /// This configuration without the vector `name`, checked as a request (Qdrant's
    /// `DELETE /collections/{c}/vectors/{name}`): the vector must exist, the unnamed vector of a
    /// single-vector configuration stays, and some vector must remain.
    pub fn without_vector(&self, name: &str) -> Result<CollectionConfig> {
        if !self.has_vector(name) {
            return Err(VectorsConfig::missing(name));
        }
        if matches!(self.params.vectors, VectorsConfig::Single(_)) && name == DEFAULT_VECTOR_NAME {
            return Err(Error::bad_input(
                "Cannot delete the unnamed vector when it is the only dense vector in the collection",
            ));
        }
        let mut next = self.clone();
        next.remove_vector(name);
        if next.params.vectors.is_empty() && next.params.sparse_vectors.is_none() {
            return Err(Error::bad_input(format!(
                "Cannot delete vector {name}: it is the last vector of the collection"
            )));
        }
        next.validate()?;
        Ok(next)
    }

    /// This configuration with exactly the vectors of `schema`: a vector of the same name and shape
    /// here keeps its parameters (HNSW, quantization, on_disk, ...), any other is taken from `schema`.
    pub fn with_schema(&self, schema: &[(String, NewVector)]) -> CollectionConfig {
        let shapes = self.vector_shapes();
        let mut next = self.clone();
        for name in shapes.keys() {
            if !schema.iter().any(|(n, v)| n == name && v.shape() == shapes[name]) {
                next.remove_vector(name);
            }
        }
        for (name, new) in schema {
            if shapes.get(name) != Some(&new.shape()) {
                next.insert_vector(name, new);
            }
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CreateCollection;

    fn dense(size: usize) -> NewVector {
        NewVector::Dense(NewDenseVector {
            size,
            distance: Distance::Dot,
            multivector_config: None,
            datatype: None,
        })
    }

    #[test]
    fn qdrant_bodies_parse() {
        let d: NewVector = serde_json::from_str(r#"{"dense": {"size": 3, "distance": "Cosine"}}"#).unwrap();
        assert_eq!(
            d.shape(),
            VectorShape::Dense {
                size: 3,
                distance: Distance::Cosine,
                datatype: Datatype::Float32,
                multi: false
            }
        );
        let s: NewVector = serde_json::from_str(r#"{"sparse": {"modifier": "idf"}}"#).unwrap();
        assert_eq!(s, NewVector::Sparse(NewSparseVector { modifier: Some(Modifier::Idf), datatype: None }));
        assert!(serde_json::from_str::<NewVector>(r#"{"dense": {"size": 3}}"#).is_err());
    }

    #[test]
    fn add_and_drop_keep_the_single_form_where_they_can() {
        let single = CreateCollection::new(VectorsConfig::Single(VectorParams::new(4, Distance::Dot)))
            .into_config()
            .unwrap();
        let two = single.with_vector("img", &dense(2)).unwrap();
        assert_eq!(two.params.vectors.get("").unwrap().size, 4);
        assert_eq!(two.params.vectors.get("img").unwrap().size, 2);
        assert!(two.with_vector("img", &dense(2)).unwrap_err().to_string().contains("already exists"));
        assert!(two.with_vector("", &NewVector::Sparse(Default::default())).is_err());
        assert!(single.without_vector("").unwrap_err().to_string().contains("only dense vector"));
        assert!(single.without_vector("nope").unwrap_err().to_string().contains("Not existing vector name"));
        let one = two.without_vector("").unwrap();
        assert!(one.params.vectors.get("").is_none());
        assert!(one.without_vector("img").unwrap_err().to_string().contains("last vector"));
        let with_sparse = one.with_vector("text", &NewVector::Sparse(Default::default())).unwrap();
        let only_sparse = with_sparse.without_vector("img").unwrap();
        assert!(only_sparse.params.vectors.is_empty());
        assert_eq!(only_sparse.vector_schema().len(), 1);
    }

    #[test]
    fn with_schema_keeps_parameters_of_unchanged_vectors() {
        let mut base = CreateCollection::new(VectorsConfig::Single(VectorParams::new(4, Distance::Dot)))
            .into_config()
            .unwrap()
            .with_vector("a", &dense(2))
            .unwrap();
        base.params.vectors.get_mut("a").unwrap().on_disk = Some(true);
        let mut schema = base.vector_schema();
        schema.retain(|(n, _)| !n.is_empty());
        schema.push(("b".into(), NewVector::Sparse(Default::default())));
        let next = base.with_schema(&schema);
        assert_eq!(next.params.vectors.get("a").unwrap().on_disk, Some(true));
        assert!(next.params.vectors.get("").is_none());
        assert!(next.sparse("b").is_some());
        // A name whose shape changed is replaced.
        let next = next.with_schema(&[("a".into(), dense(3))]);
        assert_eq!(next.params.vectors.get("a").unwrap().size, 3);
        assert_eq!(next.params.vectors.get("a").unwrap().on_disk, None);
    }
}
