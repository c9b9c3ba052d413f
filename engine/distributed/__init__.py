"""The nightly scoring past one machine, on the engine a site already runs: Dask
(engine/distributed/dask.py) or Spark (engine/distributed/spark.py), each an optional extra
(``pip install "ecorules[dask]"`` / ``"ecorules[spark]"``). Both score partitions with the
batch kernel through the same seam as ``ecorules run`` (engine/_scored.py) and add partial
district totals that sum exactly; ``ecorules run --engine dask|spark`` writes the results
store a local run writes (engine/distributed/_run.py).
"""
