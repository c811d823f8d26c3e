//! A positioned YAML tree, built from `saphyr-parser` events.
//!
//! We keep our own small tree instead of deserializing straight from the parser so that every node
//! remembers the line it came from. That lets the validator name `FILE:LINE` for any field path,
//! and lets the deserializer in [`crate::de`] report *every* unknown field instead of the first.
//!
//! Untrusted input is bounded: nesting depth, the number of nodes (aliases count as the size of the
//! node they expand to, so "billion laughs" documents are refused) and the input size.

use std::collections::HashMap;
use std::sync::Arc;

use saphyr_parser::{Event, Parser, ScalarStyle};

/// Limits applied while reading YAML.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest accepted input, in bytes.
    pub max_bytes: usize,
    /// Deepest accepted nesting of mappings and sequences.
    pub max_depth: usize,
    /// Most nodes accepted in one stream, counting each alias expansion in full.
    pub max_nodes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_bytes: 16 << 20, max_depth: 64, max_nodes: 2_000_000 }
    }
}

/// One YAML node and the (1-based) line where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub(crate) line: u32,
    pub(crate) value: Value,
}

/// The shape of a node.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    /// An explicit or implicit null (`~`, `null`, or nothing at all).
    Null,
    /// A scalar; `plain` is false when it was quoted or a block scalar (always a string then).
    Scalar {
        text: String,
        plain: bool,
    },
    Seq(Vec<Node>),
    /// A mapping, in document order. Keys are scalars (we refuse complex keys).
    Map(Vec<(Key, Node)>),
}

/// A mapping key.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Key {
    pub(crate) name: String,
    pub(crate) line: u32,
}

/// A problem with the YAML text itself: the whole stream is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct YamlError {
    /// 1-based line of the problem.
    pub line: u32,
    /// What is wrong.
    pub message: String,
}

/// A parsed document, with the line of its first node.
#[derive(Debug, Clone)]
pub(crate) struct Document {
    pub(crate) root: Arc<Node>,
}

impl Node {
    /// The value of the mapping key `name`, if this is a mapping holding it.
    pub(crate) fn get(&self, name: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|(k, _)| k.name == name).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The scalar text of this node, if it is a scalar.
    pub(crate) fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    pub(crate) fn is_null(&self) -> bool {
        match &self.value {
            Value::Null => true,
            Value::Scalar { text, plain: true } => is_null_text(text),
            _ => false,
        }
    }

    fn size(&self) -> usize {
        1 + match &self.value {
            Value::Seq(items) => items.iter().map(Node::size).sum(),
            Value::Map(entries) => entries.iter().map(|(_, v)| v.size()).sum(),
            _ => 0,
        }
    }
}

/// YAML 1.2 core-schema nulls.
pub(crate) fn is_null_text(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

fn line_of(marker: &saphyr_parser::Marker) -> u32 {
    u32::try_from(marker.line()).unwrap_or(u32::MAX)
}

/// Parse a stream of `---`-separated documents. Empty documents are dropped.
pub(crate) fn parse_stream(text: &str, limits: Limits) -> Result<Vec<Document>, YamlError> {
    if text.len() > limits.max_bytes {
        return Err(YamlError {
            line: 1,
            message: format!("input is {} bytes, more than the limit of {}", text.len(), limits.max_bytes),
        });
    }
    let mut builder = Builder { limits, nodes: 0, anchors: HashMap::new(), stack: Vec::new(), docs: Vec::new() };
    let mut parser = Parser::new_from_str(text);
    while let Some(event) = parser.next_event() {
        let (event, span) =
            event.map_err(|e| YamlError { line: line_of(e.marker()), message: e.info().to_string() })?;
        builder.event(event, line_of(&span.start))?;
    }
    Ok(builder.docs)
}

enum Frame {
    Seq { line: u32, anchor: usize, items: Vec<Node> },
    Map { line: u32, anchor: usize, entries: Vec<(Key, Node)>, key: Option<Key>, merged: Vec<(Key, Node)> },
}

struct Builder {
    limits: Limits,
    nodes: usize,
    anchors: HashMap<usize, Node>,
    stack: Vec<Frame>,
    docs: Vec<Document>,
}

impl Builder {
    fn event(&mut self, event: Event<'_>, line: u32) -> Result<(), YamlError> {
        match event {
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => Ok(()),
            Event::DocumentStart(_) => {
                self.anchors.clear();
                Ok(())
            }
            Event::Alias(id) => {
                let node = self
                    .anchors
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| YamlError { line, message: "alias to an unknown anchor".to_string() })?;
                self.count(node.size(), line)?;
                self.push(node, line)
            }
            Event::Scalar(text, style, anchor, _tag) => {
                self.count(1, line)?;
                let plain = matches!(style, ScalarStyle::Plain);
                let value = if plain && is_null_text(&text) {
                    Value::Null
                } else {
                    Value::Scalar { text: text.into_owned(), plain }
                };
                let node = Node { line, value };
                if anchor > 0 {
                    self.anchors.insert(anchor, node.clone());
                }
                self.push(node, line)
            }
            Event::SequenceStart(anchor, _) => {
                self.open(line)?;
                self.stack.push(Frame::Seq { line, anchor, items: Vec::new() });
                Ok(())
            }
            Event::MappingStart(anchor, _) => {
                self.open(line)?;
                self.stack.push(Frame::Map { line, anchor, entries: Vec::new(), key: None, merged: Vec::new() });
                Ok(())
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor) = match self.stack.pop() {
                    Some(Frame::Seq { line, anchor, items }) => (Node { line, value: Value::Seq(items) }, anchor),
                    Some(Frame::Map { line, anchor, mut entries, merged, .. }) => {
                        for (k, v) in merged {
                            if !entries.iter().any(|(e, _)| e.name == k.name) {
                                entries.push((k, v));
                            }
                        }
                        (Node { line, value: Value::Map(entries) }, anchor)
                    }
                    None => {
                        return Err(YamlError { line, message: "unbalanced collection end".to_string() });
                    }
                };
                if anchor > 0 {
                    self.anchors.insert(anchor, node.clone());
                }
                self.push(node, line)
            }
        }
    }

    fn count(&mut self, n: usize, line: u32) -> Result<(), YamlError> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > self.limits.max_nodes {
            return Err(YamlError {
                line,
                message: format!("document expands to more than {} nodes (alias bomb?)", self.limits.max_nodes),
            });
        }
        Ok(())
    }

    fn open(&mut self, line: u32) -> Result<(), YamlError> {
        self.count(1, line)?;
        if self.stack.len() >= self.limits.max_depth {
            return Err(YamlError { line, message: format!("nesting deeper than {} levels", self.limits.max_depth) });
        }
        Ok(())
    }

    fn push(&mut self, node: Node, line: u32) -> Result<(), YamlError> {
        match self.stack.last_mut() {
            None => {
                if !node.is_null() {
                    self.docs.push(Document { root: Arc::new(node) });
                }
                Ok(())
            }
            Some(Frame::Seq { items, .. }) => {
                items.push(node);
                Ok(())
            }
            Some(Frame::Map { entries, key, merged, .. }) => match key.take() {
                None => {
                    let name = match node.value {
                        Value::Scalar { text, .. } => text,
                        Value::Null => String::new(),
                        _ => {
                            return Err(YamlError { line, message: "mapping keys must be plain strings".to_string() });
                        }
                    };
                    *key = Some(Key { name, line: node.line });
                    Ok(())
                }
                Some(k) => {
                    if k.name == "<<" {
                        return merge(merged, node, line);
                    }
                    if entries.iter().any(|(existing, _)| existing.name == k.name) {
                        return Err(YamlError {
                            line: k.line,
                            message: format!("duplicate key {:?} in mapping", k.name),
                        });
                    }
                    entries.push((k, node));
                    Ok(())
                }
            },
        }
    }
}

/// The YAML merge key (`<<: *base`), as Kubernetes' YAML reader supports it: keys written in the
/// mapping itself win over merged ones (applied when the mapping ends).
fn merge(merged: &mut Vec<(Key, Node)>, node: Node, line: u32) -> Result<(), YamlError> {
    let sources = match node.value {
        Value::Map(map) => vec![map],
        Value::Seq(items) => {
            let mut maps = Vec::new();
            for item in items {
                match item.value {
                    Value::Map(map) => maps.push(map),
                    _ => {
                        return Err(YamlError { line, message: "merge key `<<` takes mappings".to_string() });
                    }
                }
            }
            maps
        }
        _ => {
            return Err(YamlError { line, message: "merge key `<<` takes mappings".to_string() });
        }
    };
    for map in sources {
        for (k, v) in map {
            if !merged.iter().any(|(e, _)| e.name == k.name) {
                merged.push((k, v));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_keep_lines() {
        let docs = parse_stream("a: 1\n---\n\n---\nb:\n  c: [x, y]\n", Limits::default()).expect("valid yaml");
        assert_eq!(docs.len(), 2);
        let b = docs[1].root.get("b").expect("b");
        assert_eq!(b.line, 6);
        assert_eq!(b.get("c").map(|n| n.line), Some(6));
    }

    #[test]
    fn duplicate_keys_are_refused() {
        let err = parse_stream("a: 1\na: 2\n", Limits::default()).expect_err("duplicate");
        assert_eq!(err.line, 2);
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..9 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let err = parse_stream(&text, Limits::default()).expect_err("bomb");
        assert!(err.message.contains("nodes"), "{err}");
    }

    #[test]
    fn deep_nesting_is_refused() {
        let text = "[".repeat(100) + &"]".repeat(100);
        let err = parse_stream(&text, Limits::default()).expect_err("deep");
        assert!(err.message.contains("nesting"), "{err}");
    }

    #[test]
    fn merge_keys_fill_missing_fields() {
        let docs = parse_stream("base: &b {x: 1, y: 2}\nm:\n  <<: *b\n  y: 3\n", Limits::default()).expect("yaml");
        let m = docs[0].root.get("m").expect("m");
        assert_eq!(m.get("y").and_then(Node::as_str), Some("3"));
        assert_eq!(m.get("x").and_then(Node::as_str), Some("1"));
    }
}
