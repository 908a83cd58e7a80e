"""A throwaway PostgreSQL server for the tests (Debian's `postgresql` package), started on a private
Unix socket; tests that need it skip with the reason when none can start."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


def server_binaries() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(versions[-1]).parent if versions else None


@contextlib.contextmanager
def postgres_url() -> Iterator[str]:
    """``postgresql://...`` of a fresh, empty database; skips the test when no server can start."""
    bin_dir = server_binaries()
    if bin_dir is None:
        pytest.skip("no PostgreSQL server binaries (install Debian's postgresql package)")
    as_user: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="shiftlab-pg-"))
    if os.geteuid() == 0:  # initdb refuses to run as root: run the server as the package's user
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(root)
            pytest.skip("running as root and there is no 'postgres' user to run a PostgreSQL server as")
        os.chown(root, owner.pw_uid, owner.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data, socket_dir = root / "data", root
    try:
        init = subprocess.run([*as_user, str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "shiftlab"],
                              capture_output=True, text=True)
        if init.returncode != 0:
            pytest.skip(f"initdb failed: {init.stderr.strip().splitlines()[-1:]}")
        start = subprocess.run([*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-w", "-l", str(root / "log"),
                                "-o", f"-k {socket_dir} -c listen_addresses='' -p 54329", "start"],
                               capture_output=True, text=True)
        if start.returncode != 0:
            pytest.skip(f"PostgreSQL did not start: {(root / 'log').read_text()[-300:] if (root / 'log').exists() else ''}")
        try:
            yield f"postgresql://shiftlab@/postgres?host={socket_dir}&port=54329"
        finally:
            subprocess.run([*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                           capture_output=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
