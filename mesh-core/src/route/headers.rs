//! Header edits (`headers.request` / `headers.response` of a rule or a destination), compiled
//! once: names and values parsed at compile time, Envoy `%VARIABLES%` expanded per request.
//!
//! Order as Envoy applies `request_headers_to_add` / `_to_remove`: removals, then overwrites, then
//! appends; a destination's edits before its rule's, so the rule's win on conflicts
//! (<https://istio.io/latest/docs/reference/config/networking/virtual-service/#Headers>).

/// Header edits for requests and responses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HeaderEdits {
    /// Request edits.
    pub request: HeaderOps,
    /// Response edits.
    pub response: HeaderOps,
}

impl HeaderEdits {
    /// No edits at all?
    pub fn is_empty(&self) -> bool {
        self.request.is_empty() && self.response.is_empty()
    }
}

/// `set` / `add` / `remove`, with names and values parsed once at compile time.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HeaderOps {
    /// Overwrite (or add).
    pub set: Box<[(http::HeaderName, http::HeaderValue)]>,
    /// Append (or add).
    pub add: Box<[(http::HeaderName, http::HeaderValue)]>,
    /// Remove.
    pub remove: Box<[http::HeaderName]>,
    /// `set` and `add` entries whose values hold Envoy `%VARIABLES%`, expanded per request
    /// ([`crate::header_format`]); `append` for `add`.
    pub formatted: Box<[FormattedHeader]>,
}

/// A `set` or `add` entry whose value is expanded per request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormattedHeader {
    /// The header.
    pub name: http::HeaderName,
    /// The value.
    pub format: crate::header_format::HeaderFormat,
    /// `add` (append) rather than `set` (overwrite).
    pub append: bool,
}

impl HeaderOps {
    /// No operations?
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.add.is_empty() && self.remove.is_empty() && self.formatted.is_empty()
    }

    /// Apply to a header map as Envoy does: removals first, then `set` (overwrite) and `add`
    /// (append); values with variables are expanded with nothing known about the connection
    /// (see [`HeaderOps::apply_with`]).
    #[inline]
    pub fn apply(&self, headers: &mut http::HeaderMap) {
        if !self.is_empty() {
            self.apply_with(headers, &crate::header_format::HeaderContext::default());
        }
    }

    /// [`HeaderOps::apply`], expanding `%VARIABLES%` from `ctx` (an empty expansion adds
    /// nothing, as in Envoy).
    pub fn apply_with(&self, headers: &mut http::HeaderMap, ctx: &crate::header_format::HeaderContext<'_>) {
        for name in self.remove.iter() {
            headers.remove(name);
        }
        for (name, value) in self.set.iter() {
            headers.insert(name.clone(), value.clone());
        }
        for (name, value) in self.add.iter() {
            headers.append(name.clone(), value.clone());
        }
        for f in self.formatted.iter() {
            let Some(value) = f.format.render(ctx, headers) else { continue };
            if f.append {
                headers.append(f.name.clone(), value);
            } else {
                headers.insert(f.name.clone(), value);
            }
        }
    }
}

impl HeaderEdits {
    /// Apply request edits of a destination and then of its rule (the rule's win on conflicts,
    /// as Envoy applies the less specific level last).
    pub fn apply_request(destination: &HeaderEdits, rule: &HeaderEdits, headers: &mut http::HeaderMap) {
        destination.request.apply(headers);
        rule.request.apply(headers);
    }

    /// Apply response edits, in the same order.
    pub fn apply_response(destination: &HeaderEdits, rule: &HeaderEdits, headers: &mut http::HeaderMap) {
        destination.response.apply(headers);
        rule.response.apply(headers);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_edits_remove_then_set_then_add() {
        let name = |n: &str| http::HeaderName::from_bytes(n.as_bytes()).expect("name");
        let value = |v: &str| http::HeaderValue::from_str(v).expect("value");
        let ops = HeaderOps {
            set: Box::new([(name("x-set"), value("new"))]),
            add: Box::new([(name("x-add"), value("two"))]),
            remove: Box::new([name("x-gone")]),
            formatted: Box::new([]),
        };
        let mut h = http::HeaderMap::new();
        h.insert("x-set", value("old"));
        h.insert("x-add", value("one"));
        h.insert("x-gone", value("bye"));
        ops.apply(&mut h);
        assert_eq!(h.get("x-set"), Some(&value("new")));
        assert_eq!(h.get_all("x-add").iter().count(), 2);
        assert!(h.get("x-gone").is_none());
    }
}
