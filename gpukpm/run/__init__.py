"""Running: configuration, HDF5/CSV files, MPI task split and resume, aggregation of tasks,
the all-magnetisations orchestration and the ``gpukpm`` command line."""
