//! The in-memory view the invoke path reads: each function's loaded versions and its
//! aliases. Filled lazily from the store (the first invocation after a start) and kept
//! current by every write through the control plane, so invoking never touches the
//! database.

use std::collections::HashMap;
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
}

impl View {
    fn version(&self, name: &str, version: &str) -> Option<Arc<ResolvedFunction>> {
        self.versions.read().unwrap_or_else(|p| p.into_inner()).get(name)?.get(version).cloned()
    }

    pub(crate) fn put_version(&self, r: Arc<ResolvedFunction>) {
        let mut map = self.versions.write().unwrap_or_else(|p| p.into_inner());
        map.entry(r.config.name.clone()).or_default().insert(r.config.version.clone(), r);
    }

    pub(crate) fn forget_version(&self, name: &str, version: &str) {
        if let Some(v) = self.versions.write().unwrap_or_else(|p| p.into_inner()).get_mut(name) {
            v.remove(version);
        }
    }

    pub(crate) fn forget_aliases(&self, name: &str) {
        self.aliases.write().unwrap_or_else(|p| p.into_inner()).remove(name);
    }

    pub(crate) fn forget_function(&self, name: &str) {
        self.versions.write().unwrap_or_else(|p| p.into_inner()).remove(name);
        self.forget_aliases(name);
        self.forget_urls_of(name);
    }

    pub(crate) fn forget_urls_of(&self, name: &str) {
        self.urls.write().unwrap_or_else(|p| p.into_inner()).retain(|_, u| u.function != name);
    }

    /// Forgets every function; answers the names of those it knew.
    pub(crate) fn forget_all(&self) -> Vec<String> {
        let names: Vec<String> = self.versions.write().unwrap_or_else(|p| p.into_inner()).drain().map(|(name, _)| name).collect();
        self.aliases.write().unwrap_or_else(|p| p.into_inner()).clear();
        self.urls.write().unwrap_or_else(|p| p.into_inner()).clear();
        names
    }

    pub(crate) fn url(&self, id: &str) -> Option<Arc<nimbus_model::url::FunctionUrlConfig>> {
        self.urls.read().unwrap_or_else(|p| p.into_inner()).get(id).cloned()
    }

    pub(crate) fn put_url(&self, c: Arc<nimbus_model::url::FunctionUrlConfig>) {
        self.urls.write().unwrap_or_else(|p| p.into_inner()).insert(c.url_id.clone(), c);
    }

    pub(crate) fn forget_url(&self, id: &str) {
        self.urls.write().unwrap_or_else(|p| p.into_inner()).remove(id);
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
        let list = self.store.list_aliases(name).await.map_err(store_err)?;
        let map: Aliases = Arc::new(list.into_iter().map(|a| (a.name.clone(), a)).collect());
        self.view.aliases.write().unwrap_or_else(|p| p.into_inner()).insert(name.to_string(), map.clone());
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
        let config = self.store.get_function(name, version).await.map_err(store_err)?.ok_or_else(|| {
            // Invoke names the version it looked for, `$LATEST` included.
            ApiError::not_found(format!("Function not found: {}", self.partition.qualified_arn(name, version)))
        })?;
        let resolved = self.materialize(config).await?;
        self.view.put_version(resolved.clone());
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
        Ok(Arc::new(ResolvedFunction { config, code_dir, opt_dir, trees }))
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
