//! grape-collection
