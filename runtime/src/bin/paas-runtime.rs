//! paas-runtime: debug CLI of the runtime crate (to be written by the runtime helper).
fn main() {}
