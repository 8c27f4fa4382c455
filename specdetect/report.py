"""Scan reports: the JSON document, and writers for JSON, CSV and text (SARIF and JUnit
in :mod:`specdetect.report_ci`, the HTML review page in :mod:`specdetect.report_html`).

The JSON report is::

    {"version", "model", "threshold",
     "results": [{"path", "kind", "score", "label", ...}],
     "errors": [{"path", "error"}],
     "summary": {"n", "fake", "real", "errors"}}

where ``n = fake + real + errors`` counts every input. :func:`build_report`
makes it in memory; the writers produce the same content while records
arrive, one at a time, so a scan of millions of inputs never holds its
results: text and CSV rows are written as they come, and the JSON writer
writes each result as it comes and keeps only the error records (for the
``errors`` list that follows ``results``).

Paths that are not valid UTF-8 (kept by Python as surrogate escapes) are
written as ``\\udcXX`` escapes in JSON (which read back to the same path) and
with ``\\xXX`` escapes in text and CSV, so output never fails on them.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import IO

from specdetect import __version__

__all__ = [
    "CSV_COLUMNS",
    "FORMATS",
    "ReportWriter",
    "Summary",
    "build_report",
    "make_writer",
    "write_report",
]

FORMATS = ("text", "json", "csv", "sarif", "junit")
CSV_COLUMNS = ("path", "kind", "score", "label", "error")


@dataclass
class Summary:
    """Counts over a scan: every input is exactly one of fake, real or error."""

    n: int = 0
    fake: int = 0
    real: int = 0
    errors: int = 0

    def add(self, record: dict) -> None:
        self.n += 1
        if "error" in record:
            self.errors += 1
        elif record.get("label") == "fake":
            self.fake += 1
        else:
            self.real += 1

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def build_report(records: Iterable[dict], model: str, threshold: float) -> dict:
    """The JSON report of a scan, in memory.

    Parameters
    ----------
    records : iterable of dict
        Scan records (:func:`specdetect.scan.scan_records`), in input order.
    model : str
        The model file used.
    threshold : float
        The decision threshold used.

    Returns
    -------
    dict
        Exactly the keys ``version, model, threshold, results, errors, summary``.

    Examples
    --------
    >>> report = build_report(
    ...     [{"path": "a.png", "kind": "image", "score": 0.9, "label": "fake"},
    ...      {"path": "b.png", "error": "empty file"}], "m.skops", 0.5)
    >>> report["summary"]
    {'n': 2, 'fake': 1, 'real': 0, 'errors': 1}
    """
    results, errors, summary = [], [], Summary()
    for record in records:
        summary.add(record)
        if "error" in record:
            errors.append({"path": record["path"], "error": record["error"]})
        else:
            results.append(record)
    return {
        "version": __version__,
        "model": str(model),
        "threshold": float(threshold),
        "results": results,
        "errors": errors,
        "summary": summary.to_dict(),
    }


# --------------------------------------------------------------------------
# Streaming writers
# --------------------------------------------------------------------------
class ReportWriter:
    """Writes a report to ``stream`` as records arrive.

    Use :meth:`write` for each record in input order, then :meth:`close`,
    which finishes the document and returns the :class:`Summary`.
    """

    def __init__(self, stream: IO[str], model: str, threshold: float):
        self.stream = stream
        self.model = str(model)
        self.threshold = float(threshold)
        self.summary = Summary()

    def write(self, record: dict) -> None:
        self.summary.add(record)
        self._write(record)

    def close(self) -> Summary:
        self._finish()
        self.stream.flush()
        return self.summary

    def _write(self, record: dict) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _finish(self) -> None:
        pass


class JsonWriter(ReportWriter):
    """The JSON report, one result per line; parses to :func:`build_report`'s dict."""

    def __init__(self, stream: IO[str], model: str, threshold: float):
        super().__init__(stream, model, threshold)
        self.errors: list[dict] = []
        self.n_results = 0
        head = {"version": __version__, "model": self.model, "threshold": self.threshold}
        lines = [f"  {_json(key)}: {_json(value)}," for key, value in head.items()]
        stream.write("{\n" + "\n".join(lines) + '\n  "results": [')

    def _write(self, record: dict) -> None:
        if "error" in record:
            self.errors.append({"path": record["path"], "error": record["error"]})
            return
        separator = "," if self.n_results else ""
        self.stream.write(f"{separator}\n    {_json(record)}")
        self.n_results += 1

    def _finish(self) -> None:
        out = self.stream
        out.write("\n  ],\n" if self.n_results else "],\n")
        if self.errors:
            body = ",\n".join(f"    {_json(e)}" for e in self.errors)
            out.write(f'  "errors": [\n{body}\n  ],\n')
        else:
            out.write('  "errors": [],\n')
        out.write(f'  "summary": {_json(self.summary.to_dict())}\n}}\n')


class CsvWriter(ReportWriter):
    """CSV with the columns ``path,kind,score,label,error``, one row per input."""

    def __init__(self, stream: IO[str], model: str, threshold: float):
        super().__init__(stream, model, threshold)
        self.csv = csv.writer(stream, lineterminator="\n")
        self.csv.writerow(CSV_COLUMNS)

    def _write(self, record: dict) -> None:
        path = _printable(record["path"])
        if "error" in record:
            self.csv.writerow([path, "", "", "", _printable(record["error"])])
        else:
            self.csv.writerow([path, record["kind"], repr(record["score"]), record["label"], ""])


class TextWriter(ReportWriter):
    """A table for people: score, label, kind, path; then a summary line."""

    def __init__(self, stream: IO[str], model: str, threshold: float):
        super().__init__(stream, model, threshold)
        stream.write(f"{'SCORE':>6}  {'LABEL':<5}  {'KIND':<5}  PATH\n")

    def _write(self, record: dict) -> None:
        path = _printable(record["path"])
        if "error" in record:
            line = f"{'-':>6}  {'error':<5}  {'-':<5}  {path}: {_printable(record['error'])}"
        else:
            line = f"{record['score']:6.3f}  {record['label']:<5}  {record['kind']:<5}  {path}"
            if record["kind"] == "video":
                n = record.get("frames", 0)
                n_fake = round(record.get("fraction_fake", 0.0) * n)
                line += f"  ({n_fake}/{n} frames fake)"
        self.stream.write(line + "\n")

    def _finish(self) -> None:
        s = self.summary
        noun = "input" if s.n == 1 else "inputs"
        errors = "error" if s.errors == 1 else "errors"
        self.stream.write(
            f"\n{s.n} {noun}: {s.fake} fake, {s.real} real, {s.errors} {errors}"
            f"  (threshold {self.threshold:.3f}, model {_printable(self.model)})\n"
        )


_WRITERS = {"json": JsonWriter, "csv": CsvWriter, "text": TextWriter}


def make_writer(fmt: str, stream: IO[str], model: str, threshold: float) -> ReportWriter:
    """A streaming writer for ``fmt`` in :data:`FORMATS`; it writes its header now.

    ``sarif`` and ``junit`` are in :mod:`specdetect.report_ci`.
    """
    if fmt in ("sarif", "junit"):
        from specdetect.report_ci import JunitWriter, SarifWriter

        return {"sarif": SarifWriter, "junit": JunitWriter}[fmt](stream, model, threshold)
    if fmt not in _WRITERS:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    return _WRITERS[fmt](stream, model, threshold)


def write_report(report: dict, stream: IO[str], fmt: str = "json") -> None:
    """Write a report made by :func:`build_report` in ``fmt``.

    The records are written in input order per kind: results first, then
    errors (a built report no longer knows their interleaving).
    """
    writer = make_writer(fmt, stream, report["model"], report["threshold"])
    for record in [*report["results"], *report["errors"]]:
        writer.write(record)
    writer.close()


def _json(value) -> str:
    """Compact JSON, readable where possible; ASCII escapes when a path holds surrogates."""
    text = json.dumps(value, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value, ensure_ascii=True)
    return text


def _printable(text: str) -> str:
    """``text`` with any undecodable bytes of a file name shown as ``\\xXX``."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate that is not an escaped byte
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
