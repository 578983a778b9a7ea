//! `nimbus runtimes install`: puts Node.js builds and the runtimes' AWS SDKs into the data
//! directory's runtime store (`nimbus_sandbox::runtimes::store`), from the npm registry and
//! PyPI. Every download is checked against its checksum (the registry's `dist.integrity`,
//! the pinned lock's integrity, the pinned wheel hashes) before anything is unpacked; each
//! part is unpacked into a staging directory, made read-only, and renamed into place whole,
//! so a corrupt or partial download is never registered.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use nimbus_model::{Runtime, RuntimeFamily};
use nimbus_sandbox::runtimes::store;
use serde_json::{json, Value};
use sha2::{Digest, Sha256, Sha512};

/// The SDK for JavaScript v3 packages Node runtimes provide, as npm locked them.
const NODE_SDK_LOCK: &str = include_str!("../../../runtimes/node/sdk/package-lock.json");
/// boto3, botocore and their dependencies, pinned with their wheels' hashes.
const PYTHON_SDK_REQUIREMENTS: &str = include_str!("../../../runtimes/python/sdk-requirements.txt");

const DEFAULT_NPM: &str = "https://registry.npmjs.org";
const DEFAULT_PYPI: &str = "https://pypi.org/simple";
/// Parallel downloads of the SDK's packages.
const PARALLEL: usize = 8;

/// Where packages come from and where verified downloads are kept.
#[derive(Debug, Clone)]
pub struct Sources {
    /// The npm registry (`NIMBUS_NPM_REGISTRY`), for Node.js builds and the JavaScript SDK.
    pub npm: String,
    /// A package index with PyPI's Simple API in JSON (PEP 691; `NIMBUS_PYPI_INDEX`), for
    /// boto3 and botocore.
    pub pypi: String,
    /// Verified downloads by checksum (`NIMBUS_DOWNLOAD_CACHE`; `~/.cache/nimbus/downloads`),
    /// re-verified when read. None: no cache.
    pub cache: Option<PathBuf>,
}

impl Sources {
    pub fn from_env() -> Sources {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let cache = match var("NIMBUS_DOWNLOAD_CACHE") {
            Some(v) if v == "off" => None,
            Some(v) => Some(PathBuf::from(v)),
            None => var("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| var("HOME").map(|h| Path::new(&h).join(".cache")))
                .map(|c| c.join("nimbus").join("downloads")),
        };
        Sources {
            npm: var("NIMBUS_NPM_REGISTRY").unwrap_or_else(|| DEFAULT_NPM.into()).trim_end_matches('/').to_string(),
            pypi: var("NIMBUS_PYPI_INDEX").unwrap_or_else(|| DEFAULT_PYPI.into()).trim_end_matches('/').to_string(),
            cache,
        }
    }
}

/// What one `install` argument asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// A Node.js runtime: its build, and the SDK for JavaScript.
    Node(Runtime),
    /// A Python runtime: the host's interpreter must exist; the SDK for Python.
    Python(Runtime),
    /// Both SDKs.
    Sdk,
}

fn parse_target(s: &str) -> anyhow::Result<Target> {
    if s == "sdk" {
        return Ok(Target::Sdk);
    }
    let runtime: Runtime = s.parse().map_err(|_| {
        let ids: Vec<&str> = Runtime::ALL.iter().filter(|r| r.family() != RuntimeFamily::Provided).map(|r| r.id()).collect();
        anyhow!("cannot install {s}: name a managed runtime ({}) or `sdk`", ids.join(", "))
    })?;
    match runtime.family() {
        RuntimeFamily::Node => Ok(Target::Node(runtime)),
        RuntimeFamily::Python => Ok(Target::Python(runtime)),
        RuntimeFamily::Provided => bail!("{runtime} runs the function's own bootstrap: there is nothing to install"),
    }
}

/// `nimbus runtimes install TARGET...` into `<data>/runtimes`.
pub fn run(data: &Path, targets: &[String], sources: Sources) -> anyhow::Result<ExitCode> {
    let targets = targets.iter().map(|t| parse_target(t)).collect::<anyhow::Result<Vec<_>>>()?;
    let root = data.join("runtimes");
    std::fs::create_dir_all(&root).with_context(|| format!("cannot create the runtime store {}", root.display()))?;
    check_writable(&root)?;
    remove_leftovers(&root);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(async {
        let fetch = Fetcher::new(sources)?;
        let (mut node_sdk, mut python_sdk) = (false, false);
        for t in targets {
            match t {
                Target::Node(runtime) => {
                    install_node(&fetch, &root, runtime).await?;
                    node_sdk = true;
                }
                Target::Python(runtime) => {
                    python_interpreter(runtime)?;
                    python_sdk = true;
                }
                Target::Sdk => (node_sdk, python_sdk) = (true, true),
            }
        }
        if node_sdk {
            install_node_sdk(&fetch, &root).await?;
        }
        if python_sdk {
            install_python_sdk(&fetch, &root).await?;
        }
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The runtime store must be writable by whoever installs into it (and the server reports
/// the same check at start).
pub fn check_writable(root: &Path) -> anyhow::Result<()> {
    let probe = root.join(format!(".write-check-{}", std::process::id()));
    std::fs::write(&probe, b"").with_context(|| format!("the runtime store {} is not writable", root.display()))?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

/// Staging and replaced directories an interrupted install left behind (an hour old: a
/// concurrent install's are younger).
fn remove_leftovers(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let old = e.metadata().and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok()).is_some_and(|a| a.as_secs() > 3600);
        if (name.starts_with(".staging-") || name.starts_with(".old-")) && old {
            remove_tree(&e.path());
        }
    }
}

/// Python interpreters come from the host: Nimbus has no package source for them.
fn python_interpreter(runtime: Runtime) -> anyhow::Result<()> {
    let version = runtime.language_version().unwrap_or_default();
    for dir in ["/usr/local/bin", "/usr/bin", "/bin"] {
        let p = Path::new(dir).join(format!("python{version}"));
        if p.exists() {
            println!("{runtime}: uses the host's {} (Python interpreters come from the system)", p.display());
            return Ok(());
        }
    }
    bail!(
        "cannot install {runtime}: Nimbus has no package source for Python {version} interpreters (no official \
         builds are published on PyPI or the npm registry). Install python{version} with the system's package \
         manager (e.g. `apt-get install python{version}` where the distribution has it) or point the server at one \
         with --runtime-path {runtime}=PATH; `nimbus runtimes install sdk` installs boto3 for it"
    )
}

// ---- Node.js builds --------------------------------------------------------------------

fn npm_arch() -> anyhow::Result<&'static str> {
    match std::env::consts::ARCH {
        "x86_64" => Ok("x64"),
        "aarch64" => Ok("arm64"),
        other => bail!("no Node.js builds are published for {other}"),
    }
}

/// A release version's numbers (`22.12.0`), None for prereleases.
fn release(v: &str) -> Option<(u64, u64, u64)> {
    let mut parts = v.split('.');
    let n = |p: Option<&str>| p.and_then(|x| x.parse::<u64>().ok());
    let out = (n(parts.next())?, n(parts.next())?, n(parts.next())?);
    parts.next().is_none().then_some(out)
}

/// The newest release of `major` in a packument's `versions`: (version, tarball, integrity).
fn newest_release(packument: &Value, major: u64) -> Option<(String, String, String)> {
    let versions = packument.get("versions")?.as_object()?;
    let (version, meta) = versions
        .iter()
        .filter_map(|(v, meta)| release(v).filter(|r| r.0 == major).map(|r| (r, v, meta)))
        .max_by_key(|(r, _, _)| *r)
        .map(|(_, v, meta)| (v.clone(), meta))?;
    let dist = meta.get("dist")?;
    Some((version, dist.get("tarball")?.as_str()?.to_string(), dist.get("integrity")?.as_str()?.to_string()))
}

async fn install_node(fetch: &Fetcher, root: &Path, runtime: Runtime) -> anyhow::Result<()> {
    let major: u64 = runtime.language_version().and_then(|v| v.parse().ok()).expect("node runtimes have a major version");
    let package = format!("node-linux-{}", npm_arch()?);
    let url = format!("{}/{package}", fetch.sources.npm);
    let body = fetch.get(&url, Some("application/vnd.npm.install-v1+json"), "the npm registry").await?;
    let packument: Value = serde_json::from_slice(&body).with_context(|| format!("{url} is not an npm package document"))?;
    let (version, tarball, integrity) =
        newest_release(&packument, major).ok_or_else(|| anyhow!("the npm registry has no release of {package} for Node.js {major}"))?;
    let dir = store::interpreter_dir(root, runtime);
    let installed = read_record(&dir);
    if installed.get("version").and_then(Value::as_str) == Some(version.as_str())
        && installed.get("integrity").and_then(Value::as_str) == Some(integrity.as_str())
    {
        println!("{runtime}: Node.js {version} already installed ({})", dir.display());
        return Ok(());
    }
    println!("{runtime}: fetching {package}@{version} from {}", fetch.sources.npm);
    let tgz = fetch.verified(&tarball, &Checksum::parse_integrity(&integrity)?, "the npm registry").await?;
    let staging = Staging::new(root)?;
    unpack_npm_tarball(&tgz, staging.path())?;
    // The build must run here and be the version it claims before it is registered.
    let node = staging.path().join("bin").join("node");
    let out = std::process::Command::new(&node)
        .arg("--version")
        .env_clear()
        .output()
        .with_context(|| format!("the downloaded Node.js {version} does not run ({})", node.display()))?;
    let reported = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if reported != format!("v{version}") {
        bail!("the downloaded Node.js {version} reports {reported:?}; not installed");
    }
    let record = json!({
        "what": format!("Node.js for {runtime}"),
        "version": version,
        "source": tarball,
        "integrity": integrity,
        "packages": { package: version },
    });
    staging.commit(&dir, &record)?;
    println!("{runtime}: installed Node.js {version} in {} (restart `nimbus server` to use it)", dir.display());
    Ok(())
}

// ---- the SDK for JavaScript ------------------------------------------------------------

/// One package of the lock: where it goes under node_modules, its tarball, its checksum.
#[derive(Debug, PartialEq)]
struct LockedPackage {
    /// Path below node_modules (`@aws-sdk/client-s3`, `a/node_modules/b`).
    path: String,
    name: String,
    version: String,
    integrity: String,
}

/// The packages of an npm lock file (v2/v3 `packages`), each with its integrity.
fn locked_packages(lock: &str) -> anyhow::Result<Vec<LockedPackage>> {
    let doc: Value = serde_json::from_str(lock).context("the SDK lock is not JSON")?;
    let packages = doc.get("packages").and_then(Value::as_object).ok_or_else(|| anyhow!("the SDK lock has no packages"))?;
    let mut out = Vec::new();
    for (key, meta) in packages {
        let Some(path) = key.strip_prefix("node_modules/") else { continue };
        if meta.get("link").and_then(Value::as_bool) == Some(true) || meta.get("dev").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        let name = path.rsplit_once("node_modules/").map(|(_, n)| n).unwrap_or(path).to_string();
        let field = |f: &str| meta.get(f).and_then(Value::as_str).map(str::to_string).ok_or_else(|| anyhow!("{key}: no {f} in the lock"));
        out.push(LockedPackage { path: path.to_string(), name, version: field("version")?, integrity: field("integrity")? });
    }
    Ok(out)
}

/// npm's tarball address for a package version.
fn tarball_url(registry: &str, name: &str, version: &str) -> String {
    let base = name.rsplit('/').next().unwrap_or(name);
    format!("{registry}/{name}/-/{base}-{version}.tgz")
}

fn lock_digest(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

async fn install_node_sdk(fetch: &Fetcher, root: &Path) -> anyhow::Result<()> {
    let dir = store::node_sdk_dir(root);
    let digest = lock_digest(NODE_SDK_LOCK);
    if read_record(&dir).get("lock_sha256").and_then(Value::as_str) == Some(digest.as_str()) {
        println!("sdk: AWS SDK for JavaScript v3 already installed ({})", dir.display());
        return Ok(());
    }
    let packages = locked_packages(NODE_SDK_LOCK)?;
    println!("sdk: fetching {} npm packages of the AWS SDK for JavaScript v3 from {}", packages.len(), fetch.sources.npm);
    let staging = Staging::new(root)?;
    let sem = Arc::new(tokio::sync::Semaphore::new(PARALLEL));
    let mut tasks = tokio::task::JoinSet::new();
    for p in &packages {
        let (fetch, sem) = (fetch.clone(), sem.clone());
        let url = tarball_url(&fetch.sources.npm, &p.name, &p.version);
        let checksum = Checksum::parse_integrity(&p.integrity).with_context(|| format!("{}@{}", p.name, p.version))?;
        let dest = staging.path().join(&p.path);
        tasks.spawn(async move {
            let _permit = sem.acquire_owned().await.expect("the semaphore is never closed");
            let tgz = fetch.verified(&url, &checksum, "the npm registry").await?;
            tokio::task::spawn_blocking(move || unpack_npm_tarball(&tgz, &dest)).await?
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let top: BTreeMap<&str, &str> =
        packages.iter().filter(|p| !p.path.contains("/node_modules/")).map(|p| (p.name.as_str(), p.version.as_str())).collect();
    let record = json!({
        "what": "AWS SDK for JavaScript v3",
        "source": fetch.sources.npm,
        "lock_sha256": digest,
        "packages": top,
        "integrity": packages.iter().map(|p| (p.path.clone(), p.integrity.clone())).collect::<BTreeMap<_, _>>(),
    });
    std::fs::create_dir_all(dir.parent().expect("the SDK dir has a parent"))?;
    staging.commit(&dir, &record)?;
    let version = top.get("@aws-sdk/client-lambda").copied().unwrap_or("?");
    println!("sdk: installed the AWS SDK for JavaScript v3 {version} ({} packages) in {}", packages.len(), dir.display());
    Ok(())
}

// ---- the SDK for Python ----------------------------------------------------------------

/// `name==version --hash=sha256:HEX` lines of a pip requirements file.
fn pinned_wheels(text: &str) -> anyhow::Result<Vec<(String, String, String)>> {
    let mut out = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let mut words = line.split_whitespace();
        let spec = words.next().unwrap_or_default();
        let (name, version) = spec.split_once("==").ok_or_else(|| anyhow!("{line:?}: not pinned with =="))?;
        let hash = words.find_map(|w| w.strip_prefix("--hash=sha256:")).ok_or_else(|| anyhow!("{line:?}: no --hash=sha256:"))?;
        out.push((name.to_string(), version.to_string(), hash.to_string()));
    }
    Ok(out)
}

/// PEP 691's JSON form of the Simple API.
const SIMPLE_JSON: &str = "application/vnd.pypi.simple.v1+json";

/// PEP 503's normalized project name.
fn normalized_name(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        let c = if matches!(c, '_' | '.') { '-' } else { c.to_ascii_lowercase() };
        if !(c == '-' && out.ends_with('-')) {
            out.push(c);
        }
    }
    out
}

/// A file address of a Simple API page, which may be relative to the page.
fn join_url(page: &str, href: &str) -> String {
    if href.contains("://") {
        return href.to_string();
    }
    let origin_end = page.find("://").map(|i| page[i + 3..].find('/').map(|j| i + 3 + j).unwrap_or(page.len())).unwrap_or(0);
    if href.starts_with('/') {
        format!("{}{href}", &page[..origin_end])
    } else {
        format!("{}{href}", &page[..page.rfind('/').map(|i| i + 1).unwrap_or(page.len())])
    }
}

async fn install_python_sdk(fetch: &Fetcher, root: &Path) -> anyhow::Result<()> {
    let dir = store::python_sdk_dir(root);
    let digest = lock_digest(PYTHON_SDK_REQUIREMENTS);
    if read_record(&dir).get("lock_sha256").and_then(Value::as_str) == Some(digest.as_str()) {
        println!("sdk: boto3 already installed ({})", dir.display());
        return Ok(());
    }
    let wheels = pinned_wheels(PYTHON_SDK_REQUIREMENTS)?;
    println!("sdk: fetching {} wheels of boto3 and botocore from {}", wheels.len(), fetch.sources.pypi);
    let staging = Staging::new(root)?;
    let mut tasks = tokio::task::JoinSet::new();
    for (name, version, hash) in wheels.clone() {
        let fetch = fetch.clone();
        let dest = staging.path().to_path_buf();
        tasks.spawn(async move {
            let url = format!("{}/{}/", fetch.sources.pypi, normalized_name(&name));
            let doc: Value = serde_json::from_slice(&fetch.get(&url, Some(SIMPLE_JSON), "PyPI").await?)
                .with_context(|| format!("{url} is not a PEP 691 project page"))?;
            // The file whose hash is the pinned one; its address is the index's to give.
            let file = doc
                .get("files")
                .and_then(Value::as_array)
                .and_then(|files| files.iter().find(|f| f.pointer("/hashes/sha256").and_then(Value::as_str) == Some(hash.as_str())))
                .and_then(|f| f.get("url").and_then(Value::as_str))
                .map(|u| join_url(&url, u))
                .ok_or_else(|| anyhow!("PyPI has no file of {name} {version} with the pinned sha256 {hash}"))?;
            let wheel = fetch.verified(&file, &Checksum::Sha256(hex::decode(&hash)?), "PyPI").await?;
            tokio::task::spawn_blocking(move || unpack_wheel(&wheel, &dest)).await?
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let record = json!({
        "what": "AWS SDK for Python (boto3)",
        "source": fetch.sources.pypi,
        "lock_sha256": digest,
        "packages": wheels.iter().map(|(n, v, _)| (n.clone(), v.clone())).collect::<BTreeMap<_, _>>(),
        "sha256": wheels.iter().map(|(n, _, h)| (n.clone(), h.clone())).collect::<BTreeMap<_, _>>(),
    });
    std::fs::create_dir_all(dir.parent().expect("the SDK dir has a parent"))?;
    staging.commit(&dir, &record)?;
    let version = wheels.iter().find(|w| w.0 == "boto3").map(|w| w.1.as_str()).unwrap_or("?");
    println!("sdk: installed boto3 {version} ({} wheels) in {}", wheels.len(), dir.display());
    Ok(())
}

// ---- downloads -------------------------------------------------------------------------

/// What a download must hash to.
#[derive(Debug, Clone, PartialEq)]
enum Checksum {
    Sha512(Vec<u8>),
    Sha256(Vec<u8>),
}

impl Checksum {
    /// npm's Subresource Integrity string; sha512 only (what the registry publishes).
    fn parse_integrity(s: &str) -> anyhow::Result<Checksum> {
        let b64 = s.split_whitespace().find_map(|p| p.strip_prefix("sha512-")).ok_or_else(|| anyhow!("no sha512 integrity in {s:?}"))?;
        let bytes = base64::engine::general_purpose::STANDARD.decode(b64).map_err(|_| anyhow!("malformed integrity {s:?}"))?;
        if bytes.len() != 64 {
            bail!("malformed integrity {s:?}");
        }
        Ok(Checksum::Sha512(bytes))
    }

    fn matches(&self, data: &[u8]) -> bool {
        match self {
            Checksum::Sha512(want) => Sha512::digest(data).as_slice() == want.as_slice(),
            Checksum::Sha256(want) => Sha256::digest(data).as_slice() == want.as_slice(),
        }
    }

    fn cache_name(&self) -> String {
        match self {
            Checksum::Sha512(d) => format!("sha512-{}", hex::encode(d)),
            Checksum::Sha256(d) => format!("sha256-{}", hex::encode(d)),
        }
    }
}

#[derive(Clone)]
struct Fetcher {
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
    sources: Arc<Sources>,
}

impl Fetcher {
    fn new(sources: Sources) -> anyhow::Result<Fetcher> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(Duration::from_secs(15)));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(provider)
            .context("cannot read the system's root certificates")?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Ok(Fetcher { client: Client::builder(TokioExecutor::new()).build(https), sources: Arc::new(sources) })
    }

    /// GETs `url` (following redirects), or says that `what` cannot be reached.
    async fn get(&self, url: &str, accept: Option<&str>, what: &str) -> anyhow::Result<Bytes> {
        let mut url = url.to_string();
        for _ in 0..5 {
            let mut req = http::Request::get(&url).header("user-agent", concat!("nimbus/", env!("CARGO_PKG_VERSION")));
            if let Some(a) = accept {
                req = req.header("accept", a);
            }
            let req = req.body(Empty::new()).with_context(|| format!("bad address {url}"))?;
            let res = tokio::time::timeout(Duration::from_secs(600), async {
                let res = self.client.request(req).await?;
                let status = res.status();
                let location = res.headers().get(http::header::LOCATION).and_then(|l| l.to_str().ok()).map(str::to_string);
                let body = res.into_body().collect().await?.to_bytes();
                anyhow::Ok((status, location, body))
            })
            .await;
            let (status, location, body) = match res {
                Err(_) => bail!("{what} did not answer in time ({url})"),
                Ok(Err(e)) => bail!(
                    "cannot reach {what} at {url}: {}. `nimbus runtimes install` needs network access to {what} \
                     (or a mirror: NIMBUS_NPM_REGISTRY, NIMBUS_PYPI_INDEX)",
                    error_chain(&*e)
                ),
                Ok(Ok(r)) => r,
            };
            if status.is_redirection() {
                url = location.ok_or_else(|| anyhow!("{url} redirects nowhere"))?;
                continue;
            }
            if !status.is_success() {
                bail!("{what} answered {status} for {url}");
            }
            return Ok(body);
        }
        bail!("too many redirects from {url}")
    }

    /// Downloads `url` (or takes it from the cache) and checks it against `checksum`.
    async fn verified(&self, url: &str, checksum: &Checksum, what: &str) -> anyhow::Result<Bytes> {
        let cached = self.sources.cache.as_ref().map(|c| c.join(checksum.cache_name()));
        if let Some(path) = &cached {
            if let Ok(data) = tokio::fs::read(path).await {
                if checksum.matches(&data) {
                    return Ok(Bytes::from(data));
                }
                let _ = tokio::fs::remove_file(path).await;
            }
        }
        let data = self.get(url, None, what).await?;
        if !checksum.matches(&data) {
            bail!("{url}: the download does not match its checksum ({}); nothing was installed", checksum.cache_name());
        }
        if let Some(path) = cached {
            // Best effort: a cache that cannot be written only costs a download next time.
            let tmp = path.with_extension(format!("tmp{}", std::process::id()));
            if let Some(dir) = path.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            if std::fs::write(&tmp, &data).is_ok() {
                let _ = std::fs::rename(&tmp, &path);
            }
        }
        Ok(data)
    }
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = s.source();
    }
    parts.join(": ")
}

// ---- unpacking -------------------------------------------------------------------------

/// A path inside an archive with its first component dropped (`package/` in npm tarballs),
/// refused if it is absolute or climbs out.
fn inner_path(path: &Path, strip_first: bool) -> anyhow::Result<Option<PathBuf>> {
    let mut out = PathBuf::new();
    let mut to_strip = strip_first;
    for c in path.components() {
        match c {
            Component::Normal(_) if to_strip => to_strip = false,
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            _ => bail!("the archive holds an unsafe path {}", path.display()),
        }
    }
    Ok((!out.as_os_str().is_empty()).then_some(out))
}

/// Unpacks an npm package tarball's contents (below its top directory) into `dest`.
fn unpack_npm_tarball(tgz: &[u8], dest: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dest)?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(tgz));
    for entry in archive.entries().context("not a gzipped tar archive")? {
        let mut entry = entry.context("a damaged tar archive")?;
        let kind = entry.header().entry_type();
        let Some(rel) = inner_path(&entry.path()?, true)? else { continue };
        let target = dest.join(&rel);
        match kind {
            tar::EntryType::Directory => std::fs::create_dir_all(&target)?,
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                let exec = entry.header().mode().unwrap_or(0o644) & 0o111 != 0;
                let mut file = std::fs::File::create(&target).with_context(|| format!("cannot write {}", target.display()))?;
                std::io::copy(&mut entry, &mut file)?;
                file.set_permissions(std::fs::Permissions::from_mode(if exec { 0o755 } else { 0o644 }))?;
            }
            // Packages need no links or devices; none is made.
            _ => {}
        }
    }
    Ok(())
}

/// Unpacks a pure-Python wheel (a zip) into `dest`, as pip does for `purelib`.
fn unpack_wheel(wheel: &[u8], dest: &Path) -> anyhow::Result<()> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(wheel)).context("the wheel is not a zip")?;
    for i in 0..zip.len() {
        let mut file = zip.by_index(i)?;
        let Some(rel) = file.enclosed_name() else { bail!("the wheel holds an unsafe path {}", file.name()) };
        let target = dest.join(rel);
        if file.is_dir() {
            std::fs::create_dir_all(&target)?;
            continue;
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut data = Vec::with_capacity(file.size() as usize);
        file.read_to_end(&mut data)?;
        std::fs::write(&target, data).with_context(|| format!("cannot write {}", target.display()))?;
    }
    Ok(())
}

/// The install record of an installed part (empty when there is none).
fn read_record(dir: &Path) -> Value {
    std::fs::read(dir.join(store::INSTALL_RECORD)).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or(Value::Null)
}

/// A directory in the store that becomes an installed part only by [`Staging::commit`];
/// dropped uncommitted, it is removed.
struct Staging(Option<PathBuf>);

impl Staging {
    fn new(root: &Path) -> anyhow::Result<Staging> {
        let dir = root.join(format!(".staging-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(Staging(Some(dir)))
    }

    fn path(&self) -> &Path {
        self.0.as_deref().expect("staging is live until committed")
    }

    /// Writes the record, makes everything read-only and renames the whole into `dest`,
    /// replacing what was there.
    fn commit(mut self, dest: &Path, record: &Value) -> anyhow::Result<()> {
        let dir = self.0.take().expect("committed once");
        let result = (|| {
            std::fs::write(dir.join(store::INSTALL_RECORD), serde_json::to_vec_pretty(record)?)?;
            make_read_only(&dir)?;
            let old = dest.with_file_name(format!(".old-{}", uuid::Uuid::new_v4().simple()));
            let had_old = std::fs::rename(dest, &old).is_ok();
            std::fs::rename(&dir, dest).with_context(|| format!("cannot move the install into {}", dest.display()))?;
            if had_old {
                remove_tree(&old);
            }
            anyhow::Ok(())
        })();
        if result.is_err() {
            remove_tree(&dir);
        }
        result
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            remove_tree(&dir);
        }
    }
}

/// Files `r--r--r--` (`r-x` if executable), directories `r-x`: what a sandbox sees anyway,
/// and the host's own processes cannot change an installed runtime by accident.
fn make_read_only(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        if meta.is_dir() {
            make_read_only(&entry.path())?;
        } else if meta.is_file() {
            let mode = if meta.permissions().mode() & 0o111 != 0 { 0o555 } else { 0o444 };
            std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(mode))?;
        }
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555))
}

/// Removes a read-only tree (directories made writable first).
fn remove_tree(dir: &Path) {
    fn writable(dir: &Path) {
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755));
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    writable(&e.path());
                }
            }
        }
    }
    writable(dir);
    let _ = std::fs::remove_dir_all(dir);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let cases: &[(&str, Result<Target, &str>)] = &[
            ("nodejs22.x", Ok(Target::Node(Runtime::Nodejs22))),
            ("nodejs24.x", Ok(Target::Node(Runtime::Nodejs24))),
            ("python3.12", Ok(Target::Python(Runtime::Python312))),
            ("sdk", Ok(Target::Sdk)),
            ("provided.al2023", Err("nothing to install")),
            ("java21", Err("name a managed runtime")),
        ];
        for (input, want) in cases {
            match (parse_target(input), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, *want, "{input}"),
                (Err(e), Err(want)) => assert!(e.to_string().contains(want), "{input}: {e}"),
                (got, want) => panic!("{input}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn newest_release_of_a_major() {
        let doc = json!({"versions": {
            "22.1.0": {"dist": {"tarball": "a", "integrity": "i1"}},
            "22.10.0": {"dist": {"tarball": "b", "integrity": "i2"}},
            "22.9.3": {"dist": {"tarball": "c", "integrity": "i3"}},
            "23.0.0": {"dist": {"tarball": "d", "integrity": "i4"}},
            "22.11.0-rc.1": {"dist": {"tarball": "e", "integrity": "i5"}},
        }});
        let cases = [(22, Some(("22.10.0", "b", "i2"))), (23, Some(("23.0.0", "d", "i4"))), (24, None)];
        for (major, want) in cases {
            let got = newest_release(&doc, major);
            assert_eq!(got.as_ref().map(|(v, t, i)| (v.as_str(), t.as_str(), i.as_str())), want, "{major}");
        }
    }

    #[test]
    fn checksums() {
        let sha512 = format!("sha512-{}", base64::engine::general_purpose::STANDARD.encode(Sha512::digest(b"abc")));
        let cases: &[(&str, &[u8], Option<bool>)] = &[
            (&sha512, b"abc", Some(true)),
            (&sha512, b"abd", Some(false)),
            ("sha1-qZk+NkcGgWq6PiVxeFDCbJzQ2J0=", b"abc", None),
            ("sha512-bm90IGEgZGlnZXN0", b"abc", None),
        ];
        for (integrity, data, want) in cases {
            let got = Checksum::parse_integrity(integrity).ok().map(|c| c.matches(data));
            assert_eq!(got, *want, "{integrity}");
        }
        assert!(Checksum::Sha256(Sha256::digest(b"x").to_vec()).matches(b"x"));
    }

    #[test]
    fn locks_are_complete() {
        let packages = locked_packages(NODE_SDK_LOCK).expect("the Node SDK lock parses");
        for want in ["@aws-sdk/client-lambda", "@aws-sdk/client-sqs", "@aws-sdk/lib-dynamodb", "@aws-sdk/client-cloudwatch-logs"] {
            assert!(packages.iter().any(|p| p.name == want), "{want} is in the lock");
        }
        for p in &packages {
            Checksum::parse_integrity(&p.integrity).unwrap_or_else(|e| panic!("{}: {e}", p.name));
        }
        let wheels = pinned_wheels(PYTHON_SDK_REQUIREMENTS).expect("the Python SDK pins parse");
        assert!(wheels.iter().any(|w| w.0 == "boto3") && wheels.iter().any(|w| w.0 == "botocore"));
        assert!(wheels.iter().all(|w| w.2.len() == 64));
    }

    #[test]
    fn index_addresses() {
        let cases = [
            ("python-dateutil", "https://i/simple/p/", "https://h/f.whl", "python-dateutil", "https://h/f.whl"),
            ("Foo_Bar.baz", "https://i/simple/p/", "/files/f.whl", "foo-bar-baz", "https://i/files/f.whl"),
            ("six", "https://i/simple/p/", "../../f.whl", "six", "https://i/simple/p/../../f.whl"),
        ];
        for (name, page, href, want_name, want_url) in cases {
            assert_eq!(normalized_name(name), want_name);
            assert_eq!(join_url(page, href), want_url, "{href}");
        }
    }

    #[test]
    fn tarball_urls() {
        let cases = [
            ("@aws-sdk/client-s3", "3.1.0", "https://r/@aws-sdk/client-s3/-/client-s3-3.1.0.tgz"),
            ("tslib", "2.9.1", "https://r/tslib/-/tslib-2.9.1.tgz"),
        ];
        for (name, version, want) in cases {
            assert_eq!(tarball_url("https://r", name, version), want);
        }
    }

    #[test]
    fn archive_paths() {
        // (archive path, strip the top directory, the path unpacked or Err for refused)
        type Case<'a> = (&'a str, bool, Result<Option<&'a str>, ()>);
        let cases: &[Case] = &[
            ("package/bin/node", true, Ok(Some("bin/node"))),
            ("package/", true, Ok(None)),
            ("./package/lib/a.js", true, Ok(Some("lib/a.js"))),
            ("package/../../etc/passwd", true, Err(())),
            ("/etc/passwd", true, Err(())),
            ("boto3/__init__.py", false, Ok(Some("boto3/__init__.py"))),
        ];
        for (input, strip, want) in cases {
            let got = inner_path(Path::new(input), *strip).map_err(|_| ()).map(|p| p.map(|p| p.display().to_string()));
            assert_eq!(got, want.map(|p| p.map(str::to_string)), "{input}");
        }
    }
}
