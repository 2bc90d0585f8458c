"""Operating a deployed mesh (the orchestration plane): drift between the state declared in
git and what runs (`drift`, `drift_check`, `running`, `drift_watch`), the models lock file
(`lockfile`). `demigod ops` (ops.cli) is the command group."""
