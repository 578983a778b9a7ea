//! Sequence numbers as Kinesis writes them: 56-digit decimal strings of a 188-bit number
//! whose fields say which shard (and when it was made) and which record of it they name.
//! Within a shard they grow with the record's index, so comparing two of one shard as
//! numbers orders their records; the index is what the store keys records by.
//!
//! Layout, most significant first (AWS's "version 2" numbers, as kinesalite measured them):
//! `2` (4 bits), the shard's creation time in seconds (36), the shard index's low 4 bits,
//! the record's index in its shard (64), a zero byte, the record's arrival time in seconds
//! (36), the shard index (32), `2` (4).

/// A sequence number's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SequenceNumber {
    /// When the shard was created, in seconds.
    pub shard_created_s: u64,
    /// The shard's index (`shardId-000000000007` is 7).
    pub shard: u32,
    /// The record's index in its shard: 0 is before the first record, [`END`] after the last.
    pub index: u64,
    /// When the record arrived, in seconds.
    pub time_s: u64,
}

/// The index of a closed shard's `EndingSequenceNumber`: after every record it holds.
pub const END: u64 = 0x7fff_ffff_ffff_ffff;

/// 192 bits as three little-endian 64-bit limbs.
type Wide = [u64; 3];

fn put(w: &mut Wide, offset: u32, width: u32, value: u64) {
    for bit in 0..width {
        if value >> bit & 1 == 1 {
            let at = offset + bit;
            w[(at / 64) as usize] |= 1 << (at % 64);
        }
    }
}

fn get(w: &Wide, offset: u32, width: u32) -> u64 {
    (0..width).fold(0, |acc, bit| {
        let at = offset + bit;
        acc | ((w[(at / 64) as usize] >> (at % 64) & 1) << bit)
    })
}

impl SequenceNumber {
    /// The decimal string Kinesis answers with.
    pub fn format(&self) -> String {
        let mut w: Wide = [0; 3];
        put(&mut w, 0, 4, 2);
        put(&mut w, 4, 32, u64::from(self.shard));
        put(&mut w, 36, 36, self.time_s);
        put(&mut w, 80, 64, self.index);
        put(&mut w, 144, 4, u64::from(self.shard & 0xf));
        put(&mut w, 148, 36, self.shard_created_s);
        put(&mut w, 184, 4, 2);
        decimal(w)
    }

    /// The fields of a decimal sequence number, if it is one of this layout.
    pub fn parse(text: &str) -> Option<SequenceNumber> {
        if text.is_empty() || text.len() > 60 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let mut w: Wide = [0; 3];
        for b in text.bytes() {
            // w = w * 10 + digit, refusing anything past 192 bits.
            let mut carry = u128::from(b - b'0');
            for limb in w.iter_mut() {
                let v = u128::from(*limb) * 10 + carry;
                *limb = v as u64;
                carry = v >> 64;
            }
            if carry != 0 {
                return None;
            }
        }
        if w[2] >> 60 != 0 || get(&w, 0, 4) != 2 || get(&w, 184, 4) != 2 || get(&w, 72, 8) != 0 {
            return None;
        }
        let shard = get(&w, 4, 32) as u32;
        let index = get(&w, 80, 64);
        if get(&w, 144, 4) != u64::from(shard & 0xf) || index > END {
            return None;
        }
        Some(SequenceNumber { shard_created_s: get(&w, 148, 36), shard, index, time_s: get(&w, 36, 36) })
    }
}

fn decimal(mut w: Wide) -> String {
    let mut digits = Vec::with_capacity(60);
    while w.iter().any(|l| *l != 0) {
        let mut rem: u128 = 0;
        for limb in w.iter_mut().rev() {
            let v = (rem << 64) | u128::from(*limb);
            *limb = (v / 10) as u64;
            rem = v % 10;
        }
        digits.push(b'0' + rem as u8);
    }
    if digits.is_empty() {
        digits.push(b'0');
    }
    digits.reverse();
    String::from_utf8(digits).expect("ASCII digits")
}
