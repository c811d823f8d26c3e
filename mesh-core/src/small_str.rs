//! [`SmallStr`]: an immutable text held in place when short, in a shared `Arc<str>` when not.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

/// The longest text, in bytes, a [`SmallStr`] holds in place: every IPv4 address and most IPv6
/// addresses as text.
pub const INLINE_CAPACITY: usize = 22;

/// An immutable text of 24 bytes: up to [`INLINE_CAPACITY`] bytes held in place, without an
/// allocation of its own; a longer text in a shared `Arc<str>`. A text is held in place whole or
/// not at all, so a character is never split.
///
/// Read as a `str` (`Deref`, [`SmallStr::as_str`]); compared, ordered and hashed by its text, as
/// a `str` is, wherever it is held. `Display` writes the text, `Debug` as a `str` does.
#[derive(Clone)]
pub struct SmallStr(Repr);

/// Where a [`SmallStr`]'s text is.
#[derive(Clone)]
enum Repr {
    /// In place: `bytes[..len]`, a whole UTF-8 text copied from a `str`; the rest zero.
    Inline { len: u8, bytes: [u8; INLINE_CAPACITY] },
    /// Longer than [`INLINE_CAPACITY`] bytes.
    Shared(Arc<str>),
}

impl SmallStr {
    /// `text`, in place when it fits, else copied into a new `Arc<str>`.
    pub fn new(text: &str) -> SmallStr {
        SmallStr::inline(text).unwrap_or_else(|| SmallStr(Repr::Shared(Arc::from(text))))
    }

    /// `text` in place, or `None` when it is longer than [`INLINE_CAPACITY`] bytes.
    fn inline(text: &str) -> Option<SmallStr> {
        let len = u8::try_from(text.len()).ok().filter(|l| usize::from(*l) <= INLINE_CAPACITY)?;
        let mut bytes = [0; INLINE_CAPACITY];
        bytes.get_mut(..text.len())?.copy_from_slice(text.as_bytes());
        Some(SmallStr(Repr::Inline { len, bytes }))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            // The bytes were a whole `str` when they were copied: the check (a few nanoseconds
            // for so short a text, as the workspace forbids `unsafe`) never fails.
            Repr::Inline { len, bytes } => {
                bytes.get(..usize::from(*len)).and_then(|b| std::str::from_utf8(b).ok()).unwrap_or_default()
            }
            Repr::Shared(text) => text,
        }
    }

    /// Is the text held in place (no allocation of its own)?
    pub fn is_inline(&self) -> bool {
        matches!(self.0, Repr::Inline { .. })
    }
}

impl Default for SmallStr {
    /// The empty text, in place.
    fn default() -> Self {
        SmallStr(Repr::Inline { len: 0, bytes: [0; INLINE_CAPACITY] })
    }
}

impl From<&str> for SmallStr {
    fn from(text: &str) -> Self {
        SmallStr::new(text)
    }
}

impl From<String> for SmallStr {
    /// In place when it fits, else the `String` moved into an `Arc<str>`.
    fn from(text: String) -> Self {
        match SmallStr::inline(&text) {
            Some(inline) => inline,
            None => SmallStr(Repr::Shared(Arc::from(text))),
        }
    }
}

impl From<Arc<str>> for SmallStr {
    /// In place when it fits (the `Arc` is dropped), else that `Arc`, shared.
    fn from(text: Arc<str>) -> Self {
        match SmallStr::inline(&text) {
            Some(inline) => inline,
            None => SmallStr(Repr::Shared(text)),
        }
    }
}

impl Deref for SmallStr {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for SmallStr {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for SmallStr {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for SmallStr {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for SmallStr {}

impl PartialEq<str> for SmallStr {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for SmallStr {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialOrd for SmallStr {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SmallStr {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Hash for SmallStr {
    /// As the `str` hashes (so a set of them can be searched with a `&str`).
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Display for SmallStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl fmt::Debug for SmallStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn is_24_bytes() {
        assert_eq!(size_of::<SmallStr>(), 24);
    }

    #[test]
    fn short_texts_in_place_long_ones_shared() {
        for text in ["", "10.0.0.1", "255.255.255.255", "fd00:10:244:1::1f", "2001:db8::8a2e:370"] {
            let s = SmallStr::from(text);
            assert!(s.is_inline(), "{text}");
            assert_eq!(s.as_str(), text);
        }
        let at = "a".repeat(INLINE_CAPACITY);
        let over = "a".repeat(INLINE_CAPACITY + 1);
        assert!(SmallStr::from(at.as_str()).is_inline());
        assert!(!SmallStr::from(over.as_str()).is_inline());
        assert_eq!(SmallStr::from(over.as_str()).as_str(), over);
        assert!(SmallStr::from(at.clone()).is_inline());
        assert!(!SmallStr::from(over.clone()).is_inline());
        assert_eq!(SmallStr::from(over.clone()).as_str(), over);
        let long = "2001:0db8:85a3:0000:0000:8a2e:0370:7334";
        assert!(!SmallStr::from(long).is_inline());
        assert_eq!(&*SmallStr::from(long), long);
    }

    #[test]
    fn a_character_across_the_boundary_is_not_split() {
        // `é` is 2 bytes, `😀` 4: the text fits whole or goes shared whole.
        for (head, tail) in [(20, "é"), (21, "é"), (18, "😀"), (19, "😀"), (21, "😀")] {
            let text = format!("{}{tail}", "a".repeat(head));
            for s in [SmallStr::from(text.as_str()), SmallStr::from(text.clone()), SmallStr::from(Arc::from(&*text))] {
                assert_eq!(s.is_inline(), text.len() <= INLINE_CAPACITY, "{text}");
                assert_eq!(s.as_str(), text);
                assert!(s.ends_with(tail));
            }
        }
    }

    #[test]
    fn a_long_arc_is_kept_a_short_one_is_copied() {
        let long: Arc<str> = Arc::from("a".repeat(40));
        let s = SmallStr::from(long.clone());
        assert_eq!(Arc::strong_count(&long), 2, "shared, not copied");
        assert_eq!(s.as_str(), &*long);
        let short: Arc<str> = Arc::from("10.0.0.1");
        let s = SmallStr::from(short.clone());
        assert_eq!(Arc::strong_count(&short), 1, "copied in place, the Arc dropped");
        assert!(s.is_inline());
    }

    #[test]
    fn compared_hashed_and_printed_as_the_text() {
        let short = SmallStr::from("10.0.0.1");
        let long = SmallStr::from("a".repeat(30));
        assert_eq!(short, SmallStr::from(String::from("10.0.0.1")));
        assert_eq!(short, "10.0.0.1");
        assert_ne!(short, long);
        let next = SmallStr::from("10.0.0.10");
        assert!(short < long && short < next && next < long);
        assert_eq!(short.to_string(), "10.0.0.1");
        assert_eq!(format!("{short:?}"), "\"10.0.0.1\"");
        assert_eq!(format!("{long:?}"), format!("{:?}", "a".repeat(30)));
        let set: HashSet<SmallStr> = [short.clone(), long.clone()].into_iter().collect();
        assert!(set.contains("10.0.0.1") && set.contains("a".repeat(30).as_str()));
        assert_eq!(SmallStr::default(), "");
        assert!(SmallStr::default().is_inline());
    }
}
