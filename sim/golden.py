"""Numpy golden models, one per kernel. Each takes and returns integer arrays; the
hardware must match them bit for bit."""

import numpy as np

__all__ = ["popcount", "threshold", "weighted_sum", "dsp48e2_mac", "packed_mac", "dot_products",
           "bipolar", "mvau", "repack", "label_select"]
__all__ += ["duplicate", "add_streams", "concat", "channelwise", "CHANNELWISE_OPS"]
__all__ += ["pad", "maxpool", "avgpool_sums", "global_sum"]
__all__ += ["depthwise_windows", "depthwise_conv2d", "vvau", "depthwise_beats"]
__all__ += ["im2col", "sliding_window", "conv2d"]
__all__ += ["requantize"]


def popcount(bits):
    """Ones per row of a ``(vectors, n)`` 0/1 array."""
    bits = np.asarray(bits)
    if bits.ndim != 2:
        raise ValueError(f"bits must be a 2-D (vectors, n) array, not shape {bits.shape}")
    if bits.size and not np.isin(bits, (0, 1)).all():
        raise ValueError("bits must hold only 0 and 1")
    return bits.astype(np.int64).sum(axis=1)


def weighted_sum(values, shifts=None, negates=None):
    """Per row of a ``(vectors, terms)`` integer array: ``sum(+-v[k] * 2**shifts[k])``, term
    ``k`` subtracted where ``negates[k]``. Exact (Python integers) for any widths."""
    values = np.asarray(values)
    if values.ndim != 2:
        raise ValueError(f"values must be a 2-D (vectors, terms) array, not shape {values.shape}")
    terms = values.shape[1]
    shifts = [0] * terms if shifts is None else list(shifts)
    negates = [False] * terms if negates is None else list(negates)
    signs = [-1 if negate else 1 for negate in negates]
    return np.array([sum(sign * int(v) << shift for v, shift, sign in zip(row, shifts, signs))
                     for row in values], dtype=object)


def threshold(values, thresholds, bias=0):
    """Multi-threshold activation: ``bias + #{i : thresholds[c][i] <= values[..., c]}``.

    ``values`` has shape ``(..., C)``; ``thresholds`` shape ``(C, T)`` or ``(1, T)`` (shared).
    """
    values = np.asarray(values, dtype=np.int64)
    thresholds = np.asarray(thresholds, dtype=np.int64)
    if thresholds.ndim != 2 or thresholds.shape[0] not in (1, values.shape[-1]):
        raise ValueError(f"thresholds of shape {thresholds.shape} do not fit values of shape "
                         f"{values.shape}")
    return bias + (thresholds <= values[..., None]).sum(axis=-1)


# --- DSP48E2 -------------------------------------------------------------------------------

_DSP48E2_DEFAULT_INPUTS = {
    "A": 0, "B": 0, "C": 0, "D": 0, "PCIN": 0, "OPMODE": 0b000000101, "INMODE": 0, "ALUMODE": 0,
    "CARRYIN": 0, "CARRYINSEL": 0,
    **{ce: 1 for ce in ("CEA1", "CEA2", "CEB1", "CEB2", "CEC", "CED", "CEAD", "CEM", "CEP",
                        "CECTRL", "CEINMODE", "CEALUMODE", "CECARRYIN")},
    **{rst: 0 for rst in ("RSTA", "RSTB", "RSTC", "RSTD", "RSTM", "RSTP", "RSTCTRL",
                          "RSTINMODE", "RSTALLCARRYIN", "RSTALUMODE")},
}


def _to_signed(value, bits):
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def dsp48e2_mac(cycles, *, AREG=1, BREG=1, CREG=1, DREG=1, ADREG=1, MREG=1, PREG=1,
                OPMODEREG=1, INMODEREG=1, ALUMODEREG=1, CARRYINREG=1, CARRYINSELREG=1,
                AMULTSEL="A", BMULTSEL="B", PREADDINSEL="A", USE_MULT="MULTIPLY", RND=0):
    """Cycle-by-cycle model of a ``DSP48E2`` slice (AMD UG579), written from the user guide's
    tables with Python integers.

    ``cycles`` is a sequence of dicts, one per clock cycle, of port values (``A``, ``B``, ``C``,
    ``D``, ``PCIN``, ``OPMODE``, ``INMODE``, ``ALUMODE``, ``CARRYIN``, ``CARRYINSEL``, the
    ``CE*`` and ``RST*`` ports; missing ones take :class:`hwgen.vendor.xilinx.dsp48e2.DSP48E2`'s defaults:
    CE 1, RST 0, OPMODE = multiply, data 0). Returns the signed 48-bit ``P`` seen in each cycle
    (before that cycle's clock edge) as an int64 array; ``PCOUT`` equals ``P``. All registers
    start at 0.

    Raises ``ValueError`` for uses that UG579 leaves undefined: X or Y selecting M without the
    other, P feedback with ``PREG=0``, logic ALUMODEs with ``W != 0`` or Y other than 0/all
    ones, ALUMODE 10xx, and ``CARRYINSEL=100`` after a multiply or logic operation.
    """
    mask48 = (1 << 48) - 1
    dreg = DREG if (AMULTSEL, BMULTSEL) != ("A", "B") and USE_MULT != "NONE" else 0
    adreg = ADREG if (AMULTSEL, BMULTSEL) != ("A", "B") and USE_MULT != "NONE" else 0
    names = ("A1", "A2", "B1", "B2", "C", "D", "AD", "M", "MSIGN", "P", "CCOUT", "INMODE",
             "OPMODE", "CARRYINSEL", "ALUMODE", "CARRYIN")
    reg = dict.fromkeys(names, 0)
    outputs = []
    for t, given in enumerate(cycles):
        unknown = set(given) - set(_DSP48E2_DEFAULT_INPUTS)
        if unknown:
            raise ValueError(f"cycle {t}: unknown DSP48E2 inputs {sorted(unknown)}")
        inp = {**_DSP48E2_DEFAULT_INPUTS, **given}
        a_in, b_in = inp["A"] & (1 << 30) - 1, inp["B"] & (1 << 18) - 1
        c_in, d_in, pcin = inp["C"] & mask48, inp["D"] & (1 << 27) - 1, inp["PCIN"] & mask48

        # values at each stage during this cycle
        a2 = reg["A2"] if AREG else a_in
        a1 = reg["A1"]
        b2 = reg["B2"] if BREG else b_in
        b1 = reg["B1"]
        inmode = reg["INMODE"] if INMODEREG else inp["INMODE"]
        opmode = reg["OPMODE"] if OPMODEREG else inp["OPMODE"]
        carryinsel = reg["CARRYINSEL"] if CARRYINSELREG else inp["CARRYINSEL"]
        alumode = reg["ALUMODE"] if ALUMODEREG else inp["ALUMODE"]
        carryin = reg["CARRYIN"] if CARRYINREG else inp["CARRYIN"]
        c = reg["C"] if CREG else c_in
        d = reg["D"] if dreg else d_in

        bit = lambda value, k: value >> k & 1  # noqa: E731
        a_op = _to_signed(a1 if bit(inmode, 0) else a2, 27)
        b_op = _to_signed(b1 if bit(inmode, 4) else b2, 18)
        if bit(inmode, 1):  # the pre-adder's A/B operand is zeroed
            if PREADDINSEL == "A":
                a_op = 0
            else:
                b_op = 0
        d_op = _to_signed(d, 27) if bit(inmode, 2) else 0
        other = a_op if PREADDINSEL == "A" else b_op
        ad_now = _to_signed(d_op - other if bit(inmode, 3) else d_op + other, 27)
        ad = reg["AD"] if adreg else ad_now
        mult_a = a_op if AMULTSEL == "A" else ad
        mult_b = b_op if BMULTSEL == "B" else _to_signed(ad, 18)
        product_now = mult_a * mult_b if USE_MULT == "MULTIPLY" else 0
        sign_now = int((mult_a < 0) == (mult_b < 0))
        product = reg["M"] if MREG else product_now
        mult_sign = reg["MSIGN"] if MREG else sign_now

        x_sel, y_sel = opmode & 3, opmode >> 2 & 3
        z_sel, w_sel = opmode >> 4 & 7, opmode >> 7 & 3
        uses_p = (w_sel == 1 or x_sel == 2 or z_sel in (2, 4, 6, 7)
                  or carryinsel in (0b100, 0b101, 0b111))
        if uses_p and not PREG:
            raise ValueError(f"cycle {t}: P feedback (OPMODE={opmode:09b}, "
                             f"CARRYINSEL={carryinsel:03b}) needs PREG=1")
        if (x_sel == 1) != (y_sel == 1):
            raise ValueError(f"cycle {t}: OPMODE={opmode:09b} selects M on only one of X, Y")
        p_fb = reg["P"]
        w = [0, p_fb, RND, c][w_sel]
        x = [0, product & mask48, p_fb, (a2 << 18 | b2) & mask48][x_sel]
        y = [0, 0, mask48, c][y_sel]
        z = {0: 0, 1: pcin, 2: p_fb, 3: c, 4: p_fb, 5: _to_signed(pcin, 48) >> 17 & mask48,
             6: _to_signed(p_fb, 48) >> 17 & mask48}[min(z_sel, 6)]

        cin = {0b000: carryin, 0b001: 1 - (pcin >> 47), 0b010: 0, 0b011: pcin >> 47,
               0b100: reg["CCOUT"], 0b101: 1 - (p_fb >> 47), 0b110: mult_sign,
               0b111: p_fb >> 47}[carryinsel]
        if cin is None:
            raise ValueError(f"cycle {t}: CARRYINSEL=100 reads the carry out of a multiply or "
                             f"logic operation, which UG579 leaves undefined")

        if alumode >> 2 == 0:  # arithmetic (UG579's ALUMODE table)
            s = w + x + y + cin
            result = {0b0000: z + s, 0b0001: -z + s - 1, 0b0010: -z - s - 1,
                      0b0011: z - s}[alumode]
            if x_sel == 1:
                carry_out = None  # CARRYOUT is not valid for multiply operations
            else:
                z_word = z if alumode & 1 == 0 else ~z & mask48
                carry_out = ((z_word + s) >> 48 & 1) ^ int(alumode == 0b0011)
        elif alumode >> 2 in (0b01, 0b11):  # two-input logic unit
            if w_sel != 0 or y_sel not in (0b00, 0b10):
                raise ValueError(f"cycle {t}: logic ALUMODE={alumode:04b} needs W=0 and Y=0 or "
                                 f"all ones, not OPMODE={opmode:09b}")
            ones = y_sel == 0b10
            table = {
                0b0100: (x ^ z, ~(x ^ z)), 0b0111: (x ^ z, ~(x ^ z)),
                0b0101: (~(x ^ z), x ^ z), 0b0110: (~(x ^ z), x ^ z),
                0b1100: (x & z, x | z), 0b1101: (x & ~z, x | ~z),
                0b1110: (~(x & z), ~(x | z)), 0b1111: (~x | z, ~x & z),
            }
            result = table[alumode][ones]
            carry_out = None
        else:
            raise ValueError(f"cycle {t}: ALUMODE={alumode:04b} is not defined by UG579")
        alu = result & mask48
        p = reg["P"] if PREG else alu
        outputs.append(_to_signed(p, 48))

        # clock edge: synchronous resets win over clock enables
        nxt = dict(reg)

        def load(name, rst, ce, value, enabled=True):
            if not enabled:
                return
            if inp[rst]:
                nxt[name] = 0
            elif inp[ce]:
                nxt[name] = value

        load("A1", "RSTA", "CEA1", a_in, AREG >= 1)
        load("A2", "RSTA", "CEA2", reg["A1"] if AREG == 2 else a_in, AREG >= 1)
        load("B1", "RSTB", "CEB1", b_in, BREG >= 1)
        load("B2", "RSTB", "CEB2", reg["B1"] if BREG == 2 else b_in, BREG >= 1)
        load("C", "RSTC", "CEC", c_in, CREG)
        load("D", "RSTD", "CED", d_in, dreg)
        load("AD", "RSTD", "CEAD", ad_now, adreg)
        load("M", "RSTM", "CEM", product_now, MREG)
        load("MSIGN", "RSTALLCARRYIN", "CEM", sign_now, MREG)
        load("P", "RSTP", "CEP", alu, PREG)
        load("CCOUT", "RSTP", "CEP", carry_out, PREG)
        load("INMODE", "RSTINMODE", "CEINMODE", inp["INMODE"], INMODEREG)
        load("OPMODE", "RSTCTRL", "CECTRL", inp["OPMODE"], OPMODEREG)
        load("CARRYINSEL", "RSTCTRL", "CECTRL", inp["CARRYINSEL"], CARRYINSELREG)
        load("ALUMODE", "RSTALUMODE", "CEALUMODE", inp["ALUMODE"], ALUMODEREG)
        load("CARRYIN", "RSTALLCARRYIN", "CECARRYIN", inp["CARRYIN"], CARRYINREG)
        reg = nxt
    return np.array(outputs, dtype=np.int64)


# --- packed MAC ------------------------------------------------------------------------------

def packed_mac(weights, activations, first, last):
    """Dot products of a :class:`hwgen.arith.packed_mac.PackedMAC` term stream.

    ``weights`` is a ``(terms, lanes)`` integer array, ``activations``, ``first`` and ``last``
    have one entry per term (only the terms the hardware takes: ``valid`` and ``en`` high).
    A term with ``first`` starts a new sum (otherwise it adds to the running one, also after
    a ``last``); a term with ``last`` closes it. Returns a ``(dot products, lanes)`` int64 array
    of the closed sums, in order.
    """
    weights = np.asarray(weights, dtype=np.int64)
    activations = np.asarray(activations, dtype=np.int64)
    if weights.ndim != 2 or activations.shape != weights.shape[:1]:
        raise ValueError(f"weights of shape {weights.shape} do not fit activations of shape "
                         f"{activations.shape}")
    first = np.asarray(first, dtype=bool)
    last = np.asarray(last, dtype=bool)
    products = weights * activations[:, None]
    running = np.zeros(weights.shape[1], dtype=np.int64)
    results = []
    for t in range(len(products)):
        running = products[t] if first[t] else running + products[t]
        if last[t]:
            results.append(running)
    return np.array(results, dtype=np.int64).reshape(-1, weights.shape[1])


# --- packed dot product ----------------------------------------------------------------------

def dot_products(weights, activations, first, last):
    """Dot products of a :class:`hwgen.arith.packed_mac.PackedDotProduct` stream.

    ``weights`` is a ``(cycles, lanes, simd)`` integer array, ``activations`` a
    ``(cycles, simd)`` one, ``first`` and ``last`` have one entry per cycle (only the cycles the
    hardware takes). Each cycle adds ``sum(w[l][s] * a[s], s)`` to lane ``l``; framing as in
    :func:`packed_mac`. Returns a ``(dot products, lanes)`` int64 array.
    """
    weights = np.asarray(weights, dtype=np.int64)
    activations = np.asarray(activations, dtype=np.int64)
    if weights.ndim != 3 or activations.shape != (weights.shape[0], weights.shape[2]):
        raise ValueError(f"weights of shape {weights.shape} do not fit activations of shape "
                         f"{activations.shape}")
    per_cycle = np.einsum("tls,ts->tl", weights, activations)
    return packed_mac(per_cycle, np.ones(len(per_cycle), dtype=np.int64), first, last)



def bipolar(bits):
    """Decode one-bit bipolar values: 0 -> -1, 1 -> +1."""
    bits = np.asarray(bits)
    if bits.size and not np.isin(bits, (0, 1)).all():
        raise ValueError("bipolar values must be encoded as 0 (-1) and 1 (+1)")
    return 2 * bits.astype(np.int64) - 1


def mvau(inputs, weights, thresholds=None, bias=0, offsets=None):
    """Matrix-vector-activation: ``y = act(W @ x)`` for every input vector.

    ``inputs``: ``(vectors, MW)`` integers; ``weights``: ``(MH, MW)`` integers (decode bipolar
    operands with :func:`bipolar` first). Without ``thresholds`` the raw accumulators
    ``(vectors, MH)`` are returned (exact, int64 or Python ints when they could overflow);
    with ``thresholds`` of shape ``(MH, T)`` or ``(1, T)``, the activation
    :func:`threshold` of the accumulators with ``bias``. ``offsets`` (``(MH,)`` integers), when
    given, are added to the accumulators first.
    """
    inputs = np.asarray(inputs)
    weights = np.asarray(weights)
    if inputs.ndim != 2 or weights.ndim != 2 or inputs.shape[1] != weights.shape[1]:
        raise ValueError(f"inputs {inputs.shape} and weights {weights.shape} do not fit: "
                         f"need (vectors, MW) and (MH, MW)")
    bound = (int(np.abs(inputs).max(initial=0)) * int(np.abs(weights).max(initial=0)) *
             inputs.shape[1])
    dtype = np.int64 if bound < 2 ** 62 else object
    accumulators = inputs.astype(dtype) @ weights.astype(dtype).T
    if offsets is not None:
        accumulators = accumulators + np.asarray(offsets).astype(dtype)
    if thresholds is None:
        return accumulators
    return threshold(accumulators, thresholds, bias)


# --- stream plumbing ------------------------------------------------------------------------

def repack(beats, out_lanes):
    """Width conversion: the elements of ``(beats, in_lanes)`` in order, ``out_lanes`` per
    beat. The element count must be a multiple of ``out_lanes``."""
    beats = np.asarray(beats)
    if beats.ndim != 2:
        raise ValueError(f"beats must be a 2-D (beats, lanes) array, not shape {beats.shape}")
    if beats.size % out_lanes:
        raise ValueError(f"{beats.size} elements do not fill beats of out_lanes={out_lanes}")
    return beats.reshape(-1, out_lanes)


def label_select(values, k=1):
    """Indices of the ``k`` largest values along the last axis, largest first; equal values
    rank the lower index first (as ``numpy.argmax`` and ONNX ``TopK``). ``values``:
    ``(..., C)`` integers; returns ``(..., k)`` int64 indices."""
    values = np.asarray(values)
    if values.ndim < 1 or not 1 <= k <= values.shape[-1]:
        raise ValueError(f"k={k} must be in 1..C for values of shape {values.shape}")
    if values.dtype.kind not in "iuO":
        raise ValueError(f"values must be integers, not dtype {values.dtype}")
    # ~v reverses the order of any integers without overflow; the stable sort keeps the
    # lower index first among equals
    return np.argsort(~values, axis=-1, kind="stable")[..., :k].astype(np.int64)


# --- CNN kernels (issue 12): feature maps are NHWC integer arrays ---------------------------
# [sliding window]

def im2col(x, kernel, stride=1, dilation=1):
    """The windows of an NHWC map without padding as the rows of a matrix,
    ``(N * OH * OW, K_h * K_w * C)``: output pixels in (image, row, column) order, each row
    in (kernel row, kernel column, channel) order, the order of an MVAU's weight columns.
    ``kernel``, ``stride``, ``dilation``: one integer, or one per axis (height, width);
    ``OH = (H - span) // stride + 1`` for the span ``(K_h - 1) * dilation + 1``."""
    windows = depthwise_windows(x, kernel, stride, dilation)      # (pixels, C, K_h * K_w)
    return windows.transpose(0, 2, 1).reshape(len(windows), -1)


def sliding_window(x, kernel, stride=1, dilation=1, *, simd=1, depthwise=False,
                   window_simd=1, parallel="none"):
    """The output beats of :class:`hwgen.kernels.swg.SlidingWindow` for the NHWC maps
    ``x`` (one frame per image), as ``(beats, lanes)``.

    ``parallel="none"``: per output pixel and window position, ``C / simd`` beats of
    ``simd`` channels; ``"row"``: one beat of ``K_w * C`` elements per kernel row;
    ``"window"``: one beat of the whole ``K_h * K_w * C`` window. ``depthwise=True``: per
    output pixel, channel fold and window fold, ``simd * window_simd`` elements, element
    ``p * window_simd + s`` being channel ``f * simd + p`` at window position
    ``v * window_simd + s`` (:func:`depthwise_beats`).
    """
    if depthwise:
        if parallel != "none":
            raise ValueError(f"parallel={parallel!r} is for the MVAU order, not depthwise")
        return depthwise_beats(depthwise_windows(x, kernel, stride, dilation), simd,
                               window_simd)
    if window_simd != 1:
        raise ValueError(f"window_simd={window_simd} applies to depthwise windows only")
    rows = im2col(x, kernel, stride, dilation)
    kernel_w = kernel if np.ndim(kernel) == 0 else kernel[1]
    channels = np.shape(x)[-1]
    lanes = {"none": simd, "row": int(kernel_w) * channels, "window": rows.shape[1]}
    if parallel not in lanes:
        raise ValueError(f"parallel must be one of 'none', 'row', 'window', not {parallel!r}")
    if channels % simd:
        raise ValueError(f"simd={simd} must divide the {channels} channels")
    return rows.reshape(-1, lanes[parallel])


def conv2d(x, w, stride=1, dilation=1):
    """2-D convolution of an NHWC map ``x`` with ``O`` filters ``w`` of shape
    ``(O, K_h, K_w, C)`` (OHWI), without padding or bias: ``(N, OH, OW, O)`` exact integer
    sums, as :func:`im2col` followed by :func:`mvau` (ONNX ``Conv`` on NCHW data with OIHW
    weights, transposed)."""
    w = np.asarray(w)
    if w.ndim != 4 or w.shape[3] != np.shape(x)[-1]:
        raise ValueError(f"w must have shape (O, K_h, K_w, C) with C = {np.shape(x)[-1]}, "
                         f"not {w.shape}")
    out = mvau(im2col(x, w.shape[1:3], stride, dilation), w.reshape(len(w), -1))
    kernel, stride, dilation = (np.broadcast_to(np.asarray(v), (2,))
                                for v in (w.shape[1:3], stride, dilation))
    oh, ow = (np.asarray(np.shape(x)[1:3]) - (kernel - 1) * dilation - 1) // stride + 1
    return out.reshape(np.shape(x)[0], oh, ow, len(w))


# [vvau]

def _depthwise_map(x, kernel, stride, dilation):
    """The windows of an NHWC map as ``(N, OH, OW, C, K_h * K_w)`` (see
    :func:`depthwise_windows`)."""
    x = _pooling_map(x)
    (kh, kw), (sh, sw), (dh, dw) = (_pooling_axes(v, 2) for v in (kernel, stride, dilation))
    span_h, span_w = (kh - 1) * dh + 1, (kw - 1) * dw + 1
    if span_h > x.shape[1] or span_w > x.shape[2]:
        raise ValueError(f"kernel={kernel!r} with dilation={dilation!r} spans "
                         f"{span_h}x{span_w}, more than the {x.shape[1]}x{x.shape[2]} map")
    spans = np.lib.stride_tricks.sliding_window_view(x, (span_h, span_w), axis=(1, 2))
    windows = spans[:, ::sh, ::sw, :, ::dh, ::dw]
    return windows.reshape(*windows.shape[:4], kh * kw)


def depthwise_windows(x, kernel, stride=1, dilation=1):
    """The windows of a depthwise convolution of an NHWC map without padding, as
    ``(N * OH * OW, C, K_h * K_w)``: output pixels in (image, row, column) order, window
    elements in (kernel row, kernel column) order, ``OH = (H - span) // stride + 1`` for
    the dilated span ``(K_h - 1) * dilation + 1`` (ONNX ``Conv`` without ``pads``).
    ``kernel``, ``stride``, ``dilation``: one integer, or one per axis (height, width)."""
    windows = _depthwise_map(x, kernel, stride, dilation)
    return windows.reshape(-1, *windows.shape[3:])


def depthwise_conv2d(x, w, stride=1, dilation=1):
    """Depthwise 2-D convolution of an NHWC map ``x`` with one ``(K_h, K_w)`` filter per
    channel, ``w`` of shape ``(C, K_h, K_w)``: the ``(N, OH, OW, C)`` dot products of every
    window with its channel's filter (ONNX ``Conv`` with ``group = C``, no padding, no
    bias)."""
    w = np.asarray(w)
    channels = np.shape(x)[-1]
    if w.ndim != 3 or w.shape[0] != channels:
        raise ValueError(f"w must have shape (C, K_h, K_w) with C = {channels}, not {w.shape}")
    windows = _depthwise_map(x, w.shape[1:], stride, dilation)
    return (windows * w.reshape(channels, -1).astype(windows.dtype)).sum(axis=-1)


def vvau(windows, weights, thresholds=None, bias=0, offsets=None):
    """Vector-vector-activation (depthwise) unit: per pixel and channel ``c``, the dot
    product of the channel's window with its weights, ``acc[v, c] = windows[v, c] @
    weights[c]`` (plus ``offsets[c]``), then with ``thresholds`` (``(C, T)`` or ``(1, T)``)
    the activation :func:`threshold` with ``bias``.

    ``windows``: ``(pixels, C, K)`` integers (``K = K_h * K_w``; ``(pixels, C, K_h, K_w)``
    accepted), as :func:`depthwise_windows` gives them; ``weights``: ``(C, K)`` (or
    ``(C, K_h, K_w)``). Returns ``(pixels, C)``, which in NHWC order is the VVAU's output
    stream (``NF`` beats of ``PE`` channels per pixel). Each channel is :func:`mvau` of one
    row, so the accumulators are as exact as its.
    """
    windows, weights = np.asarray(windows), np.asarray(weights)
    if windows.ndim == 4:
        windows = windows.reshape(*windows.shape[:2], -1)
    if weights.ndim == 3:
        weights = weights.reshape(len(weights), -1)
    if windows.ndim != 3 or weights.ndim != 2 or windows.shape[1:] != weights.shape:
        raise ValueError(f"windows {windows.shape} and weights {weights.shape} do not fit: "
                         f"need (pixels, C, K) and (C, K)")
    offsets = None if offsets is None else np.asarray(offsets).reshape(-1)
    rows = [mvau(windows[:, c], weights[c:c + 1],
                 offsets=None if offsets is None else offsets[c:c + 1])
            for c in range(weights.shape[0])]
    accumulators = np.concatenate(rows, axis=1)
    if thresholds is None:
        return accumulators
    return threshold(accumulators, thresholds, bias)


def depthwise_beats(windows, pe, simd):
    """The VVAU's input stream for ``(pixels, C, K)`` windows: per pixel, for each channel
    fold ``nf`` and window fold ``sf``, one beat of ``pe * simd`` elements, element
    ``p * simd + s`` = window element ``sf * simd + s`` of channel ``nf * pe + p``. Returns
    ``(pixels * C / pe * K / simd, pe * simd)``."""
    windows = np.asarray(windows)
    if windows.ndim != 3 or windows.shape[1] % pe or windows.shape[2] % simd:
        raise ValueError(f"windows of shape {windows.shape} do not fold into pe={pe} "
                         f"channels and simd={simd} window elements")
    pixels, channels, window = windows.shape
    folded = windows.reshape(pixels, channels // pe, pe, window // simd, simd)
    return folded.transpose(0, 1, 3, 2, 4).reshape(-1, pe * simd)

# [padding and pooling]

def _pooling_map(x):
    """``x`` as an NHWC integer array."""
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"x must be an NHWC (N, H, W, C) array, not shape {x.shape}")
    if x.dtype.kind not in "iuO":
        raise ValueError(f"x must hold integers, not dtype {x.dtype}")
    return x if x.dtype.kind == "O" else x.astype(np.int64)


def _pooling_axes(value, count):
    return (int(value),) * count if np.ndim(value) == 0 else tuple(int(v) for v in value)


def pad(x, padding, value=0):
    """Pad an NHWC map with ``value``: ``padding`` is ``(top, left, bottom, right)`` (ONNX's
    spatial ``pads`` order) or one integer for all sides."""
    top, left, bottom, right = _pooling_axes(padding, 4)
    return np.pad(_pooling_map(x), ((0, 0), (top, bottom), (left, right), (0, 0)),
                  constant_values=value)


def _pool_windows(x, kernel, stride):
    """The ``(kh, kw)`` windows of an NHWC map at ``stride`` (default: ``kernel``), as
    ``(N, OH, OW, C, kh, kw)``; pixels after the last whole window are dropped (floor)."""
    kh, kw = _pooling_axes(kernel, 2)
    sh, sw = (kh, kw) if stride is None else _pooling_axes(stride, 2)
    x = _pooling_map(x)
    if kh > x.shape[1] or kw > x.shape[2]:
        raise ValueError(f"kernel={kernel!r} is larger than the "
                         f"{x.shape[1]}x{x.shape[2]} map")
    windows = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))
    return windows[:, ::sh, ::sw]


def maxpool(x, kernel, stride=None):
    """Max pooling of an NHWC map: ``(N, OH, OW, C)`` window maxima,
    ``OH = (H - kh) // sh + 1`` (ONNX ``MaxPool`` without padding)."""
    return _pool_windows(x, kernel, stride).max(axis=(-2, -1))


def avgpool_sums(x, kernel, stride=None):
    """Exact window sums of an NHWC map: ONNX ``AveragePool`` times ``kh * kw``."""
    return _pool_windows(x, kernel, stride).sum(axis=(-2, -1))


def global_sum(x):
    """The sum of every channel over the map: ``(N, 1, 1, C)`` (ONNX ``GlobalAveragePool``
    times ``H * W``)."""
    return _pooling_map(x).sum(axis=(1, 2), keepdims=True)

# [fork, join and channel-wise]

def _integers(name, x):
    """``x`` as an integer array (int64, or object for Python ints)."""
    x = np.asarray(x)
    if x.dtype.kind not in "iuO":
        raise ValueError(f"{name} must hold integers, not dtype {x.dtype}")
    return x if x.dtype.kind == "O" else x.astype(np.int64)


def _exact(*arrays, bound):
    """The arrays as int64, or as Python-int objects when a result may reach ``bound``."""
    dtype = np.int64 if bound < 2 ** 62 else object
    return [a.astype(dtype) for a in arrays]


def _magnitude(x):
    return int(np.abs(x).max(initial=0)) if x.size else 0


def duplicate(x, branches=2):
    """Fan-out: ``branches`` copies of ``x`` (a tuple of integer arrays), one per output
    stream."""
    x = _integers("x", x)
    if isinstance(branches, bool) or not isinstance(branches, int) or branches < 2:
        raise ValueError(f"branches must be an integer >= 2, not {branches!r}")
    return tuple(x.copy() for _ in range(branches))


def add_streams(a, b, shift0=0, shift1=0):
    """Element-wise ``(a << shift0) + (b << shift1)`` of two integer arrays of one shape
    (ONNX ``Add`` of ``a * 2**shift0`` and ``b * 2**shift1``); exact beyond int64."""
    a, b = _integers("a", a), _integers("b", b)
    if a.shape != b.shape:
        raise ValueError(f"a {a.shape} and b {b.shape} must have the same shape")
    for name, shift in (("shift0", shift0), ("shift1", shift1)):
        if isinstance(shift, bool) or not isinstance(shift, int) or shift < 0:
            raise ValueError(f"{name} must be an integer >= 0, not {shift!r}")
    a, b = _exact(a, b, bound=(_magnitude(a) << shift0) + (_magnitude(b) << shift1))
    return a * (1 << shift0) + b * (1 << shift1)


def concat(inputs, axis=-1):
    """Concatenation along ``axis`` (default: the channels of NHWC maps), as ONNX
    ``Concat``; ``inputs`` is a sequence of two or more integer arrays."""
    inputs = [_integers(f"inputs[{k}]", x) for k, x in enumerate(inputs)]
    if len(inputs) < 2:
        raise ValueError(f"concat needs 2 or more inputs, not {len(inputs)}")
    return np.concatenate(inputs, axis=axis)


#: ``channelwise`` operations: ``x OP c``.
CHANNELWISE_OPS = {"add": np.add, "mul": np.multiply, "ge": np.greater_equal,
                   "gt": np.greater, "le": np.less_equal, "lt": np.less}


def channelwise(x, constants, op):
    """``x OP c[channel]`` with the constants ``(C,)`` (or ``(1,)``) broadcast along the
    last axis of ``x`` (channels of NHWC maps); ``op`` is a key of
    :data:`CHANNELWISE_OPS`. Comparisons give 0/1; ``add`` and ``mul`` are exact beyond
    int64."""
    x, constants = _integers("x", x), _integers("constants", constants)
    if op not in CHANNELWISE_OPS:
        raise ValueError(f"op must be one of {', '.join(map(repr, CHANNELWISE_OPS))}, not "
                         f"{op!r}")
    if constants.ndim != 1 or (x.ndim and constants.shape[0] not in (1, x.shape[-1])):
        raise ValueError(f"constants of shape {constants.shape} do not fit the channels of x "
                         f"{x.shape}: need (C,) or (1,)")
    bound = _magnitude(x) * _magnitude(constants) + _magnitude(x) + _magnitude(constants)
    x, constants = _exact(x, constants, bound=bound)
    result = CHANNELWISE_OPS[op](x, constants)
    return result if op in ("add", "mul") else result.astype(np.int64)


def requantize(x, multiplier, offset=0, shift=0, low=None, high=None, bias=0, zero_point=0,
               exceptions=None):
    """``clamp((((x + b) * M + R) >> S) + e(x), low, high) + zero_point`` per element, with
    ``M``, ``R``, ``S`` and ``b`` scalars or ``(C,)`` arrays broadcast along the last axis of
    ``x`` (channels of NHWC maps), ``>>`` the floor of the division by ``2**S``, and ``e(x)``
    the ``delta`` of an ``(x, delta)`` pair of the channel's ``exceptions`` (a list per
    channel, or one for all), else 0. Exact: Python integers inside, int64 out."""
    x = _integers("x", x)
    channels = x.shape[-1] if x.ndim else 1

    def column(name, value):
        array = np.asarray(value, dtype=object).reshape(-1)
        if array.shape[0] not in (1, channels):
            raise ValueError(f"{name} of shape {np.shape(value)} does not fit the channels of "
                             f"x {x.shape}: need a scalar, (C,) or (1,)")
        return [int(v) for v in np.broadcast_to(array, (channels,))]
    m, r, s, b = (column(n, v) for n, v in (("multiplier", multiplier), ("offset", offset),
                                             ("shift", shift), ("bias", bias)))
    flat = np.asarray(x, dtype=object).reshape(-1, channels)
    out = np.empty(flat.shape, dtype=object)
    rows = [[]] * channels if exceptions is None else list(exceptions)
    if len(rows) == 1:
        rows = rows * channels
    for c in range(channels):
        fix = {int(e): int(d) for e, d in rows[c]}
        values = [(((int(v) + b[c]) * m[c] + r[c]) >> s[c]) + fix.get(int(v), 0)
                  for v in flat[:, c]]
        if low is not None:
            values = [max(v, low) for v in values]
        if high is not None:
            values = [min(v, high) for v in values]
        out[:, c] = [v + zero_point for v in values]
    return out.reshape(x.shape).astype(np.int64)

