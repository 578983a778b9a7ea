//! Content-addressed code blobs: a zip is stored once under its SHA-256, whoever uploads it.

use std::io::Write;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use sha2::{Digest, Sha256};

use crate::StoreError;

#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Stores `data` and returns its hex SHA-256. Storing the same bytes twice is a no-op.
    async fn put(&self, data: &[u8]) -> Result<String, StoreError>;
    async fn get(&self, digest: &str) -> Result<Option<Vec<u8>>, StoreError>;
    async fn delete(&self, digest: &str) -> Result<(), StoreError>;
    /// Every digest stored.
    async fn list(&self) -> Result<Vec<String>, StoreError>;
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Blobs as files under `<root>/<first two hex>/<digest>.zip`, written via a temp file and
/// rename so a crash never leaves a partial blob under a valid name.
pub struct LocalBlobStore {
    root: PathBuf,
}

impl LocalBlobStore {
    pub fn new(root: impl Into<PathBuf>) -> LocalBlobStore {
        LocalBlobStore { root: root.into() }
    }

    fn path(&self, digest: &str) -> Option<PathBuf> {
        if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        Some(self.root.join(&digest[..2]).join(format!("{digest}.zip")))
    }
}

fn io(e: std::io::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn write_atomically(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().expect("blob path has a parent");
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".tmp-{}", uuid_like()));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

fn uuid_like() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{}-{nanos}", std::process::id())
}

#[async_trait]
impl BlobStore for LocalBlobStore {
    async fn put(&self, data: &[u8]) -> Result<String, StoreError> {
        crate::blocking::in_place(|| {
            let digest = sha256_hex(data);
            let path = self.path(&digest).expect("sha256 hex is a valid digest");
            if !path.exists() {
                write_atomically(&path, data).map_err(io)?;
            }
            Ok(digest)
        })
    }

    async fn get(&self, digest: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(path) = self.path(digest) else { return Ok(None) };
        match crate::blocking::in_place(|| std::fs::read(path)) {
            Ok(d) => Ok(Some(d)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(e)),
        }
    }

    async fn delete(&self, digest: &str) -> Result<(), StoreError> {
        let Some(path) = self.path(digest) else { return Ok(()) };
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(e)),
            _ => Ok(()),
        }
    }

    async fn list(&self) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        let Ok(dirs) = std::fs::read_dir(&self.root) else { return Ok(out) };
        for dir in dirs.flatten() {
            for f in std::fs::read_dir(dir.path()).map_err(io)?.flatten() {
                let name = f.file_name();
                let Some(name) = name.to_str() else { continue };
                match name.strip_suffix(".zip") {
                    Some(digest) if self.path(digest).is_some() => out.push(digest.to_string()),
                    // A write a crash cut short.
                    _ if name.starts_with(".tmp-") => {
                        let _ = std::fs::remove_file(f.path());
                    }
                    _ => {}
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn round_trip_and_dedup() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalBlobStore::new(dir.path());
        let d1 = s.put(b"hello").await.unwrap();
        let d2 = s.put(b"hello").await.unwrap();
        assert_eq!(d1, d2);
        assert_eq!(d1, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
        assert_eq!(s.get(&d1).await.unwrap().unwrap(), b"hello");
        assert!(s.get("../../etc/passwd").await.unwrap().is_none());
        s.delete(&d1).await.unwrap();
        assert!(s.get(&d1).await.unwrap().is_none());
    }
}
