"""Build ecorules: four top-level folders installed under the ``ecorules`` namespace.

The folders keep the short names of the design card (``rules/``, ``engine/`` ...), while the
installed import names are ``ecorules.rules`` and so on, because host systems that embed us
already have modules called ``engine``. There is deliberately no ``ecorules/__init__.py``:
``ecorules`` is an implicit namespace package.
"""

import os

from setuptools import Extension, setup

PACKAGES = {
    "ecorules.rules": "rules",
    "ecorules.engine": "engine",
    "ecorules.engine.diff": "engine/diff",
    "ecorules.engine.cases": "engine/cases",
    "ecorules.engine.sources": "engine/sources",
    "ecorules.engine.store": "engine/store",
    "ecorules.engine.distributed": "engine/distributed",
    "ecorules.fastcalc": "fastcalc",
    "ecorules.policies": "policies",
    "ecorules.policies.zhengzhou": "policies/zhengzhou",
}


def extensions():
    """The Cython kernel, compiled with the directives kept in one place."""
    kernel = os.path.join("fastcalc", "_kernel.pyx")
    if not os.path.exists(kernel):
        return []
    import numpy
    from Cython.Build import cythonize

    debug = bool(os.environ.get("ECORULES_KERNEL_DEBUG"))
    return cythonize(
        [
            # a case slot's findings laid out as a store chunk (engine/_chunk_rows.pyx)
            Extension("ecorules.engine._chunk_rows", [os.path.join("engine", "_chunk_rows.pyx")],
                      include_dirs=[numpy.get_include()], define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
                      extra_compile_args=["-O3"]),
            # the assessments of a stored chunk read into columns (engine/cases/_memory_rows.pyx)
            Extension("ecorules.engine.cases._memory_rows", [os.path.join("engine", "cases", "_memory_rows.pyx")],
                      include_dirs=[numpy.get_include()], define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
                      extra_compile_args=["-O3"]),
            # loops of the case stage: text codes, one act one fine, roll-up windows (fastcalc/_cases.pyx)
            Extension("ecorules.fastcalc._cases", [os.path.join("fastcalc", "_cases.pyx")],
                      include_dirs=[numpy.get_include()], define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
                      extra_compile_args=["-O3"]),
            # a CSV slice's undecodable bytes as private-use characters (engine/sources/_utf8.pyx)
            Extension("ecorules.engine.sources._utf8", [os.path.join("engine", "sources", "_utf8.pyx")],
                      extra_compile_args=["-O3"]),
            Extension(
                "ecorules.fastcalc._kernel",
                [kernel],
                include_dirs=[numpy.get_include()],
                define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
                # -fopenmp: prange over blocks (threads=N); -fwrapv: int64 arithmetic on the
                # garbage values of rejected rows wraps instead of being undefined behaviour.
                extra_compile_args=["-O3", "-fwrapv", "-fopenmp"] + (["-UNDEBUG"] if debug else []),
                extra_link_args=["-fopenmp"],
            )
        ],
        include_path=["fastcalc"],  # _kernel.pyx cimports its _kernel.pxd by name
        compiler_directives={
            "language_level": 3,
            "boundscheck": debug,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": debug,
        },
    )


POSTGRES = ["adbc-driver-postgresql>=1.13", "psycopg[binary]>=3.2"]


setup(
    name="ecorules",
    version="0.1.0",
    description="Environmental regulations as code: compliance and penalty calculation",
    long_description=open("README.md", encoding="utf-8").read() if os.path.exists("README.md") else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.11,<3.13",  # durable-rules 2.0.28 fails to import on 3.13
    packages=list(PACKAGES),
    package_dir=PACKAGES,
    package_data={"ecorules.policies": ["*/*.yaml", "*/*.yml"]},
    ext_modules=extensions(),
    install_requires=[
        "durable_rules==2.0.28",
        "PyYAML>=6",
        "attrs>=23",
        "click>=8.1",
        "numpy>=1.26",
        "pyarrow>=14",
        # Excel registries (.xlsx, .xls): calamine, in Rust, straight into Arrow; openpyxl
        # reads cell by cell in Python and cannot read .xls at all.
        "fastexcel>=0.21",
        # the merged cells of an old .xls sheet (calamine does not expose them): xlrd reads the
        # BIFF records; .xlsx needs nothing (engine/sources/_merged.py reads its XML)
        "xlrd>=2.0",
    ],
    extras_require={
        # PostgreSQL registries and case tables (engine/sources/_postgres.py): ADBC's driver
        # turns a binary COPY into Arrow batches in C, 3.5x faster than psycopg's rows gathered
        # into Arrow (bench/pg_read.py); psycopg quotes identifiers, parses URLs with libpq's
        # own parser and streams the raw COPY bytes the input's fingerprint hashes.
        "postgres": POSTGRES,
        # tox is here so that the tox commands of README.md work after installing the test extra
        # atheris: the coverage-guided fuzzers of tests/fuzz (libFuzzer wheels for Linux)
        "test": ["pytest>=8", "hypothesis>=6.100", "psutil>=5.9", "pandas>=2", "playwright>=1.40", "tox>=4",
                 "atheris>=2.3; platform_system == 'Linux'",
                 # the tests build workbooks: .xlsx with openpyxl, the old .xls with xlwt
                 "openpyxl>=3.1", "xlwt>=1.3", *POSTGRES,
                 "dask[distributed,dataframe]>=2024.1"],
        # the distributed engines (engine/distributed/): optional, since a site has one or neither.
        # Dask is ~50 MB and in the test extra, so CI runs its tests; pyspark (849 MB with its
        # jars, and Java 17) is not: its tests skip, saying why, where it is absent.
        "dask": ["dask[distributed,dataframe]>=2024.1"],
        "spark": ["pyspark>=3.5"],
        # bench/nightly.py: DuckDB is the hand-written-SQL baseline the nightly run is measured
        # against, pandas.read_csv the CSV read floor; neither is needed to run ecorules.
        # Cython: bench/score.py compiles its hand-written baseline loop with pyximport.
        "bench": ["duckdb>=1.0", "pandas>=2", "psutil>=5.9", "cython>=3.0"],
    },
    entry_points={"console_scripts": ["ecorules = ecorules.engine._cli:main"]},
    zip_safe=False,
)
