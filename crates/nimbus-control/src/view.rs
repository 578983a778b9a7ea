//! The in-memory view the invoke path reads: each function's loaded versions and its
//! aliases. Filled lazily from the store (the first invocation after a start) and kept
//! current by every write through the control plane, so invoking never touches the
//! database.
//!
//! A fill (a record read from the store on a miss) can race a change: read before the
//! change, kept after it, it would serve the old record for good (a deleted function
//! invocable, its code never freed). Every change bumps an epoch under the lock of the map
//! it changes, and a fill is kept only if no change came since it started reading.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use nimbus_model::alias::{self, AliasConfig};
use nimbus_model::{ApiError, FunctionConfig, Qualifier, LATEST};

use crate::{code_err, store_err, ControlPlane, ResolvedFunction};

type Versions = HashMap<String, Arc<ResolvedFunction>>;
type Aliases = Arc<HashMap<String, AliasConfig>>;

#[derive(Default)]
pub(crate) struct View {
    versions: RwLock<HashMap<String, Versions>>,
    aliases: RwLock<HashMap<String, Aliases>>,
    /// Function URL configs by URL id.
    urls: RwLock<HashMap<String, Arc<nimbus_model::url::FunctionUrlConfig>>>,
    /// Per function: bumped by every change to its versions or aliases, under the lock of
    /// the map it changes (entries are never removed: a fill that started before a removal
    /// would find the generation it saw again).
    generations: Mutex<HashMap<String, u64>>,
    /// Bumped by every change to the URL map, under its lock.
    url_generation: AtomicU64,
    /// Bumped when every function is forgotten at once.
    resyncs: AtomicU64,
}

/// Where a fill of one function's records started: taken before the store is read.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Seen {
    resyncs: u64,
    generation: u64,
}

/// Where a fill of a URL config started.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct SeenUrls {
    resyncs: u64,
    generation: u64,
}

impl View {
    /// Taken before reading `name`'s records from the store for a fill.
    pub(crate) fn seen(&self, name: &str) -> Seen {
        let generation = self.generations.lock().unwrap_or_else(|p| p.into_inner()).get(name).copied().unwrap_or(0);
        Seen { resyncs: self.resyncs.load(Ordering::SeqCst), generation }
    }

    /// Taken before reading a URL config from the store for a fill.
    pub(crate) fn seen_urls(&self) -> SeenUrls {
        SeenUrls { resyncs: self.resyncs.load(Ordering::SeqCst), generation: self.url_generation.load(Ordering::SeqCst) }
    }

    /// Whether a fill of `name` that started at `seen` may be kept (called under the map's
    /// lock).
    fn still(&self, name: &str, seen: Seen) -> bool {
        self.seen(name) == seen
    }

    /// Called under the lock of the map that changed.
    fn bump(&self, name: &str) {
        let mut generations = self.generations.lock().unwrap_or_else(|p| p.into_inner());
        match generations.get_mut(name) {
            Some(g) => *g += 1,
            None => {
                generations.insert(name.to_string(), 1);
            }
        }
    }

    fn version(&self, name: &str, version: &str) -> Option<Arc<ResolvedFunction>> {
        self.versions.read().unwrap_or_else(|p| p.into_inner()).get(name)?.get(version).cloned()
    }

    /// A version as a change made it.
    pub(crate) fn put_version(&self, r: Arc<ResolvedFunction>) {
        let mut map = self.versions.write().unwrap_or_else(|p| p.into_inner());
        self.bump(&r.config.name);
        hold(&r);
        let old = map.entry(r.config.name.clone()).or_default().insert(r.config.version.clone(), r);
        let_go(old);
    }

    /// A version read from the store on a miss: kept unless a change to its function came
    /// since `seen`.
    fn fill_version(&self, r: &Arc<ResolvedFunction>, seen: Seen) {
        let mut map = self.versions.write().unwrap_or_else(|p| p.into_inner());
        if self.still(&r.config.name, seen) {
            hold(r);
            let old = map.entry(r.config.name.clone()).or_default().insert(r.config.version.clone(), r.clone());
            let_go(old);
        }
    }

    pub(crate) fn forget_version(&self, name: &str, version: &str) {
        let mut map = self.versions.write().unwrap_or_else(|p| p.into_inner());
        self.bump(name);
        if let Some(v) = map.get_mut(name) {
            let_go(v.remove(version));
        }
    }

    pub(crate) fn forget_aliases(&self, name: &str) {
        let mut map = self.aliases.write().unwrap_or_else(|p| p.into_inner());
        self.bump(name);
        map.remove(name);
    }

    fn fill_aliases(&self, name: &str, aliases: Aliases, seen: Seen) {
        let mut map = self.aliases.write().unwrap_or_else(|p| p.into_inner());
        if self.still(name, seen) {
            map.insert(name.to_string(), aliases);
        }
    }

    pub(crate) fn forget_function(&self, name: &str) {
        {
            let mut map = self.versions.write().unwrap_or_else(|p| p.into_inner());
            self.bump(name);
            for (_, r) in map.remove(name).into_iter().flatten() {
                let_go(Some(r));
            }
        }
        self.forget_aliases(name);
        self.forget_urls_of(name);
    }

    pub(crate) fn forget_urls_of(&self, name: &str) {
        let mut map = self.urls.write().unwrap_or_else(|p| p.into_inner());
        self.url_generation.fetch_add(1, Ordering::SeqCst);
        map.retain(|_, u| u.function != name);
    }

    /// Forgets every function; answers the names of those it knew.
    pub(crate) fn forget_all(&self) -> Vec<String> {
        let names: Vec<String> = {
            let mut map = self.versions.write().unwrap_or_else(|p| p.into_inner());
            self.resyncs.fetch_add(1, Ordering::SeqCst);
            map.drain()
                .map(|(name, versions)| {
                    versions.into_values().for_each(|r| let_go(Some(r)));
                    name
                })
                .collect()
        };
        {
            let mut map = self.aliases.write().unwrap_or_else(|p| p.into_inner());
            self.resyncs.fetch_add(1, Ordering::SeqCst);
            map.clear();
        }
        let mut map = self.urls.write().unwrap_or_else(|p| p.into_inner());
        self.resyncs.fetch_add(1, Ordering::SeqCst);
        map.clear();
        names
    }

    pub(crate) fn url(&self, id: &str) -> Option<Arc<nimbus_model::url::FunctionUrlConfig>> {
        self.urls.read().unwrap_or_else(|p| p.into_inner()).get(id).cloned()
    }

    /// A URL config read from the store on a miss: kept unless a change came since `seen`.
    pub(crate) fn fill_url(&self, c: Arc<nimbus_model::url::FunctionUrlConfig>, seen: SeenUrls) {
        let mut map = self.urls.write().unwrap_or_else(|p| p.into_inner());
        if self.seen_urls() == seen {
            map.insert(c.url_id.clone(), c);
        }
    }

    pub(crate) fn forget_url(&self, id: &str) {
        let mut map = self.urls.write().unwrap_or_else(|p| p.into_inner());
        self.url_generation.fetch_add(1, Ordering::SeqCst);
        map.remove(id);
    }
}

/// Marks a version the view now holds current, and keeps its code and layers' trees: a
/// function refers to them (even if an earlier one with the same code was deleted while its
/// last environment still ran). Called under the view's lock, so a delete's removal of the
/// trees, which follows its change to the view, comes after.
fn hold(r: &ResolvedFunction) {
    r.held.store(true, Ordering::SeqCst);
    for tree in &r.trees {
        tree.keep();
    }
}

/// Marks a version the view no longer holds (see [`ResolvedFunction::is_current`]).
fn let_go(r: Option<Arc<ResolvedFunction>>) {
    if let Some(r) = r {
        r.held.store(false, Ordering::SeqCst);
    }
}

/// A small, fast generator for traffic splitting between an alias's two versions.
fn roll() -> f64 {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = Cell::new(
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1)
                ^ u64::from(std::process::id()) << 32,
        );
    }
    STATE.with(|s| {
        // splitmix64
        let mut z = s.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        s.set(z);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    })
}

impl ControlPlane {
    /// A function's aliases, from memory or loaded once from the store.
    pub(crate) async fn alias_map(&self, name: &str) -> Result<Aliases, ApiError> {
        if let Some(a) = self.view.aliases.read().unwrap_or_else(|p| p.into_inner()).get(name) {
            return Ok(a.clone());
        }
        let seen = self.view.seen(name);
        let list = self.store.list_aliases(name).await.map_err(store_err)?;
        let map: Aliases = Arc::new(list.into_iter().map(|a| (a.name.clone(), a)).collect());
        self.view.fill_aliases(name, map.clone(), seen);
        Ok(map)
    }

    /// The version an invocation of `name` with `qualifier` runs: `$LATEST`, a version
    /// number, or an alias followed through its chain (choosing a weighted version).
    pub async fn route(&self, name: &str, qualifier: Option<&Qualifier>) -> Result<String, ApiError> {
        let q = match qualifier {
            None | Some(Qualifier::Latest) => return Ok(LATEST.to_string()),
            Some(Qualifier::Named(q)) => q,
        };
        if alias::is_version_number(q) {
            return Ok(q.clone());
        }
        let aliases = self.alias_map(name).await?;
        let start = aliases
            .get(q.as_str())
            .ok_or_else(|| ApiError::not_found(format!("Function not found: {}", self.partition.qualified_arn(name, q))))?;
        alias::resolve(start, |n| aliases.get(n), roll())
    }

    /// One version of a function, from memory; only its first use after a start reads the
    /// store (and re-unpacks the code if the disposable cache lost it).
    pub async fn resolve_version(&self, name: &str, version: &str) -> Result<Arc<ResolvedFunction>, ApiError> {
        if let Some(r) = self.view.version(name, version) {
            return Ok(r);
        }
        let seen = self.view.seen(name);
        let config = self.store.get_function(name, version).await.map_err(store_err)?.ok_or_else(|| {
            // Invoke names the version it looked for, `$LATEST` included.
            ApiError::not_found(format!("Function not found: {}", self.partition.qualified_arn(name, version)))
        })?;
        let resolved = self.materialize(config).await?;
        self.view.fill_version(&resolved, seen);
        Ok(resolved)
    }

    /// Makes sure a configuration's code and layers are unpacked (the caches are
    /// disposable: a missing directory is rebuilt from its blob) and merges its `/opt`.
    /// Each tree is leased before it is looked at, so a function deleted meanwhile cannot
    /// take it away under the environment about to start from it.
    pub(crate) async fn materialize(&self, config: FunctionConfig) -> Result<Arc<ResolvedFunction>, ApiError> {
        let mut trees = Vec::with_capacity(config.layers.len() + 2);
        let code = self.code.lease(&config.code_digest);
        let code_dir = self.unpacked(&self.code, &config, &config.code_digest).await?;
        trees.push(code);
        let opt_dir = if config.layers.is_empty() {
            None
        } else {
            let mut layers = Vec::with_capacity(config.layers.len());
            for l in &config.layers {
                trees.push(self.layer_code.lease(&l.code_digest));
                layers.push((l.code_digest.clone(), self.unpacked(&self.layer_code, &config, &l.code_digest).await?));
            }
            let opt = self.opt.ensure(&layers).map_err(code_err)?;
            let dir = opt.path().to_path_buf();
            trees.push(opt);
            Some(dir)
        };
        Ok(Arc::new(ResolvedFunction { config, code_dir, opt_dir, trees, held: AtomicBool::new(false) }))
    }

    async fn unpacked(
        &self,
        cache: &nimbus_store::CodeCache,
        config: &FunctionConfig,
        digest: &str,
    ) -> Result<std::path::PathBuf, ApiError> {
        let dir = cache.dir(digest);
        if dir.is_dir() {
            return Ok(dir);
        }
        let Some(zip) = self.blobs.get(digest).await.map_err(store_err)? else {
            // Deleted since it was looked up: for the caller, it is gone.
            if let Ok(false) = self.store.digest_in_use(digest).await {
                return Err(ApiError::not_found(format!(
                    "Function not found: {}",
                    self.partition.qualified_arn(&config.name, &config.version)
                )));
            }
            return Err(ApiError::service(format!("blob {digest} is missing from the blob store")));
        };
        cache.ensure(digest, &zip).map_err(code_err)
    }

    /// What an invocation runs: the routed version's configuration and code.
    pub async fn resolve(&self, name: &str, qualifier: Option<&Qualifier>) -> Result<Arc<ResolvedFunction>, ApiError> {
        let version = self.route(name, qualifier).await?;
        self.resolve_version(name, &version).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version_of(name: &str, revision: &str, trees: Vec<Arc<nimbus_store::code::Tree>>) -> Arc<ResolvedFunction> {
        let config: FunctionConfig = serde_json::from_value(serde_json::json!({
            "name": name, "version": LATEST, "runtime": "python3.12", "role": "arn:aws:iam::000000000000:role/r",
            "handler": "h.h", "timeout_secs": 3, "memory_mb": 128, "ephemeral_storage_mb": 512, "code_digest": "ab",
            "code_size": 1, "code_unzipped_size": 1, "last_modified_ms": 0, "revision_id": revision,
        }))
        .unwrap();
        Arc::new(ResolvedFunction { config, code_dir: "/x".into(), opt_dir: None, trees, held: AtomicBool::new(false) })
    }

    fn version(name: &str, revision: &str) -> Arc<ResolvedFunction> {
        version_of(name, revision, vec![])
    }

    /// A fill read before a change to its function is not kept (and is not current); one
    /// read after it is, and so is one that only another function's change raced.
    #[test]
    fn a_fill_that_raced_a_change_is_not_kept() {
        type Change = fn(&View);
        let cases: [(&str, Option<Change>, bool); 8] = [
            ("no change", None, true),
            ("the function deleted", Some(|v| v.forget_function("f")), false),
            ("the function updated", Some(|v| v.put_version(version("f", "new"))), false),
            ("one version deleted", Some(|v| v.forget_version("f", LATEST)), false),
            ("its aliases changed", Some(|v| v.forget_aliases("f")), false),
            ("a resync", Some(|v| drop(v.forget_all())), false),
            ("another function's aliases changed", Some(|v| v.forget_aliases("g")), true),
            ("another function updated", Some(|v| v.put_version(version("g", "new"))), true),
        ];
        for (what, change, kept) in cases {
            let view = View::default();
            let seen = view.seen("f");
            if let Some(change) = change {
                change(&view);
            }
            let read = version("f", "read");
            view.fill_version(&read, seen);
            let held = view.version("f", LATEST);
            assert_eq!(held.as_ref().is_some_and(|h| Arc::ptr_eq(h, &read)), kept, "{what}");
            assert_eq!(read.is_current(), kept, "{what}");
            // A fill that starts after the change is kept.
            let again = version("f", "again");
            view.fill_version(&again, view.seen("f"));
            assert!(again.is_current() && !read.is_current(), "{what}");
        }
    }

    /// A version stops being current when the view lets go of it, however it does.
    #[test]
    fn replaced_and_forgotten_versions_are_not_current() {
        type Change = fn(&View);
        let cases: [(&str, Change); 4] = [
            ("updated", |v| v.put_version(version("f", "new"))),
            ("deleted", |v| v.forget_function("f")),
            ("version deleted", |v| v.forget_version("f", LATEST)),
            ("resync", |v| drop(v.forget_all())),
        ];
        for (what, change) in cases {
            let view = View::default();
            let first = version("f", "first");
            view.put_version(first.clone());
            assert!(first.is_current(), "{what}");
            change(&view);
            assert!(!first.is_current(), "{what}");
        }
    }

    /// Code let go of (its function deleted while an environment still runs from it) is kept
    /// again by a current record that refers to it (a new function with the same code), never
    /// by a fill read before the delete.
    #[test]
    fn only_a_current_record_keeps_code_that_was_let_go() {
        let dir = tempfile::tempdir().unwrap();
        let cache = nimbus_store::CodeCache::new(dir.path().join("code"), dir.path().join("tmp"));
        // (how the record comes, whether the tree is kept)
        let cases = [("a change puts it", true), ("a fill after the delete", true), ("a fill that raced the delete", false)];
        for (how, kept) in cases {
            std::fs::create_dir_all(cache.dir("d")).unwrap();
            let view = View::default();
            let seen = view.seen("f");
            let running = cache.lease("d"); // the deleted function's last environment
            view.forget_function("f");
            cache.remove("d");
            assert!(running.let_go(), "{how}");
            let record = version_of("f", "new", vec![cache.lease("d")]);
            match how {
                "a change puts it" => view.put_version(record.clone()),
                "a fill after the delete" => view.fill_version(&record, view.seen("f")),
                _ => view.fill_version(&record, seen),
            }
            assert_eq!(!running.let_go(), kept, "{how}");
            drop((running, record));
            view.forget_function("f");
            assert_eq!(cache.dir("d").exists(), kept, "{how}: the tree after the last handle");
            cache.remove("d");
        }
    }

    #[test]
    fn alias_and_url_fills_that_raced_a_change_are_not_kept() {
        let view = View::default();
        let seen = view.seen("f");
        view.forget_aliases("f");
        view.fill_aliases("f", Arc::default(), seen);
        assert!(view.aliases.read().unwrap().get("f").is_none());
        view.fill_aliases("f", Arc::default(), view.seen("f"));
        assert!(view.aliases.read().unwrap().get("f").is_some());

        let url: nimbus_model::url::FunctionUrlConfig = serde_json::from_value(serde_json::json!({
            "url_id": "u1", "function": "f", "auth_type": "NONE", "invoke_mode": "BUFFERED", "created_ms": 0, "modified_ms": 0,
        }))
        .unwrap();
        let url = Arc::new(url);
        let seen = view.seen_urls();
        view.forget_urls_of("f");
        view.fill_url(url.clone(), seen);
        assert!(view.url("u1").is_none());
        view.fill_url(url, view.seen_urls());
        assert!(view.url("u1").is_some());
    }
}
