"""Any program with the FVC executable contract, benchmarked like a Python plugin.

The FVC contract (FVC2000-2004, FVC-onGoing)::

    ENROLL imagefile templatefile configfile outputfile
        writes templatefile and appends "imagefile templatefile OK" (or FAIL) to outputfile
    MATCH imagefile templatefile configfile outputfile
        compares the image with the template and appends
        "imagefile templatefile OK similarity" (or FAIL), similarity in [0, 1]

MATCH takes the probe as an image, not as a template. So the extractor keeps the image
beside the program's template: the template's native bytes are exactly the file ENROLL
wrote (so template sizes are the program's), and the image goes, lossless (PNG), into
``Template.extra["fvc_image_png"]`` (base64). The matcher writes the probe's image and
the reference's template to temporary files and runs MATCH on them. The probe's own
template is not used, as in FVC.

Each call runs in its own process group with its own timeout; on a timeout the whole
group is killed. A missing program, a non-zero exit status, an output file with no line
or a line that does not follow the contract, a missing template file, a similarity
outside [0, 1] and a timeout are each reported with the command and the reason; the
runner records them as failures of that image or that comparison and goes on. A FAIL
line is a failure to enrol (ENROLL) or a failed comparison (MATCH).
"""

from __future__ import annotations

import base64
import hashlib
import math
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

from bench.plugins import ComparisonFailed, FailureToEnrol
from bench.template import Template, make_minutiae
from extractors.common import gray_image

FORMAT_PREFIX = "fvc-exe:"
IMAGE_KEY = "fvc_image_png"
_IMAGE_SUFFIXES = {"tif": ".tif", "bmp": ".bmp", "png": ".png", "pgm": ".pgm"}


class ExternalProgramError(RuntimeError):
    """The external program did not keep the FVC contract (or could not be run)."""


def _split(command: str | Sequence[str] | None) -> list[str]:
    if command is None:
        return []
    if isinstance(command, str):
        return shlex.split(command)
    return [str(c) for c in command]


class _FvcProgram:
    """What the extractor and the matcher share: commands, config file, running a call."""

    #: Parameters without which the plugin cannot run (``fingerbench interop`` leaves such
    #: plugins out of its default selection).
    required_parameters = ("program", "or enroll and match")

    def __init__(self, name: str = "program", program: str | Sequence[str] | None = None,
                 enroll: str | Sequence[str] | None = None, match: str | Sequence[str] | None = None,
                 config: str | None = None, timeout: float = 30.0, image_format: str = "tif") -> None:
        self.name = name
        self.program = program
        self.enroll = enroll
        self.match = match
        self.config = config
        self.timeout = timeout
        self.image_format = image_format

    # -- commands ------------------------------------------------------------------
    def _command(self, verb: str) -> list[str]:
        own = self.enroll if verb == "ENROLL" else self.match
        if own:
            return _split(own)
        if self.program:
            return _split(self.program) + [verb]
        raise ExternalProgramError(
            f"fvc-exe '{self.name}': no command for {verb}: pass program= (one executable taking "
            f"ENROLL/MATCH as first argument) or enroll= and match="
        )

    def _check_program(self, verb: str) -> str:
        """The resolved executable of ``verb``'s command; raises when it cannot be run."""
        cmd = self._command(verb)
        exe = cmd[0]
        found = shutil.which(exe) if os.sep not in exe else (exe if os.access(exe, os.X_OK) else None)
        if found is None:
            why = "does not exist" if not Path(exe).exists() else "is not executable"
            raise ExternalProgramError(f"fvc-exe '{self.name}': {verb} program {exe!r} {why} "
                                       f"(command: {shlex.join(cmd)})")
        return found

    @property
    def version(self) -> str:
        """The name and a digest of the executables (so a changed program is not cached as the old one)."""
        h = hashlib.sha256()
        for verb in ("ENROLL", "MATCH"):
            try:
                exe = self._check_program(verb)
                cmd = self._command(verb)
            except ExternalProgramError:
                return f"{self.name} (program not found)"
            h.update(shlex.join(cmd).encode())
            with open(exe, "rb") as f:
                h.update(f.read())
            for arg in cmd[1:]:  # a script handed to an interpreter
                if Path(arg).is_file():
                    h.update(Path(arg).read_bytes())
        return f"{self.name} sha256:{h.hexdigest()[:12]}"

    def _config_path(self, workdir: Path) -> str:
        if self.config:
            if not Path(self.config).is_file():
                raise ExternalProgramError(f"fvc-exe '{self.name}': config file {self.config} does not exist")
            return str(Path(self.config).resolve())
        path = workdir / "config.cfg"
        if not path.exists():
            path.write_bytes(b"")
        return str(path)

    def _workdir(self) -> Path:
        d = self.__dict__.get("_tmp")
        if d is None or not Path(d).is_dir():
            d = tempfile.mkdtemp(prefix="fingerbench-fvc-")
            self.__dict__["_tmp"] = d
        return Path(d)

    def _run(self, verb: str, image: str, template: str, output: str, workdir: Path) -> str:
        """Run one call; returns the last line appended to ``output``."""
        self._check_program(verb)
        cmd = self._command(verb) + [image, template, self._config_path(workdir), output]
        timeout = float(self.timeout)
        try:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        except OSError as exc:
            raise ExternalProgramError(f"fvc-exe '{self.name}': cannot start {verb} ({shlex.join(cmd)}): "
                                       f"{exc.strerror or exc}") from exc
        try:
            _, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            raise ExternalProgramError(f"fvc-exe '{self.name}': {verb} did not finish within {timeout:g} s "
                                       f"and was killed (command: {shlex.join(cmd)})") from None
        if proc.returncode != 0:
            tail = err.decode(errors="replace").strip().splitlines()[-3:]
            raise ExternalProgramError(
                f"fvc-exe '{self.name}': {verb} exited with status {proc.returncode}"
                + (f": {' | '.join(tail)}" if tail else "") + f" (command: {shlex.join(cmd)})")
        try:
            text = Path(output).read_text(errors="replace")
        except OSError:
            text = ""
        lines = [ln for ln in text.splitlines() if ln.strip()]
        if not lines:
            raise ExternalProgramError(f"fvc-exe '{self.name}': {verb} wrote nothing to its output file "
                                       f"(the contract asks for a line '... OK|FAIL')")
        return lines[-1]

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_tmp", None)
        return state


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    try:
        proc.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        pass


def _parse_line(line: str, verb: str, name: str, image: str, template: str) -> tuple[str, list[str]]:
    """(status, rest) from an output line; garbage raises ExternalProgramError."""
    tokens = line.split()
    status_at = next((i for i, t in enumerate(tokens) if t.upper() in ("OK", "FAIL")), None)
    if status_at is None or status_at < 2:
        raise ExternalProgramError(
            f"fvc-exe '{name}': {verb} output line does not follow 'imagefile templatefile OK|FAIL"
            f"{' similarity' if verb == 'MATCH' else ''}': {line.strip()[:200]!r}")
    return tokens[status_at].upper(), tokens[status_at + 1 :]


class FvcExecutableExtractor(_FvcProgram):
    """ENROLL of an external program with the FVC contract.

    Parameters:
        name: a name for the program (templates get native format ``fvc-exe:<name>``).
        program: one executable (command string or list) taking ``ENROLL``/``MATCH``
            as its first argument; or
        enroll, match: the two commands (as FVC's ``enroll.exe`` and ``match.exe``).
        config: the configuration file handed to every call (FVC: one per database);
            ``None`` hands an empty file.
        timeout: seconds allowed per call; the program's process group is killed after.
        image_format: file type the image is written as for ENROLL (``tif``
            uncompressed, ``bmp``, ``png``, ``pgm``).
        keep_image: keep the image (PNG) with the template, which MATCH needs when this
            template is the probe.

    The templates are opaque: they carry no standard minutiae (an empty minutiae array),
    so only the program's own MATCH can compare them. Timings include starting the
    program, as FVC's did.
    """

    def __init__(self, name: str = "program", program: str | Sequence[str] | None = None,
                 enroll: str | Sequence[str] | None = None, match: str | Sequence[str] | None = None,
                 config: str | None = None, timeout: float = 30.0, image_format: str = "tif",
                 keep_image: bool = True) -> None:
        super().__init__(name, program, enroll, match, config, timeout, image_format)
        self.keep_image = keep_image

    @property
    def template_format(self) -> str:
        return FORMAT_PREFIX + str(self.name)

    def warm_up(self, dpi: float) -> None:
        """Fail early (logged by the runner) when the program cannot be run."""
        self._check_program("ENROLL")

    def extract(self, image: np.ndarray, dpi: float) -> Template:
        image = gray_image(image)
        workdir = self._workdir()
        stamp = f"{os.getpid()}_{time.monotonic_ns()}"
        image_path = workdir / f"enroll_{stamp}{_IMAGE_SUFFIXES.get(self.image_format, '.tif')}"
        template_path = workdir / f"enroll_{stamp}.tpl"
        output_path = workdir / f"enroll_{stamp}.out"
        try:
            _write_image(image_path, image, self.image_format)
            line = self._run("ENROLL", str(image_path), str(template_path), str(output_path), workdir)
            status, _ = _parse_line(line, "ENROLL", self.name, str(image_path), str(template_path))
            if status == "FAIL":
                raise FailureToEnrol(f"fvc-exe '{self.name}': ENROLL reported FAIL")
            if not template_path.is_file():
                raise ExternalProgramError(f"fvc-exe '{self.name}': ENROLL reported OK but wrote no template file")
            data = template_path.read_bytes()
        finally:
            for p in (image_path, template_path, output_path):
                p.unlink(missing_ok=True)
        extra: dict[str, Any] = {"fvc_program": str(self.name)}
        if self.keep_image:
            ok, png = cv2.imencode(".png", image)
            if not ok:
                raise FailureToEnrol("the image could not be encoded as PNG to keep it for MATCH")
            extra[IMAGE_KEY] = base64.b64encode(png.tobytes()).decode("ascii")
        return Template(make_minutiae([], [], []), width=int(image.shape[1]), height=int(image.shape[0]),
                        dpi=float(dpi), native=data, native_format=self.template_format, extra=extra)


class FvcExecutableMatcher(_FvcProgram):
    """MATCH of an external program with the FVC contract; parameters as the extractor's.

    ``compare(probe, reference)`` runs MATCH with the probe's image (kept by the
    extractor) and the reference's template; the score is the similarity the program
    appends, which must lie in [0, 1].
    """

    higher_is_better = True

    @property
    def accepted_formats(self) -> tuple[str, ...]:
        return (FORMAT_PREFIX + str(self.name),)

    def compare(self, probe: Template, reference: Template) -> float:
        fmt = FORMAT_PREFIX + str(self.name)
        if reference.native_format != fmt or reference.native is None:
            raise ComparisonFailed(f"the reference is not a template of fvc-exe '{self.name}' "
                                   f"(native format {reference.native_format!r})")
        png = probe.extra.get(IMAGE_KEY)
        if not png:
            raise ComparisonFailed("MATCH needs the probe's image, but its template does not keep it "
                                   "(extract with keep_image=True)")
        image = cv2.imdecode(np.frombuffer(base64.b64decode(png), np.uint8), cv2.IMREAD_UNCHANGED)
        if image is None:
            raise ComparisonFailed("the probe's kept image cannot be decoded")
        workdir = self._workdir()
        stamp = f"{os.getpid()}_{time.monotonic_ns()}"
        image_path = workdir / f"match_{stamp}{_IMAGE_SUFFIXES.get(self.image_format, '.tif')}"
        template_path = workdir / f"match_{stamp}.tpl"
        output_path = workdir / f"match_{stamp}.out"
        try:
            _write_image(image_path, image, self.image_format)
            template_path.write_bytes(reference.native)
            line = self._run("MATCH", str(image_path), str(template_path), str(output_path), workdir)
            status, rest = _parse_line(line, "MATCH", self.name, str(image_path), str(template_path))
        except ExternalProgramError as exc:
            raise ComparisonFailed(str(exc)) from exc
        finally:
            for p in (image_path, template_path, output_path):
                p.unlink(missing_ok=True)
        if status == "FAIL":
            raise ComparisonFailed(f"fvc-exe '{self.name}': MATCH reported FAIL")
        try:
            score = float(rest[0])
        except (IndexError, ValueError):
            raise ComparisonFailed(f"fvc-exe '{self.name}': MATCH reported OK without a similarity: "
                                   f"{line.strip()[:200]!r}") from None
        if not (math.isfinite(score) and 0.0 <= score <= 1.0):
            raise ComparisonFailed(f"fvc-exe '{self.name}': MATCH similarity {score!r} is outside [0, 1]")
        return score


def _write_image(path: Path, image: np.ndarray, image_format: str) -> None:
    if image_format not in _IMAGE_SUFFIXES:
        raise ExternalProgramError(f"image_format must be one of {', '.join(_IMAGE_SUFFIXES)}, not {image_format!r}")
    params: list[int] = []
    if image_format == "tif":
        params = [cv2.IMWRITE_TIFF_COMPRESSION, 1]  # uncompressed, as the FVC images
    ok, buf = cv2.imencode(_IMAGE_SUFFIXES[image_format], image, params)
    if not ok:
        raise ExternalProgramError(f"the image cannot be written as {image_format}")
    path.write_bytes(buf.tobytes())
