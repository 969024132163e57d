"""Build of the compiled core; all other metadata lives in pyproject.toml.

When the reference ``xxhash.h`` is installed (Debian/Ubuntu: ``libxxhash-dev``,
or a folder named by ``CHUNK_MEMO_XXHASH_INCLUDE``), XXH3 is compiled inline into
the core; otherwise the core calls the ``xxhash`` package.  Both give the same
digests (tests check it); the inline one is faster on small values.  Set
``CHUNK_MEMO_NATIVE_XXH3=0`` to build without it.
"""

import os
import sysconfig
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup


def _xxhash_include():
    if os.environ.get("CHUNK_MEMO_NATIVE_XXH3", "1") == "0":
        return None
    candidates = [os.environ.get("CHUNK_MEMO_XXHASH_INCLUDE"),
                  sysconfig.get_config_var("INCLUDEDIR"),
                  "/usr/local/include", "/usr/include"]
    for folder in filter(None, candidates):
        if (Path(folder) / "xxhash.h").is_file():
            return folder
    return None


include = _xxhash_include()
core = Extension(
    "chunk_memo._core",
    ["chunk_memo/_core.pyx"],
    include_dirs=[include] if include else [],
    define_macros=[("CHUNK_MEMO_NATIVE_XXH3", "1")] if include else [],
)

setup(ext_modules=cythonize([core], compiler_directives={"language_level": "3"}))
