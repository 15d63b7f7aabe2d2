"""Run every DAG of one DAG file through ``dag.test()``, as a user trying a README example would.

The packaging test copies this script out of the repository and runs it with the Python of a fresh
virtualenv holding the installed wheel: ``python _run_dag_file.py DAG_FILE RUN_CONF_JSON``. It
exits 0 only if the file parsed without an import error, defined at least one DAG, and every DAG
run succeeded. It never imports airflow_iterate itself, so a DAG file that forgets
``import airflow_iterate`` fails here as it would in a deployment.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import sysconfig
from pathlib import Path


def main(dag_file: Path, run_conf: dict[str, object]) -> int:
    spec = importlib.util.find_spec("airflow_iterate")
    site_packages = Path(sysconfig.get_paths()["purelib"])
    if spec is None or spec.origin is None or site_packages not in Path(spec.origin).parents:
        print(f"airflow_iterate is not the installed wheel's: {spec and spec.origin}")
        return 3

    from airflow.dag_processing.dagbag import DagBag  # Airflow's own parser, as the dag-processor

    bag = DagBag(dag_folder=str(dag_file))
    for path, error in bag.import_errors.items():
        print(f"import error in {path}:\n{error}")
    if bag.import_errors or not bag.dags:
        print(f"{dag_file}: {len(bag.dags)} DAG(s), {len(bag.import_errors)} import error(s)")
        return 2
    failed = []
    for dag_id, dag in sorted(bag.dags.items()):
        state = dag.test(run_conf=run_conf).state
        print(f"DAG run of {dag_id}: {state}")
        if state != "success":
            failed.append(dag_id)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), json.loads(sys.argv[2])))
