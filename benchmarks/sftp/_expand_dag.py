"""Row 1's DAG: one mapped ``SFTPOperator`` task instance per file, as the proposal's production DAG.

Copied into the benchmark deployment's dags folder next to ``settings.json``, which names the
file list, the download directory and a DAG id per connection.
"""

from __future__ import annotations

import json
from pathlib import Path

import pendulum
from airflow.providers.sftp.operators.sftp import SFTPOperator
from airflow.sdk import DAG

SETTINGS = json.loads(Path(__file__).with_name("settings.json").read_text())
PATHS = json.loads(Path(SETTINGS["paths_file"]).read_text())

for dag_id, conn_id in SETTINGS["dags"].items():
    with DAG(dag_id, schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False) as dag:
        SFTPOperator.partial(
            task_id="get",
            ssh_conn_id=conn_id,
            operation="get",
            local_filepath=f"{SETTINGS['download_dir']}/{dag_id}/{{{{ ti.map_index }}}}.xml",
        ).expand(remote_filepath=PATHS)
    globals()[dag_id] = dag
