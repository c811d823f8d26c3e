//! The mesh model and every routing decision. Pure: no I/O, no clock, no global state.

pub mod host;
pub mod matcher;
