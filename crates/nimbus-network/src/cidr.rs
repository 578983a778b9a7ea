//! IPv4 CIDR blocks as EC2 reads them: `a.b.c.d/n`, the address being the network's first
//! (EC2 refuses host bits: `10.0.0.1/16` is not a CIDR block of a VPC).

use std::fmt;
use std::net::Ipv4Addr;

/// An IPv4 network: its first address and prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    pub network: Ipv4Addr,
    pub prefix: u8,
}

impl Cidr {
    /// Parses `a.b.c.d/n`. Host bits set (`10.0.0.1/16`) is not a block; `strict: false`
    /// masks them off instead, as security group rules accept them.
    pub fn parse(text: &str, strict: bool) -> Option<Cidr> {
        let (addr, prefix) = text.split_once('/')?;
        let addr: Ipv4Addr = addr.parse().ok()?;
        if prefix.is_empty() || prefix.len() > 2 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let prefix: u8 = prefix.parse().ok()?;
        if prefix > 32 {
            return None;
        }
        let masked = Ipv4Addr::from(u32::from(addr) & mask(prefix));
        if strict && masked != addr {
            return None;
        }
        Some(Cidr { network: masked, prefix })
    }

    fn first(&self) -> u32 {
        u32::from(self.network)
    }

    fn last(&self) -> u32 {
        self.first() | !mask(self.prefix)
    }

    /// Whether `other` lies wholly inside this block.
    pub fn contains(&self, other: &Cidr) -> bool {
        other.prefix >= self.prefix && other.first() >= self.first() && other.last() <= self.last()
    }

    /// Whether the two blocks share an address.
    pub fn overlaps(&self, other: &Cidr) -> bool {
        self.first() <= other.last() && other.first() <= self.last()
    }

    /// Addresses in the block.
    pub fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.prefix))
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_blocks_as_ec2_does() {
        let c = |s: &str| Cidr::parse(s, true);
        assert_eq!(c("10.0.0.0/16").map(|c| c.to_string()).as_deref(), Some("10.0.0.0/16"));
        for bad in ["10.0.0.1/16", "10.0.0.0", "10.0.0.0/33", "10.0.0/16", "x/16", "10.0.0.0/", "10.0.0.0/+1", "10.0.0.0/016"] {
            assert_eq!(c(bad), None, "{bad}");
        }
        assert_eq!(Cidr::parse("10.0.0.1/16", false).map(|c| c.to_string()).as_deref(), Some("10.0.0.0/16"));
        assert_eq!(Cidr::parse("0.0.0.0/0", true).map(|c| c.size()), Some(1 << 32));
    }

    #[test]
    fn containment_and_overlap() {
        let c = |s: &str| Cidr::parse(s, true).unwrap();
        assert!(c("10.0.0.0/16").contains(&c("10.0.1.0/24")));
        assert!(c("10.0.0.0/16").contains(&c("10.0.0.0/16")));
        assert!(!c("10.0.0.0/16").contains(&c("10.1.0.0/24")));
        assert!(!c("10.0.1.0/24").contains(&c("10.0.0.0/16")));
        assert!(c("10.0.0.0/23").overlaps(&c("10.0.1.0/24")));
        assert!(!c("10.0.0.0/24").overlaps(&c("10.0.1.0/24")));
    }
}
