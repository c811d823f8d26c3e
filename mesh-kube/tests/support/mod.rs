//! Shared by the Kubernetes tests: the loopback API server.
#![allow(dead_code, unreachable_pub)]

pub mod apiserver;
