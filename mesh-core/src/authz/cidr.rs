//! IP addresses and CIDR ranges as AuthorizationPolicy writes them (`10.1.2.3`, `10.1.0.0/16`,
//! `2001:db8::/32`); Envoy's `CidrRange` (an address alone is a /32 or /128; host bits of a range
//! are ignored).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An address range.
///
/// ```
/// use mesh_core::authz::Cidr;
/// let net = Cidr::parse("10.1.0.0/16").expect("valid");
/// assert!(net.contains("10.1.200.3".parse().expect("ip")));
/// assert!(!net.contains("10.2.0.1".parse().expect("ip")));
/// assert!(Cidr::parse("10.1.2.3").expect("valid").contains("10.1.2.3".parse().expect("ip")));
/// assert!(Cidr::parse("10.1.2.3/33").is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

/// Why a string is not an address or range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    /// The address part does not parse.
    #[error("{0:?} is not an IP address")]
    Address(String),
    /// The prefix length is not a number or too long for the address family.
    #[error("prefix length {0:?} is not valid for the address")]
    Prefix(String),
}

impl Cidr {
    /// Parse `ADDRESS` or `ADDRESS/BITS`.
    pub fn parse(s: &str) -> Result<Cidr, CidrError> {
        let (ip, bits) = match s.split_once('/') {
            Some((ip, bits)) => (ip, Some(bits)),
            None => (s, None),
        };
        let addr = IpAddr::from_str(ip).map_err(|_| CidrError::Address(ip.to_string()))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match bits {
            None => max,
            Some(b) => match b.parse::<u8>() {
                Ok(p) if p <= max && !b.starts_with('+') => p,
                _ => return Err(CidrError::Prefix(b.to_string())),
            },
        };
        Ok(Cidr { addr, prefix })
    }

    /// Is `ip` in the range? (An IPv4 range never holds an IPv6 address, nor the reverse.)
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}
