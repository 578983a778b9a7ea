//! The web console's assets, built from console/ and embedded in the binary.
//!
//! `build.rs` builds `console/` with npm and Vite (or takes a prebuilt directory from
//! `NIMBUS_CONSOLE_DIST`) and writes a static table of its files: each one's path, content
//! type, bytes, and a gzip copy made at build time when that is smaller. `nimbus-api` serves
//! them under `/_console/`, and the index at `/` as well. No IO at run time.

#[cfg(test)]
mod kinds;

/// One file of the console's build.
#[derive(Debug)]
pub struct Asset {
    /// Its path in the build, with `/` separators (`index.html`, `assets/index-1a2b3c.js`).
    pub path: &'static str,
    /// The `Content-Type` it is served with.
    pub content_type: &'static str,
    pub body: &'static [u8],
    /// The body gzipped, when that is smaller.
    pub gzip: Option<&'static [u8]>,
    /// Named by its content's hash (Vite's `assets/`): cacheable for good.
    pub immutable: bool,
}

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// The file at `path` (relative to the console's root, as in `assets/index-1a2b3c.js`), if the
/// build has it. Only the table's own paths match: nothing is read from disk, so `..` or an
/// absolute path finds nothing.
pub fn asset(path: &str) -> Option<&'static Asset> {
    ASSETS.binary_search_by(|a| a.path.cmp(path)).ok().map(|i| &ASSETS[i])
}

/// The console's `index.html` (a build without one fails).
pub fn index() -> &'static Asset {
    asset("index.html").expect("build.rs refuses a console build without index.html")
}

/// Why this binary has no console, when it was built with `NIMBUS_CONSOLE_SKIP=1` and the
/// console's build failed (its index is then a page saying so); None when it has one.
pub fn missing() -> Option<&'static str> {
    MISSING
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn lookups() {
        // (path, found)
        let cases = [
            ("index.html", true),
            ("", false),
            ("/index.html", false),
            ("./index.html", false),
            ("../index.html", false),
            ("../x", false),
            ("assets/../index.html", false),
            ("assets/../../Cargo.toml", false),
            ("..%2findex.html", false),
            ("index.html/", false),
            ("INDEX.HTML", false),
            ("nope.js", false),
        ];
        for (path, found) in cases {
            assert_eq!(asset(path).is_some(), found, "{path:?}");
        }
        assert_eq!(index().path, "index.html");
        assert_eq!(index().content_type, "text/html; charset=utf-8");
        assert!(!index().immutable);
    }

    #[test]
    fn content_types() {
        let cases = [
            ("index.html", "text/html; charset=utf-8"),
            ("assets/index-1a2b.js", "text/javascript; charset=utf-8"),
            ("assets/worker-1a2b.mjs", "text/javascript; charset=utf-8"),
            ("assets/index-1a2b.css", "text/css; charset=utf-8"),
            ("assets/logo-1a2b.svg", "image/svg+xml"),
            ("favicon.ico", "image/x-icon"),
            ("assets/font-1a2b.woff2", "font/woff2"),
            ("assets/index-1a2b.js.map", "application/json"),
            ("assets/IMAGE.PNG", "image/png"),
            ("LICENSE", "application/octet-stream"),
            ("assets/x.unknown", "application/octet-stream"),
        ];
        for (path, want) in cases {
            assert_eq!(kinds::content_type(path), want, "{path}");
        }
        let cases = [("assets/index-1a2b.js", true), ("index.html", false), ("favicon.ico", false), ("assetsx/a.js", false)];
        for (path, want) in cases {
            assert_eq!(kinds::immutable(path), want, "{path}");
        }
        let cases = [("index.html", true), ("assets/a.js", true), ("a.svg", true), ("a.png", false), ("a.woff2", false)];
        for (path, want) in cases {
            assert_eq!(kinds::compressible(path), want, "{path}");
        }
    }

    #[test]
    fn the_table_is_what_the_rules_say() {
        assert!(ASSETS.windows(2).all(|w| w[0].path < w[1].path), "sorted, for the binary search");
        for a in ASSETS {
            assert_eq!(asset(a.path).map(|found| found.path), Some(a.path));
            assert_eq!(a.content_type, kinds::content_type(a.path), "{}", a.path);
            assert_eq!(a.immutable, kinds::immutable(a.path), "{}", a.path);
            assert!(!a.path.starts_with('/') && !a.path.split('/').any(|s| s.is_empty() || s == "." || s == ".."), "{}", a.path);
            if let Some(gz) = a.gzip {
                assert!(gz.len() < a.body.len(), "{}: a gzip copy is kept only when smaller", a.path);
                let mut plain = Vec::new();
                flate2::read::GzDecoder::new(gz).read_to_end(&mut plain).expect("gunzips");
                assert_eq!(plain, a.body, "{}", a.path);
            }
        }
    }

    #[test]
    fn a_build_without_its_console_says_why() {
        let page = String::from_utf8_lossy(index().body);
        match missing() {
            Some(why) => assert!(page.contains("was not built") && !why.is_empty(), "{page}"),
            None => assert!(!page.contains("The Nimbus console was not built"), "{page}"),
        }
    }
}
