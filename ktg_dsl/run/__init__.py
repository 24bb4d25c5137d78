"""Running a compiled graph on this host: what the host can do (``env``), the data as batches
(``data``), run directories and their files (``rundir``, ``checkpoint``, ``logs``), and the
recipe that trains (``recipe``)."""
