//! Which interpreter runs each runtime id, found on the host or configured, and the
//! bootstraps Nimbus ships for the Node.js and Python runtimes (embedded in the binary and
//! written out once at start). A runtime never silently runs on another language version:
//! an interpreter is accepted only if it reports the runtime's version. Interpreters and
//! SDKs that `nimbus runtimes install` put in the data directory's runtime store
//! ([`store`]) are found here too.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use nimbus_model::{Runtime, RuntimeFamily};

const NODE_BOOTSTRAP: &str = include_str!("../../../runtimes/node/bootstrap.js");
const PYTHON_BOOTSTRAP: &str = include_str!("../../../runtimes/python/bootstrap.py");
const PYTHON_ZYGOTE: &str = include_str!("../../../runtimes/python/zygote.py");

/// Where each runtime's interpreter is, or why it is missing.
#[derive(Debug, Clone)]
pub struct RuntimeInfo {
    pub runtime: Runtime,
    pub interpreter: Result<PathBuf, String>,
    /// The version the interpreter reported.
    pub version: Option<String>,
    /// The AWS SDK the runtime provides (from the runtime store), e.g. `boto3 1.44.8`.
    pub sdk: Option<String>,
}

/// The runtime store: what `nimbus runtimes install` writes under `<data>/runtimes`, and
/// the server reads. Each installed part is a directory renamed into place whole, with its
/// [`INSTALL_RECORD`] written before the rename, so a partial install is never seen.
///
/// ```text
/// <data>/runtimes/
///   nodejs22.x/                 a Node.js build (bin/node), bound at /var/lang/bin
///   node/bootstrap.js           the shipped bootstrap (written at start) → /var/runtime
///   node/node_modules/          the AWS SDK for JavaScript v3 → /var/runtime/node_modules
///   python/bootstrap.py         → /var/runtime
///   python/sdk/                 boto3, botocore and their dependencies → /var/runtime/sdk
/// ```
pub mod store {
    use std::path::{Path, PathBuf};

    use nimbus_model::Runtime;

    /// The JSON record of one installed part: what, which versions, from where, checksums.
    pub const INSTALL_RECORD: &str = ".nimbus-install.json";

    /// Where an installed interpreter for `runtime` lives.
    pub fn interpreter_dir(root: &Path, runtime: Runtime) -> PathBuf {
        root.join(runtime.id())
    }

    /// The Node.js executable of an installed runtime.
    pub fn node_executable(root: &Path, runtime: Runtime) -> PathBuf {
        interpreter_dir(root, runtime).join("bin").join("node")
    }

    /// The AWS SDK for JavaScript v3 (`/var/runtime/node_modules` in a sandbox).
    pub fn node_sdk_dir(root: &Path) -> PathBuf {
        root.join("node").join("node_modules")
    }

    /// boto3 and botocore (`/var/runtime/sdk` in a sandbox; the Python bootstrap puts it on
    /// `sys.path` after the function's code and layers).
    pub fn python_sdk_dir(root: &Path) -> PathBuf {
        root.join("python").join("sdk")
    }

    /// The packages and versions an installed part records.
    pub fn packages(dir: &Path) -> Option<std::collections::BTreeMap<String, String>> {
        let text = std::fs::read_to_string(dir.join(INSTALL_RECORD)).ok()?;
        let record: serde_json::Value = serde_json::from_str(&text).ok()?;
        let map = record.get("packages")?.as_object()?;
        Some(map.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect())
    }

    /// Whether an installed part is complete (its record is there).
    pub fn is_installed(dir: &Path) -> bool {
        dir.join(INSTALL_RECORD).is_file()
    }
}

/// What the runtime store's SDK for a family says about itself, for `nimbus runtimes`.
fn sdk_summary(root: &Path, family: RuntimeFamily) -> Option<String> {
    match family {
        RuntimeFamily::Node => {
            let packages = store::packages(&store::node_sdk_dir(root))?;
            let clients = packages.keys().filter(|k| k.starts_with("@aws-sdk/client-")).count();
            let version = packages.get("@aws-sdk/client-lambda").or_else(|| packages.values().next())?;
            Some(format!("AWS SDK for JavaScript v3 {version} ({clients} clients)"))
        }
        RuntimeFamily::Python => {
            let packages = store::packages(&store::python_sdk_dir(root))?;
            Some(format!("boto3 {}, botocore {}", packages.get("boto3")?, packages.get("botocore")?))
        }
        RuntimeFamily::Provided => None,
    }
}

#[derive(Debug)]
pub struct RuntimeRegistry {
    runtimes: BTreeMap<Runtime, RuntimeInfo>,
    node_dir: PathBuf,
    python_dir: PathBuf,
}

/// Directories searched for interpreters. PATH is deliberately not used: version-manager
/// shims there (pyenv, nvm) are scripts that add tens of milliseconds to every start.
const SEARCH_DIRS: &[&str] = &["/usr/local/bin", "/usr/bin", "/bin"];

fn candidates(runtime: Runtime) -> Vec<String> {
    match runtime {
        Runtime::Nodejs20 => vec!["node20".into(), "nodejs20".into(), "node".into(), "nodejs".into()],
        Runtime::Nodejs22 => vec!["node22".into(), "nodejs22".into(), "node".into(), "nodejs".into()],
        Runtime::Nodejs24 => vec!["node24".into(), "nodejs24".into(), "node".into(), "nodejs".into()],
        r => match r.language_version() {
            Some(v) => vec![format!("python{v}")],
            None => vec![],
        },
    }
}

/// Runs `interpreter --version` and checks it is the runtime's language version.
fn probe(runtime: Runtime, interpreter: &Path) -> Result<String, String> {
    let want = runtime.language_version().unwrap_or_default();
    let out = std::process::Command::new(interpreter)
        .arg("--version")
        .env_clear()
        .output()
        .map_err(|e| format!("cannot run {}: {e}", interpreter.display()))?;
    let text = String::from_utf8_lossy(if out.stdout.is_empty() { &out.stderr } else { &out.stdout }).trim().to_string();
    let version = text.trim_start_matches("Python ").trim_start_matches('v').to_string();
    let matches = match runtime.family() {
        RuntimeFamily::Node => version.split('.').next() == Some(want),
        _ => version == want || version.starts_with(&format!("{want}.")),
    };
    if matches {
        Ok(version)
    } else {
        Err(format!("{} is version {version}, not {want}", interpreter.display()))
    }
}

impl RuntimeRegistry {
    /// Finds interpreters (configured paths first, then the runtime store's, then the
    /// system's) and writes the shipped bootstraps under `dir` (the runtime store).
    pub fn discover(dir: &Path, configured: &BTreeMap<Runtime, PathBuf>) -> std::io::Result<RuntimeRegistry> {
        let registry = RuntimeRegistry::inspect(dir, configured);
        write_if_changed(&registry.node_dir.join("bootstrap.js"), NODE_BOOTSTRAP)?;
        write_if_changed(&registry.python_dir.join("bootstrap.py"), PYTHON_BOOTSTRAP)?;
        write_if_changed(&registry.python_dir.join(crate::jail::ZYGOTE_SCRIPT), PYTHON_ZYGOTE)?;
        // `/var/runtime/lib` of AWS's LD_LIBRARY_PATH, present (empty) so that a runtime's
        // loader does not mark it missing for good (see `launch::LateMounts`).
        for dir in [&registry.node_dir, &registry.python_dir] {
            std::fs::create_dir_all(dir.join("lib"))?;
        }
        Ok(registry)
    }

    /// What [`Self::discover`] finds, without writing anything (`nimbus runtimes`).
    pub fn inspect(dir: &Path, configured: &BTreeMap<Runtime, PathBuf>) -> RuntimeRegistry {
        let node_dir = dir.join("node");
        let python_dir = dir.join("python");
        let mut runtimes = BTreeMap::new();
        for runtime in Runtime::ALL {
            let info = if runtime.family() == RuntimeFamily::Provided {
                RuntimeInfo { runtime, interpreter: Ok(PathBuf::from("bootstrap")), version: None, sdk: None }
            } else if let Some(path) = configured.get(&runtime) {
                match probe(runtime, path) {
                    Ok(v) => RuntimeInfo { runtime, interpreter: Ok(path.clone()), version: Some(v), sdk: None },
                    Err(e) => RuntimeInfo { runtime, interpreter: Err(format!("configured interpreter: {e}")), version: None, sdk: None },
                }
            } else if let Some((path, v)) = installed(dir, runtime) {
                RuntimeInfo { runtime, interpreter: Ok(path), version: Some(v), sdk: None }
            } else {
                let install = match runtime.family() {
                    RuntimeFamily::Node => {
                        format!("install one with `nimbus runtimes install {runtime}` (then restart the server) or ")
                    }
                    _ => String::new(),
                };
                let mut found = Err(format!(
                    "no interpreter for {runtime} found (looked for {} in {}); {install}configure one with --runtime-path {runtime}=PATH",
                    candidates(runtime).join(", "),
                    SEARCH_DIRS.join(", ")
                ));
                let mut version = None;
                'search: for name in candidates(runtime) {
                    for dir in SEARCH_DIRS {
                        let p = Path::new(dir).join(&name);
                        if !p.exists() {
                            continue;
                        }
                        let real = std::fs::canonicalize(&p).unwrap_or(p);
                        if let Ok(v) = probe(runtime, &real) {
                            found = Ok(real);
                            version = Some(v);
                            break 'search;
                        }
                    }
                }
                RuntimeInfo { runtime, interpreter: found, version, sdk: None }
            };
            let sdk = sdk_summary(dir, runtime.family());
            runtimes.insert(runtime, RuntimeInfo { sdk, ..info });
        }
        RuntimeRegistry { runtimes, node_dir, python_dir }
    }

    pub fn list(&self) -> impl Iterator<Item = &RuntimeInfo> {
        self.runtimes.values()
    }

    pub fn get(&self, runtime: Runtime) -> &RuntimeInfo {
        &self.runtimes[&runtime]
    }

    /// The directory with the shipped bootstrap for a family (LAMBDA_RUNTIME_DIR).
    pub fn runtime_dir(&self, family: RuntimeFamily) -> Option<&Path> {
        match family {
            RuntimeFamily::Node => Some(&self.node_dir),
            RuntimeFamily::Python => Some(&self.python_dir),
            RuntimeFamily::Provided => None,
        }
    }
}

/// An interpreter the runtime store holds for `runtime`, if complete and of its version.
fn installed(root: &Path, runtime: Runtime) -> Option<(PathBuf, String)> {
    if runtime.family() != RuntimeFamily::Node || !store::is_installed(&store::interpreter_dir(root, runtime)) {
        return None;
    }
    let path = store::node_executable(root, runtime);
    match probe(runtime, &path) {
        Ok(v) => Some((path, v)),
        Err(e) => {
            tracing::warn!("the runtime store's {runtime} does not run: {e}");
            None
        }
    }
}

fn write_if_changed(path: &Path, content: &str) -> std::io::Result<()> {
    if std::fs::read_to_string(path).ok().as_deref() == Some(content) {
        return Ok(());
    }
    std::fs::create_dir_all(path.parent().expect("bootstrap path has a parent"))?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, content)?;
    std::fs::rename(tmp, path)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    /// A runtime store under the system's temp dir, removed when dropped.
    struct TempStore(PathBuf);

    impl Drop for TempStore {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn fake_node(root: &Path, runtime: Runtime, prints: &str, record: bool) {
        let bin = store::interpreter_dir(root, runtime).join("bin");
        std::fs::create_dir_all(&bin).expect("mkdir");
        let node = bin.join("node");
        std::fs::write(&node, format!("#!/bin/sh\necho {prints}\n")).expect("write");
        std::fs::set_permissions(&node, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        if record {
            std::fs::write(store::interpreter_dir(root, runtime).join(store::INSTALL_RECORD), "{}").expect("record");
        }
    }

    #[test]
    fn the_store_s_interpreters_and_sdks() {
        let root = TempStore(std::env::temp_dir().join(format!("nimbus-store-test-{}", uuid::Uuid::new_v4().simple())));
        let r = &root.0;
        // (runtime, what its node prints, record written, found in the store)
        let cases = [
            (Runtime::Nodejs24, "v24.1.0", true, true),
            // A partial install (no record) is not used.
            (Runtime::Nodejs22, "v22.3.0", false, false),
            // An interpreter of another major is not used.
            (Runtime::Nodejs20, "v21.0.0", true, false),
        ];
        for (runtime, prints, record, _) in cases {
            fake_node(r, runtime, prints, record);
        }
        let sdk = store::node_sdk_dir(r);
        std::fs::create_dir_all(&sdk).expect("mkdir");
        let record =
            r#"{"packages": {"@aws-sdk/client-lambda": "3.9.0", "@aws-sdk/client-sqs": "3.9.0", "@aws-sdk/lib-dynamodb": "3.9.0"}}"#;
        std::fs::write(sdk.join(store::INSTALL_RECORD), record).expect("write");
        let registry = RuntimeRegistry::inspect(r, &BTreeMap::new());
        for (runtime, _, _, found) in cases {
            let info = registry.get(runtime);
            let in_store = info.interpreter.as_ref().is_ok_and(|p| p.starts_with(r));
            assert_eq!(in_store, found, "{runtime}: {:?}", info.interpreter);
            assert_eq!(info.sdk.as_deref(), Some("AWS SDK for JavaScript v3 3.9.0 (2 clients)"), "{runtime}");
        }
        assert_eq!(registry.get(Runtime::Nodejs24).version.as_deref(), Some("24.1.0"));
        // No Python SDK installed: none listed.
        assert_eq!(registry.get(Runtime::Python311).sdk, None);
    }
}
