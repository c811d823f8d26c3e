//! W3C Trace Context (`traceparent`), hand-written: parse, forward as a child, or start a trace.
//! (<https://www.w3.org/TR/trace-context/#traceparent-header>)

use http::{HeaderMap, HeaderName, HeaderValue};

const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// A parsed `traceparent`: version 00, trace id, parent id and flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    /// 128-bit trace id (never zero).
    pub trace_id: u128,
    /// 64-bit id of the parent span (never zero).
    pub parent_id: u64,
    /// Trace flags (bit 0: sampled).
    pub flags: u8,
}

impl TraceParent {
    /// Parse a header value; `None` when it is not a valid version-00 (or later, by its first
    /// 55 characters) `traceparent`.
    pub fn parse(value: &str) -> Option<TraceParent> {
        let value = value.trim();
        let b = value.as_bytes();
        if b.len() < 55 || b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
            return None;
        }
        let hex = |s: &str| s.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c));
        let (version, trace, parent, flags) = (&value[..2], &value[3..35], &value[36..52], &value[53..55]);
        if !hex(version) || !hex(trace) || !hex(parent) || !hex(flags) || version == "ff" {
            return None;
        }
        if version == "00" && b.len() != 55 {
            return None;
        }
        if version != "00" && b.len() > 55 && b[55] != b'-' {
            return None;
        }
        let trace_id = u128::from_str_radix(trace, 16).ok().filter(|t| *t != 0)?;
        let parent_id = u64::from_str_radix(parent, 16).ok().filter(|p| *p != 0)?;
        let flags = u8::from_str_radix(flags, 16).ok()?;
        Some(TraceParent { trace_id, parent_id, flags })
    }

    /// A new sampled trace.
    pub fn new_root() -> TraceParent {
        TraceParent { trace_id: nonzero128(), parent_id: nonzero64(), flags: 1 }
    }

    /// The same trace with a new span as parent (this hop's span).
    pub fn child(&self) -> TraceParent {
        TraceParent { parent_id: nonzero64(), ..*self }
    }

    /// The header value, version 00.
    pub fn to_header(&self) -> HeaderValue {
        // Formatted on the stack; the value then owns the array in one shared allocation, so the
        // copies the retry template and mirrors take are reference counts, not allocations.
        let mut buf = [0u8; 55];
        buf[..3].copy_from_slice(b"00-");
        hex_into(&mut buf[3..35], &self.trace_id.to_be_bytes());
        buf[35] = b'-';
        hex_into(&mut buf[36..52], &self.parent_id.to_be_bytes());
        buf[52] = b'-';
        hex_into(&mut buf[53..55], &[self.flags]);
        HeaderValue::from_maybe_shared(bytes::Bytes::from_owner(buf))
            .unwrap_or_else(|_| HeaderValue::from_static("00-00000000000000000000000000000001-0000000000000001-01"))
    }

    /// The trace id as 32 lower-case hex digits.
    pub fn trace_id_hex(&self) -> String {
        format!("{:032x}", self.trace_id)
    }
}

/// Every byte's two lower-case hex digits.
const HEX_PAIRS: [[u8; 2]; 256] = {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut pairs = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        pairs[i] = [DIGITS[i >> 4], DIGITS[i & 0xf]];
        i += 1;
    }
    pairs
};

/// Write `bytes` as lower-case hex, two digits each, into `out` (twice as long).
fn hex_into(out: &mut [u8], bytes: &[u8]) {
    for (i, b) in bytes.iter().enumerate() {
        if let Some(pair) = out.get_mut(2 * i..2 * i + 2) {
            pair.copy_from_slice(&HEX_PAIRS[usize::from(*b)]);
        }
    }
}

fn nonzero128() -> u128 {
    loop {
        let v = crate::rng::u128();
        if v != 0 {
            return v;
        }
    }
}

fn nonzero64() -> u64 {
    loop {
        let v = crate::rng::u64();
        if v != 0 {
            return v;
        }
    }
}

/// Forward the request's trace as a child span, or start one; `tracestate` is left as it is.
/// Returns the trace context now on the request.
pub fn propagate(headers: &mut HeaderMap) -> TraceParent {
    propagate_with(headers, |_| None)
}

/// [`propagate`], where `this_hop` may name this hop's span (an OpenTelemetry span that joined
/// the incoming trace): its ids are sent on instead of new ones.
pub(crate) fn propagate_with(
    headers: &mut HeaderMap,
    this_hop: impl FnOnce(Option<TraceParent>) -> Option<TraceParent>,
) -> TraceParent {
    let incoming = headers.get(&TRACEPARENT).and_then(|v| v.to_str().ok()).and_then(TraceParent::parse);
    let next = match this_hop(incoming) {
        Some(own) => own,
        None => match incoming {
            Some(parent) => parent.child(),
            None => TraceParent::new_root(),
        },
    };
    if incoming.is_none() {
        headers.remove(&TRACESTATE);
    }
    headers.insert(TRACEPARENT, next.to_header());
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_the_spec_example() {
        let t = TraceParent::parse(EXAMPLE).expect("valid");
        assert_eq!(t.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(t.parent_id, 0x00f0_67aa_0ba9_02b7);
        assert_eq!(t.flags, 1);
        assert_eq!(t.to_header(), EXAMPLE);
    }

    #[test]
    fn rejects_invalid_values() {
        for bad in [
            "",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad}");
        }
        assert!(TraceParent::parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future").is_some());
    }

    #[test]
    fn forwards_the_trace_with_a_new_parent() {
        let mut h = HeaderMap::new();
        h.insert("traceparent", HeaderValue::from_static(EXAMPLE));
        h.insert("tracestate", HeaderValue::from_static("vendor=1"));
        let t = propagate(&mut h);
        assert_eq!(t.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_ne!(t.parent_id, 0x00f0_67aa_0ba9_02b7);
        assert_eq!(h["tracestate"], "vendor=1");
        let mut fresh = HeaderMap::new();
        let t = propagate(&mut fresh);
        assert_eq!(TraceParent::parse(fresh["traceparent"].to_str().expect("ascii")), Some(t));
    }
}
