"""Where SoundForge finds the programs it runs: spotdl, and deno and ffmpeg behind it.

A virtualenv's programs (spotdl, deno from PyPI) are found beside the interpreter even
when the virtualenv was never activated, the same way for every process we start.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path


def search_path(path: str | None = None) -> str:
    """`path` (default: this process's PATH) with the virtualenv's bin folder first."""
    path = os.environ.get("PATH", os.defpath) if path is None else path
    if sys.prefix == sys.base_prefix:
        return path
    return os.pathsep.join([str(Path(sys.executable).parent), path])


def find_program(name: str) -> str | None:
    """The full path of `name` as a child process of ours would find it, or None."""
    return shutil.which(name, path=search_path())


def child_environment() -> dict[str, str]:
    """This process's environment for a child, with the search path above."""
    env = dict(os.environ)
    env["PATH"] = search_path(env.get("PATH", os.defpath))
    return env
