"""Print, as JSON, what an installed airflow-iterate says about itself.

The packaging test copies this script out of the repository and runs it with the Python of the
fresh virtualenv holding the wheel: the distribution's metadata and the licence file it ships (read
before anything imports the package), ``airflow_iterate.__version__``, the provider metadata, and
the version Airflow's providers manager registered (what ``airflow providers list`` shows).
"""

from __future__ import annotations

import json
from importlib.metadata import distribution, entry_points
from typing import Any


def describe() -> dict[str, Any]:
    dist = distribution("airflow-iterate")
    meta = dist.metadata
    description: dict[str, Any] = {
        "name": meta["Name"],
        "version": dist.version,
        "summary": meta["Summary"],
        "author": meta["Author"],
        "license_expression": meta["License-Expression"],
        "license_file_entries": meta.get_all("License-File") or [],
        "license_files": {
            str(file): file.read_text() for file in dist.files or () if file.parts[-2:-1] == ("licenses",)
        },
        "classifiers": meta.get_all("Classifier") or [],
        "project_urls": meta.get_all("Project-URL") or [],
        "keywords": meta["Keywords"],
        "provides_extra": meta.get_all("Provides-Extra") or [],
        "requires_dist": meta.get_all("Requires-Dist") or [],
        "requires_python": meta["Requires-Python"],
    }

    from airflow.providers_manager import ProvidersManager

    import airflow_iterate

    provider_entry_points = entry_points(group="apache_airflow_provider")
    (provider_info,) = (e for e in provider_entry_points if e.dist and e.dist.name == "airflow-iterate")
    providers = ProvidersManager().providers
    registered = providers.get("airflow-iterate")
    description.update(
        module_version=airflow_iterate.__version__,
        module_file=airflow_iterate.__file__,
        provider_info_versions=provider_info.load()()["versions"],
        registered_provider_version=registered.version if registered else None,
    )
    return description


if __name__ == "__main__":
    print(json.dumps(describe()))
