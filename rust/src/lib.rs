//! admf's Rust core: the event record, the lock-free event queue and, with the `python`
//! feature, their pyo3 bindings compiled into `admf._core`.

pub mod book;
pub mod columns;
pub mod event;
pub mod indicators;
pub mod kernel;
pub mod merge;
pub mod orders;
pub mod queue;
pub mod stats;

#[cfg(feature = "python")]
mod py;

#[cfg(feature = "python")]
use pyo3::prelude::*;

/// The compiled core of admf. Users import `admf`, never this module.
///
/// `gil_used = true`: `EventQueue.pop` relies on the GIL to keep a second consumer out without
/// an atomic read-modify-write (see `py::fastcall`), so on a free-threaded Python this module
/// keeps the GIL on.
#[cfg(feature = "python")]
#[pymodule(gil_used = true)]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    py::event::register(m)?;
    py::kernel::register(m)?;
    py::orders::register(m)?;
    py::indicators::register(m)?;
    py::queue::register(m)?;
    py::book::register(m)?;
    Ok(())
}
