//! Which interpreter runs each runtime id, found on the host or configured, and the
//! bootstraps Nimbus ships for the Node.js and Python runtimes (embedded in the binary and
//! written out once at start). A runtime never silently runs on another language version:
//! an interpreter is accepted only if it reports the runtime's version.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use nimbus_model::{Runtime, RuntimeFamily};

const NODE_BOOTSTRAP: &str = include_str!("../../../runtimes/node/bootstrap.js");
const PYTHON_BOOTSTRAP: &str = include_str!("../../../runtimes/python/bootstrap.py");

/// Where each runtime's interpreter is, or why it is missing.
#[derive(Debug, Clone)]
pub struct RuntimeInfo {
    pub runtime: Runtime,
    pub interpreter: Result<PathBuf, String>,
    /// The version the interpreter reported.
    pub version: Option<String>,
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
    /// Finds interpreters (configured paths first) and writes the shipped bootstraps under
    /// `dir`.
    pub fn discover(dir: &Path, configured: &BTreeMap<Runtime, PathBuf>) -> std::io::Result<RuntimeRegistry> {
        let node_dir = dir.join("node");
        let python_dir = dir.join("python");
        write_if_changed(&node_dir.join("bootstrap.js"), NODE_BOOTSTRAP)?;
        write_if_changed(&python_dir.join("bootstrap.py"), PYTHON_BOOTSTRAP)?;
        let mut runtimes = BTreeMap::new();
        for runtime in Runtime::ALL {
            let info = if runtime.family() == RuntimeFamily::Provided {
                RuntimeInfo { runtime, interpreter: Ok(PathBuf::from("bootstrap")), version: None }
            } else if let Some(path) = configured.get(&runtime) {
                match probe(runtime, path) {
                    Ok(v) => RuntimeInfo { runtime, interpreter: Ok(path.clone()), version: Some(v) },
                    Err(e) => RuntimeInfo { runtime, interpreter: Err(format!("configured interpreter: {e}")), version: None },
                }
            } else {
                let mut found = Err(format!(
                    "no interpreter for {runtime} found (looked for {} in {}); configure one with --runtime-path {runtime}=PATH",
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
                RuntimeInfo { runtime, interpreter: found, version }
            };
            runtimes.insert(runtime, info);
        }
        Ok(RuntimeRegistry { runtimes, node_dir, python_dir })
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

fn write_if_changed(path: &Path, content: &str) -> std::io::Result<()> {
    if std::fs::read_to_string(path).ok().as_deref() == Some(content) {
        return Ok(());
    }
    std::fs::create_dir_all(path.parent().expect("bootstrap path has a parent"))?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, content)?;
    std::fs::rename(tmp, path)
}
