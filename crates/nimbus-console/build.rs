//! Builds the web console (`console/`, with npm and Vite) into `OUT_DIR`, or takes the
//! prebuilt one `NIMBUS_CONSOLE_DIST` names, gzips what shrinks, and writes `assets.rs`: the
//! table of its files that `src/lib.rs` includes, each file's bytes embedded with
//! `include_bytes!`. Without npm, or when the console's build fails, the build of Nimbus
//! fails, unless `NIMBUS_CONSOLE_SKIP=1`: then a one-page stand-in says why.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "src/kinds.rs"]
mod kinds;

/// What to do when the console cannot be built.
const REMEDY: &str = "Install Node.js 20.19+ with npm (the console is built with `npm ci` and `npm run build` in console/), \
or set NIMBUS_CONSOLE_DIST to a console built elsewhere (the output directory of `npm run build`), \
or set NIMBUS_CONSOLE_SKIP=1 to build Nimbus with a page saying its console was not built.";

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let workspace = manifest_dir.join("../..");
    let workspace = workspace.canonicalize().unwrap_or(workspace);
    println!("cargo:rerun-if-env-changed=NIMBUS_CONSOLE_DIST");
    println!("cargo:rerun-if-env-changed=NIMBUS_CONSOLE_SKIP");
    let built = match std::env::var_os("NIMBUS_CONSOLE_DIST").filter(|d| !d.is_empty()) {
        Some(dir) => prebuilt(&workspace.join(dir)),
        None => {
            let console = workspace.join("console");
            watch(&console);
            build(&console, &out.join("console-dist"))
        }
    };
    let (dist, missing) = match built {
        Ok(dist) => (dist, None),
        Err(why) if std::env::var("NIMBUS_CONSOLE_SKIP").is_ok_and(|v| v == "1") => {
            let summary = why.lines().next().unwrap_or_default().to_string();
            println!("cargo:warning=the web console is not built (NIMBUS_CONSOLE_SKIP=1): {summary}");
            (placeholder(&out, &summary), Some(summary))
        }
        Err(why) => fail(&format!("the web console could not be built: {why}\n\n{REMEDY}")),
    };
    let files = walk(&dist);
    if !files.iter().any(|(rel, _)| rel == "index.html") {
        fail(&format!("the console's build in {} has no index.html", dist.display()));
    }
    let code = table(&out, &files, missing.as_deref()).unwrap_or_else(|e| fail(&format!("writing the console's asset table: {e}")));
    std::fs::write(out.join("assets.rs"), code).unwrap_or_else(|e| fail(&format!("writing assets.rs: {e}")));
}

/// Stops the build with `message` (cargo shows a build script's stderr when it fails).
#[allow(clippy::exit)]
fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    std::process::exit(1)
}

/// Reruns the build script when the console's sources change.
fn watch(console: &Path) {
    for name in ["src", "index.html", "package.json", "package-lock.json", "vite.config.ts", "tsconfig.json"] {
        println!("cargo:rerun-if-changed={}", console.join(name).display());
    }
    if console.join("public").exists() {
        println!("cargo:rerun-if-changed={}", console.join("public").display());
    }
}

/// `NIMBUS_CONSOLE_DIST`: a console built elsewhere (relative paths are the workspace's).
fn prebuilt(dir: &Path) -> Result<PathBuf, String> {
    println!("cargo:rerun-if-changed={}", dir.display());
    let dir = dir.canonicalize().map_err(|e| format!("NIMBUS_CONSOLE_DIST={}: {e}", dir.display()))?;
    if !dir.join("index.html").is_file() {
        return Err(format!("NIMBUS_CONSOLE_DIST={} has no index.html (is it the output of `npm run build`?)", dir.display()));
    }
    Ok(dir)
}

/// The file whose exclusive lock a build holds while npm runs in `console/`. Not inside
/// `node_modules`: `npm ci` removes that directory, and a lock on a removed file locks
/// nothing for whoever opens the new one.
const BUILD_LOCK: &str = ".build.lock";

/// `npm ci` when `node_modules` is missing or older than the lock file, then `npm run build`
/// into `dist`, holding `console/.build.lock` throughout: builds of other target directories
/// (rust-analyzer's, `--target-dir`) run this script at the same time in the same `console/`,
/// and two `npm ci`s at once break `node_modules`. The lock is released when its file is
/// closed, also when the build script dies.
fn build(console: &Path, dist: &Path) -> Result<PathBuf, String> {
    if !console.join("package.json").is_file() {
        return Err(format!("{} has no package.json", console.display()));
    }
    let lock_path = console.join(BUILD_LOCK);
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("cannot open {}: {e}", lock_path.display()))?;
    lock.lock().map_err(|e| format!("cannot lock {}: {e}", lock_path.display()))?;
    let built = build_locked(console, dist);
    drop(lock);
    built
}

/// [`build`], under its lock (so whether `node_modules` is stale is decided after any other
/// build's `npm ci` finished).
fn build_locked(console: &Path, dist: &Path) -> Result<PathBuf, String> {
    let modified = |p: &Path| p.metadata().and_then(|m| m.modified());
    let installed = modified(&console.join("node_modules/.package-lock.json"));
    let locked = modified(&console.join("package-lock.json"));
    let stale = match (installed, locked) {
        (Ok(installed), Ok(locked)) => installed < locked,
        (Err(_), _) => true,
        (Ok(_), Err(_)) => false,
    };
    if stale {
        npm(console, &["ci", "--no-audit", "--no-fund", "--loglevel=error"], None)?;
    }
    npm(console, &["run", "build"], Some(dist))?;
    dist.canonicalize().map_err(|e| format!("`npm run build` left no {}: {e}", dist.display()))
}

/// Runs npm in `console`; `out` is where Vite writes (`NIMBUS_CONSOLE_OUT`).
fn npm(console: &Path, args: &[&str], out: Option<&Path>) -> Result<(), String> {
    let what = format!("`npm {}` in {}", args.join(" "), console.display());
    let mut cmd = Command::new("npm");
    // Cargo's DEBUG would switch on Node's `debug` logging; NODE_ENV=production would leave
    // Vite out of `npm ci`.
    cmd.args(args).current_dir(console).env_remove("DEBUG").env_remove("NODE_ENV");
    if let Some(out) = out {
        cmd.env("NIMBUS_CONSOLE_OUT", out);
    }
    let output = match cmd.output() {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(format!("npm is not on PATH (needed for {what})")),
        Err(e) => return Err(format!("cannot run {what}: {e}")),
    };
    if output.status.success() {
        return Ok(());
    }
    let tail = |b: &[u8]| {
        let text = String::from_utf8_lossy(b);
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    };
    Err(format!("{what} failed ({})\n{}\n{}", output.status, tail(&output.stdout), tail(&output.stderr)))
}

/// The stand-in page of a build without its console, saying why.
fn placeholder(out: &Path, why: &str) -> PathBuf {
    let dir = out.join("console-placeholder");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| fail(&format!("creating {}: {e}", dir.display())));
    let escape = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let page = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Nimbus console not built</title>\n\
<style>body{{font-family:system-ui,sans-serif;max-width:44rem;margin:3rem auto;padding:0 1rem;line-height:1.5}}code{{background:#eee;padding:0 .2em}}</style>\n\
</head>\n<body>\n<h1>The Nimbus console was not built into this binary</h1>\n\
<p>It was built with <code>NIMBUS_CONSOLE_SKIP=1</code>, and the console's build failed: {}.</p>\n\
<p>To have it, build Nimbus where Node.js 20.19+ and npm are on <code>PATH</code>, or with \
<code>NIMBUS_CONSOLE_DIST</code> naming a console built elsewhere.</p>\n<p>The AWS APIs on this port work as usual.</p>\n\
</body>\n</html>\n",
        escape(why)
    );
    std::fs::write(dir.join("index.html"), page).unwrap_or_else(|e| fail(&format!("writing the placeholder page: {e}")));
    dir
}

/// Every file under `dist`: (path relative to it with `/` separators, absolute path), sorted.
fn walk(dist: &Path) -> Vec<(String, PathBuf)> {
    fn visit(dir: &Path, prefix: &str, files: &mut Vec<(String, PathBuf)>) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| fail(&format!("reading {}: {e}", dir.display())));
        for entry in entries {
            let path = entry.unwrap_or_else(|e| fail(&format!("reading {}: {e}", dir.display()))).path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                println!("cargo:warning=skipped {} (not a UTF-8 name)", path.display());
                continue;
            };
            let rel = format!("{prefix}{name}");
            if path.is_dir() {
                visit(&path, &format!("{rel}/"), files);
            } else if path.is_file() {
                files.push((rel, path));
            }
        }
    }
    let mut files = Vec::new();
    visit(dist, "", &mut files);
    files.sort();
    files
}

/// The Rust source of the asset table (sorted by path, for a binary search); gzip copies are
/// written beside it.
fn table(out: &Path, files: &[(String, PathBuf)], missing: Option<&str>) -> std::io::Result<String> {
    let gzip_dir = out.join("console-gzip");
    let _ = std::fs::remove_dir_all(&gzip_dir);
    std::fs::create_dir_all(&gzip_dir)?;
    let literal = |p: &Path| -> std::io::Result<String> {
        p.to_str().map(|s| format!("{s:?}")).ok_or_else(|| std::io::Error::other(format!("{} is not a UTF-8 path", p.display())))
    };
    let mut code = String::from("static ASSETS: &[Asset] = &[\n");
    for (i, (rel, path)) in files.iter().enumerate() {
        let body = std::fs::read(path)?;
        let gzip = match kinds::compressible(rel).then(|| gzip(&body)).transpose()? {
            Some(gz) if gz.len() < body.len() => {
                let gz_path = gzip_dir.join(format!("{i}.gz"));
                std::fs::write(&gz_path, gz)?;
                format!("Some(include_bytes!({}))", literal(&gz_path)?)
            }
            _ => "None".to_string(),
        };
        let _ = writeln!(
            code,
            "    Asset {{ path: {rel:?}, content_type: {:?}, body: include_bytes!({}), gzip: {gzip}, immutable: {} }},",
            kinds::content_type(rel),
            literal(path)?,
            kinds::immutable(rel),
        );
    }
    code.push_str("];\n");
    let _ = writeln!(code, "const MISSING: Option<&str> = {missing:?};");
    Ok(code)
}

fn gzip(body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(body)?;
    encoder.finish()
}
