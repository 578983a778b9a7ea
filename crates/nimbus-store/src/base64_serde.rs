//! Binary values inside stored JSON documents, as base64 strings: one encoding for every
//! service that keeps bytes in a document (SQS and SNS binary message attributes). Use with
//! `#[serde(with = "nimbus_store::base64_serde::option")]` or `...::list`.

/// `Option<Vec<u8>>` as an optional base64 string.
pub mod option {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(b)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        let s: Option<String> = Option::deserialize(d)?;
        s.map(|s| base64::engine::general_purpose::STANDARD.decode(s).map_err(serde::de::Error::custom)).transpose()
    }
}

/// `Vec<Vec<u8>>` as a list of base64 strings.
pub mod list {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|b| base64::engine::general_purpose::STANDARD.encode(b)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
        let v: Vec<String> = Vec::deserialize(d)?;
        v.into_iter().map(|s| base64::engine::general_purpose::STANDARD.decode(s).map_err(serde::de::Error::custom)).collect()
    }
}
