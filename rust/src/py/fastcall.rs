//! `EventQueue.push` and `EventQueue.pop` as plain CPython `METH_O` / `METH_NOARGS` methods,
//! and the getters a strategy reads on every event (`Event.close`, `SMA.value`, ...) as plain
//! getset descriptors.
//!
//! One event at a time from Python is the path where the binding's own cost is the whole cost:
//! the ring does a push and a pop in a few nanoseconds, while a `#[pymethods]` call spends
//! tens of nanoseconds on pyo3's generic machinery (the fastcall trampoline with its
//! thread-local attach count, the argument-description walk, a type check of `self`). pyo3 has
//! no way to declare a `METH_O` method, so these two are written against the C API here and
//! put into the class's dict when the module is initialized, before any Python subclass of it
//! exists. `collections.deque.append`/`popleft` are built the same way, which is what makes
//! the comparison with them fair. A pyo3 getter pays the same trampoline: about 30 ns of a
//! 45 ns `bar.close` or `sma.value`, on the path of every bar a strategy sees, so those
//! getters are replaced the same way (`install_getters`), keeping pyo3's docstrings.
//!
//! The FFI needs `unsafe`; every block says why it holds. Everything else (the ring, the
//! errors, the `Event` allocation) goes through the same safe code as the rest of the binding.

use std::cell::{Cell, UnsafeCell};
use std::ffi::{c_void, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::type_object::PyTypeInfo;

use super::event::PyEvent;
use super::indicators::{CurrentValue, PyAtr, PyEma, PyRsi, PySma};
use super::queue::{busy_error, pop_result, PyEventQueue};
use crate::event::{Event, SCALE};

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
    entry(py, || {
        let popped = if GIL_SERIALIZED.load(Ordering::Relaxed) {
            // SAFETY: this thread holds the GIL (see above) and keeps it until this function
            // returns (nothing here releases it). Every other user of the consumer takes it
            // through `PyEventQueue::consumer`, which only methods holding the GIL call, and
            // `install` found a GIL. So no other thread takes the consumer while this borrow
            // lives; one that took it earlier and released the GIL while it waits makes
            // `get_unlocked` return None, an error here.
            let consumer = unsafe { queue.get().consumer.get_unlocked() };
            pop_result(consumer.ok_or_else(busy_error)?.try_pop())?
        } else {
            queue.get().pop_one()?
        };
        match popped {
            Some(inner) => new_event(py, inner),
            None => Ok(py.None()),
        }
    })
}

/// Whether the interpreter has a GIL (checked by `install`): then `pop` takes the consumer
/// without its lock, and `Event` objects come from the pool.
static GIL_SERIALIZED: AtomicBool = AtomicBool::new(false);

/// The `Event` type object, once `install` has checked the layout `new_event` relies on and
/// put the pool's allocator into the type (null until then, and on a Python without a GIL).
static EVENT_TYPE: AtomicPtr<ffi::PyTypeObject> = AtomicPtr::new(ptr::null_mut());

/// The offset of the record in an `Event` object: right after the object header.
const EVENT_OFFSET: usize = std::mem::size_of::<ffi::PyObject>();

/// How many dead `Event` objects the pool keeps for reuse.
const POOL_SIZE: usize = 1024;

/// Dead `Event` objects kept for reuse: `EventQueue.pop` makes one per call, and taking it
/// from here instead of the allocator is a third of that call's cost. Written by hand because
/// pyo3's `#[pyclass(freelist)]` must also be sound without a GIL, so it locks a mutex on
/// every allocation and every free (four atomic read-modify-writes per popped event), and
/// reaches its `tp_dealloc` through a trampoline that counts GIL holders in a thread-local.
struct EventPool {
    /// The kept objects: their memory, with no live object in it.
    slots: UnsafeCell<[*mut ffi::PyObject; POOL_SIZE]>,
    /// How many of `slots` are filled.
    len: Cell<usize>,
}

// SAFETY: the pool is only touched by `event_alloc`, `event_dealloc` and `new_event`, which
// CPython and this module only call with the GIL held, and only installed (see `install`)
// when the interpreter has a GIL. The GIL serializes every access.
unsafe impl Sync for EventPool {}

static POOL: EventPool = EventPool {
    slots: UnsafeCell::new([ptr::null_mut(); POOL_SIZE]),
    len: Cell::new(0),
};

impl EventPool {
    /// A kept object's memory, if any.
    ///
    /// # Safety
    /// The caller holds the GIL (see `Sync` above).
    unsafe fn take(&self) -> Option<*mut ffi::PyObject> {
        let len = self.len.get().checked_sub(1)?;
        self.len.set(len);
        // SAFETY: the GIL is held, so nothing else has the slots borrowed; `len` is in bounds.
        Some(unsafe { (*self.slots.get())[len] })
    }

    /// Keeps `obj`'s memory, or hands it back when the pool is full.
    ///
    /// # Safety
    /// The caller holds the GIL, and `obj` is a dead, untracked `Event` (see `alloc_event`).
    unsafe fn keep(&self, obj: *mut ffi::PyObject) -> Result<(), *mut ffi::PyObject> {
        let len = self.len.get();
        if len == POOL_SIZE {
            return Err(obj);
        }
        // SAFETY: as in `take`; `len < POOL_SIZE`.
        unsafe { (*self.slots.get())[len] = obj };
        self.len.set(len + 1);
        Ok(())
    }
}

/// A new `Event` object (one reference, header initialized, record not yet written), from the
/// pool or the type's allocator; NULL with a Python exception set when out of memory.
///
/// # Safety
/// The GIL is held and `ty` is the `Event` type object, with the layout `install` checked.
unsafe fn alloc_event(ty: *mut ffi::PyTypeObject) -> *mut ffi::PyObject {
    // SAFETY: the caller holds the GIL. Memory in the pool is that of a dead `Event`, allocated
    // by `PyType_GenericAlloc` (with the GC header every pyo3 class has in front); it is not
    // tracked by the GC, and `PyObject_Init` sets its type (taking a reference to the heap
    // type, which `event_dealloc` gives back) and its reference count. An object that is never
    // tracked is valid: the record holds no references, so the GC has nothing to visit in it.
    unsafe {
        match POOL.take() {
            Some(obj) => ffi::PyObject_Init(obj, ty),
            None => ffi::PyType_GenericAlloc(ty, 0),
        }
    }
}

/// `Event`'s `tp_alloc` (what pyo3's constructors call): an object from the pool, its record
/// zeroed as `PyType_GenericAlloc` would leave it.
unsafe extern "C" fn event_alloc(
    ty: *mut ffi::PyTypeObject,
    _nitems: ffi::Py_ssize_t,
) -> *mut ffi::PyObject {
    // SAFETY: CPython calls `tp_alloc` with the GIL held, with the type it belongs to: `Event`,
    // which cannot be subclassed. The record is plain data, so all zeros is a valid one.
    unsafe {
        let obj = alloc_event(ty);
        if !obj.is_null() {
            obj.cast::<u8>()
                .add(EVENT_OFFSET)
                .cast::<PyEvent>()
                .write(PyEvent {
                    inner: Event::default(),
                });
        }
        obj
    }
}

/// `Event`'s `tp_dealloc`: keeps the object's memory in the pool. What pyo3's would do, minus
/// its trampoline: the record is plain data with nothing to drop, the base is `object`, and
/// the instance's reference to its heap type is given back.
unsafe extern "C" fn event_dealloc(obj: *mut ffi::PyObject) {
    // SAFETY: CPython calls `tp_dealloc` with the GIL held, once, on an `Event` whose
    // reference count reached zero; nothing uses `obj` afterwards. Untracking is a no-op for
    // an untracked object. The memory came from `PyType_GenericAlloc` for a GC type, so
    // `PyObject_GC_Del` is its `tp_free`.
    unsafe {
        let ty = ffi::Py_TYPE(obj);
        ffi::PyObject_GC_UnTrack(obj.cast());
        if let Err(obj) = POOL.keep(obj) {
            ffi::PyObject_GC_Del(obj.cast());
        }
        ffi::Py_DECREF(ty.cast());
    }
}

/// A new `Event` object holding `inner`, written in place, skipping pyo3's generic
/// initializer (which goes through `object.__new__` with an empty argument tuple).
pub(crate) fn new_event(py: Python<'_>, inner: Event) -> PyResult<Py<PyAny>> {
    let ty = EVENT_TYPE.load(Ordering::Relaxed);
    if ty.is_null() {
        return Ok(Bound::new(py, PyEvent { inner })?.into_any().unbind());
    }
    // SAFETY: `py` proves the GIL is held; `ty` is the `Event` type, checked by `install`: an
    // object of it is the header and then, at `EVENT_OFFSET`, the `PyEvent` and nothing else,
    // so writing the record there makes a complete object.
    unsafe {
        let obj = alloc_event(ty);
        if obj.is_null() {
            return Err(PyErr::fetch(py));
        }
        obj.cast::<u8>()
            .add(EVENT_OFFSET)
            .cast::<PyEvent>()
            .write(PyEvent { inner });
        Ok(Bound::from_owned_ptr(py, obj).unbind())
    }
}

/// Whether this interpreter runs with a GIL (`sys._is_gil_enabled`, Python 3.13+; older
/// versions always have one). On a free-threaded build this is checked while the module is
/// being imported, before `gil_used` has turned the GIL on, so it answers no there and the
/// GIL-serialized fast paths stay off.
fn has_gil(py: Python<'_>) -> PyResult<bool> {
    let sys = py.import("sys")?;
    match sys.getattr("_is_gil_enabled") {
        Ok(f) => f.call0()?.extract(),
        Err(_) => Ok(true),
    }
}

/// Checks the layout `new_event` relies on; when it holds, gives `Event` the pool's
/// allocator and turns `new_event`'s fast path on.
fn install_event_pool(py: Python<'_>) -> PyResult<()> {
    let probe = Bound::new(
        py,
        PyEvent {
            inner: Event::default(),
        },
    )?;
    let offset = (ptr::from_ref(probe.get()) as usize) - (probe.as_ptr() as usize);
    let ty = PyEvent::type_object_raw(py);
    // SAFETY: reads fields of the live `Event` type object.
    let (basicsize, flags) = unsafe { ((*ty).tp_basicsize as usize, (*ty).tp_flags) };
    let plain = flags & ffi::Py_TPFLAGS_BASETYPE == 0;
    if offset != EVENT_OFFSET || basicsize != offset + std::mem::size_of::<PyEvent>() || !plain {
        return Ok(());
    }
    drop(probe);
    // SAFETY: the GIL is held. `Event` is a heap type that cannot be subclassed (checked
    // above), so these two slots are only ever used for its own instances, and no type
    // inherited them. Instances made before this point came from `PyType_GenericAlloc`, as
    // `alloc_event`'s do, so `event_dealloc` frees them correctly too; what pyo3's
    // `tp_dealloc` does besides (untracking, dropping plain data, giving back the type
    // reference) `event_dealloc` does as well.
    unsafe {
        (*ty).tp_alloc = Some(event_alloc);
        (*ty).tp_dealloc = Some(event_dealloc);
    }
    EVENT_TYPE.store(ty, Ordering::Relaxed);
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

/// Reads the `i64` at byte offset `closure` of the record of `obj`, an `Event`.
///
/// # Safety
/// `obj` is a live `Event` object with the layout `install_event_pool` checked, and
/// `closure` the offset of an `i64` field of its `PyEvent` (set by `install_getters`).
unsafe fn event_field(obj: *mut ffi::PyObject, closure: *mut c_void) -> i64 {
    // SAFETY: per the contract above the record starts at `EVENT_OFFSET` and the field at
    // `closure` bytes into it, 8-aligned (the object header is 16 bytes, `Event` is 8-aligned
    // with its `i64` fields at multiples of 8). `Event` is frozen: nothing writes the record
    // of a live object.
    unsafe {
        obj.cast::<u8>()
            .add(EVENT_OFFSET + closure as usize)
            .cast::<i64>()
            .read()
    }
}

/// Getter of an `Event` field as the fixed-point integer (`price_fx`, `ts`, ...).
unsafe extern "C" fn event_fixed(
    obj: *mut ffi::PyObject,
    closure: *mut c_void,
) -> *mut ffi::PyObject {
    // SAFETY: CPython calls a getter with the GIL held, on an instance of the type whose
    // descriptor it is (`Event`, which cannot be subclassed), with the closure
    // `install_getters` stored: `event_field`'s contract.
    unsafe { ffi::PyLong_FromLongLong(event_field(obj, closure)) }
}

/// Getter of an `Event` field in units, a float (`price`, `close`, ...).
unsafe extern "C" fn event_units(
    obj: *mut ffi::PyObject,
    closure: *mut c_void,
) -> *mut ffi::PyObject {
    // SAFETY: as in `event_fixed`.
    unsafe { ffi::PyFloat_FromDouble(event_field(obj, closure) as f64 / SCALE as f64) }
}

/// Getter of an indicator's `value`: the float, or None while it warms up.
unsafe extern "C" fn indicator_value<T: CurrentValue>(
    obj: *mut ffi::PyObject,
    _closure: *mut c_void,
) -> *mut ffi::PyObject {
    // SAFETY: CPython calls a getter with the GIL held, on an instance of the type the
    // descriptor was made for (`T`; the indicator classes cannot be subclassed).
    let py = unsafe { Python::assume_attached() };
    // SAFETY: `obj` is a borrowed reference to a live `T` (see above).
    let me = unsafe { Borrowed::from_ptr(py, obj).cast_unchecked::<T>() };
    entry(py, || {
        Ok(me
            .try_borrow()?
            .current()
            .into_pyobject(py)?
            .into_any()
            .unbind())
    })
}

/// The getter a name of `Event` reads: the field and whether in units.
const EVENT_GETTERS: [(&str, usize, bool); 28] = {
    use std::mem::offset_of;
    let base = offset_of!(PyEvent, inner);
    let price = base + offset_of!(Event, price);
    let qty = base + offset_of!(Event, qty);
    let aux = base + offset_of!(Event, aux);
    let high = base + offset_of!(Event, order_id);
    let low = base + offset_of!(Event, payload);
    [
        ("ts", base + offset_of!(Event, ts), false),
        ("order_id", high, false),
        ("aux", aux, false),
        ("payload", low, false),
        ("price", price, true),
        ("price_fx", price, false),
        ("qty", qty, true),
        ("qty_fx", qty, false),
        ("fee", aux, true),
        ("fee_fx", aux, false),
        ("open", aux, true),
        ("open_fx", aux, false),
        ("high", high, true),
        ("high_fx", high, false),
        ("low", low, true),
        ("low_fx", low, false),
        ("close", price, true),
        ("close_fx", price, false),
        ("volume", qty, true),
        ("volume_fx", qty, false),
        ("bid", price, true),
        ("bid_fx", price, false),
        ("bid_size", qty, true),
        ("bid_size_fx", qty, false),
        ("ask", aux, true),
        ("ask_fx", aux, false),
        ("ask_size", high, true),
        ("ask_size_fx", high, false),
    ]
};

type Getter = unsafe extern "C" fn(*mut ffi::PyObject, *mut c_void) -> *mut ffi::PyObject;

/// Replaces the getter `name` of `ty` by `get` (called with `closure`), keeping the
/// docstring of the one it replaces.
fn replace_getter(
    ty: &Bound<'_, pyo3::types::PyType>,
    name: &str,
    get: Getter,
    closure: usize,
) -> PyResult<()> {
    let doc = ty
        .getattr(name)?
        .getattr("__doc__")?
        .extract::<Option<String>>()?
        .unwrap_or_default();
    let c = |text: String| CString::new(text).map_err(|e| PyRuntimeError::new_err(e.to_string()));
    // The definition must outlive the type (CPython keeps pointers into it): it is leaked,
    // once per getter when the module is initialized.
    let def: &'static ffi::PyGetSetDef = Box::leak(Box::new(ffi::PyGetSetDef {
        name: c(name.to_owned())?.into_raw(),
        get: Some(get),
        set: None,
        doc: c(doc)?.into_raw(),
        closure: closure as *mut c_void,
    }));
    // SAFETY: `def` is a valid definition that lives for the rest of the process; the type
    // pointer is the live type object. A NULL result means a Python error is set.
    let descr = unsafe {
        let raw = ffi::PyDescr_NewGetSet(ty.as_type_ptr(), ptr::from_ref(def).cast_mut());
        Bound::from_owned_ptr_or_err(ty.py(), raw)?
    };
    ty.setattr(name, descr)
}

/// Gives `Event` (when the pool's layout check passed) and the indicators their plain getters.
fn install_getters(py: Python<'_>) -> PyResult<()> {
    if !EVENT_TYPE.load(Ordering::Relaxed).is_null() {
        let ty = PyEvent::type_object(py);
        for (name, offset, in_units) in EVENT_GETTERS {
            let get: Getter = if in_units { event_units } else { event_fixed };
            replace_getter(&ty, name, get, offset)?;
        }
    }
    replace_getter(
        &PySma::type_object(py),
        "value",
        indicator_value::<PySma>,
        0,
    )?;
    replace_getter(
        &PyEma::type_object(py),
        "value",
        indicator_value::<PyEma>,
        0,
    )?;
    replace_getter(
        &PyRsi::type_object(py),
        "value",
        indicator_value::<PyRsi>,
        0,
    )?;
    replace_getter(
        &PyAtr::type_object(py),
        "value",
        indicator_value::<PyAtr>,
        0,
    )
}

/// Puts `push` and `pop` into the `EventQueue` class. On an interpreter with a GIL, also
/// gives `Event` its pool and lets `pop` skip the consumer's lock, which both rely on the GIL.
pub fn install(py: Python<'_>) -> PyResult<()> {
    if has_gil(py)? {
        GIL_SERIALIZED.store(true, Ordering::Relaxed);
        install_event_pool(py)?;
    }
    install_getters(py)?;
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
