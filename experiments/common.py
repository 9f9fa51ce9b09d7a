"""What the studies share: provenance of their results and crash-safe json records."""

from __future__ import annotations

import json
import os
import platform
import subprocess

from vae.version import __version__


def provenance() -> dict:
    """The toolkit version, the git commit of this checkout (None outside git) and the machine."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                                cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    return {"toolkit_version": __version__, "commit": commit, "machine": platform.machine()}


def write_json(path: str, value) -> None:
    """Writes `value` to PATH through PATH.tmp and a rename, so a killed study never leaves half a file."""
    with open(path + ".tmp", "w") as f:
        json.dump(value, f, indent=1)
    os.replace(path + ".tmp", path)


def saved_record(path: str, key: dict) -> dict | None:
    """The record saved at PATH when it was made with the same `key` (the run's settings), else None."""
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        record = json.load(f)
    return record if record.get("key") == key else None
