//! Database metadata in redb: collection configurations and aliases, changed in atomic transactions.

use std::collections::BTreeMap;
use std::path::Path;

use grape_types::{CollectionConfig, Error, Result};
use redb::{ReadableTable, TableDefinition};

const COLLECTIONS: TableDefinition<&str, &str> = TableDefinition::new("collections");
const ALIASES: TableDefinition<&str, &str> = TableDefinition::new("aliases");

fn meta_err(e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("metadata store: {e}"))
}

pub struct MetaStore {
    db: redb::Database,
}

/// Everything stored in the metadata database.
#[derive(Debug, Default, Clone)]
pub struct Metadata {
    pub collections: BTreeMap<String, CollectionConfig>,
    pub aliases: BTreeMap<String, String>,
}

impl MetaStore {
    pub fn open(path: &Path) -> Result<MetaStore> {
        let db = redb::Database::create(path).map_err(meta_err)?;
        let tx = db.begin_write().map_err(meta_err)?;
        tx.open_table(COLLECTIONS).map_err(meta_err)?;
        tx.open_table(ALIASES).map_err(meta_err)?;
        tx.commit().map_err(meta_err)?;
        Ok(MetaStore { db })
    }

    pub fn load(&self) -> Result<Metadata> {
        let tx = self.db.begin_read().map_err(meta_err)?;
        let mut out = Metadata::default();
        for row in tx.open_table(COLLECTIONS).map_err(meta_err)?.iter().map_err(meta_err)? {
            let (k, v) = row.map_err(meta_err)?;
            let config = serde_json::from_str(v.value())
                .map_err(|e| Error::Corruption(format!("stored config of collection {}: {e}", k.value())))?;
            out.collections.insert(k.value().to_string(), config);
        }
        for row in tx.open_table(ALIASES).map_err(meta_err)?.iter().map_err(meta_err)? {
            let (k, v) = row.map_err(meta_err)?;
            out.aliases.insert(k.value().to_string(), v.value().to_string());
        }
        Ok(out)
    }

    /// Replaces the stored metadata with `next` in one transaction (only changed keys are written).
    pub fn store(&self, prev: &Metadata, next: &Metadata) -> Result<()> {
        let tx = self.db.begin_write().map_err(meta_err)?;
        {
            let mut t = tx.open_table(COLLECTIONS).map_err(meta_err)?;
            for name in prev.collections.keys().filter(|k| !next.collections.contains_key(*k)) {
                t.remove(name.as_str()).map_err(meta_err)?;
            }
            for (name, config) in &next.collections {
                if prev.collections.get(name) != Some(config) {
                    let json = serde_json::to_string(config).map_err(meta_err)?;
                    t.insert(name.as_str(), json.as_str()).map_err(meta_err)?;
                }
            }
            let mut a = tx.open_table(ALIASES).map_err(meta_err)?;
            for alias in prev.aliases.keys().filter(|k| !next.aliases.contains_key(*k)) {
                a.remove(alias.as_str()).map_err(meta_err)?;
            }
            for (alias, target) in &next.aliases {
                if prev.aliases.get(alias) != Some(target) {
                    a.insert(alias.as_str(), target.as_str()).map_err(meta_err)?;
                }
            }
        }
        tx.commit().map_err(meta_err)
    }
}
