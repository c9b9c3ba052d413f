"""``ecorules run --engine dask|spark``: the nightly run with its registry scored on a cluster.

Everything but the scoring is the local run's (engine/_nightly.py): the results store, the
fingerprints and the reuse of an identical run, the policies' checks, the list entries'
state, ``rows_in = rows_scored + rows_rejected``. Only :meth:`_score_registry` differs: the
registry's row groups are scored on the workers and their ScoredBatches come back in the
registry's order, each written by the same ``_record`` as a local batch. So the store a
distributed run writes equals a local run's on the same data (tests/engine/test_distributed_*.py).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import time

from ecorules.rules import PolicySet, load_policies

from .._nightly import NightlyError, NightlyRun
from .._sources import ParquetFile
from . import _frames
from ._parquet_out import ParquetOut, folder_beside
from ._partition import DistributedError, make_plan, needed_columns

log = logging.getLogger("ecorules.distributed")

ENGINES = ("local", "dask", "spark")
OUT_FORMATS = ("sqlite", "parquet", "hive")


class DistributedRun(NightlyRun):
    def __init__(self, registry, out, *, engine: str, scheduler: str | None = None, master: str | None = None,
                 out_format: str = "sqlite", out_database: str | None = None, **options):
        if engine not in ("dask", "spark"):
            raise NightlyError(f"--engine must be one of {', '.join(ENGINES)}, got {engine!r}")
        # --registry hive:DB.TABLE: a table of Spark's catalogue (spark.py's CATALOGUE)
        self.catalogue = str(registry)[len("hive:"):] if str(registry).startswith("hive:") else None
        if self.catalogue is not None and engine != "spark":
            raise NightlyError(f"--registry {registry} is a table of Spark's catalogue: give --engine spark")
        self.engine, self.scheduler, self.master = engine, scheduler, master
        self._session = None
        # every policy loaded (kinds too), for the executors to compile the case plan (a compiled
        # program does not travel: engine/distributed/_spark_cases.py)
        if not isinstance(options.get("policies"), PolicySet):
            options["policies"] = load_policies(options.get("policies"))
        self._loaded_policies = options["policies"]
        # the session this run started itself (none was running), and its temporary directory:
        # stopped and removed when the run ends (a host's or a test run's session is left alone)
        self._own_session: tuple[object, str | None] | None = None
        self._hive_written = False  # --out-format hive wrote tables under that directory's warehouse
        super().__init__(registry, out, **options)
        self._driver_sources: set[str] = set()  # the files the driver scored (case table, other kinds)
        self._cluster = contextlib.ExitStack()  # a Dask client (and its local cluster), made when first needed
        self._client = None
        if self.cases is not None:  # the registry's rows the case table names: read by the cluster
            self.cases.enterprise_rows = self._enterprise_rows
        if out_format not in OUT_FORMATS:
            raise NightlyError(f"--out-format must be one of {', '.join(OUT_FORMATS)}, got {out_format!r}")
        if out_format == "parquet" and "://" in str(out):
            raise NightlyError("--out-format parquet writes its tables beside an SQLite store: give --out a file")
        self.parquet_root = folder_beside(out) if out_format == "parquet" else None
        self.out_database = self._out_database(out_format, out_database, engine)
        if scheduler is not None and engine != "dask":
            raise NightlyError("--scheduler is a Dask scheduler's address: give it with --engine dask")

    @staticmethod
    def _out_database(out_format: str, out_database: str | None, engine: str) -> str | None:
        """--out-format hive's database, checked before a run starts."""
        if out_format != "hive":
            if out_database is not None:
                raise NightlyError("--out-database names the database of --out-format hive: give both")
            return None
        if engine != "spark":
            raise NightlyError("--out-format hive writes tables of Spark's catalogue: give --engine spark")
        if out_database is None:
            raise NightlyError("--out-format hive needs --out-database DB, the database of Spark's catalogue "
                               "its tables go to")
        from ._hive_out import HiveOutError, database_name

        try:
            return database_name(out_database)
        except HiveOutError as error:
            raise NightlyError(str(error)) from error

    def execute(self):
        try:
            return self._execute()
        finally:
            self._release_session()

    def _execute(self):
        hive = None
        if self.out_database is not None:  # its tables checked before the run, not after hours of it
            from ._hive_out import HiveOut, HiveOutError

            hive = HiveOut(self._spark(), self.out_database)
            self._hive_written = True  # its database and tables are made from here on
            try:
                hive.ensure_tables()
            except HiveOutError as error:
                raise NightlyError(str(error)) from error
        with self._cluster:
            summary = super().execute()
        if self.parquet_root is not None and summary.replaced_run is not None:  # the store deleted that run
            ParquetOut(self.parquet_root, summary.replaced_run).clear()
        if self.parquet_root is not None and not summary.reused and (self.cases is not None or self.kind_readers):
            self._driver_part(summary.run_id)
        if hive is not None:  # from the store once it committed the run (a reused run too: idempotent)
            try:
                if summary.replaced_run is not None:
                    hive.drop(summary.replaced_run)
                hive.write_run(self.out, summary.run_id)
            except Exception as error:  # the store's run stands: say so, not only that something failed
                raise NightlyError(f"run {summary.run_id} is done in the store, but its tables in {self.out_database} "
                                   f"were not written (run it again to write them): {type(error).__name__}: {error}"
                                   ) from error
        return summary

    def _driver_part(self, run_id: int) -> None:
        """The case table's and other kinds' rows beside the workers' parts (_parquet_out.py)."""
        from ._parquet_out import write_driver_part
        from ._store_rows import NotWholeYuan

        out = ParquetOut(self.parquet_root, run_id)
        if self.cases is not None and getattr(self, "_case_results", None) is not None:
            self._driver_sources.update(self._case_results.per_file())
        try:
            write_driver_part(out, self.out, self._driver_sources, _frames.money_type(_frames.names(self._plan())))
        except NotWholeYuan as error:  # no tables rather than tables without some of the run's rows
            out.clear()
            raise NightlyError(f"--out-format parquet: {error}: the registry's policies are in whole yuan, so the "
                               "tables are; the run is in the store, its Parquet tables are not written") from error

    def _kind_table(self, scoring, reader, writer, run_id, acc):
        super()._kind_table(scoring, reader, writer, run_id, acc)
        self._driver_sources.update(about["source"] for about in reader.described())

    def _new_case_stage(self, plan, cases, **options):
        """--cases hive:DB.TABLE: a case table of Spark's catalogue, read by Spark (_case_table.py)."""
        from ._case_table import CatalogueCaseStage, catalogue_cases

        name = catalogue_cases(cases)
        if name is None:
            return super()._new_case_stage(plan, cases, **options)
        if self.engine != "spark":
            raise NightlyError(f"--cases {cases} is a table of Spark's catalogue: give --engine spark")
        options = {k: v for k, v in options.items() if k in ("batch_rows", "aliases")}  # no file's options
        return CatalogueCaseStage(plan, name, self._spark, as_of=self.as_of, threads=self.kernel_threads, **options)

    def _case_stage(self, program, writer, run_id, acc) -> None:
        """The case table judged on the executors (Spark) or workers (Dask), each task the
        cases of some enterprises with their registry rows (engine/distributed/_spark_cases.py,
        _dask_cases.py), the parts written here as a local run writes the whole table
        (_case_parts.write_parts)."""
        from ._case_parts import write_parts

        plan = self.cases.plan
        in_force = [p for p in self.policies if p.in_force(self.as_of)]
        checked = [name for name in program.columns if name not in plan.onto_parent
                   and any(name in p.required_facts for p in in_force)]
        checked = tuple(dict.fromkeys(n for n in (*checked, *plan.enterprise_columns) if n != plan.link))
        began = time.perf_counter()
        if self.engine == "dask":  # the same, on Dask's workers (engine/distributed/_dask_cases.py)
            frame, found = self._dask_cases(plan, checked)
        else:
            frame, found = self._spark_cases(plan, checked)
        self._case_results = write_parts(found, plan, writer, run_id, acc, first_slot=self.next_slot,
                                         first_sanction_slot=self.next_sanction_slot, memory=self._memory,
                                         reading=frame)
        acc.seconds["cases"] = time.perf_counter() - began
        acc.already_assessed = self._memory.already
        acc.lighter_law = self._case_results.lighter_law
        for case_id in sorted(self.reassess - self._memory.reassess_seen) if self.reassess is not True else ():
            acc.warnings.setdefault(f"--reassess {case_id}: no assessment of this case by an earlier run to make again")
        return None

    def _dask_cases(self, plan, checked):
        from . import _dask_cases as dask_cases

        client = self._dask()
        job = dask_cases.new_job(self._loaded_policies, self.as_of, self.compile_program, self.aliases)
        tasks = dask_cases.partitions(client, self.cases)
        reading = dask_cases.read_cases(client, self.cases, plan, job, tasks)
        registry_plan = self._plan()
        registry_plan.needed = {name: ["the case table's enterprises"] for name in dict.fromkeys((plan.link, *checked))}
        return reading, dask_cases.judged_parts(client, reading, plan, job, checked=checked,
                                                registry_path=self.registry_path, registry_plan=registry_plan,
                                                recurse=self.recurse, tasks=tasks)

    def _spark_cases(self, plan, checked):
        from ._case_table import CatalogueCaseStage
        from ._spark_cases import catalogue_frame, files_frame, judged_parts, shipped_frame
        from .spark import catalogue_table, pieces_frame, table_frame

        spark = self._spark()
        if isinstance(self.cases, CatalogueCaseStage):
            frame = catalogue_frame(spark, self.cases.name, plan, self.aliases)
        else:  # CSV or Parquet files: read by the executors, as the local reader reads them; else by it
            frame = files_frame(spark, self.cases, plan, self.aliases) or shipped_frame(spark, self.cases.read(), plan)
        registry_plan = self._plan()
        registry_plan.needed = {name: ["the case table's enterprises"] for name in dict.fromkeys((plan.link, *checked))}
        name = self.catalogue if self.catalogue is not None else catalogue_table(self.registry_path)
        if name is not None:
            registry, pieces_in = table_frame(spark, name, registry_plan), False
        else:
            registry, pieces_in = pieces_frame(spark, self.registry_path, registry_plan, recurse=self.recurse), True
        return frame, judged_parts(spark, frame, plan, policies=self._loaded_policies, as_of=self.as_of,
                                   compile_program=self.compile_program, checked=checked, registry_frame=registry,
                                   registry_plan=registry_plan, pieces_in=pieces_in, aliases=self.aliases)

    def _spark(self):
        if self._session is None:
            from pyspark import SparkContext

            from .spark import local_session

            master = self.master or os.environ.get("ECORULES_SPARK_MASTER") or f"local[{self.threads}]"
            starts = SparkContext._active_spark_context is None  # else getOrCreate hands back the running one
            local_dir = tempfile.mkdtemp(prefix="ecorules-spark-") if starts and master.startswith("local") else None
            try:
                self._session = local_session(master, local_dir)
            except BaseException:
                if local_dir is not None:
                    shutil.rmtree(local_dir, ignore_errors=True)
                raise
            if starts:
                self._own_session = (self._session, local_dir)
            log.info("spark %s: %s", self._session.version, master)
        return self._session

    def _release_session(self) -> None:
        """Stop the session this run started (never one it was handed) and remove its
        temporary directory, unless --out-format hive wrote tables to the warehouse in it:
        those files are the tables' only copy, so the directory stays and the log says where."""
        if self._own_session is None:
            return
        session, local_dir = self._own_session
        self._own_session = self._session = None
        try:
            session.stop()
            _forget_local_dirs()
        finally:
            if local_dir is not None and self._hive_written:
                log.warning("--out-format hive: kept %s, the stopped Spark session's directory: the tables of %s "
                            "are files under its warehouse %s", local_dir, self.out_database,
                            os.path.join(local_dir, "warehouse"))
            elif local_dir is not None:
                shutil.rmtree(local_dir, ignore_errors=True)

    def _registry(self, program):
        from ._case_table import CatalogueCaseStage

        if isinstance(self.cases, CatalogueCaseStage):  # its columns said before a run starts, as the registry's
            self.cases.check_columns()
        if self.catalogue is not None:
            return CatalogueTable(self._spark(), self.catalogue, self._plan())
        registry = super()._registry(program)
        for reader in registry.readers:  # said before a run is started, not by a worker
            if not isinstance(reader, ParquetFile):
                raise DistributedError(f"{reader.label}: a distributed run reads Parquet (write the registry as "
                                       "Parquet, or run it on one machine)")
        return registry

    def _dask(self):
        if self._client is None:
            from dask.distributed import Client, LocalCluster

            # the cluster's own INFO lines (workers up and down) drown the run's
            logging.getLogger("distributed").setLevel(max(logging.WARNING, logging.getLogger("ecorules").level))
            if self.scheduler is not None:
                self._client = self._cluster.enter_context(Client(self.scheduler))
            else:  # a cluster of this machine's cores, on loopback only (dashboard too)
                cluster = self._cluster.enter_context(LocalCluster(
                    n_workers=self.threads, threads_per_worker=1, host="127.0.0.1", dashboard_address="127.0.0.1:0"))
                self._client = self._cluster.enter_context(Client(cluster))
            log.info("dask: %s", self._client)
        return self._client

    def _enterprise_rows(self, registry_path, options, link, wanted, names):
        """The case stage's first pass over the registry (engine/cases/_enterprises.py) on the
        cluster: each piece's rows whose enterprise the case table names (a few per case), in
        the registry's order; the driver joins them to the cases as a local run does."""
        plan = self._plan()
        plan.needed = {name: ["the case table's enterprises"] for name in names}
        if self.engine == "dask":
            from .dask import enterprise_rows

            return enterprise_rows(self._dask(), registry_path, plan, link, wanted, names, recurse=self.recurse)
        from .spark import enterprise_rows

        registry = f"hive:{self.catalogue}" if self.catalogue is not None else registry_path
        return enterprise_rows(self._spark(), registry, plan, link, wanted, names, recurse=self.recurse)

    def _score_registry(self, registry, writer, run_id, acc, progress) -> None:
        plan = self._plan()
        # each partition is handed the roll-ups, and the enterprises a roll-up cannot be
        # counted for (engine/cases/_uncountable.py), whose rows are rejects
        if self.cases is not None and (self.cases.plan.onto_parent or self._case_results.side.uncountable):
            from ..cases._enterprises import EnterpriseSide

            side = self._case_results.side
            plan.rollups = (EnterpriseSide(side.usccs, side.table.slice(0, 0), rollups=side.rollups,
                                           key_fact=side.key_fact, uncountable=side.uncountable),
                            dict(self.cases.plan.onto_parent))
        parquet = ParquetOut(self.parquet_root, run_id) if self.parquet_root is not None else None
        if parquet is not None:
            parquet.clear()
        try:
            with self._batches(plan, parquet) as batches:
                for scored in batches:
                    self._record(self.scoring, scored, writer, run_id, acc)
                    progress.update(scored.rows_in)
        except BaseException:
            if parquet is not None:  # no tables of a run the store marks failed
                parquet.clear()
            raise
        if parquet is not None:
            money = _frames.money_type(_frames.names(plan))
            parquet.write_totals({district: (_frames.yuan_value(fen, district in acc.fen_districts, money), cases)
                                  for district, (fen, cases) in acc.districts.items()}, money)
            log.info("results also as Parquet under %s (run_id=%s)", self.parquet_root, run_id)

    def _plan(self):
        try:
            return make_plan(self.policies, self.as_of, aliases=self.aliases, duplicates=self.duplicates,
                             computed=self.cases.plan.onto_parent if self.cases is not None else ())
        except DistributedError as error:
            raise NightlyError(str(error)) from error

    @contextlib.contextmanager
    def _batches(self, plan, parquet):
        if self.engine == "dask":
            from .dask import scored_batches

            yield scored_batches(self.registry_path, plan, self._dask(), recurse=self.recurse, parquet=parquet)
        else:
            from .spark import scored_batches

            registry = f"hive:{self.catalogue}" if self.catalogue is not None else self.registry_path
            yield scored_batches(self._spark(), registry, plan, recurse=self.recurse, parquet=parquet)


class CatalogueTable:
    """A registry that is a table of Spark's catalogue, as the nightly run asks a registry:
    its columns checked on the driver before a run starts (a missing one named as for a
    file), its fingerprints computed by Spark (spark.py)."""

    def __init__(self, spark, name: str, plan):
        self.spark, self.name = spark, name
        self.readers, self.encodings, self.warnings = [], {}, []  # no files of ecorules' readers
        self.estimated_rows = 0  # unknown before the scan (progress shows rows, not a share)
        needed_columns(plan, spark.table(name).columns)  # raises MissingColumnError naming the fact

    def described(self) -> list[dict[str, str]]:
        return [{"source": f"hive:{self.name}", "format": "table of Spark's catalogue"}]

    def fingerprint(self) -> str:
        from .spark import table_fingerprint

        return table_fingerprint(self.spark, self.name)

    def stat_fingerprint(self) -> str:
        from .spark import table_stat

        return table_stat(self.spark, self.name)


def _forget_local_dirs() -> None:
    """Spark's JVM keeps the local dirs of its first context for its lifetime: a later session
    of this process (another run of a library caller) would write into the removed directory
    again, and leave it behind. Cleared, the next context takes its own ``spark.local.dir``."""
    from pyspark import SparkContext

    try:
        # the Scala object's own instance: a private[spark] method has no static forwarder
        getattr(getattr(SparkContext._jvm.org.apache.spark.util, "Utils$"), "MODULE$").clearLocalRootDirs()
    except Exception as error:  # noqa: BLE001 - an internal of Spark's: a later run leaves a directory, no more
        log.debug("Spark's local dirs not cleared: %s", error)


def run_distributed(registry, out, **options):
    return DistributedRun(registry, out, **options).execute()


__all__ = ["ENGINES", "OUT_FORMATS", "CatalogueTable", "DistributedRun", "run_distributed"]
