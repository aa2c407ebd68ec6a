//! `EventQueue.push` and `EventQueue.pop` as plain CPython `METH_O` / `METH_NOARGS` methods.
//!
//! One event at a time from Python is the path where the binding's own cost is the whole cost:
//! the ring does a push and a pop in a few nanoseconds, while a `#[pymethods]` call spends
//! tens of nanoseconds on pyo3's generic machinery (the fastcall trampoline with its
//! thread-local attach count, the argument-description walk, a type check of `self`). pyo3 has
//! no way to declare a `METH_O` method, so these two are written against the C API here and
//! put into the class's dict when the module is initialized, before any Python subclass of it
//! exists. `collections.deque.append`/`popleft` are built the same way, which is what makes
//! the comparison with them fair.
//!
//! The FFI needs `unsafe`; every block says why it holds. Everything else (the ring, the
//! errors, the `Event` allocation) goes through the same safe code as the rest of the binding.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};

use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::type_object::PyTypeInfo;

use super::event::PyEvent;
use super::queue::{busy_error, pop_result, PyEventQueue};
use crate::event::Event;

/// Runs `body` for a C entry point: a panic becomes a Python RuntimeError instead of unwinding
/// into the interpreter, and an error is restored as the pending exception (NULL result).
fn entry(py: Python<'_>, body: impl FnOnce() -> PyResult<Py<PyAny>>) -> *mut ffi::PyObject {
    let result = catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|_| {
        Err(PyRuntimeError::new_err(
            "internal error in admf._core.EventQueue (a Rust panic)",
        ))
    });
    match result {
        Ok(obj) => obj.into_ptr(),
        Err(err) => {
            err.restore(py);
            ptr::null_mut()
        }
    }
}

/// `EventQueue.push(event, /)`: pushes one event without waiting; False when full.
unsafe extern "C" fn push(slf: *mut ffi::PyObject, arg: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: CPython calls a `METH_O` method with the GIL held.
    let py = unsafe { Python::assume_attached() };
    // SAFETY: `slf` and `arg` are borrowed references, valid for the duration of the call. The
    // method descriptor checked that `slf` is an instance of `EventQueue` (this function is
    // only installed on that class), so the unchecked cast is to its real type.
    let (queue, arg) = unsafe {
        (
            Borrowed::from_ptr(py, slf).cast_unchecked::<PyEventQueue>(),
            Borrowed::from_ptr(py, arg),
        )
    };
    entry(py, || {
        let event = arg.cast::<PyEvent>().map_err(|_| {
            PyTypeError::new_err(format!(
                "EventQueue.push takes an admf.Event, got {}",
                arg.get_type()
                    .name()
                    .map_or_else(|_| "?".to_owned(), |n| n.to_string())
            ))
        })?;
        let pushed = queue.get().push_one(event.get().inner)?;
        Ok(pyo3::types::PyBool::new(py, pushed)
            .to_owned()
            .into_any()
            .unbind())
    })
}

/// `EventQueue.pop()`: pops one event without waiting; None when empty.
unsafe extern "C" fn pop(slf: *mut ffi::PyObject, _: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: CPython calls a `METH_NOARGS` method with the GIL held.
    let py = unsafe { Python::assume_attached() };
    // SAFETY: as in `push`: a borrowed `EventQueue` instance, checked by the descriptor.
    let queue = unsafe { Borrowed::from_ptr(py, slf).cast_unchecked::<PyEventQueue>() };
    // SAFETY: this thread holds the GIL (see above) and keeps it until this function returns
    // (nothing here releases it). Every other user of the consumer takes it through
    // `PyEventQueue::consumer`, which only methods holding the GIL call, and the module
    // declares `gil_used`, so there is a GIL even on a free-threaded Python. So no other
    // thread takes the consumer while this borrow lives; one that took it earlier and
    // released the GIL while it waits makes `get_unlocked` return None, an error here.
    let consumer = unsafe { queue.get().consumer.get_unlocked() };
    entry(py, || {
        let popped = pop_result(consumer.ok_or_else(busy_error)?.try_pop())?;
        match popped {
            Some(inner) => new_event(py, inner),
            None => Ok(py.None()),
        }
    })
}

/// Where an `Event` object keeps its record, when the object is exactly a Python object
/// header followed by the record (0 until `install` has checked that).
static EVENT_OFFSET: AtomicUsize = AtomicUsize::new(0);

/// A new `Event` object holding `inner`. Takes the object from the type's allocator (pyo3's
/// free list) and writes the record in place, skipping pyo3's generic initializer, which
/// goes through `object.__new__` with an empty argument tuple.
fn new_event(py: Python<'_>, inner: Event) -> PyResult<Py<PyAny>> {
    let offset = EVENT_OFFSET.load(Ordering::Relaxed);
    if offset == 0 {
        return Ok(Bound::new(py, PyEvent { inner })?.into_any().unbind());
    }
    let ty = PyEvent::type_object_raw(py);
    // SAFETY: `ty` is the live `Event` type object; its `tp_alloc` (pyo3's free-list
    // allocator, always set for a heap type) returns a new reference to an object of that
    // type, or NULL with an exception set. `install` checked that such an object is the
    // header and then, at `offset`, the `PyEvent` and nothing else, and pyo3's `tp_dealloc`
    // only drops that `PyEvent` (plain data) before freeing; so writing the record there
    // makes a complete object.
    unsafe {
        let alloc = (*ty).tp_alloc.unwrap_or(ffi::PyType_GenericAlloc);
        let obj = alloc(ty, 0);
        if obj.is_null() {
            return Err(PyErr::fetch(py));
        }
        obj.cast::<u8>()
            .add(offset)
            .cast::<PyEvent>()
            .write(PyEvent { inner });
        Ok(Bound::from_owned_ptr(py, obj).unbind())
    }
}

/// Checks the layout `new_event` relies on and turns it on when it holds.
fn check_event_layout(py: Python<'_>) -> PyResult<()> {
    let probe = Bound::new(
        py,
        PyEvent {
            inner: Event::default(),
        },
    )?;
    let offset = (ptr::from_ref(probe.get()) as usize) - (probe.as_ptr() as usize);
    // SAFETY: reads a field of the live `Event` type object.
    let basicsize = unsafe { (*PyEvent::type_object_raw(py)).tp_basicsize } as usize;
    if offset == std::mem::size_of::<ffi::PyObject>()
        && basicsize == offset + std::mem::size_of::<PyEvent>()
    {
        EVENT_OFFSET.store(offset, Ordering::Relaxed);
    }
    Ok(())
}

/// Wraps a static method table entry so it can live in a `static` (CPython only reads it).
struct MethodDef(ffi::PyMethodDef);

// SAFETY: the definitions are immutable after construction and only hold pointers to static
// C strings and functions; CPython never writes through the pointer it is given.
unsafe impl Sync for MethodDef {}

static PUSH: MethodDef = MethodDef(ffi::PyMethodDef {
    ml_name: c"push".as_ptr(),
    ml_meth: ffi::PyMethodDefPointer { PyCFunction: push },
    ml_flags: ffi::METH_O,
    ml_doc: c"push($self, event, /)\n--\n\nPushes one event without waiting. Returns False when the queue is full.".as_ptr(),
});

static POP: MethodDef = MethodDef(ffi::PyMethodDef {
    ml_name: c"pop".as_ptr(),
    ml_meth: ffi::PyMethodDefPointer { PyCFunction: pop },
    ml_flags: ffi::METH_NOARGS,
    ml_doc: c"pop($self, /)\n--\n\nPops one event without waiting: None when empty; raises EndOfStream once the queue is\nclosed and drained.".as_ptr(),
});

/// Puts `push` and `pop` into the `EventQueue` class.
pub fn install(py: Python<'_>) -> PyResult<()> {
    check_event_layout(py)?;
    let ty = PyEventQueue::type_object(py);
    for (name, def) in [("push", &PUSH), ("pop", &POP)] {
        // SAFETY: `def` is a static method definition that outlives the type; CPython copies
        // nothing out of it but keeps the pointer, which stays valid for the process's life.
        // The type pointer is the live `EventQueue` type object. A NULL result means a Python
        // error is set, which `from_owned_ptr_or_err` fetches.
        let descr = unsafe {
            let raw = ffi::PyDescr_NewMethod(ty.as_type_ptr(), ptr::from_ref(&def.0).cast_mut());
            Bound::from_owned_ptr_or_err(py, raw)?
        };
        ty.setattr(name, descr)?;
    }
    Ok(())
}
