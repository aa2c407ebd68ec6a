//! pyo3 wrappers around the pure Rust modules. Each Python class wraps one Rust object.

mod arrow;
pub mod book;
pub mod event;
pub(crate) mod fastcall;
pub mod indicators;
pub mod kernel;
pub mod orders;
pub mod queue;
