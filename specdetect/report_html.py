"""The HTML review page of a scan: ``specdetect scan ... --html page.html``.

One self-contained file: no network fetch, no external style sheet or
script, images as small inline JPEG thumbnails (``data:`` URIs), plots as
inline SVG. Rows come **flagged first**, by score from high to low, then the
unreadable inputs, then the inputs labelled real, by score; that order is in
the file, so the page reads right with JavaScript off, and a few lines of
inline JavaScript add buttons that re-sort the table by score.

Each row shows the input's score, label and path, and, for the first
:data:`MAX_FLAGGED_DETAILS` flagged rows and :data:`MAX_OTHER_DETAILS` other
rows in that order, a thumbnail and a plot of its spectrum (the part of the
feature row the model scored, as :func:`specdetect.scan.scan` gives it with
``spectra=True``) against a **reference band**: the mean ± one standard
deviation of the spectra of the inputs this scan labelled real (the model
file stores no reference of its own). Videos also get a bar per scored frame
and the threshold line.

Memory stays bounded for any number of inputs: rows are spooled to a
temporary file as they arrive (one JSON line each), and only a 22-byte index
entry per row (group, score, offset, length) and the band's running sums
stay in memory. Thumbnails are made at the end, by reading those few inputs
again.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import tempfile
from array import array
from collections.abc import Iterator

import numpy as np

from specdetect import __version__
from specdetect.report import Summary, _printable

__all__ = ["MAX_FLAGGED_DETAILS", "MAX_OTHER_DETAILS", "THUMBNAIL_SIZE", "HtmlReport"]

#: Flagged rows (in page order) that get a thumbnail and plots.
MAX_FLAGGED_DETAILS = 1000
#: Other rows (real, then unreadable: in page order) that get them.
MAX_OTHER_DETAILS = 100
#: Longest side of a thumbnail, in pixels.
THUMBNAIL_SIZE = 96

_FLAGGED, _ERROR, _REAL = 0, 1, 2

# Plot geometry (SVG user units = CSS pixels).
_W, _H, _PAD = 200, 72, 3


class HtmlReport:
    """Writes the review page of a scan to ``path`` (atomically, at :meth:`close`).

    Parameters
    ----------
    path : str or PathLike
        The HTML file.
    model : str
        The model file, as reported.
    threshold : float
        The decision threshold used.
    max_flagged_details, max_other_details : int
        Rows that get a thumbnail and plots (see the module docstring).

    Use as a context manager, or call :meth:`write` for each record and then
    :meth:`close`; a block that raises writes nothing.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        model: str,
        threshold: float,
        *,
        max_flagged_details: int = MAX_FLAGGED_DETAILS,
        max_other_details: int = MAX_OTHER_DETAILS,
    ):
        self.path = path
        self.model = str(model)
        self.threshold = float(threshold)
        self.max_flagged = max_flagged_details
        self.max_other = max_other_details
        self.summary = Summary()
        self._spool = tempfile.TemporaryFile(prefix="specdetect-html-")
        self._group, self._score = array("b"), array("d")
        self._offset, self._length = array("q"), array("I")
        self._n_real_spectra = 0
        self._sum: np.ndarray | None = None
        self._sumsq: np.ndarray | None = None

    # ------------------------------------------------------------ collecting
    def write(self, record: dict) -> None:
        """Add one scan record (``spectrum`` is used when present)."""
        self.summary.add(record)
        if "error" in record:
            group, score = _ERROR, -1.0
        else:
            group = _FLAGGED if record.get("label") == "fake" else _REAL
            score = float(record["score"])
        spectrum = record.get("spectrum")
        if group == _REAL and spectrum:
            values = np.asarray(spectrum, dtype=np.float64)
            if self._sum is None:
                self._sum, self._sumsq = np.zeros_like(values), np.zeros_like(values)
            if values.shape == self._sum.shape and np.all(np.isfinite(values)):
                self._sum += values
                self._sumsq += values**2
                self._n_real_spectra += 1
        line = (json.dumps(record, ensure_ascii=True) + "\n").encode("ascii")
        self._offset.append(self._spool.tell())
        self._length.append(len(line))
        self._spool.write(line)
        self._group.append(group)
        self._score.append(score)

    def __enter__(self) -> HtmlReport:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        try:
            if kind is None:
                self.close()
        finally:
            self._spool.close()

    # ------------------------------------------------------------- rendering
    def close(self) -> Summary:
        """Write the page (atomically) and return the summary."""
        from specdetect.atomic import atomic_write

        order = self._order()
        band = self._band()
        detailed = self._detailed(order)
        y_range = self._y_range(band, (self._read(i) for i in detailed))
        with atomic_write(self.path, "wb") as raw:
            out = io.TextIOWrapper(raw, encoding="utf-8", newline="\n")
            out.write(self._head(band, y_range))
            for rank, index in enumerate(order):
                record = self._read(index)
                out.write(self._row(rank, record, index in detailed, band, y_range))
            out.write(_TAIL)
            out.flush()
            out.detach()
        self._spool.close()
        return self.summary

    def _read(self, index: int) -> dict:
        self._spool.seek(self._offset[index])
        return json.loads(self._spool.read(self._length[index]))

    def _order(self) -> np.ndarray:
        """Flagged, then errors, then real; by score from high to low; stable."""
        group = np.frombuffer(self._group, dtype=np.int8) if self._group else np.zeros(0, np.int8)
        score = np.frombuffer(self._score, dtype=np.float64) if self._score else np.zeros(0)
        return np.lexsort((np.arange(len(group)), -score, group))

    def _detailed(self, order: np.ndarray) -> set[int]:
        group = np.frombuffer(self._group, dtype=np.int8) if self._group else np.zeros(0, np.int8)
        ranked = group[order]
        flagged = order[ranked == _FLAGGED][: self.max_flagged]
        real = order[ranked == _REAL][: self.max_other]
        return {int(i) for i in flagged} | {int(i) for i in real}

    def _band(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Mean and standard deviation of the real-labelled spectra (None below 2)."""
        n = self._n_real_spectra
        if n < 2:
            return None
        mean = self._sum / n
        var = np.maximum(self._sumsq / n - mean**2, 0.0)
        return mean, np.sqrt(var)

    @staticmethod
    def _y_range(band, records: Iterator[dict]) -> tuple[float, float]:
        lo, hi = math.inf, -math.inf
        if band is not None:
            mean, std = band
            lo, hi = float((mean - std)[1:].min()), float((mean + std)[1:].max())
        for record in records:
            values = record.get("spectrum")
            if values and len(values) > 1:
                lo, hi = min(lo, min(values[1:])), max(hi, max(values[1:]))
        if not math.isfinite(lo) or not math.isfinite(hi):
            return 0.0, 1.0
        if hi - lo < 1e-9:
            lo, hi = lo - 0.5, hi + 0.5
        margin = 0.05 * (hi - lo)
        return lo - margin, hi + margin

    # -------------------------------------------------------------- markup
    def _head(self, band, y_range) -> str:
        s = self.summary
        title = f"specdetect scan: {s.fake} of {s.n} inputs flagged"
        if band is not None:
            band_note = (
                f"grey band: mean ± 1 std of the {self._n_real_spectra} inputs this scan "
                "labelled real"
            )
            defs = _band_svg(band, y_range)
        else:
            band_note = "no reference band: fewer than 2 inputs with a spectrum were labelled real"
            defs = ""
        n_details = f"{self.max_flagged:,} flagged and {self.max_other:,} other"
        return _HEAD.format(
            title=html.escape(title),
            n=s.n,
            fake=s.fake,
            real=s.real,
            errors=s.errors,
            threshold=self.threshold,
            model=html.escape(_printable(self.model)),
            version=__version__,
            band_note=band_note,
            n_details=n_details,
            defs=defs,
            style=_STYLE,
        )

    def _row(self, rank: int, record: dict, detailed: bool, band, y_range) -> str:
        path = html.escape(_printable(record["path"]))
        if "error" in record:
            reason = html.escape(_printable(record["error"]))
            return (
                f'<tr class="error" data-rank="{rank}" data-score="-1"><td></td>'
                f'<td class="score">–</td><td><span class="badge error">error</span></td>'
                f'<td class="path">{path}<div class="why">{reason}</div></td>'
                "<td></td><td></td></tr>\n"
            )
        label = record["label"]
        score = float(record["score"])
        thumb = plot = frames = ""
        if detailed:
            uri = _thumbnail(record["path"], record.get("kind", "image"))
            if uri:
                thumb = f'<img src="{uri}" alt="" loading="lazy">'
            if record.get("spectrum"):
                plot = _spectrum_svg(record["spectrum"], label, band, y_range)
        if record.get("kind") == "video":
            n = int(record.get("frames", 0))
            flagged = round(float(record.get("fraction_fake", 0.0)) * n)
            frames = f'<div class="frames">{flagged}/{n} frames flagged</div>'
            if detailed and record.get("frame_scores"):
                frames = _frames_svg(record["frame_scores"], self.threshold) + frames
        return (
            f'<tr class="{label}" data-rank="{rank}" data-score="{score!r}"><td>{thumb}</td>'
            f'<td class="score">{score:.3f}</td><td><span class="badge {label}">{label}</span></td>'
            f'<td class="path">{path}<div class="why">{record.get("kind", "image")}</div></td>'
            f"<td>{plot}</td><td>{frames}</td></tr>\n"
        )


# ---------------------------------------------------------------------------
# Pieces
# ---------------------------------------------------------------------------
def _thumbnail(path: str, kind: str) -> str | None:
    """A ``data:`` URI of a small JPEG of the input (a video's first frame), or None."""
    from PIL import Image

    try:
        if kind == "video":
            from specdetect.video import read_video_luma

            frames, _ = read_video_luma(path, 1)
            image = Image.fromarray(np.clip(frames[0], 0, 255).astype(np.uint8))
        else:
            from specdetect.media import open_image

            image = open_image(path)
        image.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE))
        image = image.convert("L" if image.mode in ("1", "L", "I", "I;16", "F") else "RGB")
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=80)
    except Exception:  # the scan read it; if it is gone or changed since, show no picture
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _xy(values, y_range) -> list[tuple[float, float]]:
    """Plot coordinates of spectrum bins 1.. (the DC bin is left out)."""
    lo, hi = y_range
    n = len(values)
    points = []
    for i in range(1, n):
        x = _PAD + (_W - 2 * _PAD) * (i - 1) / max(n - 2, 1)
        v = min(max(float(values[i]), lo), hi)
        y = _PAD + (_H - 2 * _PAD) * (hi - v) / (hi - lo)
        points.append((x, y))
    return points


def _points(points) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in points)


def _band_svg(band, y_range) -> str:
    """The reference band, drawn once and reused by every plot (``<use href="#band">``)."""
    mean, std = band
    upper, lower = _xy(mean + std, y_range), _xy(mean - std, y_range)
    return (
        '<svg width="0" height="0" style="position:absolute" aria-hidden="true"><defs>'
        f'<g id="band"><polygon points="{_points(upper + lower[::-1])}" fill="#d0d4da"/>'
        f'<polyline points="{_points(_xy(mean, y_range))}" fill="none" stroke="#8a929c" '
        'stroke-width="1"/></g></defs></svg>'
    )


def _spectrum_svg(values, label: str, band, y_range) -> str:
    colour = "#c0392b" if label == "fake" else "#1f5fa8"
    back = '<use href="#band"/>' if band is not None else ""
    return (
        f'<svg class="plot" width="{_W}" height="{_H + 14}" viewBox="0 0 {_W} {_H + 14}" '
        'role="img" '
        'aria-label="spectrum against the real reference band">'
        f'<rect width="{_W}" height="{_H}" fill="#fafbfc" stroke="#e1e4e8"/>{back}'
        f'<polyline points="{_points(_xy(values, y_range))}" fill="none" stroke="{colour}" '
        f'stroke-width="1.5"/><text x="{_PAD + 1}" y="{_H + 11}">low</text>'
        f'<text x="{_W - _PAD}" y="{_H + 11}" text-anchor="end">0.5 cycles/px</text></svg>'
    )


def _frames_svg(scores, threshold: float) -> str:
    width, height = 150, 36
    n = len(scores)
    step = width / max(n, 1)
    bars = []
    for i, score in enumerate(scores):
        h = max(1.0, float(score) * height)
        colour = "#c0392b" if score >= threshold else "#1f5fa8"
        bars.append(
            f'<rect x="{i * step + 0.5:.1f}" y="{height - h:.1f}" width="{max(step - 1, 1):.1f}" '
            f'height="{h:.1f}" fill="{colour}"><title>frame {i + 1}: {score:.3f}</title></rect>'
        )
    line = height - threshold * height
    return (
        f'<svg class="plot" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="score of each frame">{"".join(bars)}'
        f'<line x1="0" x2="{width}" y1="{line:.1f}" y2="{line:.1f}" stroke="#333" '
        'stroke-dasharray="3 2"/></svg>'
    )


_STYLE = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#1d2125}
h1{font-size:20px;margin:0 0 4px}
.meta{color:#57606a;margin:0 0 12px}
.counts span{display:inline-block;margin-right:14px}
table{border-collapse:collapse;width:100%}
th{text-align:left;font-weight:600;border-bottom:2px solid #d0d7de;padding:6px 8px}
td{border-bottom:1px solid #eaeef2;padding:6px 8px;vertical-align:middle}
tr.fake td:first-child{box-shadow:inset 4px 0 #c0392b}
tr.error td:first-child{box-shadow:inset 4px 0 #d4a017}
td img{display:block;max-width:96px;max-height:96px;border-radius:3px}
td.score{font-variant-numeric:tabular-nums;font-weight:600;font-size:16px}
td.path{word-break:break-all;max-width:420px}
.why,.frames{color:#57606a;font-size:12px}
.badge{border-radius:10px;padding:1px 8px;font-size:12px;font-weight:600}
.badge.fake{background:#fbe4e1;color:#a12a1e}
.badge.real{background:#e3edf9;color:#1f4f8a}
.badge.error{background:#fbf0d0;color:#7a5a00}
.legend{color:#57606a;font-size:12px;margin:0 0 12px}
#sort button{margin-right:6px}
svg.plot text{font-size:10px;fill:#57606a}
"""

_HEAD = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{style}</style>
</head>
<body>
{defs}
<h1>{title}</h1>
<p class="meta">model {model} &middot; threshold {threshold:.3f} &middot; specdetect {version}</p>
<p class="counts"><span><b>{n}</b> inputs</span><span><b>{fake}</b> flagged fake</span>\
<span><b>{real}</b> real</span><span><b>{errors}</b> unreadable</span></p>
<p class="legend">Flagged inputs first, by score (the detector's probability that the input was
generated, 0 to 1); then unreadable inputs; then the rest. Spectrum plots: the input's spectrum
(the model's features, from low to high spatial frequency, up to 0.5 cycles per pixel, the DC term
left out) against the {band_note}. Videos: one bar per scored frame, dashed line = threshold.
Thumbnails and plots for the first {n_details} rows.</p>
<div id="sort"></div>
<table id="results">
<thead><tr><th>preview</th><th>score</th><th>label</th><th>input</th><th>spectrum</th>\
<th>frames</th></tr></thead>
<tbody>
"""

_TAIL = """</tbody>
</table>
<script>
(function () {
  var body = document.querySelector("#results tbody");
  var orders = [["flagged first", function (a, b) { return a.dataset.rank - b.dataset.rank; }],
    ["score high to low", function (a, b) { return b.dataset.score - a.dataset.score; }],
    ["score low to high", function (a, b) { return a.dataset.score - b.dataset.score; }]];
  var bar = document.getElementById("sort");
  bar.appendChild(document.createTextNode("Sort: "));
  orders.forEach(function (order) {
    var button = document.createElement("button");
    button.textContent = order[0];
    button.addEventListener("click", function () {
      Array.prototype.slice.call(body.rows).sort(order[1]).forEach(function (row) {
        body.appendChild(row);
      });
    });
    bar.appendChild(button);
  });
})();
</script>
</body>
</html>
"""
