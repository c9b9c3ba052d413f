"""Fixtures of the engine's tests that several modules share."""

import pytest
from postgres_server import postgres_db, postgres_server  # noqa: F401 - fixtures: a real PostgreSQL server


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    """One Spark session in local[2] for the whole test run, bound to 127.0.0.1 (starting one
    takes seconds; getOrCreate would hand every module the first anyway). Requested only by
    modules that skipped themselves where pyspark or Java is absent."""
    from ecorules.engine.distributed.spark import local_session

    session = local_session("local[2]", local_dir=str(tmp_path_factory.mktemp("spark-local")))
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
