//! Event batches across the Arrow C data interface, through the PyCapsule protocol
//! (`__arrow_c_array__`): <https://arrow.apache.org/docs/format/CDataInterface.html>.
//!
//! Going through pyarrow's Python API costs tens of microseconds a batch (wrapping each of
//! the eleven columns in an `Array` object, then building the batch from them), which is a
//! nanosecond an event on a batch of 65536 and the whole cost on a small one. Through the C
//! structs, a pushed batch's columns are read where pyarrow keeps them, and a popped batch is
//! handed to pyarrow as one block of memory with its column layout, both in a microsecond.
//!
//! The structs are declared here by hand: they are a stable ABI of ten fields each, and the
//! `arrow` crate that also declares them would bring all of arrow-rs for two structs. All the
//! `unsafe` code of the Arrow exchange is in this module; each block says why it holds.

use std::ffi::{c_char, c_void, CStr};
use std::ptr;
use std::sync::{Arc, Mutex, PoisonError};

use pyo3::ffi;
use pyo3::prelude::*;

use crate::columns::{Columns, ColumnsMut};
use crate::event::{EVENT_SIZE, FIELDS};

/// `struct ArrowSchema` of the C data interface.
#[repr(C)]
pub struct ArrowSchema {
    format: *const c_char,
    name: *const c_char,
    metadata: *const c_char,
    flags: i64,
    n_children: i64,
    children: *mut *mut ArrowSchema,
    dictionary: *mut ArrowSchema,
    release: Option<unsafe extern "C" fn(*mut ArrowSchema)>,
    private_data: *mut c_void,
}

/// `struct ArrowArray` of the C data interface.
#[repr(C)]
pub struct ArrowArray {
    length: i64,
    null_count: i64,
    offset: i64,
    n_buffers: i64,
    n_children: i64,
    buffers: *mut *const c_void,
    children: *mut *mut ArrowArray,
    dictionary: *mut ArrowArray,
    release: Option<unsafe extern "C" fn(*mut ArrowArray)>,
    private_data: *mut c_void,
}

const SCHEMA_CAPSULE: &CStr = c"arrow_schema";
const ARRAY_CAPSULE: &CStr = c"arrow_array";

/// The Arrow format string of each field of `EVENT_SCHEMA`, in `FIELDS` order. `ts` is a UTC
/// nanosecond timestamp.
const FORMATS: [&CStr; 11] = [
    c"L", c"tsn:UTC", c"l", c"l", c"l", c"l", c"l", c"I", c"C", c"C", c"S",
];

/// The names of `FIELDS` as C strings.
const NAMES: [&CStr; 11] = [
    c"seq",
    c"ts",
    c"order_id",
    c"price",
    c"qty",
    c"aux",
    c"payload",
    c"instrument",
    c"kind",
    c"side",
    c"flags",
];

const _: () = {
    // `NAMES` is `FIELDS`' names (compared byte by byte: `==` on `str` is not `const`).
    let mut i = 0;
    while i < FIELDS.len() {
        let (a, b) = (FIELDS[i].0.as_bytes(), NAMES[i].to_bytes());
        assert!(a.len() == b.len());
        let mut j = 0;
        while j < a.len() {
            assert!(a[j] == b[j]);
            j += 1;
        }
        i += 1;
    }
};

/// Whether `format` is one the field at `i` takes: its own, or for `ts` also a plain int64
/// or a nanosecond timestamp in any zone (as `admf.events` accepts).
fn format_fits(i: usize, format: &CStr) -> bool {
    let f = format.to_bytes();
    f == FORMATS[i].to_bytes() || (NAMES[i] == c"ts" && (f == b"l" || f.starts_with(b"tsn:")))
}

/// The columns of a batch given as capsules, borrowed from the exporter's memory; None when
/// the batch is not one this fast path takes as it is (another schema, columns that may have
/// nulls, buffers not aligned for their type), which the caller then hands to the checks
/// and messages of `admf.events`.
///
/// The columns borrow memory that the array capsule's exporter owns: they are valid while
/// `array` is alive and unreleased, which the lifetime ties to the borrowed capsule.
pub fn import_columns<'a>(
    schema: &'a Bound<'_, PyAny>,
    array: &'a Bound<'_, PyAny>,
) -> PyResult<Option<Columns<'a>>> {
    // SAFETY: `PyCapsule_GetPointer` checks that the object is a capsule with this name (the
    // protocol's names for these structs) and returns NULL with an exception set otherwise.
    // A capsule of that name holds a valid, unreleased struct for as long as the capsule is
    // alive (the protocol's contract), and `'a` borrows the capsules.
    let (schema, array) = unsafe {
        let s = ffi::PyCapsule_GetPointer(schema.as_ptr(), SCHEMA_CAPSULE.as_ptr());
        if s.is_null() {
            return Err(PyErr::fetch(schema.py()));
        }
        let a = ffi::PyCapsule_GetPointer(array.as_ptr(), ARRAY_CAPSULE.as_ptr());
        if a.is_null() {
            return Err(PyErr::fetch(array.py()));
        }
        (&*s.cast::<ArrowSchema>(), &*a.cast::<ArrowArray>())
    };
    if schema.release.is_none() || array.release.is_none() {
        return Err(pyo3::exceptions::PyValueError::new_err(
            "the Arrow capsules were already released (consumed)",
        ));
    }
    if !schema_fits(schema) {
        return Ok(None);
    }
    // The batch itself: a struct array without nulls, with the eleven columns.
    if array.n_children != 11
        || array.length < 0
        || array.offset < 0
        || (array.null_count != 0 && validity(array).is_some())
    {
        return Ok(None);
    }
    let (len, offset) = (array.length as usize, array.offset as usize);
    // SAFETY: a valid struct array has `n_children` valid child arrays.
    let children: &[*mut ArrowArray] = unsafe { std::slice::from_raw_parts(array.children, 11) };
    Ok((|| {
        // SAFETY: each child pointer of a valid array points to a valid child array, which
        // lives as long as its parent.
        let child = |i: usize| unsafe { &*children[i] };
        Some(Columns {
            seq: column(child(0), offset, len)?,
            ts: column(child(1), offset, len)?,
            order_id: column(child(2), offset, len)?,
            price: column(child(3), offset, len)?,
            qty: column(child(4), offset, len)?,
            aux: column(child(5), offset, len)?,
            payload: column(child(6), offset, len)?,
            instrument: column(child(7), offset, len)?,
            kind: column(child(8), offset, len)?,
            side: column(child(9), offset, len)?,
            flags: column(child(10), offset, len)?,
        })
    })())
}

/// Whether the schema is `EVENT_SCHEMA`'s columns (names and types, in order).
fn schema_fits(schema: &ArrowSchema) -> bool {
    // SAFETY: the format of a valid schema is a NUL-terminated string.
    if schema.n_children != 11 || unsafe { CStr::from_ptr(schema.format) } != c"+s" {
        return false;
    }
    // SAFETY: a valid struct schema has `n_children` valid children.
    let children = unsafe { std::slice::from_raw_parts(schema.children, 11) };
    children.iter().enumerate().all(|(i, &child)| {
        // SAFETY: the children of a valid schema are valid schemas: a NUL-terminated format,
        // and a name that is either NULL or NUL-terminated.
        let child = unsafe { &*child };
        // SAFETY: as above.
        let (format, name) = unsafe {
            (
                CStr::from_ptr(child.format),
                (!child.name.is_null()).then(|| CStr::from_ptr(child.name)),
            )
        };
        name == Some(NAMES[i]) && format_fits(i, format) && child.dictionary.is_null()
    })
}

/// The validity bitmap of an array, when it has one.
fn validity(array: &ArrowArray) -> Option<*const c_void> {
    if array.n_buffers < 1 || array.buffers.is_null() {
        return None;
    }
    // SAFETY: a valid array has `n_buffers` entries in `buffers`.
    let bitmap = unsafe { *array.buffers };
    (!bitmap.is_null()).then_some(bitmap)
}

/// Rows `offset..offset + len` of a primitive column, or None when it may have nulls, is
/// short, or its values are not aligned for `T`.
fn column<T: bytemuck::Pod>(child: &ArrowArray, offset: usize, len: usize) -> Option<&[T]> {
    if child.n_buffers != 2 || child.offset < 0 || child.length < 0 {
        return None;
    }
    if child.null_count != 0 && validity(child).is_some() {
        return None;
    }
    let start = child.offset as usize + offset;
    if (child.length as usize) < offset + len {
        return None;
    }
    if len == 0 {
        return Some(&[]);
    }
    // SAFETY: a valid primitive array has two buffers, the second its values: at least
    // `child.offset + child.length` of them, and `start + len` is within that (checked).
    let values = unsafe { *child.buffers.add(1) }.cast::<T>();
    if values.is_null()
        || !values
            .wrapping_add(start)
            .cast::<u8>()
            .addr()
            .is_multiple_of(std::mem::align_of::<T>())
    {
        return None;
    }
    // SAFETY: as above; the pointer is aligned for `T` (checked), any bit pattern is a valid
    // `T` (`Pod`), and the memory is not written while the array is alive (the exporter
    // gave it away read-only).
    Some(unsafe { std::slice::from_raw_parts(values.add(start), len) })
}

/// The memory of one exported batch: its columns in one block, shared by the batch and each
/// column (a consumer may keep a column and release the rest). When the last of them is
/// released, the block is kept in `SPARE` for a later pop.
struct Block(Vec<u64>);

/// Blocks of released batches, for the next pops. A new block of a large batch costs more
/// than filling it: it is zeroed, then faulted in page by page on first write (the system
/// allocator maps blocks of megabytes afresh each time).
static SPARE: Mutex<Vec<Vec<u64>>> = Mutex::new(Vec::new());

/// How many released blocks `SPARE` keeps.
const SPARE_BLOCKS: usize = 4;

impl Drop for Block {
    fn drop(&mut self) {
        let mut spare = SPARE.lock().unwrap_or_else(PoisonError::into_inner);
        if spare.len() < SPARE_BLOCKS {
            spare.push(std::mem::take(&mut self.0));
        }
    }
}

/// Where each column starts in a block of `n` rows, in bytes: the eleven columns one after
/// the other, widest first, so each is aligned for its type.
fn column_starts(n: usize) -> [usize; 11] {
    let mut starts = [0; 11];
    let mut at = 0;
    for (start, (_, _, code)) in starts.iter_mut().zip(FIELDS) {
        *start = at;
        at += n * width(code);
    }
    starts
}

/// The byte width of a numpy type code of `FIELDS`.
fn width(code: &str) -> usize {
    code.trim_start_matches(['<', 'u', 'i'])
        .parse()
        .expect("FIELDS codes end in their width")
}

/// A block for `n` rows of columns: the smallest spare one that fits and is not more than
/// twice the size (a small batch must not pin a large block), or a new one.
fn new_block(n: usize) -> Vec<u64> {
    let words = n * 8;
    let mut spare = SPARE.lock().unwrap_or_else(PoisonError::into_inner);
    let fits = (0..spare.len())
        .filter(|&i| (words..=2 * words).contains(&spare[i].len()))
        .min_by_key(|&i| spare[i].len());
    match fits {
        Some(i) => spare.swap_remove(i),
        None => vec![0u64; words],
    }
}

/// The eleven columns of a block of `n` rows, to be written.
fn block_columns(block: &mut [u64], n: usize) -> ColumnsMut<'_> {
    // The columns in field order, each from its start to the next one's (`column_starts`).
    let mut ends = column_starts(n).into_iter().skip(1).chain([n * EVENT_SIZE]);
    let mut rest: &mut [u8] = bytemuck::cast_slice_mut(block);
    let mut taken = 0;
    let mut next = || {
        let end = ends.next().expect("eleven columns");
        let (column, tail) = std::mem::take(&mut rest).split_at_mut(end - taken);
        (rest, taken) = (tail, end);
        column
    };
    ColumnsMut {
        seq: bytemuck::cast_slice_mut(next()),
        ts: bytemuck::cast_slice_mut(next()),
        order_id: bytemuck::cast_slice_mut(next()),
        price: bytemuck::cast_slice_mut(next()),
        qty: bytemuck::cast_slice_mut(next()),
        aux: bytemuck::cast_slice_mut(next()),
        payload: bytemuck::cast_slice_mut(next()),
        instrument: bytemuck::cast_slice_mut(next()),
        kind: next(),
        side: next(),
        flags: bytemuck::cast_slice_mut(next()),
    }
}

/// An exported batch: the capsules `(arrow_schema, arrow_array)` of `__arrow_c_array__`.
pub type Capsules = (Py<PyAny>, Py<PyAny>);

/// Fills a new block of `capacity` rows with `fill` (which returns how many rows it wrote),
/// then exports the first rows as a batch of `EVENT_SCHEMA`.
pub fn export_batch(
    py: Python<'_>,
    capacity: usize,
    fill: impl FnOnce(&mut ColumnsMut<'_>) -> PyResult<usize>,
) -> PyResult<Capsules> {
    let mut block = new_block(capacity);
    let rows = fill(&mut block_columns(&mut block, capacity))?.min(capacity);
    let schema = capsule(py, export_schema())?;
    let array = capsule(py, export_array(block, capacity, rows))?;
    Ok((schema, array))
}

/// What the two structs of the interface share: a release callback, and the name of the
/// capsule that carries one.
trait Released: Sized {
    const CAPSULE: &'static CStr;
    fn release_callback(&self) -> Option<unsafe extern "C" fn(*mut Self)>;
}

impl Released for ArrowSchema {
    const CAPSULE: &'static CStr = SCHEMA_CAPSULE;
    fn release_callback(&self) -> Option<unsafe extern "C" fn(*mut Self)> {
        self.release
    }
}

impl Released for ArrowArray {
    const CAPSULE: &'static CStr = ARRAY_CAPSULE;
    fn release_callback(&self) -> Option<unsafe extern "C" fn(*mut Self)> {
        self.release
    }
}

/// Calls the release callback of each struct not yet released (a consumer that moved one out
/// set its callback to NULL).
///
/// # Safety
/// Each pointer is a valid struct of the interface.
unsafe fn release_each<T: Released>(structs: &[*mut T]) {
    for &item in structs {
        // SAFETY: the caller's contract; a set callback is the producer's, for this struct.
        unsafe {
            if let Some(release) = (*item).release_callback() {
                release(item);
            }
        }
    }
}

/// A capsule named `T::CAPSULE` owning `boxed`, which its destructor releases and frees.
fn capsule<T: Released>(py: Python<'_>, boxed: Box<T>) -> PyResult<Py<PyAny>> {
    let pointer = Box::into_raw(boxed);
    // SAFETY: the name is a static NUL-terminated string, as the capsule keeps the pointer.
    // On failure the capsule does not exist, so the struct is released and freed here.
    unsafe {
        let raw = ffi::PyCapsule_New(pointer.cast(), T::CAPSULE.as_ptr(), Some(drop_capsule::<T>));
        if raw.is_null() {
            let err = PyErr::fetch(py);
            free(pointer);
            return Err(err);
        }
        Ok(Bound::from_owned_ptr(py, raw).unbind())
    }
}

/// The destructor of a capsule of `capsule`.
unsafe extern "C" fn drop_capsule<T: Released>(capsule: *mut ffi::PyObject) {
    // SAFETY: CPython calls this once, when the capsule dies, with a capsule `capsule` made:
    // its pointer is the boxed struct, whose release is NULL if a consumer moved it.
    unsafe { free(ffi::PyCapsule_GetPointer(capsule, T::CAPSULE.as_ptr()).cast::<T>()) }
}

/// Releases (unless a consumer moved it out) and frees a struct boxed by `capsule`.
///
/// # Safety
/// `boxed` came from `Box::into_raw` in `capsule` and is not used afterwards.
unsafe fn free<T: Released>(boxed: *mut T) {
    if boxed.is_null() {
        return;
    }
    // SAFETY: the caller's contract.
    unsafe {
        release_each(&[boxed]);
        drop(Box::from_raw(boxed));
    }
}

/// What an exported struct schema owns: its children.
struct SchemaPrivate {
    children: Vec<ArrowSchema>,
    pointers: Vec<*mut ArrowSchema>,
}

/// The schema of `EVENT_SCHEMA`: a struct of the eleven non-nullable columns.
fn export_schema() -> Box<ArrowSchema> {
    let mut private = Box::new(SchemaPrivate {
        children: NAMES
            .iter()
            .zip(FORMATS)
            .map(|(name, format)| ArrowSchema {
                format: format.as_ptr(),
                name: name.as_ptr(),
                metadata: ptr::null(),
                flags: 0, // not nullable
                n_children: 0,
                children: ptr::null_mut(),
                dictionary: ptr::null_mut(),
                release: Some(release_child_schema),
                private_data: ptr::null_mut(),
            })
            .collect(),
        pointers: Vec::new(),
    });
    private.pointers = private.children.iter_mut().map(ptr::from_mut).collect();
    Box::new(ArrowSchema {
        format: c"+s".as_ptr(),
        name: c"".as_ptr(),
        metadata: ptr::null(),
        flags: 0,
        n_children: 11,
        children: private.pointers.as_mut_ptr(),
        dictionary: ptr::null_mut(),
        release: Some(release_schema),
        private_data: Box::into_raw(private).cast(),
    })
}

/// Release callback of an exported child schema: it owns nothing (its strings are static).
unsafe extern "C" fn release_child_schema(schema: *mut ArrowSchema) {
    // SAFETY: the consumer calls this on a valid, unreleased child schema.
    unsafe { (*schema).release = None };
}

/// Release callback of an exported struct schema.
unsafe extern "C" fn release_schema(schema: *mut ArrowSchema) {
    // SAFETY: the consumer calls this once on the valid struct schema of `export_schema`,
    // whose private data is the boxed `SchemaPrivate`; a child a consumer moved out has its
    // release set to NULL and is skipped.
    unsafe {
        let private = Box::from_raw((*schema).private_data.cast::<SchemaPrivate>());
        release_each(&private.pointers);
        drop(private);
        (*schema).release = None;
    }
}

/// What an exported column owns: a share of the block, and its buffer pointers.
struct ColumnPrivate {
    _block: Arc<Block>,
    buffers: [*const c_void; 2],
}

/// What an exported batch owns: a share of the block, its columns, and its buffer list.
struct BatchPrivate {
    _block: Arc<Block>,
    children: Vec<ArrowArray>,
    pointers: Vec<*mut ArrowArray>,
    buffers: [*const c_void; 1],
}

/// The first `rows` rows of a block of `capacity` as a struct array of the eleven columns.
fn export_array(block: Vec<u64>, capacity: usize, rows: usize) -> Box<ArrowArray> {
    let block = Arc::new(Block(block));
    let base = block.0.as_ptr().cast::<u8>();
    let children = column_starts(capacity)
        .into_iter()
        .map(|start| {
            let mut private = Box::new(ColumnPrivate {
                _block: Arc::clone(&block),
                // The values of column `i` start `start` bytes into the block.
                buffers: [ptr::null(), base.wrapping_add(start).cast()],
            });
            ArrowArray {
                length: rows as i64,
                null_count: 0,
                offset: 0,
                n_buffers: 2,
                n_children: 0,
                buffers: private.buffers.as_mut_ptr(),
                children: ptr::null_mut(),
                dictionary: ptr::null_mut(),
                release: Some(release_column),
                private_data: Box::into_raw(private).cast(),
            }
        })
        .collect();
    let mut private = Box::new(BatchPrivate {
        _block: block,
        children,
        pointers: Vec::new(),
        buffers: [ptr::null()],
    });
    private.pointers = private.children.iter_mut().map(ptr::from_mut).collect();
    Box::new(ArrowArray {
        length: rows as i64,
        null_count: 0,
        offset: 0,
        n_buffers: 1,
        n_children: 11,
        buffers: private.buffers.as_mut_ptr(),
        children: private.pointers.as_mut_ptr(),
        dictionary: ptr::null_mut(),
        release: Some(release_batch),
        private_data: Box::into_raw(private).cast(),
    })
}

/// Release callback of an exported column.
unsafe extern "C" fn release_column(array: *mut ArrowArray) {
    // SAFETY: the consumer calls this once on a valid, unreleased column of `export_array`,
    // whose private data is its boxed `ColumnPrivate` (dropping it gives back its share of
    // the block). The struct may have been moved, which the private data does not mind.
    unsafe {
        drop(Box::from_raw((*array).private_data.cast::<ColumnPrivate>()));
        (*array).release = None;
    }
}

/// Release callback of an exported batch: releases the columns not moved out, then its own
/// share of the block.
unsafe extern "C" fn release_batch(array: *mut ArrowArray) {
    // SAFETY: the consumer calls this once on the valid batch of `export_array`, whose
    // private data is the boxed `BatchPrivate`; a column a consumer moved out has its release
    // set to NULL and is skipped (its own release frees what it holds).
    unsafe {
        let private = Box::from_raw((*array).private_data.cast::<BatchPrivate>());
        release_each(&private.pointers);
        drop(private);
        (*array).release = None;
    }
}
