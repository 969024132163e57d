# cython: language_level=3, cdivision=True
"""Compiled core: canonical encoding, XXH3-128 hashing, grid geometry.

The encoding (format 1) is specified in ``_twin.py``, whose pure-Python encoder is
the oracle this module is tested against byte for byte.  Everything here works on
C buffers and integer arithmetic; Python objects are built only for results.
"""

cimport cython

import datetime as _dt
import decimal as _decimal
import enum as _enum
import sys as _sys
from array import array as _array
from pathlib import PurePath as _PurePath

import xxhash as _xxhash

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_Next
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE
from cpython.long cimport PyLong_AsLongLongAndOverflow
from cpython.object cimport PyObject
from cpython.tuple cimport PyTuple_GET_ITEM, PyTuple_GET_SIZE
from cpython.unicode cimport PyUnicode_AsUTF8AndSize, PyUnicode_GET_LENGTH

cdef extern from "Python.h":
    bint PyUnicode_IS_COMPACT_ASCII(object)
    void* PyUnicode_DATA(object)
from libc.stdint cimport int64_t, uint64_t
from libc.stdlib cimport free, malloc, qsort, realloc
from libc.string cimport memcmp, memcpy

from chunk_memo._registry import lookup_converter as _lookup_converter
from chunk_memo._registry import type_name as _type_name
from chunk_memo._twin import MAX_DEPTH as _TWIN_MAX_DEPTH
from chunk_memo._twin import _decimal_text

cdef extern from *:
    """
    /* With CHUNK_MEMO_NATIVE_XXH3 the build found the reference xxhash.h and XXH3
       runs inline; otherwise digests come from the xxhash Python package.  Both
       compute the same XXH3-128, canonical (big-endian) digest. */
    #ifdef CHUNK_MEMO_NATIVE_XXH3
    #define XXH_INLINE_ALL
    #include <xxhash.h>
    static const int cm_native_xxh3 = 1;
    static void cm_xxh3_128(const char* data, size_t n, unsigned char* out) {
        XXH128_canonical_t canonical;
        XXH128_canonicalFromHash(&canonical, XXH3_128bits(data, n));
        memcpy(out, canonical.digest, 16);
    }
    #else
    static const int cm_native_xxh3 = 0;
    static void cm_xxh3_128(const char* data, size_t n, unsigned char* out) {
        (void)data; (void)n; (void)out;
    }
    #endif
    """
    const int cm_native_xxh3
    void cm_xxh3_128(const char* data, size_t n, unsigned char* out)

from cpython.unicode cimport PyUnicode_New
cdef extern from "Python.h":
    void* PyUnicode_1BYTE_DATA(object)

NATIVE_XXH3 = bool(cm_native_xxh3)
cdef const char* HEX_DIGITS = "0123456789abcdef"

DEF INITIAL_CAPACITY = 256
DEF SMALL_ENTRIES = 16
DEF SMALL_SCRATCH = 512
cdef int MAX_DEPTH = _TWIN_MAX_DEPTH
cdef object _xxh3_128_hexdigest = _xxhash.xxh3_128_hexdigest
cdef object _xxh3_128_digest = _xxhash.xxh3_128_digest
cdef object _numpy = None


cdef struct Span:
    Py_ssize_t start
    Py_ssize_t key_len
    Py_ssize_t end


# qsort has no context argument; sorting runs with the GIL held and the comparator
# never re-enters the encoder, so one module-level base pointer is safe.
cdef const char* _sort_base = NULL


cdef int _compare_spans(const void* a, const void* b) noexcept nogil:
    cdef const Span* x = <const Span*> a
    cdef const Span* y = <const Span*> b
    cdef Py_ssize_t n = x.key_len if x.key_len < y.key_len else y.key_len
    cdef int c = memcmp(_sort_base + x.start, _sort_base + y.start, n)
    if c != 0:
        return c
    return (x.key_len > y.key_len) - (x.key_len < y.key_len)


cdef object _numpy_module():
    global _numpy
    if _numpy is None:
        _numpy = _sys.modules.get("numpy", False) or False
    return _numpy or None


cdef class _Writer:
    """A growable byte buffer that values are encoded into."""

    cdef char* buf
    cdef Py_ssize_t length
    cdef Py_ssize_t capacity
    cdef bint busy

    def __cinit__(self):
        self.buf = <char*> malloc(INITIAL_CAPACITY)
        if self.buf == NULL:
            raise MemoryError()
        self.capacity = INITIAL_CAPACITY
        self.length = 0

    def __dealloc__(self):
        free(self.buf)

    cdef int reserve(self, Py_ssize_t extra) except -1:
        cdef Py_ssize_t need = self.length + extra
        cdef Py_ssize_t cap = self.capacity
        cdef char* grown
        if need <= cap:
            return 0
        while cap < need:
            cap *= 2
        grown = <char*> realloc(self.buf, cap)
        if grown == NULL:
            raise MemoryError()
        self.buf = grown
        self.capacity = cap
        return 0

    cdef inline int put(self, char c) except -1:
        if self.length >= self.capacity:
            self.reserve(1)
        self.buf[self.length] = c
        self.length += 1
        return 0

    cdef inline int put_raw(self, const char* p, Py_ssize_t n) except -1:
        self.reserve(n)
        memcpy(self.buf + self.length, p, n)
        self.length += n
        return 0

    cdef inline int put_varint(self, uint64_t n) except -1:
        self.reserve(10)
        while n >= 0x80:
            self.buf[self.length] = <char> ((n & 0x7F) | 0x80)
            self.length += 1
            n >>= 7
        self.buf[self.length] = <char> n
        self.length += 1
        return 0

    cdef int put_float(self, double x) except -1:
        cdef uint64_t bits
        if x != x:
            bits = 0x7FF8000000000000ULL
        else:
            if x == 0.0:
                x = 0.0
            memcpy(&bits, &x, 8)
        self.reserve(8)
        cdef unsigned char* out = <unsigned char*> (self.buf + self.length)
        out[0] = bits >> 56
        out[1] = bits >> 48
        out[2] = bits >> 40
        out[3] = bits >> 32
        out[4] = bits >> 24
        out[5] = bits >> 16
        out[6] = bits >> 8
        out[7] = bits
        self.length += 8
        return 0

    cdef int put_text(self, char tag, str s) except -1:
        cdef Py_ssize_t n
        cdef const char* utf8
        if PyUnicode_IS_COMPACT_ASCII(s):
            n = PyUnicode_GET_LENGTH(s)
            self.reserve(n + 11)
            self.buf[self.length] = tag
            self.length += 1
            self.put_varint(<uint64_t> n)
            memcpy(self.buf + self.length, PyUnicode_DATA(s), n)
            self.length += n
            return 0
        try:
            utf8 = PyUnicode_AsUTF8AndSize(s, &n)
        except UnicodeEncodeError:
            raw = s.encode("utf-8", "surrogatepass")
            self.put(tag)
            self.put_varint(PyBytes_GET_SIZE(raw))
            return self.put_raw(PyBytes_AS_STRING(raw), PyBytes_GET_SIZE(raw))
        self.put(tag)
        self.put_varint(<uint64_t> n)
        return self.put_raw(utf8, n)

    cdef int put_bytes(self, bytes raw) except -1:
        self.put(b'b')
        self.put_varint(<uint64_t> PyBytes_GET_SIZE(raw))
        return self.put_raw(PyBytes_AS_STRING(raw), PyBytes_GET_SIZE(raw))

    cdef int put_int(self, object v) except -1:
        cdef int overflow = 0
        cdef long long x = PyLong_AsLongLongAndOverflow(v, &overflow)
        cdef uint64_t zigzag
        if overflow == 0:
            if x >= 0:
                zigzag = (<uint64_t> x) << 1
            else:
                zigzag = ((<uint64_t> (-(x + 1))) << 1) + 1
            self.put(b'i')
            return self.put_varint(zigzag)
        magnitude = -v if v < 0 else v
        raw = (<object> magnitude).to_bytes((magnitude.bit_length() + 7) // 8, "big")
        self.put(b'I')
        self.put(b'\x01' if v < 0 else b'\x00')
        self.put_varint(<uint64_t> PyBytes_GET_SIZE(raw))
        return self.put_raw(PyBytes_AS_STRING(raw), PyBytes_GET_SIZE(raw))

    cdef int sort_spans(self, Span* spans, Py_ssize_t n) except -1:
        """Rewrite the ``n`` consecutive encoded entries in ``spans`` in canonical order."""
        global _sort_base
        cdef Py_ssize_t i, j, first = spans[0].start, total, pos
        cdef Span held
        cdef char small_scratch[SMALL_SCRATCH]
        cdef char* scratch
        _sort_base = self.buf
        i = 1
        while i < n and _compare_spans(&spans[i - 1], &spans[i]) <= 0:
            i += 1
        if i == n:
            return 0
        if n <= SMALL_ENTRIES:
            for i in range(1, n):
                held = spans[i]
                j = i - 1
                while j >= 0 and _compare_spans(&spans[j], &held) > 0:
                    spans[j + 1] = spans[j]
                    j -= 1
                spans[j + 1] = held
        else:
            qsort(spans, n, sizeof(Span), _compare_spans)
        total = self.length - first
        if total <= SMALL_SCRATCH:
            scratch = &small_scratch[0]
        else:
            scratch = <char*> malloc(total)
        if scratch == NULL:
            raise MemoryError()
        pos = 0
        for i in range(n):
            memcpy(scratch + pos, self.buf + spans[i].start, spans[i].end - spans[i].start)
            pos += spans[i].end - spans[i].start
        memcpy(self.buf + first, scratch, total)
        if scratch != &small_scratch[0]:
            free(scratch)
        return 0

    cdef int fill_dict(self, dict d, Span* spans, int depth) except -1:
        cdef Py_ssize_t i = 0, pos = 0
        cdef PyObject* key
        cdef PyObject* value
        while PyDict_Next(d, &pos, &key, &value):
            spans[i].start = self.length
            self.encode(<object> key, depth + 1)
            spans[i].key_len = self.length - spans[i].start
            self.encode(<object> value, depth + 1)
            spans[i].end = self.length
            i += 1
        return self.sort_spans(spans, i)

    cdef int fill_set(self, object s, Span* spans, int depth) except -1:
        cdef Py_ssize_t i = 0
        for item in s:
            spans[i].start = self.length
            self.encode(item, depth + 1)
            spans[i].end = self.length
            spans[i].key_len = spans[i].end - spans[i].start
            i += 1
        return self.sort_spans(spans, i)

    cdef int put_dict(self, dict d, int depth) except -1:
        cdef Py_ssize_t n = len(d)
        cdef Span small[SMALL_ENTRIES]
        cdef Span* spans
        self.put(b'd')
        self.put_varint(<uint64_t> n)
        if n == 0:
            return 0
        if n <= SMALL_ENTRIES:
            return self.fill_dict(d, small, depth)
        spans = <Span*> malloc(n * sizeof(Span))
        if spans == NULL:
            raise MemoryError()
        try:
            return self.fill_dict(d, spans, depth)
        finally:
            free(spans)

    cdef int put_set(self, object s, int depth) except -1:
        cdef Py_ssize_t n = len(s)
        cdef Span small[SMALL_ENTRIES]
        cdef Span* spans
        self.put(b'S')
        self.put_varint(<uint64_t> n)
        if n == 0:
            return 0
        if n <= SMALL_ENTRIES:
            return self.fill_set(s, small, depth)
        spans = <Span*> malloc(n * sizeof(Span))
        if spans == NULL:
            raise MemoryError()
        try:
            return self.fill_set(s, spans, depth)
        finally:
            free(spans)

    cdef int encode(self, object v, int depth) except -1:
        cdef type t = type(v)
        cdef Py_ssize_t i, n
        if depth > MAX_DEPTH:
            raise ValueError(f"value nested deeper than {MAX_DEPTH} levels (a cycle?)")
        if t is str:
            return self.put_text(b's', <str> v)
        if t is int:
            return self.put_int(v)
        if t is float:
            self.put(b'f')
            return self.put_float(<double> v)
        if t is tuple:
            n = PyTuple_GET_SIZE(v)
            self.put(b'l')
            self.put_varint(<uint64_t> n)
            for i in range(n):
                self.encode(<object> PyTuple_GET_ITEM(v, i), depth + 1)
            return 0
        if t is list:
            self.put(b'l')
            self.put_varint(<uint64_t> PyList_GET_SIZE(v))
            i = 0
            # the list may not change length under us: nothing here runs user code
            while i < PyList_GET_SIZE(v):
                self.encode(<object> PyList_GET_ITEM(v, i), depth + 1)
                i += 1
            return 0
        if t is dict:
            return self.put_dict(<dict> v, depth)
        if v is None:
            return self.put(b'N')
        if v is True:
            return self.put(b'T')
        if v is False:
            return self.put(b'F')
        if t is bytes:
            return self.put_bytes(<bytes> v)
        return _encode_other(self, v, depth)

    cdef bytes take(self):
        return PyBytes_FromStringAndSize(self.buf, self.length)

    cdef str hexdigest(self):
        """XXH3-128 of the buffer as 32 lowercase hex digits."""
        cdef unsigned char digest[16]
        cdef Py_ssize_t i
        cdef unsigned char* text
        if not cm_native_xxh3:
            return _xxh3_128_hexdigest(self.take())
        cm_xxh3_128(self.buf, self.length, digest)
        out = PyUnicode_New(32, 127)
        text = <unsigned char*> PyUnicode_1BYTE_DATA(out)
        for i in range(16):
            text[2 * i] = HEX_DIGITS[digest[i] >> 4]
            text[2 * i + 1] = HEX_DIGITS[digest[i] & 15]
        return out

    cdef int digest_into(self, char* dest) except -1:
        """Write the buffer's 16-byte XXH3-128 digest to ``dest``."""
        if cm_native_xxh3:
            cm_xxh3_128(self.buf, self.length, <unsigned char*> dest)
            return 0
        digest = _xxh3_128_digest(self.take())
        memcpy(dest, PyBytes_AS_STRING(digest), 16)
        return 0


cdef _Writer _shared_writer = _Writer()


cdef _Writer _acquire():
    # A registered converter may call back into the encoder: give it a fresh writer.
    if _shared_writer.busy:
        return _Writer()
    _shared_writer.busy = True
    _shared_writer.length = 0
    return _shared_writer


cdef inline void _release(_Writer w):
    if w is _shared_writer:
        w.busy = False


def encode(value):
    """Canonical bytes of ``value`` (format 1, see ``chunk_memo._twin``)."""
    cdef _Writer w = _acquire()
    try:
        w.encode(value, 0)
        return w.take()
    finally:
        _release(w)


def hash_hex(value):
    """XXH3-128 of the canonical encoding of ``value``, as 32 hex digits."""
    cdef _Writer w = _acquire()
    try:
        w.encode(value, 0)
        return w.hexdigest()
    finally:
        _release(w)


def hash_many(values):
    """``[hash_hex(v) for v in values]``, without a Python call per value."""
    cdef _Writer w = _acquire()
    cdef list out = []
    try:
        for v in values:
            w.length = 0
            w.encode(v, 0)
            out.append(w.hexdigest())
        return out
    finally:
        _release(w)


def list_header(Py_ssize_t count):
    """The bytes that open an encoded list of ``count`` items."""
    cdef _Writer w = _Writer()
    w.put(b'l')
    w.put_varint(<uint64_t> count)
    return w.take()


include "_encode_types.pxi"
include "_geometry.pxi"
