//! admf's Rust core: the event record, the lock-free event queue and, with the `python`
//! feature, their pyo3 bindings compiled into `admf._core`.

pub mod book;
pub mod event;
pub mod indicators;
pub mod kernel;
pub mod merge;
pub mod queue;

#[cfg(feature = "python")]
mod py;

#[cfg(feature = "python")]
use pyo3::prelude::*;

/// The compiled core of admf. Users import `admf`, never this module.
#[cfg(feature = "python")]
#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    py::event::register(m)?;
    py::kernel::register(m)?;
    py::indicators::register(m)?;
    py::queue::register(m)?;
    py::book::register(m)?;
    Ok(())
}
