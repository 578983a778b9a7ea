//! How each console file is served, by its path: shared by the build script (which writes
//! the table) and the crate (whose tests check it), so both read one rule.

/// The `Content-Type` of a file of the console's build, by extension.
pub fn content_type(path: &str) -> &'static str {
    let ext = path.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "webmanifest" => "application/manifest+json",
        "txt" => "text/plain; charset=utf-8",
        "xml" => "application/xml",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "ico" => "image/x-icon",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "otf" => "font/otf",
        "wasm" => "application/wasm",
        _ => "application/octet-stream",
    }
}

/// Whether a file never changes under its name: Vite's output under `assets/` is named by
/// its content's hash, so browsers may keep it for good.
pub fn immutable(path: &str) -> bool {
    path.starts_with("assets/")
}

/// Whether a gzip copy is worth trying: formats compressed already never shrink (the copy is
/// kept only when it is smaller in any case).
pub fn compressible(path: &str) -> bool {
    !matches!(content_type(path), "image/png" | "image/jpeg" | "image/gif" | "image/webp" | "image/avif" | "font/woff" | "font/woff2")
}
