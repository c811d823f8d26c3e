//! A serde `Deserializer` over the positioned YAML tree.
//!
//! It is type-directed: a plain scalar becomes whatever the target field asks for (`"80"` quoted is
//! a string, `80` plain may be a number or a string), the way Kubernetes' YAML-to-JSON reading and
//! the CRD schema together behave. Booleans accept YAML 1.1's `yes`/`no`/`on`/`off` as well, since
//! `kubectl` reads YAML 1.1.
//!
//! For structs, keys that the type does not know are *not* errors here: they are collected, with
//! their path, line and the closest known field, and skipped, so one pass reports every typo.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};

use crate::yaml::{Node, Value};

/// Where a value sits in a document, as a linked list on the stack.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Path<'a> {
    Root,
    Field(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root => Ok(()),
            Path::Field(parent, name) => {
                if matches!(parent, Path::Root) {
                    write!(f, "{name}")
                } else if name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') && !name.is_empty() {
                    write!(f, "{parent}.{name}")
                } else {
                    write!(f, "{parent}[{name:?}]")
                }
            }
            Path::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

/// A field the target type does not have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UnknownField {
    pub(crate) path: String,
    pub(crate) line: u32,
    pub(crate) field: String,
    /// The fields the type has (what [`UnknownField::suggestion`] picks from).
    pub(crate) known: &'static [&'static str],
}

impl UnknownField {
    /// The known field closest to this one ([`closest`]), worked out only when a message says
    /// it: most unknown fields of a Kubernetes object are fields meshwork does not read, and
    /// are dropped without a message.
    pub(crate) fn suggestion(&self) -> Option<&'static str> {
        closest(&self.field, self.known)
    }
}

/// A type or value error, located at the innermost node that produced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeError {
    pub(crate) message: String,
    pub(crate) path: Option<String>,
    pub(crate) line: Option<u32>,
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError { message: msg.to_string(), path: None, line: None }
    }
}

/// Deserialize `T` from `node`, collecting unknown fields into `unknown`.
pub(crate) fn from_node<T: de::DeserializeOwned>(
    node: &Node,
    path: Path<'_>,
    unknown: &RefCell<Vec<UnknownField>>,
) -> Result<T, DeError> {
    T::deserialize(NodeDe { node, path, unknown })
}

struct NodeDe<'a> {
    node: &'a Node,
    path: Path<'a>,
    unknown: &'a RefCell<Vec<UnknownField>>,
}

impl NodeDe<'_> {
    fn locate(&self, mut e: DeError) -> DeError {
        if e.path.is_none() {
            e.path = Some(self.path.to_string());
            e.line = Some(self.node.line);
        }
        e
    }

    fn unexpected(&self) -> de::Unexpected<'_> {
        match &self.node.value {
            Value::Null => de::Unexpected::Unit,
            Value::Scalar { text, .. } => de::Unexpected::Str(text),
            Value::Seq(_) => de::Unexpected::Seq,
            Value::Map(_) => de::Unexpected::Map,
        }
    }

    fn plain(&self) -> Option<&str> {
        match &self.node.value {
            Value::Scalar { text, plain: true } => Some(text),
            _ => None,
        }
    }
}

fn parse_int(text: &str) -> Option<i128> {
    let (neg, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let value = if let Some(hex) = digits.strip_prefix("0x") {
        i128::from_str_radix(hex, 16).ok()?
    } else if let Some(oct) = digits.strip_prefix("0o") {
        i128::from_str_radix(oct, 8).ok()?
    } else if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse().ok()?
    } else {
        return None;
    };
    Some(if neg { -value } else { value })
}

fn parse_float(text: &str) -> Option<f64> {
    match text {
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => Some(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => Some(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => Some(f64::NAN),
        _ => {
            let looks_numeric = text.bytes().any(|b| b.is_ascii_digit())
                && text.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
            if looks_numeric { text.parse().ok() } else { None }
        }
    }
}

fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "true" | "True" | "TRUE" | "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => Some(true),
        "false" | "False" | "FALSE" | "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => Some(false),
        _ => None,
    }
}

macro_rules! int_method {
    ($method:ident) => {
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            let result = match self.plain().and_then(parse_int) {
                Some(v) if v >= 0 => match u64::try_from(v) {
                    Ok(v) => visitor.visit_u64(v),
                    Err(_) => Err(de::Error::custom(format!("integer {v} is out of range"))),
                },
                Some(v) => match i64::try_from(v) {
                    Ok(v) => visitor.visit_i64(v),
                    Err(_) => Err(de::Error::custom(format!("integer {v} is out of range"))),
                },
                None => Err(de::Error::invalid_type(self.unexpected(), &visitor)),
            };
            result.map_err(|e| self.locate(e))
        }
    };
}

impl<'de> de::Deserializer<'de> for NodeDe<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let result = match &self.node.value {
            Value::Null => visitor.visit_unit(),
            Value::Scalar { text, plain: false } => visitor.visit_str(text),
            Value::Scalar { text, plain: true } => match text.as_str() {
                "true" | "True" | "TRUE" => visitor.visit_bool(true),
                "false" | "False" | "FALSE" => visitor.visit_bool(false),
                t => match parse_int(t) {
                    Some(v) if v >= 0 && v <= i128::from(u64::MAX) => visitor.visit_u64(v as u64),
                    Some(v) if v >= i128::from(i64::MIN) && v < 0 => visitor.visit_i64(v as i64),
                    _ => match parse_float(t) {
                        Some(f) => visitor.visit_f64(f),
                        None => visitor.visit_str(t),
                    },
                },
            },
            Value::Seq(items) => visitor.visit_seq(Seq { items, index: 0, path: self.path, unknown: self.unknown }),
            Value::Map(entries) => {
                visitor.visit_map(Map { entries, index: 0, fields: None, path: self.path, unknown: self.unknown })
            }
        };
        result.map_err(|e| self.locate(e))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let result = match self.plain().and_then(parse_bool) {
            Some(b) => visitor.visit_bool(b),
            None => Err(de::Error::invalid_type(self.unexpected(), &visitor)),
        };
        result.map_err(|e| self.locate(e))
    }

    int_method!(deserialize_i8);
    int_method!(deserialize_i16);
    int_method!(deserialize_i32);
    int_method!(deserialize_i64);
    int_method!(deserialize_u8);
    int_method!(deserialize_u16);
    int_method!(deserialize_u32);
    int_method!(deserialize_u64);

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let result = match self.plain().and_then(parse_float) {
            Some(f) => visitor.visit_f64(f),
            None => Err(de::Error::invalid_type(self.unexpected(), &visitor)),
        };
        result.map_err(|e| self.locate(e))
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let result = match &self.node.value {
            Value::Scalar { text, .. } => visitor.visit_str(text),
            // YAML 1.2 reads `[1.2.3.4, 2001:db8::]` as a one-pair mapping `{"2001:db8:": null}`;
            // Kubernetes' YAML 1.1 reader keeps the IPv6 address a string. Do as Kubernetes does.
            Value::Map(entries) if entries.len() == 1 && entries[0].0.name.contains(':') && entries[0].1.is_null() => {
                visitor.visit_str(&format!("{}:", entries[0].0.name))
            }
            _ => Err(de::Error::invalid_type(self.unexpected(), &visitor)),
        };
        result.map_err(|e| self.locate(e))
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.node.is_null() { visitor.visit_none().map_err(|e| self.locate(e)) } else { visitor.visit_some(self) }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let result = if self.node.is_null() {
            visitor.visit_unit()
        } else {
            Err(de::Error::invalid_type(self.unexpected(), &visitor))
        };
        result.map_err(|e| self.locate(e))
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let result = match &self.node.value {
            Value::Seq(items) => visitor.visit_seq(Seq { items, index: 0, path: self.path, unknown: self.unknown }),
            _ if self.node.is_null() => {
                visitor.visit_seq(Seq { items: &[], index: 0, path: self.path, unknown: self.unknown })
            }
            _ => Err(de::Error::invalid_type(self.unexpected(), &visitor)),
        };
        result.map_err(|e| self.locate(e))
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.map_with(None, visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.map_with(Some(fields), visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let result = match &self.node.value {
            Value::Scalar { text, .. } => {
                let d: de::value::StrDeserializer<'_, DeError> = text.as_str().into_deserializer();
                visitor.visit_enum(d)
            }
            _ => Err(de::Error::invalid_type(self.unexpected(), &visitor)),
        };
        result.map_err(|e| self.locate(e))
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }
}

impl NodeDe<'_> {
    fn map_with<'de, V: Visitor<'de>>(
        self,
        fields: Option<&'static [&'static str]>,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let result = match &self.node.value {
            Value::Map(entries) => {
                visitor.visit_map(Map { entries, index: 0, fields, path: self.path, unknown: self.unknown })
            }
            _ if self.node.is_null() => {
                visitor.visit_map(Map { entries: &[], index: 0, fields, path: self.path, unknown: self.unknown })
            }
            _ => Err(de::Error::invalid_type(self.unexpected(), &visitor)),
        };
        result.map_err(|e| self.locate(e))
    }
}

struct Seq<'a> {
    items: &'a [Node],
    index: usize,
    path: Path<'a>,
    unknown: &'a RefCell<Vec<UnknownField>>,
}

impl<'de> SeqAccess<'de> for Seq<'_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, DeError> {
        let Some(node) = self.items.get(self.index) else {
            return Ok(None);
        };
        let path = Path::Index(&self.path, self.index);
        self.index += 1;
        seed.deserialize(NodeDe { node, path, unknown: self.unknown }).map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len() - self.index)
    }
}

struct Map<'a> {
    entries: &'a [(crate::yaml::Key, Node)],
    index: usize,
    fields: Option<&'static [&'static str]>,
    path: Path<'a>,
    unknown: &'a RefCell<Vec<UnknownField>>,
}

impl<'de> MapAccess<'de> for Map<'_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, DeError> {
        while let Some((key, _)) = self.entries.get(self.index) {
            if let Some(fields) = self.fields
                && !fields.contains(&key.name.as_str())
            {
                self.unknown.borrow_mut().push(UnknownField {
                    path: Path::Field(&self.path, &key.name).to_string(),
                    line: key.line,
                    field: key.name.clone(),
                    known: fields,
                });
                self.index += 1;
                continue;
            }
            let d: de::value::StrDeserializer<'_, DeError> = key.name.as_str().into_deserializer();
            return seed.deserialize(d).map(Some);
        }
        Ok(None)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let Some((key, node)) = self.entries.get(self.index) else {
            return Err(de::Error::custom("value without a key"));
        };
        self.index += 1;
        let path = Path::Field(&self.path, &key.name);
        seed.deserialize(NodeDe { node, path, unknown: self.unknown })
    }
}

/// The known field closest to `name`: same letters ignoring case and `_`/`-`, or within a small
/// edit distance.
pub(crate) fn closest(name: &str, fields: &'static [&'static str]) -> Option<&'static str> {
    let fold = |s: &str| s.chars().filter(|c| *c != '_' && *c != '-').flat_map(char::to_lowercase).collect::<String>();
    let folded = fold(name);
    if let Some(exact) = fields.iter().find(|f| fold(f) == folded) {
        return Some(exact);
    }
    let limit = (name.chars().count() / 3).clamp(1, 3);
    fields
        .iter()
        .map(|f| (edit_distance(&folded, &fold(f)), *f))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, f)| f)
}

/// Optimal-string-alignment distance (Levenshtein plus adjacent transpositions).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        const FIELDS: &[&str] = &["destination", "weight", "headers"];
        assert_eq!(closest("weigth", FIELDS), Some("weight"));
        assert_eq!(closest("Weight", FIELDS), Some("weight"));
        assert_eq!(closest("destinaton", FIELDS), Some("destination"));
        assert_eq!(closest("zzz", FIELDS), None);
        const RETRY: &[&str] = &["retryOn", "attempts"];
        assert_eq!(closest("retry_on", RETRY), Some("retryOn"));
    }
}
