//! Tower layers that put meshwork on the request path of an HTTP client.
//!
//! Not built yet: the layers (telemetry, route, fault, mirror, timeout, retry, per-try timeout,
//! connection-pool admission, balance) come with the mesh-tower issue. The crate exists so the
//! workspace has its final shape and the facade's `meshwork::tower` path is stable.

#![forbid(unsafe_code)]
