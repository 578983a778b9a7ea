//! The checksums S3 computes and checks (CRC32, CRC32C, CRC64NVME, SHA-1, SHA-256) and the
//! MD5 behind ETags, computed over a body as it streams, so a body is read once whatever the
//! client asked to have checked.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use md5::Digest;

/// One of S3's checksum algorithms (`x-amz-checksum-<lowercase name>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum ChecksumAlgorithm {
    Crc32,
    Crc32c,
    Crc64Nvme,
    Sha1,
    Sha256,
}

impl ChecksumAlgorithm {
    pub const ALL: [ChecksumAlgorithm; 5] = [
        ChecksumAlgorithm::Crc32,
        ChecksumAlgorithm::Crc32c,
        ChecksumAlgorithm::Crc64Nvme,
        ChecksumAlgorithm::Sha1,
        ChecksumAlgorithm::Sha256,
    ];

    /// As S3 names it: `CRC32`, `CRC32C`, `CRC64NVME`, `SHA1`, `SHA256`.
    pub fn name(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Crc32 => "CRC32",
            ChecksumAlgorithm::Crc32c => "CRC32C",
            ChecksumAlgorithm::Crc64Nvme => "CRC64NVME",
            ChecksumAlgorithm::Sha1 => "SHA1",
            ChecksumAlgorithm::Sha256 => "SHA256",
        }
    }

    /// From S3's name, case-insensitively.
    pub fn from_name(name: &str) -> Option<ChecksumAlgorithm> {
        ChecksumAlgorithm::ALL.into_iter().find(|a| a.name().eq_ignore_ascii_case(name))
    }

    /// `x-amz-checksum-crc32` ...
    pub fn header(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Crc32 => "x-amz-checksum-crc32",
            ChecksumAlgorithm::Crc32c => "x-amz-checksum-crc32c",
            ChecksumAlgorithm::Crc64Nvme => "x-amz-checksum-crc64nvme",
            ChecksumAlgorithm::Sha1 => "x-amz-checksum-sha1",
            ChecksumAlgorithm::Sha256 => "x-amz-checksum-sha256",
        }
    }
}

/// Computed checksums: base64 of each algorithm's big-endian digest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checksums {
    pub values: Vec<(ChecksumAlgorithm, String)>,
}

impl Checksums {
    pub fn get(&self, algorithm: ChecksumAlgorithm) -> Option<&str> {
        self.values.iter().find(|(a, _)| *a == algorithm).map(|(_, v)| v.as_str())
    }
}

/// MD5 plus the checksums asked for, updated together.
pub struct Hashers {
    md5: md5::Md5,
    others: Vec<Hasher>,
}

impl Hashers {
    pub fn new(want: &[ChecksumAlgorithm]) -> Hashers {
        let mut algorithms = want.to_vec();
        algorithms.sort();
        algorithms.dedup();
        Hashers { md5: md5::Md5::new(), others: algorithms.into_iter().map(Hasher::new).collect() }
    }

    pub fn update(&mut self, data: &[u8]) {
        self.md5.update(data);
        for h in &mut self.others {
            h.update(data);
        }
    }

    /// The MD5 and the asked-for checksums.
    pub fn finish(self) -> ([u8; 16], Checksums) {
        let md5: [u8; 16] = self.md5.finalize().into();
        let values = self.others.into_iter().map(|h| (h.algorithm(), h.finish_base64())).collect();
        (md5, Checksums { values })
    }
}

/// One algorithm over a stream (for the edge's checks of trailing checksums).
pub struct Hasher {
    state: State,
}

enum State {
    Crc32(crc32fast::Hasher),
    Crc32c(u32),
    Crc64Nvme(crc64fast_nvme::Digest),
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
}

impl Hasher {
    pub fn new(algorithm: ChecksumAlgorithm) -> Hasher {
        let state = match algorithm {
            ChecksumAlgorithm::Crc32 => State::Crc32(crc32fast::Hasher::new()),
            ChecksumAlgorithm::Crc32c => State::Crc32c(0),
            ChecksumAlgorithm::Crc64Nvme => State::Crc64Nvme(crc64fast_nvme::Digest::new()),
            ChecksumAlgorithm::Sha1 => State::Sha1(sha1::Sha1::new()),
            ChecksumAlgorithm::Sha256 => State::Sha256(sha2::Sha256::new()),
        };
        Hasher { state }
    }

    pub(crate) fn algorithm(&self) -> ChecksumAlgorithm {
        match self.state {
            State::Crc32(_) => ChecksumAlgorithm::Crc32,
            State::Crc32c(_) => ChecksumAlgorithm::Crc32c,
            State::Crc64Nvme(_) => ChecksumAlgorithm::Crc64Nvme,
            State::Sha1(_) => ChecksumAlgorithm::Sha1,
            State::Sha256(_) => ChecksumAlgorithm::Sha256,
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match &mut self.state {
            State::Crc32(h) => h.update(data),
            State::Crc32c(crc) => *crc = crc32c::crc32c_append(*crc, data),
            State::Crc64Nvme(h) => h.write(data),
            State::Sha1(h) => h.update(data),
            State::Sha256(h) => h.update(data),
        }
    }

    /// The big-endian digest.
    pub(crate) fn finish_bytes(self) -> Vec<u8> {
        match self.state {
            State::Crc32(h) => h.finalize().to_be_bytes().to_vec(),
            State::Crc32c(crc) => crc.to_be_bytes().to_vec(),
            State::Crc64Nvme(h) => h.sum64().to_be_bytes().to_vec(),
            State::Sha1(h) => h.finalize().to_vec(),
            State::Sha256(h) => h.finalize().to_vec(),
        }
    }

    /// Base64 of the big-endian digest.
    pub fn finish_base64(self) -> String {
        BASE64.encode(self.finish_bytes())
    }
}

/// S3's checksum of a multipart object made of parts with these (base64) checksums: the
/// algorithm over the concatenation of the parts' digests, base64, `-N` appended. None when
/// a value is not base64.
pub(crate) fn composite(algorithm: ChecksumAlgorithm, parts: &[&str]) -> Option<String> {
    let mut h = Hasher::new(algorithm);
    for p in parts {
        h.update(&BASE64.decode(p).ok()?);
    }
    Some(format!("{}-{}", h.finish_base64(), parts.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known answers: "hello world" and the empty body, checked against independent
    /// implementations (zlib's crc32, python's hashlib, the CRC-64/NVME catalogue check value).
    #[test]
    fn known_vectors() {
        use ChecksumAlgorithm::*;
        let cases: &[(ChecksumAlgorithm, &[u8], &str)] = &[
            (Crc32, b"hello world", "DUoRhQ=="),
            (Crc32, b"", "AAAAAA=="),
            (Crc32c, b"hello world", "yZRlqg=="),
            (Crc32c, b"", "AAAAAA=="),
            // CRC-64/NVME check value of "123456789" is 0xAE8B14860A799888.
            (Crc64Nvme, b"123456789", "rosUhgp5mIg="),
            (Crc64Nvme, b"hello world", "jSnVw/bqjr4="),
            (Crc64Nvme, b"", "AAAAAAAAAAA="),
            (Sha1, b"hello world", "Kq5sNclPz7QV2+lfQIuc6R7oRu0="),
            (Sha256, b"hello world", "uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek="),
            (Sha256, b"", "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="),
        ];
        for (alg, data, want) in cases {
            // In one piece and byte by byte.
            let mut whole = Hasher::new(*alg);
            whole.update(data);
            let mut split = Hasher::new(*alg);
            for b in data.iter() {
                split.update(std::slice::from_ref(b));
            }
            assert_eq!(whole.finish_base64(), *want, "{alg:?} of {:?}", String::from_utf8_lossy(data));
            assert_eq!(split.finish_base64(), *want, "{alg:?} split");
        }
    }

    #[test]
    fn hashers_compute_md5_and_the_asked_checksums() {
        let mut h = Hashers::new(&[ChecksumAlgorithm::Sha256, ChecksumAlgorithm::Crc32, ChecksumAlgorithm::Crc32]);
        h.update(b"hello ");
        h.update(b"world");
        let (md5, sums) = h.finish();
        assert_eq!(hex::encode(md5), "5eb63bbbe01eeed093cb22bb8f5acdc3");
        assert_eq!(sums.values.len(), 2);
        assert_eq!(sums.get(ChecksumAlgorithm::Crc32), Some("DUoRhQ=="));
        assert_eq!(sums.get(ChecksumAlgorithm::Sha256), Some("uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek="));
        assert_eq!(sums.get(ChecksumAlgorithm::Sha1), None);
    }

    #[test]
    fn names_round_trip() {
        for a in ChecksumAlgorithm::ALL {
            assert_eq!(ChecksumAlgorithm::from_name(&a.name().to_lowercase()), Some(a));
            assert_eq!(a.header(), format!("x-amz-checksum-{}", a.name().to_lowercase()));
        }
        assert_eq!(ChecksumAlgorithm::from_name("md5"), None);
    }

    #[test]
    fn composite_hashes_the_parts_digests() {
        let a = BASE64.encode(crc32fast::hash(b"a").to_be_bytes());
        let b = BASE64.encode(crc32fast::hash(b"b").to_be_bytes());
        let mut joined = crc32fast::hash(b"a").to_be_bytes().to_vec();
        joined.extend(crc32fast::hash(b"b").to_be_bytes());
        let want = format!("{}-2", BASE64.encode(crc32fast::hash(&joined).to_be_bytes()));
        assert_eq!(composite(ChecksumAlgorithm::Crc32, &[&a, &b]), Some(want));
        assert_eq!(composite(ChecksumAlgorithm::Crc32, &["not base64!"]), None);
    }
}
