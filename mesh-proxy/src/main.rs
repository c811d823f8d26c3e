//! The `mesh` command.
fn main() {}
