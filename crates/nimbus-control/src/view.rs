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
use std::sync::{Arc, RwLock};

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
    /// Bumped by every change, under the lock of the map it changes.
    epoch: AtomicU64,
}

/// Where a fill started: taken before the store is read.
#[derive(Clone, Copy)]
pub(crate) struct Seen(u64);

impl View {
    /// Taken before reading the store for a fill.
    pub(crate) fn seen(&self) -> Seen {
        Seen(self.epoch.load(Ordering::SeqCst))
    }

    /// Whether a fill that started at `seen` may be kept (called under the map's lock).
    fn still(&self, seen: Seen) -> bool {
        self.epoch.load(Ordering::SeqCst) == seen.0
    }

    /// Called under the lock of the map that changed.
    fn bump(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }

    fn version(&self, name: &str, version: &str) -> Option<Arc<ResolvedFunction>> {
        self.versions.read().unwrap_or_else(|p| p.into_inner()).get(name)?.get(version).cloned()
    }

    /// A version as a change made it.
    pub(crate) fn put_version(&self, r: Arc<ResolvedFunction>) {
        let mut map = self.versions.write().unwrap_or_else(|p| p.into_inner());
        self.bump();
        r.held.store(true, Ordering::SeqCst);
        let old = map.entry(r.config.name.clone()).or_default().insert(r.config.version.clone(), r);
        let_go(old);
    }

    /// A version read from the store on a miss: kept unless a change came since `seen`.
    fn fill_version(&self, r: &Arc<ResolvedFunction>, seen: Seen) {
        let mut map = self.versions.write().unwrap_or_else(|p| p.into_inner());
        if self.still(seen) {
            r.held.store(true, Ordering::SeqCst);
            let old = map.entry(r.config.name.clone()).or_default().insert(r.config.version.clone(), r.clone());
            let_go(old);
        }
    }

    pub(crate) fn forget_version(&self, name: &str, version: &str) {
        let mut map = self.versions.write().unwrap_or_else(|p| p.into_inner());
        self.bump();
        if let Some(v) = map.get_mut(name) {
            let_go(v.remove(version));
        }
    }

    pub(crate) fn forget_aliases(&self, name: &str) {
        let mut map = self.aliases.write().unwrap_or_else(|p| p.into_inner());
        self.bump();
        map.remove(name);
    }

    fn fill_aliases(&self, name: &str, aliases: Aliases, seen: Seen) {
        let mut map = self.aliases.write().unwrap_or_else(|p| p.into_inner());
        if self.still(seen) {
            map.insert(name.to_string(), aliases);
        }
    }

    pub(crate) fn forget_function(&self, name: &str) {
        {
            let mut map = self.versions.write().unwrap_or_else(|p| p.into_inner());
            self.bump();
            for (_, r) in map.remove(name).into_iter().flatten() {
                let_go(Some(r));
            }
        }
        self.forget_aliases(name);
        self.forget_urls_of(name);
    }

    pub(crate) fn forget_urls_of(&self, name: &str) {
        let mut map = self.urls.write().unwrap_or_else(|p| p.into_inner());
        self.bump();
        map.retain(|_, u| u.function != name);
    }

    /// Forgets every function; answers the names of those it knew.
    pub(crate) fn forget_all(&self) -> Vec<String> {
        let names: Vec<String> = {
            let mut map = self.versions.write().unwrap_or_else(|p| p.into_inner());
            self.bump();
            map.drain()
                .map(|(name, versions)| {
                    versions.into_values().for_each(|r| let_go(Some(r)));
                    name
                })
                .collect()
        };
        {
            let mut map = self.aliases.write().unwrap_or_else(|p| p.into_inner());
            self.bump();
            map.clear();
        }
        let mut map = self.urls.write().unwrap_or_else(|p| p.into_inner());
        self.bump();
        map.clear();
        names
    }

    pub(crate) fn url(&self, id: &str) -> Option<Arc<nimbus_model::url::FunctionUrlConfig>> {
        self.urls.read().unwrap_or_else(|p| p.into_inner()).get(id).cloned()
    }

    /// A URL config read from the store on a miss: kept unless a change came since `seen`.
    pub(crate) fn fill_url(&self, c: Arc<nimbus_model::url::FunctionUrlConfig>, seen: Seen) {
        let mut map = self.urls.write().unwrap_or_else(|p| p.into_inner());
        if self.still(seen) {
            map.insert(c.url_id.clone(), c);
        }
    }

    pub(crate) fn forget_url(&self, id: &str) {
        let mut map = self.urls.write().unwrap_or_else(|p| p.into_inner());
        self.bump();
        map.remove(id);
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
        let seen = self.view.seen();
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
        let seen = self.view.seen();
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

    fn version(name: &str, revision: &str) -> Arc<ResolvedFunction> {
        let config: FunctionConfig = serde_json::from_value(serde_json::json!({
            "name": name, "version": LATEST, "runtime": "python3.12", "role": "arn:aws:iam::000000000000:role/r",
            "handler": "h.h", "timeout_secs": 3, "memory_mb": 128, "ephemeral_storage_mb": 512, "code_digest": "ab",
            "code_size": 1, "code_unzipped_size": 1, "last_modified_ms": 0, "revision_id": revision,
        }))
        .unwrap();
        Arc::new(ResolvedFunction { config, code_dir: "/x".into(), opt_dir: None, trees: vec![], held: AtomicBool::new(false) })
    }

    /// A fill read before a change is not kept (and is not current); one read after it is.
    #[test]
    fn a_fill_that_raced_a_change_is_not_kept() {
        type Change = fn(&View);
        let cases: [(&str, Option<Change>, bool); 6] = [
            ("no change", None, true),
            ("the function deleted", Some(|v| v.forget_function("f")), false),
            ("the function updated", Some(|v| v.put_version(version("f", "new"))), false),
            ("one version deleted", Some(|v| v.forget_version("f", LATEST)), false),
            ("another function's aliases changed", Some(|v| v.forget_aliases("g")), false),
            ("a resync", Some(|v| drop(v.forget_all())), false),
        ];
        for (what, change, kept) in cases {
            let view = View::default();
            let seen = view.seen();
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
            view.fill_version(&again, view.seen());
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

    #[test]
    fn alias_and_url_fills_that_raced_a_change_are_not_kept() {
        let view = View::default();
        let seen = view.seen();
        view.forget_aliases("f");
        view.fill_aliases("f", Arc::default(), seen);
        assert!(view.aliases.read().unwrap().get("f").is_none());
        view.fill_aliases("f", Arc::default(), view.seen());
        assert!(view.aliases.read().unwrap().get("f").is_some());

        let url: nimbus_model::url::FunctionUrlConfig = serde_json::from_value(serde_json::json!({
            "url_id": "u1", "function": "f", "auth_type": "NONE", "invoke_mode": "BUFFERED", "created_ms": 0, "modified_ms": 0,
        }))
        .unwrap();
        let url = Arc::new(url);
        let seen = view.seen();
        view.forget_urls_of("f");
        view.fill_url(url.clone(), seen);
        assert!(view.url("u1").is_none());
        view.fill_url(url, view.seen());
        assert!(view.url("u1").is_some());
    }
}
