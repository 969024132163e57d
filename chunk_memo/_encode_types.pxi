# Encoders of the less common types (subclasses, sets, dates, Decimal, paths, NumPy,
# registered types); included by _core.pyx, whose _Writer.encode handles the common
# types inline and calls _encode_other for the rest.

cdef int _encode_other(_Writer w, object v, int depth) except -1:
    if isinstance(v, _enum.Enum):
        w.put(b'E')
        w.put_text(b's', _type_name(type(v)))
        return w.encode(v.value, depth + 1)
    if isinstance(v, int):
        return w.put_int(int(v))
    if isinstance(v, float):
        w.put(b'f')
        return w.put_float(<double> v)
    if isinstance(v, str):
        return w.put_text(b's', str(v))
    if isinstance(v, (bytes, bytearray)):
        return w.put_bytes(bytes(v))
    if isinstance(v, (list, tuple)):
        w.put(b'l')
        w.put_varint(<uint64_t> len(v))
        for item in v:
            w.encode(item, depth + 1)
        return 0
    if isinstance(v, dict):
        return w.put_dict(dict(v), depth)
    if isinstance(v, (set, frozenset)):
        return w.put_set(v, depth)
    if isinstance(v, complex):
        w.put(b'c')
        w.put_float(float(getattr(v, "real")))
        return w.put_float(float(getattr(v, "imag")))
    if isinstance(v, _dt.datetime):
        return w.put_text(b'D', v.isoformat())
    if isinstance(v, _dt.date):
        return w.put_text(b'a', v.isoformat())
    if isinstance(v, _dt.time):
        return w.put_text(b't', v.isoformat())
    if isinstance(v, _dt.timedelta):
        w.put(b'e')
        w.put_int(v.days)
        w.put_int(v.seconds)
        return w.put_int(v.microseconds)
    if isinstance(v, _decimal.Decimal):
        return w.put_text(b'M', _decimal_text(v))
    if isinstance(v, _PurePath):
        return w.put_text(b'P', v.as_posix())
    np = _numpy_module()
    if np is not None and isinstance(v, np.generic):
        return _encode_numpy_scalar(w, np, v)
    if np is not None and isinstance(v, np.ndarray):
        return _encode_array(w, np, v, depth)
    converter = _lookup_converter(type(v))
    if converter is None:
        raise TypeError(
            f"chunk-memo cannot hash a value of type {_type_name(type(v))!r}: "
            "use a supported type or register one with "
            "chunk_memo.identity.register_type"
        )
    w.put(b'U')
    w.put_text(b's', _type_name(type(v)))
    return w.encode(converter(v), depth + 1)

cdef int _encode_numpy_scalar(_Writer w, object np, object v) except -1:
    if isinstance(v, np.bool_):
        return w.put(b'T' if v else b'F')
    if isinstance(v, np.integer):
        return w.put_int(int(v))
    if isinstance(v, np.floating):
        w.put(b'f')
        return w.put_float(float(v))
    if isinstance(v, np.complexfloating):
        c = complex(v)
        w.put(b'c')
        w.put_float(float(getattr(c, "real")))
        return w.put_float(float(getattr(c, "imag")))
    raise TypeError(f"chunk-memo cannot hash a NumPy scalar of type {_type_name(type(v))!r}")

cdef int _encode_array(_Writer w, object np, object a, int depth) except -1:
    dtype = a.dtype
    if dtype.hasobject:
        if dtype != np.dtype(object):
            raise TypeError(f"chunk-memo cannot hash a NumPy array of dtype {dtype}")
        dtype_text = "|O"
    else:
        if dtype.byteorder == ">" or (dtype.byteorder == "=" and _sys.byteorder == "big"):
            dtype = dtype.newbyteorder("<")
        dtype_text = dtype.str if dtype.names is None else repr(dtype.descr)
    w.put(b'A')
    w.put_text(b's', dtype_text)
    w.put_varint(<uint64_t> a.ndim)
    for dim in a.shape:
        w.put_varint(<uint64_t> dim)
    if dtype_text == "|O":
        for item in a.ravel(order="C"):
            w.encode(item, depth + 1)
        return 0
    raw = np.ascontiguousarray(a, dtype=dtype).tobytes()
    w.put_varint(<uint64_t> PyBytes_GET_SIZE(raw))
    return w.put_raw(PyBytes_AS_STRING(raw), PyBytes_GET_SIZE(raw))
