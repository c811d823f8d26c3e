//! A YAML tree packed into three flat buffers, for the resources a [`ConfigStore`] keeps.
//!
//! The store needs a resource's old version only when its new version is rejected (or its file
//! no longer parses): then the old one is compiled again and its lines name the places of
//! analysis findings. The typed spec and the positioned [`Node`] tree it was read from cost
//! several kilobytes per VirtualService rule; the packed tree costs tens of bytes, and
//! [`PackedTree::unpack`] gives back the very tree it was made from, which the loader's
//! deserializer turns into the very same typed spec.
//!
//! Layout: `shape` holds the nodes depth first (a tag byte, then a string number for a scalar or
//! an item count for a sequence or mapping, and a string number per mapping key); `lines` holds,
//! in the same order, each node's line and each key's line as the difference from the line
//! before (zigzag varints); `text` holds every distinct string once, `text_at` where each starts.
//! Two trees whose `shape` and strings are equal are equal but for their lines.
//!
//! [`ConfigStore`]: super::ConfigStore

use std::collections::HashMap;

use crate::yaml::{Key, Node, Value};

const NULL: u8 = 0;
const PLAIN: u8 = 1;
const QUOTED: u8 = 2;
const SEQ: u8 = 3;
const MAP: u8 = 4;

/// A packed [`Node`] tree (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PackedTree {
    shape: Box<[u8]>,
    lines: Box<[u8]>,
    text: Box<str>,
    text_at: Box<[u32]>,
}

impl PackedTree {
    /// Pack a tree.
    pub(crate) fn pack(node: &Node) -> PackedTree {
        let mut p = Packer::default();
        p.node(node);
        p.text_at.push(p.text.len() as u32);
        PackedTree {
            shape: p.shape.into_boxed_slice(),
            lines: p.lines.into_boxed_slice(),
            text: p.text.into_boxed_str(),
            text_at: p.text_at.into_boxed_slice(),
        }
    }

    /// The tree this was packed from; `None` only if the buffers are not a packed tree.
    pub(crate) fn unpack(&self) -> Option<Node> {
        let mut u = Unpacker { tree: self, shape: 0, lines: 0, line: 0 };
        let node = u.node()?;
        (u.shape == self.shape.len()).then_some(node)
    }

    /// Equal trees, lines left aside (the same shape and the same strings).
    pub(crate) fn same_content(&self, other: &PackedTree) -> bool {
        self.shape == other.shape && self.text == other.text && self.text_at == other.text_at
    }

    /// Heap bytes held.
    #[cfg(test)]
    fn heap_bytes(&self) -> usize {
        self.shape.len() + self.lines.len() + self.text.len() + 4 * self.text_at.len()
    }

    fn string(&self, n: usize) -> Option<&str> {
        let from = *self.text_at.get(n)? as usize;
        let to = *self.text_at.get(n + 1)? as usize;
        self.text.get(from..to)
    }
}

#[derive(Default)]
struct Packer<'t> {
    shape: Vec<u8>,
    lines: Vec<u8>,
    text: String,
    text_at: Vec<u32>,
    numbers: HashMap<&'t str, u32>,
    line: u32,
}

impl<'t> Packer<'t> {
    fn node(&mut self, node: &'t Node) {
        self.line(node.line);
        match &node.value {
            Value::Null => self.shape.push(NULL),
            Value::Scalar { text, plain } => {
                self.shape.push(if *plain { PLAIN } else { QUOTED });
                self.string(text);
            }
            Value::Seq(items) => {
                self.shape.push(SEQ);
                varint(&mut self.shape, items.len() as u64);
                for item in items {
                    self.node(item);
                }
            }
            Value::Map(entries) => {
                self.shape.push(MAP);
                varint(&mut self.shape, entries.len() as u64);
                for (key, value) in entries {
                    self.line(key.line);
                    self.string(&key.name);
                    self.node(value);
                }
            }
        }
    }

    fn line(&mut self, line: u32) {
        let delta = i64::from(line) - i64::from(self.line);
        self.line = line;
        varint(&mut self.lines, ((delta << 1) ^ (delta >> 63)) as u64);
    }

    fn string(&mut self, s: &'t str) {
        let n = match self.numbers.get(s) {
            Some(n) => *n,
            None => {
                let n = self.text_at.len() as u32;
                self.text_at.push(self.text.len() as u32);
                self.text.push_str(s);
                self.numbers.insert(s, n);
                n
            }
        };
        varint(&mut self.shape, u64::from(n));
    }
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn read_varint(buf: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*at)?;
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

struct Unpacker<'a> {
    tree: &'a PackedTree,
    shape: usize,
    lines: usize,
    line: u32,
}

impl Unpacker<'_> {
    fn node(&mut self) -> Option<Node> {
        let line = self.line()?;
        let tag = *self.tree.shape.get(self.shape)?;
        self.shape += 1;
        let value = match tag {
            NULL => Value::Null,
            PLAIN | QUOTED => Value::Scalar { text: self.string()?.to_string(), plain: tag == PLAIN },
            SEQ => {
                let n = self.count()?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.node()?);
                }
                Value::Seq(items)
            }
            MAP => {
                let n = self.count()?;
                let mut entries = Vec::with_capacity(n);
                for _ in 0..n {
                    let line = self.line()?;
                    let name = self.string()?.to_string();
                    entries.push((Key { name, line }, self.node()?));
                }
                Value::Map(entries)
            }
            _ => return None,
        };
        Some(Node { line, value })
    }

    fn line(&mut self) -> Option<u32> {
        let z = read_varint(&self.tree.lines, &mut self.lines)?;
        let delta = ((z >> 1) as i64) ^ -((z & 1) as i64);
        self.line = u32::try_from(i64::from(self.line) + delta).ok()?;
        Some(self.line)
    }

    /// An item count, no larger than what is left of `shape` (each item takes a byte at least).
    fn count(&mut self) -> Option<usize> {
        let n = usize::try_from(read_varint(&self.tree.shape, &mut self.shape)?).ok()?;
        (n <= self.tree.shape.len() - self.shape).then_some(n)
    }

    fn string(&mut self) -> Option<&str> {
        let n = usize::try_from(read_varint(&self.tree.shape, &mut self.shape)?).ok()?;
        self.tree.string(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::{Limits, parse_stream};

    fn tree(text: &str) -> Node {
        let docs = parse_stream(text, Limits::default()).expect("yaml");
        (*docs[0].root).clone()
    }

    #[test]
    fn round_trip() {
        let text = "a: 1\nb: [x, 'y', \"z\", ~, {c: d}]\nempty:\n\nlong: |\n  one\n  two\nback: 1\nnested:\n  - q: [1, 2]\n    r: {}\n  - []\n";
        let t = tree(text);
        let packed = PackedTree::pack(&t);
        assert_eq!(packed.unpack().as_ref(), Some(&t));
        assert!(packed.heap_bytes() < text.len() * 2);
    }

    #[test]
    fn content_without_lines() {
        let a = PackedTree::pack(&tree("a: 1\nb: [x]\n"));
        let b = PackedTree::pack(&tree("\n\na: 1\nb:\n  - x\n"));
        let c = PackedTree::pack(&tree("a: 1\nb: ['x']\n"));
        assert!(a.same_content(&b), "the same content on other lines");
        assert!(a != b);
        assert!(!a.same_content(&c), "a quoted scalar is another scalar");
    }

    #[test]
    fn broken_buffers_are_refused() {
        let t = PackedTree::pack(&tree("a: [1, 2, 3]\n"));
        let mut cut = t.clone();
        cut.shape = t.shape[..t.shape.len() - 1].into();
        assert_eq!(cut.unpack(), None);
        let mut long = t.clone();
        long.shape = [&t.shape[..], &[NULL]].concat().into();
        assert_eq!(long.unpack(), None);
    }
}
