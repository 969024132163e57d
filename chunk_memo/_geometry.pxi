# Grid geometry and batch chunk hashing; included by _core.pyx (one extension).

cdef class Geometry:
    """Bins of a grid: axis ``i`` has ``sizes[i]`` values cut into bins of ``bin_sizes[i]``.

    Chunks are numbered by ordinal in row-major order over per-axis bin indices (the
    last axis varies fastest); the points of a chunk are likewise row-major over the
    chunk's per-axis values.  Every method is integer arithmetic.
    """

    cdef readonly Py_ssize_t n_axes
    cdef readonly object n_chunks
    cdef int64_t* sizes
    cdef int64_t* bin_sizes
    cdef int64_t* n_bins
    cdef int64_t total

    def __cinit__(self, sizes, bin_sizes):
        cdef Py_ssize_t i
        self.n_axes = len(sizes)
        if len(bin_sizes) != self.n_axes:
            raise ValueError("sizes and bin_sizes differ in length")
        self.sizes = <int64_t*> malloc(max(self.n_axes, 1) * sizeof(int64_t))
        self.bin_sizes = <int64_t*> malloc(max(self.n_axes, 1) * sizeof(int64_t))
        self.n_bins = <int64_t*> malloc(max(self.n_axes, 1) * sizeof(int64_t))
        if self.sizes == NULL or self.bin_sizes == NULL or self.n_bins == NULL:
            raise MemoryError()
        total = 1
        for i in range(self.n_axes):
            if sizes[i] < 0:
                raise ValueError(f"axis {i} has negative size {sizes[i]}")
            if bin_sizes[i] <= 0:
                raise ValueError(f"axis {i} has bin size {bin_sizes[i]}; it must be > 0")
            self.sizes[i] = sizes[i]
            self.bin_sizes[i] = bin_sizes[i]
            self.n_bins[i] = (sizes[i] + bin_sizes[i] - 1) // bin_sizes[i]
            total *= self.n_bins[i]
        if total >= (1 << 62):
            raise ValueError(f"grid of {total} chunks is too large")
        self.total = total
        self.n_chunks = total

    def __dealloc__(self):
        free(self.sizes)
        free(self.bin_sizes)
        free(self.n_bins)

    def bins_per_axis(self):
        return tuple(self.n_bins[i] for i in range(self.n_axes))

    cdef int check_ordinal(self, int64_t ordinal) except -1:
        if ordinal < 0 or ordinal >= self.total:
            raise IndexError(f"chunk ordinal {ordinal} outside [0, {self.total})")
        return 0

    def bin_indices(self, int64_t ordinal):
        """Per-axis bin indices of chunk ``ordinal``."""
        cdef Py_ssize_t i
        cdef list out = [0] * self.n_axes
        self.check_ordinal(ordinal)
        for i in range(self.n_axes - 1, -1, -1):
            out[i] = ordinal % self.n_bins[i]
            ordinal //= self.n_bins[i]
        return tuple(out)

    def ordinal(self, bins):
        """Chunk ordinal of per-axis bin indices ``bins``."""
        cdef int64_t ordinal = 0, b
        cdef Py_ssize_t i
        if len(bins) != self.n_axes:
            raise ValueError(f"expected {self.n_axes} bin indices, got {len(bins)}")
        for i in range(self.n_axes):
            b = bins[i]
            if b < 0 or b >= self.n_bins[i]:
                raise IndexError(f"bin {b} outside axis {i}'s {self.n_bins[i]} bins")
            ordinal = ordinal * self.n_bins[i] + b
        return ordinal

    def bin_range(self, Py_ssize_t axis, int64_t b):
        """``(start, stop)`` positions of bin ``b`` on ``axis``."""
        if axis < 0 or axis >= self.n_axes:
            raise IndexError(f"axis {axis} outside [0, {self.n_axes})")
        if b < 0 or b >= self.n_bins[axis]:
            raise IndexError(f"bin {b} outside axis {axis}'s {self.n_bins[axis]} bins")
        start = b * self.bin_sizes[axis]
        return start, min(start + self.bin_sizes[axis], self.sizes[axis])

    def chunk_size(self, int64_t ordinal):
        """Number of points in chunk ``ordinal`` (the product of :meth:`chunk_shape`)."""
        self.check_ordinal(ordinal)
        cdef Py_ssize_t i
        cdef int64_t rest = ordinal, b, start, size = 1
        for i in range(self.n_axes - 1, -1, -1):
            b = rest % self.n_bins[i]
            rest //= self.n_bins[i]
            start = b * self.bin_sizes[i]
            size *= min(start + self.bin_sizes[i], self.sizes[i]) - start
        return size

    def chunk_shape(self, int64_t ordinal):
        """Per-axis number of values in chunk ``ordinal`` (the last bin may be short)."""
        return tuple(stop - start for start, stop in
                     (self.bin_range(i, b) for i, b in enumerate(self.bin_indices(ordinal))))

    def locate(self, Py_ssize_t axis, int64_t position):
        """``(bin, offset)`` of value ``position`` on ``axis``."""
        if axis < 0 or axis >= self.n_axes:
            raise IndexError(f"axis {axis} outside [0, {self.n_axes})")
        if position < 0 or position >= self.sizes[axis]:
            raise IndexError(f"position {position} outside axis {axis}'s {self.sizes[axis]} values")
        return position // self.bin_sizes[axis], position % self.bin_sizes[axis]

    def select(self, positions):
        """The chunks a selection touches; ``positions[i]`` lists axis ``i``'s positions.

        ``None`` for an axis selects all of it.  Positions are taken as a set.
        """
        if len(positions) != self.n_axes:
            raise ValueError(f"expected {self.n_axes} position lists, got {len(positions)}")
        return Selection(self, positions)


cdef class Selection:
    """Chunks touched by a per-axis selection, and the selected points inside each.

    Touched chunks are numbered ``0 .. n_chunks-1`` in ordinal order; for each axis
    the selected positions are grouped by bin (``axis_bins``) with their offsets
    inside the bin (``axis_offsets``).
    """

    cdef readonly Geometry geometry
    cdef readonly tuple axis_bins      # per axis: array('q') of touched bins
    cdef readonly tuple axis_offsets   # per axis: list of array('q') per touched bin, or
                                       # None for a whole axis (offsets 0 .. bin length)
    cdef readonly object n_chunks
    cdef readonly object n_points

    def __cinit__(self, Geometry geometry, positions):
        cdef Py_ssize_t i
        cdef int64_t p, b, size, bin_size
        bins_per_axis = []
        offsets_per_axis = []
        n_chunks = 1
        n_points = 1
        self.geometry = geometry
        for i in range(geometry.n_axes):
            size = geometry.sizes[i]
            bin_size = geometry.bin_sizes[i]
            if positions[i] is None:  # the whole axis: every bin, offsets implied
                bins_per_axis.append(_array("q", range(geometry.n_bins[i])))
                offsets_per_axis.append(None)
                n_chunks *= geometry.n_bins[i]
                n_points *= size
                continue
            else:
                chosen = sorted(set(positions[i]))
                if chosen and (chosen[0] < 0 or chosen[-1] >= size):
                    bad = chosen[0] if chosen[0] < 0 else chosen[-1]
                    raise IndexError(f"position {bad} outside axis {i}'s {size} values")
            touched = _array("q")
            offsets = []
            current = -1
            for p in chosen:
                b = p // bin_size
                if b != current:
                    touched.append(b)
                    offsets.append(_array("q"))
                    current = b
                offsets[-1].append(p - b * bin_size)
            bins_per_axis.append(touched)
            offsets_per_axis.append(offsets)
            n_chunks *= len(touched)
            n_points *= len(chosen)
        self.axis_bins = tuple(bins_per_axis)
        self.axis_offsets = tuple(offsets_per_axis)
        self.n_chunks = n_chunks
        self.n_points = n_points

    cdef list touched_bins(self, int64_t k):
        cdef Py_ssize_t i, count
        cdef list out = [0] * self.geometry.n_axes
        if k < 0 or k >= self.n_chunks:
            raise IndexError(f"touched chunk {k} outside [0, {self.n_chunks})")
        for i in range(self.geometry.n_axes - 1, -1, -1):
            count = len(self.axis_bins[i])
            out[i] = k % count
            k //= count
        return out

    @cython.boundscheck(False)
    @cython.wraparound(False)
    def ordinals(self, start=0, stop=None):
        """``array('q')`` of the ordinals of touched chunks ``start`` to ``stop``, ascending.

        By default all of them; a range keeps memory bounded on huge grids.
        """
        cdef Geometry g = self.geometry
        cdef Py_ssize_t i, n_axes = g.n_axes
        cdef int64_t k, ordinal, rest
        cdef int64_t first = max(0, min(<int64_t> start, <int64_t> self.n_chunks))
        cdef int64_t last = self.n_chunks if stop is None else <int64_t> stop
        last = max(first, min(last, <int64_t> self.n_chunks))
        cdef int64_t total = last - first
        cdef int64_t[:] bins_i
        out = _array("q", bytes(8 * total))
        cdef int64_t[:] view = out
        cdef int64_t* counter = <int64_t*> malloc(max(n_axes, 1) * sizeof(int64_t))
        cdef int64_t* counts = <int64_t*> malloc(max(n_axes, 1) * sizeof(int64_t))
        cdef int64_t** bins = <int64_t**> malloc(max(n_axes, 1) * sizeof(int64_t*))
        kept = [self.axis_bins[i] for i in range(n_axes)]
        try:
            for i in range(n_axes):
                counter[i] = 0
                counts[i] = len(kept[i])
                bins_i = kept[i] if counts[i] else _array("q", [0])
                bins[i] = &bins_i[0]
            rest = first  # the mixed-radix digits of the first touched chunk
            i = n_axes - 1
            while i >= 0 and total:
                counter[i] = rest % counts[i]
                rest //= counts[i]
                i -= 1
            for k in range(total):
                ordinal = 0
                for i in range(n_axes):
                    ordinal = ordinal * g.n_bins[i] + bins[i][counter[i]]
                view[k] = ordinal
                i = n_axes - 1
                while i >= 0:
                    counter[i] += 1
                    if counter[i] < counts[i]:
                        break
                    counter[i] = 0
                    i -= 1
        finally:
            free(counter)
            free(counts)
            free(bins)
        return out

    def ordinal(self, int64_t k):
        """Ordinal of the ``k``-th touched chunk."""
        touched = self.touched_bins(k)
        return self.geometry.ordinal([self.axis_bins[i][touched[i]]
                                      for i in range(self.geometry.n_axes)])

    @cython.boundscheck(False)
    @cython.wraparound(False)
    def positions(self, int64_t k):
        """``array('q')`` of the selected points' flat positions inside touched chunk ``k``.

        Positions are row-major over the chunk's own per-axis values, ascending.
        """
        cdef Geometry g = self.geometry
        cdef Py_ssize_t i, n_axes = g.n_axes
        cdef int64_t b, start, stop, flat, j, total = 1
        touched = self.touched_bins(k)
        lengths = []
        chosen = []
        for i in range(n_axes):
            b = self.axis_bins[i][touched[i]]
            start = b * g.bin_sizes[i]
            stop = min(start + g.bin_sizes[i], g.sizes[i])
            lengths.append(stop - start)
            if self.axis_offsets[i] is None:
                chosen.append(range(stop - start))
            else:
                chosen.append(self.axis_offsets[i][touched[i]])
            total *= len(chosen[i])
        out = _array("q", bytes(8 * total))
        cdef int64_t[:] view = out
        cdef int64_t* counter = <int64_t*> malloc(max(n_axes, 1) * sizeof(int64_t))
        try:
            for i in range(n_axes):
                counter[i] = 0
            for j in range(total):
                flat = 0
                for i in range(n_axes):
                    flat = flat * <int64_t> lengths[i] + <int64_t> chosen[i][counter[i]]
                view[j] = flat
                i = n_axes - 1
                while i >= 0:
                    counter[i] += 1
                    if counter[i] < len(chosen[i]):
                        break
                    counter[i] = 0
                    i -= 1
        finally:
            free(counter)
        return out


cdef class ChunkHasher:
    """Hashes of chunks, built from precomputed per-(axis, bin) encodings.

    The hashed bytes of chunk ``ordinal`` are ``prefix + segments[0][b0] + ... +
    suffix``, which the caller arranges to equal the canonical encoding of the chunk's
    identity (see ``chunk_memo.identity.chunk_hash``).  No Python object is built per
    chunk except its digest.
    """

    cdef Geometry geometry
    cdef bytes prefix
    cdef bytes suffix
    cdef list segments
    cdef list segment_offsets
    cdef int64_t* strides
    cdef const char** segment_ptrs
    cdef int64_t** offset_ptrs

    def __dealloc__(self):
        free(self.strides)
        free(self.segment_ptrs)
        free(self.offset_ptrs)

    def __cinit__(self, Geometry geometry, bytes prefix, segments, bytes suffix):
        cdef Py_ssize_t i
        cdef int64_t[:] view
        if len(segments) != geometry.n_axes:
            raise ValueError("one list of bin segments per axis is required")
        self.geometry = geometry
        self.prefix = prefix
        self.suffix = suffix
        self.strides = <int64_t*> malloc(max(geometry.n_axes, 1) * sizeof(int64_t))
        self.segment_ptrs = <const char**> malloc(max(geometry.n_axes, 1) * sizeof(char*))
        self.offset_ptrs = <int64_t**> malloc(max(geometry.n_axes, 1) * sizeof(int64_t*))
        if self.strides == NULL or self.segment_ptrs == NULL or self.offset_ptrs == NULL:
            raise MemoryError()
        stride = 1
        for i in range(geometry.n_axes - 1, -1, -1):
            self.strides[i] = stride
            stride *= geometry.n_bins[i]
        self.segments = []
        self.segment_offsets = []
        for i in range(geometry.n_axes):
            if len(segments[i]) != geometry.n_bins[i]:
                raise ValueError(f"axis {i} needs {geometry.n_bins[i]} segments")
            self.segments.append(b"".join(segments[i]))
            offsets = _array("q", [0])
            running = 0
            for seg in segments[i]:
                running += len(seg)
                offsets.append(running)
            self.segment_offsets.append(offsets)
            view = offsets
            self.offset_ptrs[i] = &view[0]
            self.segment_ptrs[i] = PyBytes_AS_STRING(<bytes> self.segments[i])

    @cython.boundscheck(False)
    @cython.wraparound(False)
    cdef int fill(self, _Writer w, int64_t ordinal) except -1:
        """Write the hashed bytes of chunk ``ordinal`` into ``w``."""
        cdef Py_ssize_t i, n_axes = self.geometry.n_axes
        cdef int64_t b, rest = ordinal
        cdef int64_t* offsets
        w.length = 0
        w.put_raw(PyBytes_AS_STRING(self.prefix), PyBytes_GET_SIZE(self.prefix))
        for i in range(n_axes):
            b = rest // self.strides[i]
            rest -= b * self.strides[i]
            offsets = self.offset_ptrs[i]
            w.put_raw(self.segment_ptrs[i] + offsets[b], offsets[b + 1] - offsets[b])
        return w.put_raw(PyBytes_AS_STRING(self.suffix), PyBytes_GET_SIZE(self.suffix))

    def encoded(self, int64_t ordinal):
        """The bytes hashed for chunk ``ordinal``."""
        cdef _Writer w = _Writer()
        self.geometry.check_ordinal(ordinal)
        self.fill(w, ordinal)
        return w.take()

    def hexdigest(self, int64_t ordinal):
        """Hash of chunk ``ordinal`` as 32 hex digits."""
        cdef _Writer w = _Writer()
        self.geometry.check_ordinal(ordinal)
        self.fill(w, ordinal)
        return w.hexdigest()

    def hexdigests(self, ordinals=None):
        """Hex hashes of the chunks ``ordinals`` (default: all), as a list."""
        cdef _Writer w = _Writer()
        cdef int64_t o
        if ordinals is None:
            ordinals = range(self.geometry.total)
        out = []
        for o in ordinals:
            self.geometry.check_ordinal(o)
            self.fill(w, o)
            out.append(w.hexdigest())
        return out

    def digests(self, ordinals=None):
        """Raw 16-byte hashes of the chunks ``ordinals`` (default: all), concatenated."""
        cdef _Writer w = _Writer()
        cdef int64_t o, k = 0
        cdef Py_ssize_t n = self.geometry.total if ordinals is None else len(ordinals)
        out = bytearray(16 * n)
        cdef char* dest = out
        if ordinals is None:
            for o in range(n):
                self.fill(w, o)
                w.digest_into(dest + 16 * o)
            return bytes(out)
        for o in ordinals:
            self.geometry.check_ordinal(o)
            self.fill(w, o)
            w.digest_into(dest + 16 * k)
            k += 1
        return bytes(out)
