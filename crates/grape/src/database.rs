//! [`Database`]: the directory, its lock, its metadata and its open collections.

use std::collections::BTreeMap;
use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use grape_collection::{Collection, CollectionInfo, CollectionStats};
use grape_shard::wal::SyncPolicy;
use grape_shard::ShardOptions;
use grape_types::{
    AliasDescription, AliasOperation, CollectionConfig, CreateCollection, Error, PayloadFieldSchema, Result,
    ShardKey, UpdateCollection,
};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::meta::{MetaStore, Metadata};

/// How to open a database.
#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    pub path: PathBuf,
    /// When WAL appends are fsynced. Default: before every write returns.
    pub wal_sync: SyncPolicy,
    /// Run background flushing and optimization (index builds). Default: true.
    pub background: bool,
    /// Cluster mode: collections are declared through this catalog instead of this directory's
    /// metadata. Default: none (embedded and single-server mode).
    pub catalog: Option<CatalogHandle>,
}

impl DatabaseConfig {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        DatabaseConfig { path: path.into(), wal_sync: SyncPolicy::Always, background: true, catalog: None }
    }
}

/// Where the collections of a clustered database are declared. Creating, deleting and reconfiguring a
/// collection go through it; it then attaches the collection to the database of every node
/// ([`Database::attach_collection`], [`Database::detach_collection`], [`Database::apply_config`])
/// before the call returns on the node that made it.
pub trait Catalog: Send + Sync {
    fn create_collection(&self, name: &str, config: CollectionConfig) -> Result<()>;
    /// Returns false if there was no such collection.
    fn delete_collection(&self, name: &str) -> Result<bool>;
    fn update_config(&self, name: &str, config: CollectionConfig) -> Result<()>;
    /// Shards of a new collection that does not say (Qdrant: one per node).
    fn default_shard_number(&self) -> u32;
    /// Adds a shard key with its shards (custom sharding), placed on the cluster's nodes.
    fn create_shard_key(&self, name: &str, request: &CreateShardKey) -> Result<()>;
    /// Drops a shard key; every node deletes its shards' data.
    fn delete_shard_key(&self, name: &str, key: &ShardKey) -> Result<()>;
}

/// Qdrant's `CreateShardingKey`: a new shard key of a custom-sharded collection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateShardKey {
    pub shard_key: ShardKey,
    /// Shards of the key (default: the collection's `shard_number`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shards_number: Option<u32>,
    /// Replicas of each shard (default: the collection's `replication_factor`; cluster mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_factor: Option<u32>,
    /// Peers allowed to hold the key's shards (empty: any; cluster mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<Vec<u64>>,
    /// Qdrant's initial replica state: Grape creates replicas `Active` and refuses any other state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_state: Option<String>,
}

impl CreateShardKey {
    pub fn new(shard_key: ShardKey) -> Self {
        CreateShardKey {
            shard_key,
            shards_number: None,
            replication_factor: None,
            placement: None,
            initial_state: None,
        }
    }

    /// The configuration `config` becomes with this key added; also returns the new shard ids.
    pub fn apply_to(&self, config: &CollectionConfig) -> Result<(CollectionConfig, Vec<u32>)> {
        let key = &self.shard_key;
        if !config.params.is_custom_sharded() {
            return Err(Error::bad_input(format!(
                "Shard Key {key} cannot be created with Auto sharding method"
            )));
        }
        if self.replication_factor == Some(0) {
            return Err(Error::bad_input("replication_factor: must be at least 1"));
        }
        if self.initial_state.as_deref().is_some_and(|s| s != "Active") {
            return Err(Error::bad_input(
                "initial_state: Grape creates the replicas of a new shard key in state Active only",
            ));
        }
        let mut next = config.clone();
        let shards = self.shards_number.unwrap_or(config.params.shard_number);
        let ids = next.shard_keys.add(key.clone(), shards)?;
        Ok((next, ids))
    }
}

/// The configuration `config` becomes without shard key `key`; also returns the dropped shard ids.
pub fn drop_shard_key(config: &CollectionConfig, key: &ShardKey) -> Result<(CollectionConfig, Vec<u32>)> {
    if !config.params.is_custom_sharded() {
        return Err(Error::bad_input(format!("Shard Key {key} cannot be removed with Auto sharding method")));
    }
    let mut next = config.clone();
    let ids = next.shard_keys.remove(key)?;
    Ok((next, ids))
}

/// A node's cluster state as `/metrics` reports it (`grape_cluster_*`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterMetrics {
    /// Peers in the cluster metadata.
    pub peers: u64,
    /// Term, applied index and not yet applied entries of the metadata group on this node.
    pub term: u64,
    pub commit: u64,
    pub pending_operations: u64,
    /// This node leads the metadata group / is one of its voters.
    pub is_leader: bool,
    pub is_voter: bool,
    /// Shard replicas held by this node, and how many of their groups it leads.
    pub shard_replicas: u64,
    pub shard_leaders: u64,
}

/// A shared [`Catalog`].
#[derive(Clone)]
pub struct CatalogHandle(pub Arc<dyn Catalog>);

impl std::fmt::Debug for CatalogHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CatalogHandle")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthState {
    Ok,
    Degraded,
    Closed,
}

/// State and per-collection statistics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub state: HealthState,
    pub collections: Vec<CollectionStats>,
}

/// A database directory opened by this process. Cheap to clone; all clones share one state.
#[derive(Clone)]
pub struct Database {
    inner: Arc<Inner>,
}

struct Inner {
    config: DatabaseConfig,
    /// `None` once closed: closing releases the metadata store and the directory lock, so the same
    /// process can open the directory again.
    meta_store: Mutex<Option<MetaStore>>,
    state: Mutex<State>,
    closed: AtomicBool,
    lock: Mutex<Option<File>>,
}

impl Inner {
    /// Commits `next` as the metadata (callers hold the state lock, which orders commits).
    fn store_meta(&self, prev: &Metadata, next: &Metadata) -> Result<()> {
        match &*self.meta_store.lock() {
            Some(store) => store.store(prev, next),
            None => Err(Error::Closed),
        }
    }
}

struct State {
    meta: Metadata,
    open: BTreeMap<String, Arc<Collection>>,
}

const NAME_LIMIT: usize = 255;

fn validate_name(kind: &str, name: &str) -> Result<()> {
    let bad = name.is_empty()
        || name.len() > NAME_LIMIT
        || name == "."
        || name == ".."
        || name.chars().any(|c| matches!(c, '/' | '\\' | '\0' | '<' | '>' | ':' | '"' | '|' | '?' | '*'));
    if bad {
        return Err(Error::bad_input(format!(
            "{kind} name {name:?} is invalid: use 1 to {NAME_LIMIT} characters without / \\ : * ? \" < > | or NUL"
        )));
    }
    Ok(())
}

impl Database {
    /// Opens or creates the database in `path` with default settings.
    pub fn open(path: impl AsRef<Path>) -> Result<Database> {
        Self::open_with(DatabaseConfig::new(path.as_ref()))
    }

    /// Opens or creates a database. Fails with [`Error::Locked`] if another process has it open.
    pub fn open_with(config: DatabaseConfig) -> Result<Database> {
        let root = config.path.clone();
        std::fs::create_dir_all(root.join("collections"))
            .map_err(|e| Error::io(format!("create {}", root.display()), e))?;
        let lock_path = root.join(".lock");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| Error::io(format!("open {}", lock_path.display()), e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(Error::Locked(root.display().to_string())),
            Err(TryLockError::Error(e)) => return Err(Error::io(format!("lock {}", lock_path.display()), e)),
        }
        let meta_store = MetaStore::open(&root.join("meta.redb"))?;
        crate::snapshot::finish_interrupted(&root, &meta_store, |name| collection_dir(&root, name))?;
        crate::snapshot::remove_leftovers(&root)?;
        let mut meta = meta_store.load()?;
        if config.catalog.is_some() {
            // The catalog attaches the collections; only aliases are this directory's own.
            meta.collections.clear();
        }
        remove_orphan_dirs(&root.join("collections"), &meta)?;
        let options = ShardOptions { wal_sync: config.wal_sync.clone(), background: config.background };
        let mut open = BTreeMap::new();
        for (name, cfg) in &meta.collections {
            let c = Collection::open(name, &collection_dir(&root, name), cfg.clone(), options.clone())?;
            open.insert(name.clone(), Arc::new(c));
        }
        Ok(Database {
            inner: Arc::new(Inner {
                config,
                meta_store: Mutex::new(Some(meta_store)),
                state: Mutex::new(State { meta, open }),
                closed: AtomicBool::new(false),
                lock: Mutex::new(Some(lock)),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.config.path
    }

    pub(crate) fn check_open(&self) -> Result<()> {
        if self.inner.closed.load(Ordering::Acquire) {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    fn shard_options(&self) -> ShardOptions {
        ShardOptions {
            wal_sync: self.inner.config.wal_sync.clone(),
            background: self.inner.config.background,
        }
    }

    /// Creates a collection. Fails if the name is taken by a collection or an alias.
    pub fn create_collection(&self, name: &str, request: CreateCollection) -> Result<CollectionConfig> {
        self.check_open()?;
        validate_name("collection", name)?;
        let catalog = self.inner.config.catalog.clone();
        let mut request = request;
        if let Some(catalog) = &catalog {
            request.shard_number = request.shard_number.or(Some(catalog.0.default_shard_number()));
        }
        let config = request.into_config()?;
        let mut state = self.inner.state.lock();
        if state.meta.collections.contains_key(name) {
            return Err(Error::AlreadyExists(format!("Collection `{name}`")));
        }
        if state.meta.aliases.contains_key(name) {
            return Err(Error::AlreadyExists(format!("Alias `{name}`")));
        }
        if let Some(catalog) = catalog {
            // The catalog attaches the collection to this database (and every other node's).
            drop(state);
            catalog.0.create_collection(name, config.clone())?;
            return Ok(config);
        }
        let dir = collection_dir(self.path(), name);
        let collection = Collection::open(name, &dir, config.clone(), self.shard_options())?;
        let mut next = state.meta.clone();
        next.collections.insert(name.to_string(), config.clone());
        if let Err(e) = self.inner.store_meta(&state.meta, &next) {
            drop(collection);
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
        state.meta = next;
        state.open.insert(name.to_string(), Arc::new(collection));
        Ok(config)
    }

    /// Runs a Query API query (prefetches, fusion, recommend, discover, ...) against a collection.
    /// Example points may come from another collection (`lookup_from`).
    pub fn query(
        &self,
        collection: &str,
        query: crate::query::PointsQuery,
    ) -> Result<Vec<grape_types::ScoredPoint>> {
        let c = self.collection(collection)?;
        crate::query::run_query(self, &c, query)
    }

    /// Scrolls a collection in the order of a payload value (scroll's `order_by`; the key needs a
    /// range-capable payload index, as in Qdrant).
    pub fn scroll_ordered(
        &self,
        collection: &str,
        req: &crate::query::OrderedScroll,
    ) -> Result<Vec<(grape_types::Record, grape_types::OrderValue)>> {
        let c = self.collection(collection)?;
        crate::query::order_by::scroll_ordered(&c, req)
    }

    /// A collection by name or alias.
    pub fn collection(&self, name_or_alias: &str) -> Result<Arc<Collection>> {
        self.check_open()?;
        let state = self.inner.state.lock();
        let name = state.meta.aliases.get(name_or_alias).map_or(name_or_alias, String::as_str);
        state
            .open
            .get(name)
            .cloned()
            .ok_or_else(|| Error::not_found(format!("Collection `{name_or_alias}` doesn't exist!")))
    }

    pub fn collection_exists(&self, name: &str) -> Result<bool> {
        self.check_open()?;
        Ok(self.inner.state.lock().open.contains_key(name))
    }

    pub fn list_collections(&self) -> Result<Vec<String>> {
        self.check_open()?;
        Ok(self.inner.state.lock().open.keys().cloned().collect())
    }

    pub fn collection_info(&self, name: &str) -> Result<CollectionInfo> {
        self.collection(name)?.info()
    }

    /// Changes HNSW and optimizer parameters of a collection; the change is persisted.
    pub fn update_collection(&self, name: &str, update: &UpdateCollection) -> Result<CollectionConfig> {
        let collection = self.collection(name)?;
        if let Some(catalog) = &self.inner.config.catalog {
            let config = update.apply_to(&collection.config())?;
            catalog.0.update_config(collection.name(), config.clone())?;
            return Ok(config);
        }
        let mut state = self.inner.state.lock();
        let config = update.apply_to(&collection.config())?;
        let mut next = state.meta.clone();
        next.collections.insert(collection.name().to_string(), config);
        self.inner.store_meta(&state.meta, &next)?;
        state.meta = next;
        collection.update_params(update)
    }

    /// Declares a payload index on `field` and builds it in every sealed segment; the declaration is
    /// persisted. Re-declaring a field replaces its index.
    pub fn create_payload_index(&self, name: &str, field: &str, schema: PayloadFieldSchema) -> Result<()> {
        schema.validate(field)?;
        let collection = self.collection(name)?;
        let mut declared = collection.config().payload_schema;
        declared.insert(field.to_string(), schema);
        self.store_payload_schema(&collection, declared)
    }

    /// Drops the payload index on `field` (a no-op when there is none).
    pub fn delete_payload_index(&self, name: &str, field: &str) -> Result<()> {
        let collection = self.collection(name)?;
        let mut declared = collection.config().payload_schema;
        if declared.remove(field).is_none() {
            return Ok(());
        }
        self.store_payload_schema(&collection, declared)
    }

    fn store_payload_schema(
        &self,
        collection: &Collection,
        declared: BTreeMap<String, PayloadFieldSchema>,
    ) -> Result<()> {
        if let Some(catalog) = &self.inner.config.catalog {
            let mut config = collection.config();
            config.payload_schema = declared;
            return catalog.0.update_config(collection.name(), config);
        }
        {
            let mut state = self.inner.state.lock();
            let mut next = state.meta.clone();
            let mut config = collection.config();
            config.payload_schema = declared.clone();
            next.collections.insert(collection.name().to_string(), config);
            self.inner.store_meta(&state.meta, &next)?;
            state.meta = next;
        }
        collection.set_payload_schema(declared).map(|_| ())
    }

    /// Creates a shard key of a custom-sharded collection with its shards; persisted before it returns.
    pub fn create_shard_key(&self, name: &str, request: &CreateShardKey) -> Result<()> {
        let collection = self.collection(name)?;
        if let Some(catalog) = &self.inner.config.catalog {
            request.apply_to(&collection.config())?;
            return catalog.0.create_shard_key(collection.name(), request);
        }
        let mut state = self.inner.state.lock();
        let (config, ids) = request.apply_to(&collection.config())?;
        // The new shard directories first: a crash before the metadata commit leaves directories the
        // configuration does not list, which the next open removes.
        let added = Collection::open_local_shards(collection.dir(), &config, &self.shard_options(), &ids)?;
        let mut next = state.meta.clone();
        next.collections.insert(collection.name().to_string(), config.clone());
        if let Err(e) = self.inner.store_meta(&state.meta, &next) {
            for (id, shard) in added {
                let _ = shard.local().map(|s| s.close());
                let _ = std::fs::remove_dir_all(collection.dir().join("shards").join(id.to_string()));
            }
            return Err(e);
        }
        state.meta = next;
        collection.apply_layout(config, added)?;
        Ok(())
    }

    /// Drops a shard key of a custom-sharded collection and deletes its shards' data.
    pub fn delete_shard_key(&self, name: &str, key: &ShardKey) -> Result<()> {
        let collection = self.collection(name)?;
        if let Some(catalog) = &self.inner.config.catalog {
            drop_shard_key(&collection.config(), key)?;
            return catalog.0.delete_shard_key(collection.name(), key);
        }
        let mut state = self.inner.state.lock();
        let (config, _) = drop_shard_key(&collection.config(), key)?;
        let mut next = state.meta.clone();
        next.collections.insert(collection.name().to_string(), config.clone());
        self.inner.store_meta(&state.meta, &next)?;
        state.meta = next;
        // Committed: from here on the shards are gone (a crash leaves directories the next open removes).
        let removed = collection.apply_layout(config, Vec::new())?;
        drop(state);
        remove_shards(&collection, removed)
    }

    /// The shard keys of a collection in creation order (empty without custom sharding).
    pub fn list_shard_keys(&self, name: &str) -> Result<Vec<ShardKey>> {
        Ok(self.collection(name)?.shard_keys())
    }

    /// Swaps a staged snapshot recovery in as collection `name` (created if missing), steps 2 to 7 of
    /// `snapshot::recovery`. Runs under the state lock, so no create, delete or second recovery of the
    /// name interleaves. A failure before the commit point reopens the old collection; after it, the
    /// collection is unavailable until the next open finishes the recovery.
    pub(crate) fn install_recovered(&self, mut recovery: crate::snapshot::Recovery) -> Result<()> {
        self.check_open()?;
        let name = recovery.collection().to_string();
        validate_name("collection", &name)?;
        let dir = collection_dir(self.path(), &name);
        let mut state = self.inner.state.lock();
        if state.meta.aliases.contains_key(&name) {
            return Err(Error::AlreadyExists(format!("Alias `{name}`")));
        }
        let old = state.open.remove(&name);
        let committed = old.as_ref().map_or(Ok(()), |c| c.close()).and_then(|()| recovery.commit());
        if let Err(e) = committed {
            if let (Some(_), Some(config)) = (old, state.meta.collections.get(&name).cloned()) {
                let reopened = Collection::open(&name, &dir, config, self.shard_options())?;
                state.open.insert(name, Arc::new(reopened));
            }
            return Err(e);
        }
        recovery.move_into_place(&dir)?;
        let mut next = state.meta.clone();
        next.collections.insert(name.clone(), recovery.config().clone());
        self.inner.store_meta(&state.meta, &next)?;
        state.meta = next;
        let config = recovery.config().clone();
        recovery.finish()?;
        let collection = Collection::open(&name, &dir, config, self.shard_options())?;
        state.open.insert(name, Arc::new(collection));
        Ok(())
    }

    /// Deletes a collection, its aliases and its data. Returns false if it did not exist.
    pub fn delete_collection(&self, name: &str) -> Result<bool> {
        self.check_open()?;
        if let Some(catalog) = &self.inner.config.catalog {
            return catalog.0.delete_collection(name);
        }
        let mut state = self.inner.state.lock();
        let Some(collection) = state.open.get(name).cloned() else { return Ok(false) };
        let mut next = state.meta.clone();
        next.collections.remove(name);
        next.aliases.retain(|_, target| target != name);
        self.inner.store_meta(&state.meta, &next)?;
        state.meta = next;
        state.open.remove(name);
        drop(state);
        collection.close()?;
        drop(collection);
        let dir = collection_dir(self.path(), name);
        std::fs::remove_dir_all(&dir).map_err(|e| Error::io(format!("remove {}", dir.display()), e))?;
        Ok(true)
    }

    /// Cluster mode: makes a collection declared in the catalog available here (its shards are handles
    /// opened by the cluster layer). Replaces a collection of the same name.
    pub fn attach_collection(&self, collection: Arc<Collection>) -> Result<()> {
        self.check_open()?;
        let mut state = self.inner.state.lock();
        let name = collection.name().to_string();
        state.meta.collections.insert(name.clone(), collection.config());
        state.open.insert(name, collection);
        Ok(())
    }

    /// Cluster mode: removes a collection the catalog dropped; its aliases go with it. The cluster
    /// layer closes and deletes the shards it holds.
    pub fn detach_collection(&self, name: &str) -> Result<Option<Arc<Collection>>> {
        let mut state = self.inner.state.lock();
        let removed = state.open.remove(name);
        if removed.is_some() {
            let mut next = state.meta.clone();
            next.collections.remove(name);
            next.aliases.retain(|_, target| target != name);
            self.inner.store_meta(&state.meta, &next)?;
            state.meta = next;
        }
        Ok(removed)
    }

    /// Cluster mode: adopts a configuration the catalog committed (parameters, payload indexes).
    pub fn apply_config(&self, name: &str, config: CollectionConfig) -> Result<()> {
        let collection = self.collection(name)?;
        self.inner.state.lock().meta.collections.insert(name.to_string(), config.clone());
        collection.replace_config(config)
    }

    /// Applies alias changes atomically: all or none.
    pub fn update_aliases(&self, actions: &[AliasOperation]) -> Result<()> {
        self.check_open()?;
        let mut state = self.inner.state.lock();
        let mut next = state.meta.clone();
        for action in actions {
            match action {
                AliasOperation::CreateAlias { collection_name, alias_name } => {
                    validate_name("alias", alias_name)?;
                    if !next.collections.contains_key(collection_name) {
                        return Err(Error::not_found(format!(
                            "Collection `{collection_name}` doesn't exist!"
                        )));
                    }
                    if next.collections.contains_key(alias_name) {
                        return Err(Error::AlreadyExists(format!("Collection `{alias_name}`")));
                    }
                    next.aliases.insert(alias_name.clone(), collection_name.clone());
                }
                AliasOperation::DeleteAlias { alias_name } => {
                    if next.aliases.remove(alias_name).is_none() {
                        return Err(Error::not_found(format!("Alias `{alias_name}` doesn't exist!")));
                    }
                }
                AliasOperation::RenameAlias { old_alias_name, new_alias_name } => {
                    validate_name("alias", new_alias_name)?;
                    let target = next.aliases.remove(old_alias_name).ok_or_else(|| {
                        Error::not_found(format!("Alias `{old_alias_name}` doesn't exist!"))
                    })?;
                    if next.collections.contains_key(new_alias_name) {
                        return Err(Error::AlreadyExists(format!("Collection `{new_alias_name}`")));
                    }
                    next.aliases.insert(new_alias_name.clone(), target);
                }
            }
        }
        self.inner.store_meta(&state.meta, &next)?;
        state.meta = next;
        Ok(())
    }

    /// All aliases, sorted by alias name.
    pub fn list_aliases(&self) -> Result<Vec<AliasDescription>> {
        self.check_open()?;
        Ok(self
            .inner
            .state
            .lock()
            .meta
            .aliases
            .iter()
            .map(|(a, c)| AliasDescription { alias_name: a.clone(), collection_name: c.clone() })
            .collect())
    }

    /// Aliases of one collection.
    pub fn collection_aliases(&self, name: &str) -> Result<Vec<AliasDescription>> {
        if !self.collection_exists(name)? {
            return Err(Error::not_found(format!("Collection `{name}` doesn't exist!")));
        }
        Ok(self.list_aliases()?.into_iter().filter(|a| a.collection_name == name).collect())
    }

    /// Persists every acknowledged write of every collection into segment files.
    pub fn flush(&self) -> Result<()> {
        self.check_open()?;
        let open: Vec<_> = self.inner.state.lock().open.values().cloned().collect();
        open.iter().try_for_each(|c| c.flush())
    }

    pub fn health(&self) -> Health {
        if self.inner.closed.load(Ordering::Acquire) {
            return Health { state: HealthState::Closed, collections: Vec::new() };
        }
        let open: Vec<_> = self.inner.state.lock().open.values().cloned().collect();
        let collections: Vec<CollectionStats> = open.iter().map(|c| c.stats()).collect();
        let state = if collections.iter().any(|c| c.optimizer_error.is_some()) {
            HealthState::Degraded
        } else {
            HealthState::Ok
        };
        Health { state, collections }
    }

    /// Waits for in-flight writes, stops background work and flushes everything. Later calls on any
    /// clone of this handle fail with [`Error::Closed`]. Dropping the last handle closes too.
    pub fn close(&self) -> Result<()> {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let open: Vec<_> = self.inner.state.lock().open.values().cloned().collect();
        let result = open.iter().try_for_each(|c| c.close());
        *self.inner.meta_store.lock() = None;
        *self.inner.lock.lock() = None;
        result
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let open: Vec<_> = self.state.lock().open.values().cloned().collect();
        for c in open {
            if let Err(e) = c.close() {
                tracing::error!(collection = c.name(), "close on drop failed: {e}");
            }
        }
    }
}

/// Closes dropped shards held here and deletes their directories.
fn remove_shards(collection: &Collection, removed: Vec<grape_collection::ShardHandle>) -> Result<()> {
    for handle in removed {
        if let Some(local) = handle.shard.local() {
            local.close()?;
        }
        let dir = collection.dir().join("shards").join(handle.id.to_string());
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| Error::io(format!("remove {}", dir.display()), e))?;
        }
    }
    Ok(())
}

fn collection_dir(root: &Path, name: &str) -> PathBuf {
    root.join("collections").join(name)
}

/// Removes collection directories without metadata (a create or delete interrupted by a crash).
fn remove_orphan_dirs(dir: &Path, meta: &Metadata) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(format!("list {}", dir.display()), e))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if !meta.collections.contains_key(&name) {
            tracing::warn!(collection = name, "removing a collection directory without metadata");
            std::fs::remove_dir_all(entry.path())
                .map_err(|e| Error::io(format!("remove {}", entry.path().display()), e))?;
        }
    }
    Ok(())
}
