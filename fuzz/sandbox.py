"""Run ``read_luma`` on untrusted bytes in a child process with a timeout and a memory cap.

The child is long-lived (one import of PIL/NumPy for many inputs) and is
restarted after a crash, a timeout or a memory blow-up, each of which is
reported as an outcome so the fuzz test can fail on it with the input at hand.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import tempfile
from dataclasses import dataclass

#: The child: caps its address space, then answers one JSON line per path.
_CHILD = r"""
import json, resource, sys, traceback
cap = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
import numpy as np
from specdetect.media import MediaError, read_luma

for line in sys.stdin:
    path = line.rstrip("\n")
    try:
        array = read_luma(path)
    except MediaError as exc:
        message = str(exc)
        ok = "\n" not in message and message.startswith(path + ": ") and exc.path == path
        # A MemoryError turned into an input error still means a blow-up past the cap.
        kind = "memory" if "MemoryError" in message else "media_error" if ok else "bad_error"
        reply = {"kind": kind, "detail": message}
    except BaseException as exc:  # noqa: BLE001 - exactly what the fuzzer looks for
        detail = "".join(traceback.format_exception(exc)[-6:])
        reply = {"kind": "exception", "detail": detail}
    else:
        valid = (
            isinstance(array, np.ndarray) and array.ndim == 2 and array.dtype == np.float32
            and array.size > 0 and bool(np.isfinite(array).all())
            and float(array.min()) >= 0.0 and float(array.max()) <= 255.0
        )
        reply = {
            "kind": "array" if valid else "bad_array",
            "detail": f"{getattr(array, 'shape', None)} {getattr(array, 'dtype', None)}",
        }
    sys.stdout.write(json.dumps(reply) + "\n")
    sys.stdout.flush()
"""


@dataclass
class Outcome:
    """What happened to one input: ``array``, ``media_error`` (both fine) or a failure kind."""

    kind: str
    detail: str = ""

    @property
    def fine(self) -> bool:
        return self.kind in ("array", "media_error")


class Sandbox:
    """A restartable child process that decodes files with ``read_luma``.

    Parameters
    ----------
    timeout : float
        Seconds one input may take before it counts as a hang.
    memory_mb : int
        Address-space cap of the child (``RLIMIT_AS``).
    max_pixels : int
        ``SPECDETECT_MAX_PIXELS`` in the child: images under the limit must
        decode well inside ``memory_mb``.
    """

    def __init__(self, timeout: float = 10.0, memory_mb: int = 1024, max_pixels: int = 4_000_000):
        self.timeout = timeout
        self.memory_mb = memory_mb
        self.max_pixels = max_pixels
        self.folder = tempfile.mkdtemp(prefix="specdetect-fuzz-")
        self.count = 0
        self.proc: subprocess.Popen | None = None

    def _start(self) -> None:
        env = dict(os.environ, SPECDETECT_MAX_PIXELS=str(self.max_pixels), OMP_NUM_THREADS="1")
        env["OPENBLAS_NUM_THREADS"] = "1"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(self.memory_mb * 2**20)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )

    def run(self, data: bytes, suffix: str = ".png") -> Outcome:
        """Decode ``data`` written to a file named ``*suffix``."""
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        self.count += 1
        path = os.path.join(self.folder, f"input-{self.count}{suffix}")
        with open(path, "wb") as handle:
            handle.write(data)
        try:
            self.proc.stdin.write(path + "\n")
            self.proc.stdin.flush()
            ready, _, _ = select.select([self.proc.stdout], [], [], self.timeout)
            if not ready:
                self._kill()
                return Outcome("timeout", f"no answer within {self.timeout} s")
            line = self.proc.stdout.readline()
            if not line:
                code = self.proc.wait()
                self.proc = None
                return Outcome("crash", f"child exited with {code}")
            reply = json.loads(line)
            return Outcome(reply["kind"], reply["detail"])
        except BrokenPipeError:
            code = self.proc.wait()
            self.proc = None
            return Outcome("crash", f"child exited with {code}")
        finally:
            os.unlink(path)

    def _kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def close(self) -> None:
        if self.proc is not None:
            self.proc.stdin.close()
            self.proc.wait(timeout=10)
            self.proc = None
        os.rmdir(self.folder)
