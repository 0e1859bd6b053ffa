//! grape
