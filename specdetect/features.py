"""Spectral feature vectors: a configuration and the functions that apply it.

A :class:`FeatureConfig` says how a luma image becomes a fixed-length vector
(the paper's recipe: log power, azimuthal mean, resample, divide by the first
coefficient). It is stored with every feature file and model so that features
are always computed the same way they were trained on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.fft
import scipy.ndimage
import scipy.sparse

from specdetect import spectra

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "MODEL_DEFAULT",
    "NORMS",
    "N_COHERENCE",
    "N_HARMONICS",
    "FeatureConfig",
    "block_plan",
    "coherence_numpy",
    "coherence_torch",
    "features_numpy",
    "features_torch",
    "harmonic_index",
]

SCALES = ("log", "linear")

#: Frequencies ``(fy, fx)`` in cycles per pixel where x2 and x4 up-sampling
#: put periodic peaks (replicas of the DC term); one of each conjugate pair.
HARMONICS = (
    (0.0, 0.25), (0.0, 0.5), (0.25, 0.0), (0.5, 0.0), (0.25, 0.25),
    (-0.25, 0.25), (0.25, 0.5), (-0.25, 0.5), (0.5, 0.25), (0.5, 0.5),
)  # fmt: skip
N_HARMONICS = len(HARMONICS)

#: Coherence features: spectral shifts by half the sampling rate along x, y
#: and both, times radial bands of the base frequency (see
#: :func:`coherence_numpy`).
COHERENCE_BANDS = 4
COHERENCE_BLOCK = 4  # side of the frequency blocks the coherence is averaged over
N_COHERENCE = 3 * COHERENCE_BANDS
# Spectral values per part that the coherence reads at a time.
_COHERENCE_CHUNK = 1 << 18
# Half-plane bins up to which the coherence gathers every block of a batch at
# once (:func:`_coherence_gather_plan`, about 12 bytes per pixel): a handful
# of array operations per batch instead of a few dozen per image and chunk,
# which were most of the coherence's cost on thumbnails. Larger images are
# read a chunk of blocks at a time from the compact layout.
_COHERENCE_GATHER_BINS = 1 << 16
# Added to the coherence denominator, in power units of the orthonormal DFT
# per bin: far below the noise floor of any 8-bit image (1/12 per bin), far
# above the float32 rounding of a constant image's spectrum.
_COHERENCE_EPS = 1e-3

#: Normalizations: those of :mod:`specdetect.spectra` plus ``center``.
NORMS = (*spectra.NORMS, "center")


@dataclass(frozen=True)
class FeatureConfig:
    """How an image becomes a feature vector.

    Parameters
    ----------
    bins : int
        Length of the resampled 1-D spectrum (default 64).
    norm : {"first", "minmax", "none", "center"}
        Normalization of the resampled spectrum: see
        :func:`specdetect.spectra.normalize_spectrum` for the first three;
        ``center`` subtracts the mean of bins ``1..`` from every bin (and
        gives tenths of the values, bels for ``scale="log"``). The
        paper's ``first`` divides by the DC term, whose decibel value grows
        with brightness and image size, so it mixes those into every bin;
        ``center`` keeps only the shape of the spectrum (see
        ``models/README.md`` for the comparison on held-apart photos).
    scale : {"log", "linear"}
        ``log`` takes decibels of the power before the ring mean (the paper's
        ``20 log|F|``); ``linear`` averages the power itself.
    drop_corners : bool
        Drop frequencies beyond the inscribed Nyquist circle.
    harmonics : bool
        Append :data:`N_HARMONICS` peak contrasts at the up-sampling
        harmonics (see :func:`harmonic_index`): the decibel level at each of
        the positions ``{0, 1/4, 1/2}`` cycles per pixel along and between
        the axes, over the level of its neighbourhood. The azimuthal mean
        averages these fixed-position peaks away.
    coherence : bool
        Append :data:`N_COHERENCE` spectral coherences between each
        frequency ``f`` and ``f + 1/2`` (along x, y and both), per radial
        band (see :func:`coherence_numpy`). Up-sampling by 2 makes the
        spectrum above a quarter cycle per pixel a filtered copy of the one
        below, so the two are phase-locked; in a camera image they are
        independent. This is the fingerprint the magnitude spectrum only
        hints at, and it survives the image's own blur or up-scaling history.
    residual : bool
        Compute everything on the noise residual, the image minus its 3x3
        median (edges replicated), instead of the image: the denoiser
        removes most of the scene, so what a generator or up-sampler adds
        (and a camera's own noise) dominates the spectrum (after Corvi et
        al. 2023).
    blocks : int
        Append ``blocks ** 2`` means of the 2-D log power spectrum over a
        ``blocks x blocks`` grid of the folded quadrant ``|fy|, |fx|`` in
        ``[0, 1/2]`` (DC left out), centred like ``norm="center"`` (tenths of
        the decibel values, minus their mean); 0 (default) appends none. The
        azimuthal mean averages over directions, so peaks on the axes or at
        ``(1/4, 1/4)`` are diluted in their ring; the grid keeps where they are.
    """

    bins: int = 64
    norm: str = "first"
    scale: str = "log"
    drop_corners: bool = True
    harmonics: bool = False
    coherence: bool = False
    residual: bool = False
    blocks: int = 0

    def __post_init__(self):
        if self.blocks < 0:
            raise ValueError(f"blocks must be 0 or positive, got {self.blocks}")
        if self.bins < 2:
            raise ValueError(f"bins must be at least 2, got {self.bins}")
        if self.norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {self.norm!r}")
        if self.scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}, got {self.scale!r}")

    @property
    def n_features(self) -> int:
        """Length of the feature vector."""
        return (
            self.bins
            + (N_HARMONICS if self.harmonics else 0)
            + (N_COHERENCE if self.coherence else 0)
            + self.blocks**2
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureConfig:
        """Build from a dict, refusing keys this version does not know."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown feature settings: {sorted(unknown)}")
        return cls(**data)


@spectra.shape_cache  # bounded by pixels: large plans do not pile up
def harmonic_index(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Half-plane positions of the peak and neighbourhood bins of each harmonic.

    For each frequency in :data:`HARMONICS`, the peak is the 3x3 block of
    bins nearest to it and the neighbourhood the 16 bins of the 5x5 ring
    around that block. Bins with ``kx < 0`` are mapped to their conjugate
    partner in the half-plane (equal power); indices wrap on tiny images.

    Returns
    -------
    peak : ndarray of int64, shape (N_HARMONICS, 9)
    ring : ndarray of int64, shape (N_HARMONICS, 16)
        Flat indices into the ``(H, W // 2 + 1)`` half-plane.
    """
    half = width // 2 + 1
    offsets = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)]
    inner = [o for o in offsets if max(abs(o[0]), abs(o[1])) <= 1]
    outer = [o for o in offsets if max(abs(o[0]), abs(o[1])) == 2]

    def flat(ky: int, kx: int) -> int:
        ky, kx = ky % height, kx % width
        if kx >= half:  # conjugate partner: (-ky, -kx)
            ky, kx = (-ky) % height, (-kx) % width
        return ky * half + kx

    peak, ring = [], []
    for fy, fx in HARMONICS:
        cy, cx = int(round(fy * height)), int(round(fx * width))
        peak.append([flat(cy + dy, cx + dx) for dy, dx in inner])
        ring.append([flat(cy + dy, cx + dx) for dy, dx in outer])
    peak_array, ring_array = np.array(peak, np.int64), np.array(ring, np.int64)
    peak_array.setflags(write=False)
    ring_array.setflags(write=False)
    return peak_array, ring_array


@dataclass(frozen=True)
class _Sources:
    """Where the values of a block-aligned rectangle of frequencies are read.

    Value ``(ky, kx)`` of the rectangle is ``F[rows_in[ky], cols[kx]]``
    conjugated where ``conj[kx]``, else ``F[rows_out[ky], cols[kx]]``, and
    0 at the ``zeros`` positions ``(ky, kx)``. The rectangle is read
    ``step`` block rows at a time: the rows are copied, then ``pattern``
    (the same for every chunk) gathers the values block-major from the
    copy. So the plan costs ``O(H + W)`` plus one chunk's pattern, and a
    read is one contiguous copy and one 1-D gather.
    """

    rows_in: np.ndarray
    rows_out: np.ndarray
    cols: np.ndarray
    conj: np.ndarray
    zeros: tuple[tuple[int, int], ...]
    step: int
    pattern: np.ndarray
    flips: np.ndarray

    @classmethod
    def build(cls, rows_in, rows_out, cols, conj, zeros, half: int, n_block_rows: int):
        """Sources of a rectangle of ``n_block_rows`` block rows, with their chunk pattern."""
        block = COHERENCE_BLOCK
        n_block_cols = len(cols) // block
        step = min(n_block_rows, max(1, _COHERENCE_CHUNK // max(1, len(cols) * block)))
        mixed = bool(conj.any()) and not bool(conj.all())
        # Index into the copied rows: rows_out's chunk, then (mixed) rows_in's.
        second = (conj if mixed else np.zeros_like(conj)).reshape(1, n_block_cols, 1, block)
        row = np.arange(step * block).reshape(step, 1, block, 1)
        pattern = (second * (step * block) + row) * half + cols.reshape(1, n_block_cols, 1, block)
        flips = np.flatnonzero(np.broadcast_to(second, pattern.shape))
        dtype = np.int32 if 2 * step * block * half < 2**31 else np.intp
        sources = cls(
            rows_in, rows_out, cols, conj, zeros, step, pattern.astype(dtype).ravel(), flips
        )
        for array in (rows_in, rows_out, cols, conj, sources.pattern, flips):
            array.setflags(write=False)
        return sources

    def read(self, plane: np.ndarray, start: int, stop: int, conjugate=None, zero=0) -> np.ndarray:
        """Values of block rows ``[start, stop)`` (at most ``step``) from ``plane``, block-major.

        Parameters
        ----------
        plane : ndarray, shape (H, W // 2 + 1)
            The half plane (or anything laid out like it).
        start, stop : int
            Block rows.
        conjugate : callable, optional
            Applied to the values to conjugate; in place by default.
        zero
            The value of the ``zeros`` slots.

        Returns
        -------
        ndarray, shape (n_blocks, COHERENCE_BLOCK ** 2)
        """
        if conjugate is None:

            def conjugate(values):
                return np.conjugate(values, out=values)

        block = COHERENCE_BLOCK
        rows, count = slice(start * block, stop * block), (stop - start) * block
        every = bool(self.conj.all())
        copy = np.empty(
            (1 + bool(len(self.flips)), self.step * block, plane.shape[-1]), plane.dtype
        )
        # mode "clip" writes to `out` unbuffered (the rows are always in range).
        np.take(plane, (self.rows_in if every else self.rows_out)[rows], 0, copy[0, :count], "clip")
        if len(self.flips):
            np.take(plane, self.rows_in[rows], 0, copy[1, :count], "clip")
        values = copy.reshape(-1)[self.pattern[: count * len(self.cols)]]
        if every:
            values = conjugate(values)
        elif len(self.flips):
            flips = self.flips[: np.searchsorted(self.flips, len(values))]
            values[flips] = conjugate(values[flips])
        n_block_cols = len(self.cols) // block
        for y, x in self.zeros:
            if start * block <= y < stop * block:
                slot = (y // block - start) * n_block_cols + x // block
                values[slot * block * block + y % block * block + x % block] = zero
        return values.reshape(-1, block * block)


@dataclass(frozen=True)
class _CoherenceLayout:
    """Compact coherence plan of one shape (see :func:`coherence_plan`).

    ``groups`` holds, per base rectangle (the y shift's, then the one the x
    and diagonal shifts share), its block-row count, its :class:`_Sources`
    and the shifts that pair with it: ``(which, partner sources, band
    column of each block's base half, of its partner half)`` with band
    columns ``which * COHERENCE_BANDS + band`` (``N_COHERENCE``: outside
    every band).
    ``totals`` are the per-column sums of the band weights.
    """

    half: int
    groups: tuple
    totals: np.ndarray


@spectra.shape_cache  # bounded by pixels: large plans do not pile up
def _coherence_layout(height: int, width: int) -> _CoherenceLayout:
    half = width // 2 + 1
    block = COHERENCE_BLOCK
    edges = np.linspace(0.02, 0.5, COHERENCE_BANDS + 1)
    edges[-1] += 1e-9  # include the Nyquist ring
    shifts = ((height // 2, 0), (0, width // 2), (height // 2, width // 2))
    # Base rectangles: the y shift pairs rows [0, H/2) with [H/2, H); the x
    # and diagonal shifts pair column kx with W/2 - kx (after mirroring), so
    # columns [0, W/4) hold every pair once.
    regions = ((height // 2, half), (height, width // 4), (height, width // 4))
    totals = np.zeros(N_COHERENCE)
    per_shift = []
    for which, ((sy, sx), (rows, cols)) in enumerate(zip(shifts, regions, strict=True)):
        rows, cols = rows // block * block, cols // block * block
        ky, kx = np.arange(rows), np.arange(cols)
        py, px = (ky + sy) % height, (kx + sx) % width
        inside = px < half  # partner in the stored half plane: conj(F) there
        zeros = tuple((int(y), int(x)) for y in ky[py == 0] for x in kx[px == 0])
        n_block_rows, n_block_cols = rows // block, cols // block
        origin = ((0, 0),) if rows and cols else ()
        base = _Sources.build(ky, ky, kx, np.zeros(cols, bool), origin, half, n_block_rows)
        mirrored = np.where(inside, px, (-px) % width)
        partner = _Sources.build(py, (-py) % height, mirrored, inside, zeros, half, n_block_rows)
        # Band of each block: mean radius of its base and of its partner frequencies.
        columns = np.empty((2, n_block_rows * n_block_cols), np.uint8)
        step = max(1, spectra._CHUNK_BINS // max(1, 4 * cols))
        for start in range(0, n_block_rows, step):
            stop = min(start + step, n_block_rows)
            blocks = slice(start * n_block_cols, stop * n_block_cols)
            for side, (y, x) in enumerate(((ky, kx), (py, px))):
                y = y[start * block : stop * block].reshape(-1, 1, block, 1)
                x = x.reshape(1, -1, 1, block)
                y, x = (np.broadcast_to(a, np.broadcast_shapes(y.shape, x.shape)) for a in (y, x))
                y, x = (a.reshape(-1, block * block) for a in (y, x))
                radius = np.hypot(_signed_freq(y, height), _signed_freq(x, width)).mean(-1)
                band = np.searchsorted(edges, radius, side="right") - 1
                valid = (band >= 0) & (band < COHERENCE_BANDS)
                columns[side, blocks] = np.where(valid, which * COHERENCE_BANDS + band, N_COHERENCE)
        for side in columns:
            totals += 0.5 * np.bincount(side, minlength=N_COHERENCE + 1)[:N_COHERENCE]
        columns.setflags(write=False)
        per_shift.append((n_block_rows, base, (which, partner, columns[0], columns[1])))
    (rows_y, base_y, pair_y), (rows_x, base_x, pair_x), (_, _, pair_d) = per_shift
    totals.setflags(write=False)
    groups = ((rows_y, base_y, (pair_y,)), (rows_x, base_x, (pair_x, pair_d)))
    return _CoherenceLayout(half, groups, totals)


@spectra.shape_cache  # bounded by pixels: large plans do not pile up
def coherence_plan(height: int, width: int) -> tuple[np.ndarray, int, int, np.ndarray]:
    """Frequency blocks, their half-rate partners and band weights for a shape.

    The spectrum is the ``rfft2`` half plane ``F`` of ``(H, W // 2 + 1)``
    bins, flattened to ``N`` values and extended to ``[F, conj(F), 0]``
    (``2N + 1`` values). For each shift ``s`` by half the sampling rate
    (``(H//2, 0)``, ``(0, W//2)``, ``(H//2, W//2)``), the base frequencies
    ``f`` are a rectangle of the half plane that holds each pair
    ``{f, f + s}`` once (up to the Hermitian mirror ``-f``, which has the
    same coherence and radius), cut into non-overlapping
    ``COHERENCE_BLOCK`` x ``COHERENCE_BLOCK`` blocks. The partner
    ``conj(F(f + s))`` is read from the half plane directly or, where
    ``f + s`` lies in the other half, as ``F(-(f + s))`` (Hermitian
    symmetry). The DC term points at the trailing zero (images are
    centred).

    This is the explicit form, for the torch implementation and for
    inspection (about 8 bytes per pixel); :func:`coherence_numpy` reads the
    same blocks from a compact layout of a few numbers per row and column,
    a chunk of blocks at a time.

    Returns
    -------
    index : ndarray of int32 (int64 past 2**30 bins), shape (K * COHERENCE_BLOCK ** 2,)
        Indices into the extended spectrum, block-major, of the base blocks
        of the y shift (``n_y`` blocks) and of the x and diagonal shifts
        (``n_x`` blocks, shared), then the partners of the y, x and diagonal
        shifts (``n_y``, ``n_x``, ``n_x`` blocks): ``K = 2 * n_y + 3 * n_x``.
    n_y, n_x : int
        Block counts.
    weights : ndarray of float64, shape (n_y + 2 * n_x, N_COHERENCE)
        Band averaging: a block counts half for the radial band of its base
        frequencies and half for that of its partners (mean radius); band
        ``b`` covers ``0.02 + b * 0.12 .. 0.02 + (b + 1) * 0.12`` cycles per
        pixel. Columns sum to 1, or are 0 for a band without blocks (tiny
        images).
    """
    layout = _coherence_layout(height, width)
    n_bins = height * layout.half
    zero = 2 * n_bins

    def conjugate(index: np.ndarray) -> np.ndarray:
        return index + n_bins

    def extended(sources: _Sources, n_block_rows: int) -> np.ndarray:
        plane = np.arange(n_bins).reshape(height, layout.half)
        # conj(F) is the second part, and the trailing zero the last value.
        chunks = [
            sources.read(plane, start, min(start + sources.step, n_block_rows), conjugate, zero)
            for start in range(0, n_block_rows, max(1, sources.step))
        ]
        return np.concatenate(chunks, axis=None) if chunks else np.zeros(0, np.int64)

    (rows_y, base_y, _), (rows_x, base_x, _) = layout.groups
    parts = [extended(base_y, rows_y), extended(base_x, rows_x)]
    parts += [extended(pair[1], rows) for rows, _, pairs in layout.groups for pair in pairs]
    index = np.concatenate(parts, axis=None)
    if 2 * n_bins + 1 < 2**31:  # half the memory of int64, same gathers
        index = index.astype(np.int32)
    pairs = [pair for _, _, group in layout.groups for pair in group]
    weight = np.zeros((sum(len(pair[2]) for pair in pairs), N_COHERENCE))
    for side in (2, 3):
        columns = np.concatenate([pair[side] for pair in pairs])
        valid = np.flatnonzero(columns < N_COHERENCE)
        weight[valid, columns[valid]] += 0.5
    weight = weight / np.maximum(weight.sum(axis=0, keepdims=True), 1e-12)
    for array in (index, weight):
        array.setflags(write=False)
    return index, len(pairs[0][2]), len(pairs[1][2]), weight


def _signed_freq(index: np.ndarray, size: int) -> np.ndarray:
    """Frequency in cycles per pixel of DFT index ``index`` (``fftfreq``)."""
    return np.where(index <= (size - 1) // 2, index, index - size) / size


def _half_spectrum(images: np.ndarray) -> np.ndarray:
    """``rfft2(images, norm="ortho")``: the transform of :func:`spectra.power_spectrum`."""
    images = np.asarray(images)
    if images.dtype != np.float32:
        images = images.astype(np.float64)
    return scipy.fft.rfft2(images, norm="ortho", workers=1)


def _coherence_from_spectrum(
    spectrum: np.ndarray, power: np.ndarray, shape: tuple[int, int]
) -> np.ndarray:
    """Coherences from the half-plane spectrum, its power and the image shape.

    Reads the blocks a chunk of block rows at a time (see
    :class:`_CoherenceLayout`), so that the temporaries stay a few megabytes
    whatever the image size.
    """
    height, half = spectrum.shape[-2:]
    if height * half <= _COHERENCE_GATHER_BINS:
        return _coherence_gathered(spectrum, shape)
    lead = spectrum.shape[:-2]
    layout = _coherence_layout(*shape)
    block_size = COHERENCE_BLOCK**2
    flat = spectrum.reshape(-1, height, half)
    real_dtype = flat.real.dtype
    ones = np.ones(block_size, flat.dtype)
    ones_real = np.ones(2 * block_size, real_dtype)
    eps = _COHERENCE_EPS * block_size

    def block_power(values: np.ndarray) -> np.ndarray:
        # Block sums are products with ones (BLAS); a block's power is the
        # squared norm of its values seen as 2 * block_size reals.
        as_real = values.view(real_dtype)
        return (as_real * as_real) @ ones_real

    sums = np.zeros((len(flat), N_COHERENCE))
    for image, total in zip(flat, sums, strict=True):
        for n_block_rows, base, pairs in layout.groups:
            n_block_cols = len(base.cols) // COHERENCE_BLOCK
            step = max(1, base.step)
            for start in range(0, n_block_rows, step):
                stop = min(start + step, n_block_rows)
                blocks = slice(start * n_block_cols, stop * n_block_cols)
                base_values = base.read(image, start, stop)
                base_power = block_power(base_values)
                for _, partner, base_band, partner_band in pairs:
                    partner_values = partner.read(image, start, stop)
                    ratio = np.abs((base_values * partner_values) @ ones)
                    ratio /= np.sqrt(base_power * block_power(partner_values)) + eps
                    for band in (base_band[blocks], partner_band[blocks]):
                        total += np.bincount(band, ratio, N_COHERENCE + 1)[:N_COHERENCE]
    means = 0.5 * sums / np.maximum(layout.totals, 1e-12)  # band means of the blocks
    return means.astype(real_dtype).reshape(*lead, N_COHERENCE)


@spectra.shape_cache(weight=16)  # ~12 bytes per pixel: held for 1/16 of the pixels
def _coherence_gather_plan(height: int, width: int) -> tuple[np.ndarray, int, np.ndarray]:
    """:func:`coherence_plan` rearranged into pairs of blocks, for :func:`_coherence_gathered`.

    Returns
    -------
    index : ndarray of int32, shape (2 * P * COHERENCE_BLOCK ** 2,)
        Indices into the extended spectrum ``[F, conj(F), 0]``: the base
        blocks of the ``P = n_y + 2 * n_x`` pairs (those of the y shift, of
        the x shift and again of the x shift for the diagonal one), then
        their partners in the same order.
    n_pairs : int
        ``P``.
    weights : ndarray of float64, shape (P, N_COHERENCE)
        The band weights of :func:`coherence_plan`.
    """
    index, n_y, n_x, weights = coherence_plan.__wrapped__(height, width)  # not cached twice
    blocks = index.reshape(-1, COHERENCE_BLOCK**2)
    n_base = n_y + n_x
    pairs = np.concatenate([blocks[:n_base], blocks[n_y:n_base], blocks[n_base:]])
    pairs = pairs.ravel().astype(np.int32)
    pairs.setflags(write=False)
    return pairs, n_base + n_x, weights


def _coherence_gathered(spectrum: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """:func:`_coherence_from_spectrum` of small images: every block of the batch at once.

    Gathers the block pairs of :func:`_coherence_gather_plan` from the
    extended spectrum ``[F, conj(F), 0]`` of each image in one indexing
    operation, then computes the block ratios (in the spectrum's precision,
    as the chunked reduction does) and their band means for the whole batch.
    """
    height, half = spectrum.shape[-2:]
    lead = spectrum.shape[:-2]
    index, n_pairs, weights = _coherence_gather_plan(*shape)
    block_size = COHERENCE_BLOCK**2
    n_bins = height * half
    flat = spectrum.reshape(-1, n_bins)
    real_dtype = flat.real.dtype
    extended = np.empty((len(flat), 2 * n_bins + 1), flat.dtype)
    extended[:, :n_bins] = flat
    np.conjugate(flat, out=extended[:, n_bins : 2 * n_bins])
    extended[:, -1] = 0
    gathered = np.take(extended, index, axis=1).reshape(len(flat), 2 * n_pairs, block_size)
    # Block sums are products with ones (BLAS); a block's power is the
    # squared norm of its values seen as 2 * block_size reals.
    as_real = gathered.view(real_dtype)
    block_power = (as_real * as_real) @ np.ones(2 * block_size, real_dtype)
    cross = (gathered[:, :n_pairs] * gathered[:, n_pairs:]) @ np.ones(block_size, flat.dtype)
    ratio = np.abs(cross)
    denominator = np.sqrt(block_power[:, :n_pairs] * block_power[:, n_pairs:])
    ratio /= denominator + _COHERENCE_EPS * block_size
    # One product per image (see spectra.resample_spectrum): the same bits alone or in a batch.
    means = np.matmul(ratio.astype(np.float64)[:, None, :], weights)[:, 0]
    return means.astype(real_dtype).reshape(*lead, N_COHERENCE)


def coherence_numpy(images: np.ndarray) -> np.ndarray:
    """Spectral coherence between frequencies ``f`` and ``f + 1/2``.

    For each shift ``s`` by half the sampling rate (along y, x and both) and
    each block ``B`` of frequencies (see :func:`coherence_plan`),
    ``|sum_B F(f) F*(f+s)| / sqrt(sum_B |F(f)|^2 * sum_B |F(f+s)|^2)``
    (Welch-style averaging over non-overlapping blocks), averaged over
    radial bands. An image up-sampled by 2 is ``K(f) X(2f)`` with ``X(2f)``
    periodic in ``1/2``, so ``F(f + s) / F(f) = K(f + s) / K(f)`` varies
    smoothly and the coherence is near 1; for a camera image it stays at
    the chance level of a block (about 0.2).

    Parameters
    ----------
    images : ndarray, shape (H, W) or (B, H, W)

    Returns
    -------
    ndarray, shape (..., N_COHERENCE), in [0, 1]: shift-major (y, x, both),
    band-minor.
    """
    images = np.asarray(images)
    spectrum = _half_spectrum(images)
    power = spectrum.real**2 + spectrum.imag**2
    return _coherence_from_spectrum(spectrum, power, images.shape[-2:])


def _coherence_torch_from_spectrum(
    spectrum: torch.Tensor, power: torch.Tensor, shape: tuple[int, int]
) -> torch.Tensor:
    """Torch twin of :func:`_coherence_from_spectrum`."""
    import torch

    height, half = spectrum.shape[-2:]
    lead = spectrum.shape[:-2]
    index, n_y, n_x, weights = coherence_plan(*shape)
    block_size = COHERENCE_BLOCK**2
    flat = spectrum.reshape(-1, height * half)
    zero = torch.zeros((flat.shape[0], 1), dtype=flat.dtype, device=flat.device)
    values = torch.cat([flat, torch.conj_physical(flat), zero], dim=-1)
    gathered = values[:, torch.tensor(index, device=flat.device)]
    gathered = gathered.reshape(len(flat), -1, block_size)
    block_power = (gathered.real**2 + gathered.imag**2).sum(-1)
    base_y, base_x = gathered[:, :n_y], gathered[:, n_y : n_y + n_x]
    partner = gathered[:, n_y + n_x :]
    cross_y = (base_y * partner[:, :n_y]).sum(-1)
    cross_x = (base_x[:, None] * partner[:, n_y:].reshape(len(flat), 2, n_x, block_size)).sum(-1)
    cross = torch.cat([cross_y, cross_x.reshape(len(flat), -1)], dim=-1)
    power_base = block_power[:, : n_y + n_x]
    power_base = torch.cat([power_base, power_base[:, n_y:]], dim=-1)
    denominator = torch.sqrt(power_base * block_power[:, n_y + n_x :])
    ratio = cross.abs() / (denominator + _COHERENCE_EPS * block_size)
    weights = torch.tensor(weights, device=ratio.device, dtype=ratio.dtype)
    return (ratio @ weights).reshape(*lead, N_COHERENCE)


def coherence_torch(images: torch.Tensor) -> torch.Tensor:
    """Torch twin of :func:`coherence_numpy` for ``(..., H, W)`` tensors."""
    import torch

    spectrum = torch.fft.rfft2(images, norm="ortho")
    power = spectrum.real**2 + spectrum.imag**2
    return _coherence_torch_from_spectrum(spectrum, power, tuple(images.shape[-2:]))


def median_residual(images: np.ndarray) -> np.ndarray:
    """``images`` minus their 3x3 median (edges replicated), over the last two axes.

    Examples
    --------
    >>> float(np.abs(median_residual(np.full((5, 5), 7.0))).max())
    0.0
    """
    images = np.asarray(images)
    if images.dtype != np.float32:
        images = images.astype(np.float64)
    size = (1,) * (images.ndim - 2) + (3, 3)
    return images - scipy.ndimage.median_filter(images, size=size, mode="nearest")


def median_residual_torch(images: torch.Tensor) -> torch.Tensor:
    """Torch twin of :func:`median_residual` for ``(..., H, W)`` tensors."""
    import torch.nn.functional as F

    lead, (height, width) = images.shape[:-2], images.shape[-2:]
    flat = images.reshape(-1, 1, height, width)
    padded = F.pad(flat, (1, 1, 1, 1), mode="replicate")
    windows = F.unfold(padded, 3)  # (B, 9, H * W)
    median = windows.median(dim=1).values.reshape(flat.shape)
    return (flat - median).reshape(*lead, height, width)


@spectra.shape_cache  # bounded by pixels: large plans do not pile up
def block_plan(height: int, width: int, blocks: int) -> tuple[np.ndarray, np.ndarray]:
    """Grid cell of every half-plane frequency and the averaging matrix.

    Cell ``(by, bx)`` holds the frequencies with ``|fy|`` in
    ``[by, by + 1) / (2 * blocks)`` and ``fx`` likewise (the Nyquist row and
    column join the last cell); the DC term belongs to none.

    Returns
    -------
    cells : ndarray of int64, shape (H * (W // 2 + 1),)
        Flat cell index ``by * blocks + bx`` of each bin, ``-1`` for DC.
    weights : ndarray of float64, shape (H * (W // 2 + 1), blocks ** 2)
        Averaging weights (``1 / count`` of the cell; a column of zeros for
        a cell without bins, which tiny images can have).
    """
    fy = np.abs(np.fft.fftfreq(height))[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    by = np.minimum((fy * 2 * blocks).astype(np.int64), blocks - 1)
    bx = np.minimum((fx * 2 * blocks).astype(np.int64), blocks - 1)
    cells = (by * blocks + bx).ravel()
    cells[0] = -1
    counts = np.bincount(cells[1:], minlength=blocks**2).astype(np.float64)
    weights = np.zeros((len(cells), blocks**2))
    weights[np.arange(1, len(cells)), cells[1:]] = 1.0 / counts[cells[1:]]
    for array in (cells, weights):
        array.setflags(write=False)
    return cells, weights


@spectra.shape_cache  # bounded by pixels: large plans do not pile up
def _block_matrix(height: int, width: int, blocks: int) -> scipy.sparse.csr_matrix:
    return scipy.sparse.csr_matrix(block_plan(height, width, blocks)[1])


def block_means(decibels: np.ndarray, shape: tuple[int, int], blocks: int) -> np.ndarray:
    """Centred grid means of the half-plane decibels (see ``FeatureConfig.blocks``)."""
    height, width = shape
    lead = decibels.shape[:-2]
    flat = decibels.reshape(-1, height * (width // 2 + 1))
    grid = np.asarray(flat @ _block_matrix(height, width, blocks))
    grid = 0.1 * (grid - grid.mean(axis=-1, keepdims=True))
    return grid.reshape(*lead, blocks**2)


def block_means_torch(decibels: torch.Tensor, shape: tuple[int, int], blocks: int):
    """Torch twin of :func:`block_means`."""
    import torch

    height, width = shape
    cells, weights = block_plan(height, width, blocks)
    lead = decibels.shape[:-2]
    flat = decibels.reshape(-1, height * (width // 2 + 1))
    keep = torch.tensor(np.flatnonzero(cells >= 0), device=flat.device)
    cell = torch.tensor(cells[cells >= 0], device=flat.device)
    scale = torch.tensor(
        weights[cells >= 0, cells[cells >= 0]], device=flat.device, dtype=flat.dtype
    )
    grid = torch.zeros(flat.shape[0], blocks**2, device=flat.device, dtype=flat.dtype)
    grid = grid.index_add(1, cell, flat[:, keep] * scale)
    grid = 0.1 * (grid - grid.mean(dim=-1, keepdim=True))
    return grid.reshape(*lead, blocks**2)


def features_numpy(images: np.ndarray, config: FeatureConfig = FeatureConfig()) -> np.ndarray:
    """Feature vectors of one luma image ``(H, W)`` or a batch ``(B, H, W)``.

    The NumPy/SciPy reference; :func:`features_torch` gives the same values.

    Examples
    --------
    >>> features_numpy(np.zeros((32, 48), np.float32), FeatureConfig(bins=8)).shape
    (8,)
    """
    images = np.asarray(images)
    shape = images.shape[-2:]
    if config.residual:
        images = median_residual(images)
    if config.coherence:  # one transform for both: the same one power_spectrum computes
        spectrum = _half_spectrum(images)
        power = spectrum.real**2
        power += spectrum.imag**2  # in place: one temporary fewer
    else:
        power = spectra.power_spectrum(images)
    values = spectra.log_power(power) if config.scale == "log" else power
    ring_means, radii = spectra.azimuthal_integral(values, shape, config.drop_corners)
    resampled = spectra.resample_spectrum(ring_means, radii, config.bins)
    if config.norm == "center":
        # Tenths of the decibel values keep float32 rounding below 1e-5.
        out = 0.1 * (resampled - resampled[..., 1:].mean(axis=-1, keepdims=True))
    else:
        out = spectra.normalize_spectrum(resampled, config.norm)
    if config.harmonics:
        decibels = values if config.scale == "log" else spectra.log_power(power)
        flat = decibels.reshape(*decibels.shape[:-2], -1)
        peak, ring = harmonic_index(*shape)
        # Contiguous copies: the gather of a batch comes out batch-minor, and a
        # mean over that layout adds in another order than over one image's.
        peak_db, ring_db = (np.ascontiguousarray(flat[..., i]) for i in (peak, ring))
        contrast = peak_db.mean(-1) - ring_db.mean(-1)
        # Decibels are large numbers; a tenth keeps them near the spectrum's scale.
        out = np.concatenate([out, 0.1 * contrast.astype(out.dtype)], axis=-1)
    if config.coherence:
        coherence = _coherence_from_spectrum(spectrum, power, shape)
        out = np.concatenate([out, coherence.astype(out.dtype)], axis=-1)
    if config.blocks:
        decibels = values if config.scale == "log" else spectra.log_power(power)
        grid = block_means(decibels, shape, config.blocks)
        out = np.concatenate([out, grid.astype(out.dtype)], axis=-1)
    return out.astype(np.float32)


def features_torch(images: torch.Tensor, config: FeatureConfig = FeatureConfig()) -> torch.Tensor:
    """Torch twin of :func:`features_numpy` for a batch ``(B, H, W)`` on any device."""
    import torch

    shape = tuple(images.shape[-2:])
    if config.residual:
        images = median_residual_torch(images)
    if config.coherence:
        spectrum = torch.fft.rfft2(images, norm="ortho")
        power = spectrum.real**2 + spectrum.imag**2
    else:
        power = spectra.power_spectrum_torch(images)
    values = spectra.log_power_torch(power) if config.scale == "log" else power
    ring_means, radii = spectra.azimuthal_integral_torch(values, shape, config.drop_corners)
    resampled = spectra.resample_spectrum_torch(ring_means, radii, config.bins)
    if config.norm == "center":
        out = 0.1 * (resampled - resampled[..., 1:].mean(dim=-1, keepdim=True))
    else:
        out = spectra.normalize_spectrum_torch(resampled, config.norm)
    if config.harmonics:
        decibels = values if config.scale == "log" else spectra.log_power_torch(power)
        flat = decibels.reshape(*decibels.shape[:-2], -1)
        peak, ring = (torch.tensor(i, device=flat.device) for i in harmonic_index(*shape))
        contrast = flat[..., peak].mean(-1) - flat[..., ring].mean(-1)
        out = torch.cat([out, 0.1 * contrast.to(out.dtype)], dim=-1)
    if config.coherence:
        coherence = _coherence_torch_from_spectrum(spectrum, power, shape)
        out = torch.cat([out, coherence.to(out.dtype)], dim=-1)
    if config.blocks:
        decibels = values if config.scale == "log" else spectra.log_power_torch(power)
        grid = block_means_torch(decibels, shape, config.blocks)
        out = torch.cat([out, grid.to(out.dtype)], dim=-1)
    return out


#: Feature settings for new models (``specdetect train``, ``Detector()``):
#: the paper's recipe with ``norm="center"`` plus the half-band coherence,
#: which win on held-apart photos (``make repro-detect``, ``models/README.md``).
#: ``FeatureConfig()`` stays the paper's recipe.
MODEL_DEFAULT = FeatureConfig(norm="center", coherence=True)
