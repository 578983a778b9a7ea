//! The `aws-chunked` decoder: AWS's two documented uploads byte for byte, fed in every split;
//! bodies as botocore and the AWS SDK for JavaScript v3 frame them; each way a body is refused.
//!
//! The documented signatures were also recomputed independently (Python's `hmac`/`hashlib`
//! from the documented seed, and the seed itself from the documented request): all agree, and
//! `sOO8/Q==` is the CRC32C of the 66,560 `a`s.

use super::*;
use crate::sigv4::{signing_key, Scope};

pub(crate) const DOC_KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
pub(crate) const DOC_SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const DOC_SCOPE: &str = "20130524/us-east-1/s3/aws4_request";
const DOC_DATE: &str = "20130524T000000Z";
/// "Transferring Payload in Multiple Chunks", Example: PUT Object.
pub(crate) const DOC_SEED: &str = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
pub(crate) const DOC_SIGNATURES: [&str; 3] = [
    "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
    "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
    "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
];
/// "Including Trailing Headers", Example: PUT Object (the same object, a trailing CRC32C).
const TRAILER_DOC_SEED: &str = "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e";
const TRAILER_DOC_SIGNATURES: [&str; 3] = [
    "b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2",
    "1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7",
    "2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992",
];
const TRAILER_DOC_TRAILER: &str =
    "x-amz-checksum-crc32c:sOO8/Q==\r\nx-amz-trailer-signature:d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435\r\n";

fn doc_signing(seed: &str) -> ChunkSigning {
    let scope = Scope { access_key: DOC_KEY_ID.into(), date: "20130524".into(), region: "us-east-1".into(), service: "s3".into() };
    ChunkSigning {
        key: signing_key(DOC_SECRET, &scope).try_into().unwrap(),
        scope: DOC_SCOPE.into(),
        amz_date: DOC_DATE.into(),
        seed: seed.into(),
    }
}

fn spec(mode: ChunkMode, seed: &str, announced: &[&str]) -> ChunkedSpec {
    ChunkedSpec {
        mode,
        signing: doc_signing(seed),
        decoded_content_length: None,
        announced_trailers: announced.iter().map(|s| s.to_string()).collect(),
        verify: true,
    }
}

/// 65,536 + 1,024 `a`s and the final chunk, with these signatures, then `trailer` and the
/// empty line.
pub(crate) fn doc_body(signatures: [&str; 3], trailer: &str) -> Vec<u8> {
    let mut b = format!("10000;chunk-signature={}\r\n", signatures[0]).into_bytes();
    b.extend(vec![b'a'; 65_536]);
    b.extend(format!("\r\n400;chunk-signature={}\r\n", signatures[1]).bytes());
    b.extend(vec![b'a'; 1024]);
    b.extend(format!("\r\n0;chunk-signature={}\r\n{trailer}\r\n", signatures[2]).bytes());
    b
}

type Decoded = (Vec<u8>, Trailers, u64);

/// Feeds `body` in pieces of `split` bytes.
pub(crate) fn decode(spec: &ChunkedSpec, body: &[u8], split: usize) -> Result<Decoded, ChunkError> {
    decode_pieces(spec, body.chunks(split.max(1)))
}

fn decode_pieces<'a>(spec: &ChunkedSpec, pieces: impl IntoIterator<Item = &'a [u8]>) -> Result<Decoded, ChunkError> {
    let mut d = ChunkedDecoder::new(spec);
    let mut out = Vec::new();
    for piece in pieces {
        d.feed(piece, &mut out)?;
    }
    let n = d.decoded_len();
    Ok((out, d.finish()?, n))
}

/// Split sizes for the 66 KB examples: every one up to 512 bytes, then some around the
/// chunk boundaries, and the whole.
fn doc_splits(len: usize) -> Vec<usize> {
    let mut s: Vec<usize> = (1..=512).collect();
    s.extend([1000, 4095, 4096, 8192, 65_535, 65_536, 65_537, 65_621, 65_622, 66_000, len - 1, len]);
    s
}

/// Encodes `data` as a client would, `chunk` bytes a chunk, signing with `signing` in the
/// signed modes; `trailers` follow the final chunk (signed in the trailer mode).
fn encode(mode: ChunkMode, signing: &ChunkSigning, data: &[u8], chunk: usize, trailers: &[(&str, &str)]) -> Vec<u8> {
    let sign = |s: String| {
        let mut mac = HmacSha256::new_from_slice(&signing.key).unwrap();
        mac.update(s.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    };
    let mut previous = signing.seed.clone();
    let mut out = Vec::new();
    for piece in data.chunks(chunk).chain([&[][..]]) {
        out.extend(format!("{:x}", piece.len()).bytes());
        if mode.signed() {
            let sts = format!(
                "AWS4-HMAC-SHA256-PAYLOAD\n{}\n{}\n{previous}\n{EMPTY_SHA256}\n{}",
                signing.amz_date,
                signing.scope,
                hex::encode(Sha256::digest(piece))
            );
            previous = sign(sts);
            out.extend(format!(";chunk-signature={previous}").bytes());
        }
        out.extend(b"\r\n");
        if !piece.is_empty() {
            out.extend(piece);
            out.extend(b"\r\n");
        }
    }
    for (n, v) in trailers {
        out.extend(format!("{n}:{v}\r\n").bytes());
    }
    if mode == ChunkMode::SignedTrailer {
        let mut sorted = trailers.to_vec();
        sorted.sort();
        let canonical: String = sorted.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
        let sts = format!(
            "AWS4-HMAC-SHA256-TRAILER\n{}\n{}\n{previous}\n{}",
            signing.amz_date,
            signing.scope,
            hex::encode(Sha256::digest(canonical.as_bytes()))
        );
        out.extend(format!("{TRAILER_SIGNATURE}:{}\r\n", sign(sts)).bytes());
    }
    out.extend(b"\r\n");
    out
}

#[test]
fn the_documented_chunked_upload_decodes_at_every_split() {
    let spec = spec(ChunkMode::Signed, DOC_SEED, &[]);
    let body = doc_body(DOC_SIGNATURES, "");
    assert_eq!(body.len(), 66_824, "the documented Content-Length");
    let want = vec![b'a'; 66_560];
    for split in doc_splits(body.len()) {
        let (out, trailers, n) = decode(&spec, &body, split).unwrap_or_else(|e| panic!("split {split}: {e:?}"));
        assert!(out == want && trailers.is_empty() && n == 66_560, "split {split}");
    }
    // In two pieces, cut anywhere in the first header, around the chunk boundaries, or in the end.
    let cuts = (0..100).chain(65_600..65_700).chain(66_600..66_700).chain(body.len() - 100..=body.len());
    for cut in cuts {
        let (a, b) = body.split_at(cut);
        let (out, _, _) = decode_pieces(&spec, [a, b]).unwrap_or_else(|e| panic!("cut {cut}: {e:?}"));
        assert!(out == want, "cut {cut}");
    }
}

#[test]
fn the_documented_upload_with_a_signed_trailer_decodes_at_every_split() {
    let spec = spec(ChunkMode::SignedTrailer, TRAILER_DOC_SEED, &["x-amz-checksum-crc32c"]);
    let body = doc_body(TRAILER_DOC_SIGNATURES, TRAILER_DOC_TRAILER);
    for split in doc_splits(body.len()) {
        let (out, trailers, n) = decode(&spec, &body, split).unwrap_or_else(|e| panic!("split {split}: {e:?}"));
        assert_eq!(trailers, vec![("x-amz-checksum-crc32c".to_string(), "sOO8/Q==".to_string())], "split {split}");
        assert!(out.len() == 66_560 && n == 66_560 && out.iter().all(|b| *b == b'a'), "split {split}");
    }
    // The test encoder makes the documented body too (so what it makes below is AWS's form).
    assert_eq!(
        encode(ChunkMode::SignedTrailer, &doc_signing(TRAILER_DOC_SEED), &[b'a'; 66_560], 65_536, &[("x-amz-checksum-crc32c", "sOO8/Q==")]),
        body
    );
    assert_eq!(encode(ChunkMode::Signed, &doc_signing(DOC_SEED), &[b'a'; 66_560], 65_536, &[]), doc_body(DOC_SIGNATURES, ""));
}

#[test]
fn small_bodies_decode_in_every_mode_at_every_split_and_cut() {
    let data: Vec<u8> = (0..300u32).map(|i| (i * 7 % 251) as u8).collect();
    let cases: [(ChunkMode, &[(&str, &str)]); 4] = [
        (ChunkMode::Signed, &[]),
        (ChunkMode::SignedTrailer, &[("x-amz-checksum-crc32", "AAAAAA==")]),
        (ChunkMode::SignedTrailer, &[("x-amz-checksum-sha256", "x"), ("x-amz-checksum-crc32", "AAAAAA==")]),
        (ChunkMode::UnsignedTrailer, &[("x-amz-checksum-crc32", "AAAAAA==")]),
    ];
    for (mode, trailers) in cases {
        let announced: Vec<&str> = trailers.iter().map(|(n, _)| *n).collect();
        let spec = spec(mode, DOC_SEED, &announced);
        let want: Trailers = trailers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
        // A chunk a byte (some splits), and bodies of a few chunks (every split, every cut).
        let body = encode(mode, &spec.signing, &data, 1, trailers);
        for split in [1, 7, 86, body.len()] {
            assert_eq!(decode(&spec, &body, split), Ok((data.clone(), want.clone(), 300)), "{mode:?} chunk 1 split {split}");
        }
        for chunk in [100, 299, 300, 1000] {
            let body = encode(mode, &spec.signing, &data, chunk, trailers);
            for split in 1..=body.len() {
                let got = decode(&spec, &body, split).unwrap_or_else(|e| panic!("{mode:?} chunk {chunk} split {split}: {e:?}"));
                assert_eq!(got, (data.clone(), want.clone(), 300), "{mode:?} chunk {chunk} split {split}");
            }
            for cut in 0..=body.len() {
                let (a, b) = body.split_at(cut);
                assert_eq!(decode_pieces(&spec, [a, b]).map(|d| d.0), Ok(data.clone()), "{mode:?} chunk {chunk} cut {cut}");
            }
        }
        // An empty body: the final chunk alone.
        let body = encode(mode, &spec.signing, b"", 100, trailers);
        assert_eq!(decode(&spec, &body, 1), Ok((vec![], want, 0)), "{mode:?} empty");
    }
}

/// Unsigned bodies byte for byte as the SDKs end them.
#[test]
fn bodies_as_botocore_and_the_js_sdk_frame_them() {
    let crc = vec![("x-amz-checksum-crc32".to_string(), "DUoRhQ==".to_string())];
    type Case<'a> = (&'a str, &'a [u8], &'a [&'a str], Trailers);
    let cases: &[Case] = &[
        // botocore's AwsChunkedWrapper: `0\r\n<name>:<value>\r\n\r\n`, or `0\r\n\r\n` without a checksum.
        ("botocore, crc32", b"b\r\nhello world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n", &["x-amz-checksum-crc32"], crc.clone()),
        ("botocore, no checksum", b"b\r\nhello world\r\n0\r\n\r\n", &[], vec![]),
        // The JS SDK v3's getAwsChunkedEncodingStream: a chunk per data event, then `0\r\n`,
        // `<name>:<value>\r\n`, `\r\n` -- or `0\r\n` alone without a checksum.
        (
            "js v3, crc32",
            b"6\r\nhello \r\n5\r\nworld\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n",
            &["x-amz-checksum-crc32"],
            crc.clone(),
        ),
        ("js v3, no checksum", b"6\r\nhello \r\n5\r\nworld\r\n0\r\n", &[], vec![]),
        // Lenient like S3's decoders: no final empty line after the trailers, uppercase hex,
        // a name in capitals, blanks around the value.
        ("no final empty line", b"b\r\nhello world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n", &["x-amz-checksum-crc32"], crc.clone()),
        ("uppercase hex", b"B\r\nhello world\r\n0\r\n\r\n", &[], vec![]),
        ("case and blanks", b"b\r\nhello world\r\n0\r\nX-Amz-Checksum-CRC32: DUoRhQ== \r\n\r\n", &["x-amz-checksum-crc32"], crc),
    ];
    for (name, body, announced, want) in cases {
        let spec = spec(ChunkMode::UnsignedTrailer, "", announced);
        for split in 1..=body.len() {
            assert_eq!(decode(&spec, body, split), Ok((b"hello world".to_vec(), want.clone(), 11)), "{name}, split {split}");
        }
    }
    // A signed body that ends right after its final chunk's header is whole too.
    let signed = doc_body(DOC_SIGNATURES, "");
    let (out, _, _) = decode(&spec(ChunkMode::Signed, DOC_SEED, &[]), &signed[..signed.len() - 2], 7).unwrap();
    assert_eq!(out.len(), 66_560);
    // A chunk signature in capitals is the same signature.
    let capitals = replace(&signed, DOC_SIGNATURES[0], &DOC_SIGNATURES[0].to_uppercase());
    decode(&spec(ChunkMode::Signed, DOC_SEED, &[]), &capitals, 4096).unwrap();
}

fn replace(body: &[u8], from: &str, to: &str) -> Vec<u8> {
    let s = String::from_utf8(body.to_vec()).unwrap();
    assert!(s.contains(from), "{from}");
    s.replacen(from, to, 1).into_bytes()
}

#[test]
fn refusals_say_what_is_wrong() {
    let signed = spec(ChunkMode::Signed, DOC_SEED, &[]);
    let trailer = spec(ChunkMode::SignedTrailer, TRAILER_DOC_SEED, &["x-amz-checksum-crc32c"]);
    let unsigned = spec(ChunkMode::UnsignedTrailer, "", &["x-amz-checksum-crc32"]);
    let unsigned_none = spec(ChunkMode::UnsignedTrailer, "", &[]);
    let other_seed = spec(ChunkMode::Signed, TRAILER_DOC_SEED, &[]);
    let signed_announcing = spec(ChunkMode::Signed, DOC_SEED, &["x-amz-checksum-crc32"]);
    let doc = doc_body(DOC_SIGNATURES, "");
    let doc_trailer = doc_body(TRAILER_DOC_SIGNATURES, TRAILER_DOC_TRAILER);
    let mut tampered = doc.clone();
    tampered[1000] = b'b';
    let mut tampered_second = doc.clone();
    tampered_second[66_000] = b'b';
    let small = spec(ChunkMode::Signed, DOC_SEED, &[]);
    let four = encode(ChunkMode::Signed, &small.signing, &[b'x'; 400], 100, &[]);
    let swapped = {
        // Two chunks traded places: each signature is right for its own bytes, only the chain is not.
        let s = String::from_utf8(four.clone()).unwrap();
        let parts: Vec<&str> = s.split_inclusive("\r\n").collect();
        let mut p = parts.clone();
        p.swap(0, 2);
        p.swap(1, 3);
        p.concat().into_bytes()
    };
    let big_trailer = format!("b\r\nhello world\r\n0\r\nx-amz-checksum-crc32:{}\r\n\r\n", "A".repeat(MAX_TRAILER));
    let long_header = format!("1;{}\r\nx\r\n0\r\n\r\n", "e".repeat(MAX_CHUNK_HEADER));

    let mismatch = |e: &ChunkError| matches!(e, ChunkError::SignatureMismatch { .. });
    let malformed = |e: &ChunkError| matches!(e, ChunkError::Malformed(_));
    let incomplete = |e: &ChunkError| *e == ChunkError::Incomplete;
    type Check = fn(&ChunkError) -> bool;
    let cases: Vec<(&str, &ChunkedSpec, Vec<u8>, Check)> = vec![
        // Signatures.
        ("a byte changed in the first chunk", &signed, tampered, mismatch),
        ("a byte changed in the second chunk", &signed, tampered_second, mismatch),
        ("the final chunk's signature changed", &signed, replace(&doc, "b6c6ea8a", "b6c6ea8b"), mismatch),
        ("another seed", &other_seed, doc.clone(), mismatch),
        ("chunks swapped", &small, swapped, mismatch),
        ("the signed trailer's value changed", &trailer, replace(&doc_trailer, "sOO8/Q==", "sOO8/A=="), mismatch),
        ("the trailer signature changed", &trailer, replace(&doc_trailer, "d81f82fc", "d81f82fd"), mismatch),
        // Framing.
        (
            "no trailer signature",
            &trailer,
            replace(&doc_trailer, "x-amz-trailer-signature:d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435\r\n", ""),
            malformed,
        ),
        ("a signed chunk without its signature", &signed, replace(&doc, &format!(";chunk-signature={}", DOC_SIGNATURES[1]), ""), malformed),
        ("a short chunk signature", &signed, replace(&doc, DOC_SIGNATURES[0], &DOC_SIGNATURES[0][1..]), malformed),
        ("another extension", &signed, replace(&doc, "10000;chunk-signature=", "10000;chunk-signatur="), malformed),
        ("size not hex", &unsigned_none, b"zz\r\nhello\r\n0\r\n\r\n".to_vec(), malformed),
        ("size empty", &unsigned_none, b"\r\nhello\r\n0\r\n\r\n".to_vec(), malformed),
        ("size negative", &unsigned_none, b"-5\r\nhello\r\n0\r\n\r\n".to_vec(), malformed),
        ("size with a blank", &unsigned_none, b" 5\r\nhello\r\n0\r\n\r\n".to_vec(), malformed),
        ("size 0x", &unsigned_none, b"0x5\r\nhello\r\n0\r\n\r\n".to_vec(), malformed),
        ("size over 64 bits", &unsigned_none, b"10000000000000000\r\nhello\r\n0\r\n\r\n".to_vec(), malformed),
        ("a bare LF after the size", &unsigned_none, b"5\nhello\r\n0\r\n\r\n".to_vec(), malformed),
        ("data longer than its size", &unsigned_none, b"4\r\nhello\r\n0\r\n\r\n".to_vec(), malformed),
        ("data shorter than its size", &unsigned_none, b"6\r\nhello\r\n0\r\n\r\n".to_vec(), malformed),
        ("a header over 4 KiB", &unsigned_none, long_header.into_bytes(), malformed),
        ("a header over 4 KiB, never ended", &unsigned_none, vec![b'1'; MAX_CHUNK_HEADER + 1], malformed),
        ("a trailer section over 16 KiB", &unsigned, big_trailer.into_bytes(), malformed),
        ("bytes after the end", &unsigned_none, b"5\r\nhello\r\n0\r\n\r\nmore".to_vec(), malformed),
        ("a second body after the end", &signed, [doc.clone(), doc.clone()].concat(), malformed),
        // Trailers.
        ("a trailer not announced", &unsigned_none, b"5\r\nhello\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n".to_vec(), |e| {
            *e == ChunkError::UnexpectedTrailer("x-amz-checksum-crc32".into())
        }),
        ("another trailer than announced", &unsigned, b"5\r\nhello\r\n0\r\nx-amz-checksum-crc32c:AAAAAA==\r\n\r\n".to_vec(), |e| {
            *e == ChunkError::UnexpectedTrailer("x-amz-checksum-crc32c".into())
        }),
        ("a trailer in the mode without", &signed_announcing, doc_body(DOC_SIGNATURES, "x-amz-checksum-crc32:AAAAAA==\r\n"), |e| {
            *e == ChunkError::UnexpectedTrailer("x-amz-checksum-crc32".into())
        }),
        (
            "a trailer signature in the unsigned mode",
            &unsigned_none,
            format!("5\r\nhello\r\n0\r\nx-amz-trailer-signature:{}\r\n\r\n", DOC_SEED).into_bytes(),
            |e| *e == ChunkError::UnexpectedTrailer(TRAILER_SIGNATURE.into()),
        ),
        ("an announced trailer missing", &unsigned, b"5\r\nhello\r\n0\r\n\r\n".to_vec(), |e| {
            *e == ChunkError::MissingTrailer("x-amz-checksum-crc32".into())
        }),
        ("an announced trailer missing, no final line", &unsigned, b"5\r\nhello\r\n0\r\n".to_vec(), |e| {
            *e == ChunkError::MissingTrailer("x-amz-checksum-crc32".into())
        }),
        ("a trailer without a colon", &unsigned, b"5\r\nhello\r\n0\r\nx-amz-checksum-crc32\r\n\r\n".to_vec(), |e| {
            matches!(e, ChunkError::MalformedTrailer(_))
        }),
        ("a trailer twice", &unsigned, b"5\r\nhello\r\n0\r\nx-amz-checksum-crc32:A\r\nx-amz-checksum-crc32:A\r\n\r\n".to_vec(), |e| {
            matches!(e, ChunkError::MalformedTrailer(_))
        }),
        // Truncation.
        ("nothing", &signed, vec![], incomplete),
        ("cut in the first header", &signed, doc[..40].to_vec(), incomplete),
        ("cut in the data", &signed, doc[..30_000].to_vec(), incomplete),
        ("cut before the final chunk", &signed, doc[..doc.len() - 89].to_vec(), incomplete),
        ("cut in the final chunk's header", &signed, doc[..doc.len() - 10].to_vec(), incomplete),
        ("cut in the final CRLF", &signed, doc[..doc.len() - 1].to_vec(), incomplete),
        ("cut in a trailer line", &unsigned, b"5\r\nhello\r\n0\r\nx-amz-checksum-crc32:AA".to_vec(), incomplete),
        ("cut in the trailer signature", &trailer, doc_trailer[..doc_trailer.len() - 10].to_vec(), incomplete),
    ];
    for (name, spec, body, check) in &cases {
        for split in [1, 3, 64, body.len().max(1)] {
            match decode(spec, body, split) {
                Err(e) => assert!(check(&e), "{name}, split {split}: {e:?}"),
                Ok(_) => panic!("{name}, split {split}: accepted"),
            }
        }
    }
}

#[test]
fn every_cut_before_the_last_chunk_is_incomplete() {
    let spec = spec(ChunkMode::Signed, DOC_SEED, &[]);
    let body = encode(ChunkMode::Signed, &spec.signing, &[b'q'; 250], 100, &[]);
    // The body less its final empty line is whole (leniency); any shorter is not.
    let whole_at = body.len() - 2;
    for cut in 0..body.len() {
        let got = decode(&spec, &body[..cut], 5);
        if cut == whole_at {
            got.unwrap_or_else(|e| panic!("cut {cut}: {e:?}"));
        } else {
            assert_eq!(got, Err(ChunkError::Incomplete), "cut {cut}");
        }
    }
}

#[test]
fn an_error_sticks_and_data_is_counted() {
    let spec = spec(ChunkMode::Signed, DOC_SEED, &[]);
    let mut body = doc_body(DOC_SIGNATURES, "");
    body[500] = b'b';
    let mut d = ChunkedDecoder::new(&spec);
    let mut out = Vec::new();
    d.feed(&body[..60_000], &mut out).unwrap();
    assert_eq!((out.len(), d.decoded_len()), (60_000 - 88, 60_000 - 88));
    let e = d.feed(&body[60_000..], &mut out).unwrap_err();
    assert!(
        matches!(e, ChunkError::SignatureMismatch { ref string_to_sign } if string_to_sign.starts_with("AWS4-HMAC-SHA256-PAYLOAD\n20130524T000000Z\n"))
    );
    assert_eq!(d.feed(b"", &mut out), Err(e.clone()));
    assert_eq!(d.finish(), Err(e));
}

#[test]
fn each_error_is_s3s_answer() {
    let cases = [
        (ChunkError::Malformed("x".into()), 400, "IncompleteBody"),
        (ChunkError::Incomplete, 400, "IncompleteBody"),
        (ChunkError::SignatureMismatch { string_to_sign: String::new() }, 403, "SignatureDoesNotMatch"),
        (ChunkError::MalformedTrailer("x".into()), 400, "MalformedTrailerError"),
        (ChunkError::UnexpectedTrailer("x".into()), 400, "MalformedTrailerError"),
        (ChunkError::MissingTrailer("x".into()), 400, "MalformedTrailerError"),
    ];
    for (e, status, code) in cases {
        assert_eq!(e.s3_error(), (status, code), "{e:?}");
    }
    assert_eq!(ChunkMode::from_content_sha256("STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"), Some(ChunkMode::SignedTrailer));
    assert_eq!(ChunkMode::from_content_sha256("STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD"), None);
    assert!(!format!("{:?}", doc_signing(DOC_SEED)).contains("key"));
}
