//! AWS's event-stream framing (`application/vnd.amazon.eventstream`), the body of
//! InvokeWithResponseStream: each message is a prelude (total and header lengths, CRC32),
//! typed headers, the payload and a CRC32 of the whole.

use bytes::{BufMut, Bytes, BytesMut};

/// The content type of an event-stream body.
pub const CONTENT_TYPE: &str = "application/vnd.amazon.eventstream";

/// Header value type 7: a UTF-8 string.
const STRING: u8 = 7;

/// One `event` message: `:event-type`, `:content-type` and `:message-type` headers and the
/// payload.
pub fn event(event_type: &str, content_type: &str, payload: &[u8]) -> Bytes {
    message(&[(":event-type", event_type), (":content-type", content_type), (":message-type", "event")], payload)
}

/// One message with string headers.
pub fn message(headers: &[(&str, &str)], payload: &[u8]) -> Bytes {
    let mut h = BytesMut::new();
    for (name, value) in headers {
        h.put_u8(u8::try_from(name.len()).expect("header names are short"));
        h.put_slice(name.as_bytes());
        h.put_u8(STRING);
        h.put_u16(u16::try_from(value.len()).expect("header values are short"));
        h.put_slice(value.as_bytes());
    }
    let total = 12 + h.len() + payload.len() + 4;
    let mut m = BytesMut::with_capacity(total);
    m.put_u32(u32::try_from(total).expect("messages are under 4 GiB"));
    m.put_u32(h.len() as u32);
    m.put_u32(crc32fast::hash(&m[..8]));
    m.put_slice(&h);
    m.put_slice(payload);
    m.put_u32(crc32fast::hash(&m));
    m.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_as_the_spec_lays_them_out() {
        // The spec's empty message: 16 bytes, no headers, no payload.
        let empty = message(&[], b"");
        assert_eq!(empty.as_ref(), &[0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x05, 0xc2, 0x48, 0xeb, 0x7d, 0x98, 0xc8, 0xff]);
        let m = event("PayloadChunk", "application/octet-stream", b"hello");
        let total = u32::from_be_bytes(m[0..4].try_into().unwrap()) as usize;
        let headers = u32::from_be_bytes(m[4..8].try_into().unwrap()) as usize;
        assert_eq!(total, m.len());
        assert_eq!(u32::from_be_bytes(m[8..12].try_into().unwrap()), crc32fast::hash(&m[..8]));
        assert_eq!(&m[12 + headers..total - 4], b"hello");
        assert_eq!(u32::from_be_bytes(m[total - 4..].try_into().unwrap()), crc32fast::hash(&m[..total - 4]));
        assert_eq!(m[12], b":event-type".len() as u8);
    }
}
