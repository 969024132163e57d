"""Shared fixtures: a fresh root per test, a recording exec_fn, a PostgreSQL server."""

import glob
import os
import re
import shutil
import socket
import subprocess
import tempfile

import pytest


class Recorder:
    """A chunk-level exec_fn that records every chunk it computes."""

    def __init__(self):
        self.calls = []

    def __call__(self, params, **axes):
        self.calls.append({name: list(values) for name, values in axes.items()})
        names = sorted(axes)
        out = [{}]
        for name in names:
            out = [{**point, name: v} for point in out for v in axes[name]]
        return [{"alpha": params.get("alpha"), **point} for point in out]

    @property
    def points(self):
        total = 0
        for call in self.calls:
            n = 1
            for values in call.values():
                n *= len(values)
            total += n
        return total


@pytest.fixture
def root(tmp_path):
    return tmp_path / "root"


@pytest.fixture
def recorder():
    return Recorder()


# -- a throwaway PostgreSQL server ----------------------------------------------

#: Settings of the test cluster: durability off (it is deleted at the end), room
#: for the connections of the multi-process tests.
_PG_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
}


def _postgres_binaries():
    """The folder of the newest PostgreSQL server binaries (Debian's layout first)."""
    def major(path):
        found = re.search(r"/postgresql/(\d+)/", path)
        return int(found.group(1)) if found else 0

    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=major)
    if not candidates and shutil.which("initdb"):
        candidates = [os.path.realpath(shutil.which("initdb"))]
    for initdb in reversed(candidates):
        folder = os.path.dirname(initdb)
        if os.access(os.path.join(folder, "pg_ctl"), os.X_OK):
            return folder
    return None


def _as_server_user():
    """The command prefix running a program as a user PostgreSQL accepts.

    The server refuses to run as root; as root (CI), the ``postgres`` user that the
    Debian package creates runs it.
    """
    if os.geteuid() != 0:
        return [], None
    try:
        import pwd

        user = pwd.getpwnam("postgres")
    except KeyError:
        return None, None
    return ["runuser", "-u", "postgres", "--"], user


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_url():
    """URL of an empty database on a PostgreSQL cluster started for this test session.

    ``initdb`` makes a cluster in a temporary folder (trust authentication, the
    unix socket in that folder too), ``pg_ctl`` starts it on a free port of
    127.0.0.1, and the cluster is stopped and deleted when the session ends.  Skipped
    only when no server binaries are installed (``apt-get install postgresql``).
    """
    binaries = _postgres_binaries()
    if binaries is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl) found: "
                    "apt-get install postgresql to run the PostgreSQL tests")
    prefix, user = _as_server_user()
    if prefix is None:
        pytest.skip("tests run as root and there is no 'postgres' user to run the "
                    "PostgreSQL server as (the Debian package creates it)")
    # As root, in /tmp: the server's user must be able to reach the folder.
    folder = tempfile.mkdtemp(prefix="chunk-memo-pg-", dir="/tmp" if user else None)
    if user is not None:
        os.chown(folder, user.pw_uid, user.pw_gid)
    data, log = os.path.join(folder, "data"), os.path.join(folder, "server.log")

    def server_tool(name, *args):
        return subprocess.run([*prefix, os.path.join(binaries, name), *args],
                              capture_output=True, text=True, cwd=folder, timeout=120)

    def check(done, what):
        if done.returncode != 0:
            logged = open(log).read()[-3000:] if os.path.exists(log) else ""
            pytest.fail(f"{what} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
                        f"\n{logged}", pytrace=False)

    try:
        check(server_tool("initdb", "-D", data, "-U", "postgres", "--auth=trust",
                          "-E", "UTF8", "--no-locale", "--no-sync"), "initdb")
        for _ in range(3):  # another program may take the free port first
            settings = {**_PG_SETTINGS, "port": str(_free_port()),
                        "unix_socket_directories": folder}
            options = " ".join(f"-c {name}={value}" for name, value in settings.items())
            started = server_tool("pg_ctl", "start", "-D", data, "-l", log, "-w",
                                  "-t", "60", "-o", options)
            if started.returncode == 0:
                break
        check(started, "pg_ctl start")
        import psycopg

        server = f"postgresql://postgres@127.0.0.1:{settings['port']}"
        with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
            admin.execute("CREATE DATABASE chunk_memo_tests")
        yield f"postgresql+psycopg://postgres@127.0.0.1:{settings['port']}/chunk_memo_tests"
    finally:
        if os.path.exists(os.path.join(data, "postmaster.pid")):
            server_tool("pg_ctl", "stop", "-D", data, "-m", "immediate", "-w")
        shutil.rmtree(folder, ignore_errors=True)

