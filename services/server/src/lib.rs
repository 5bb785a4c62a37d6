//! The HTTP service behind `triage serve`, as a library: the routes, keys and
//! roles, and the service they call, which holds the case store, the policy
//! and the inference queue over any `triage_risk::Judge`. A library so that
//! the router can be driven in-process (`tests/router.rs`) on a stand-in
//! judge; the binary (`src/main.rs`, `src/cli`) only parses and wires.

pub mod filing;
pub mod http;
