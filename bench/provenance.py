"""What produced a result: machine, packages, source revision."""

from __future__ import annotations

import importlib.metadata as md
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

RECORDED_PACKAGES = (
    "fingerbench", "numpy", "scipy", "opencv-python-headless", "opencv-python",
    "scikit-image", "pandas", "matplotlib", "nbis-py", "tqdm",
    # Which MCC kernel "auto" chose follows from these (extractors/mcc).
    "numba", "llvmlite", "torch",
)


def package_versions(extra: tuple[str, ...] = ()) -> dict[str, str]:
    out = {}
    for name in RECORDED_PACKAGES + extra:
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            continue
    return out


def git_revision(path: Path | None = None) -> dict[str, Any]:
    """Commit and dirty flag of the source tree the harness runs from, if it is a checkout."""
    path = path or Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True, timeout=5
        )
        if commit.returncode != 0:
            return {"commit": None}
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=path, capture_output=True, text=True, timeout=5,
        )
        return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        mem = None
    return {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "memory_bytes": mem,
    }


def environment() -> dict[str, Any]:
    return {"machine": machine(), "packages": package_versions(), "source": git_revision()}
