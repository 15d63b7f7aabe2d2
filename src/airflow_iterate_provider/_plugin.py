"""The Items tab, as an Airflow plugin: an app on the API server and the UI views that show it.

Registered through the ``airflow.plugins`` entry point, so every Airflow process that loads plugins
(the scheduler, the dag-processor, each task's process, the API server) imports this module. It
therefore imports nothing but Airflow's plugin base class and configuration, both already loaded
by then: the app (FastAPI, the metadata models, the templates) is built by the API server on the
first request to ``/iterate``, and never in any other process. It also stays outside
``airflow_iterate``, whose import extends the Task SDK.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from airflow.configuration import conf
from airflow.plugins_manager import AirflowPlugin

__all__ = ["URL_PREFIX", "IteratePlugin", "items_views"]

#: where the app is mounted, under the path of ``[api] base_url``
URL_PREFIX = "/iterate"

_Scope = MutableMapping[str, Any]
_Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
_Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class _ItemsApp:
    """An ASGI app that builds the real one (``_ui._app.create_app``) when it is first called."""

    def __init__(self) -> None:
        self._app: Any = None

    async def __call__(self, scope: _Scope, receive: _Receive, send: _Send) -> None:
        if self._app is None:
            from ._ui._app import create_app

            self._app = create_app()
        await self._app(scope, receive, send)


def _base_path() -> str:
    """The path part of ``[api] base_url``, ``/`` when unset: where the UI and the API are served."""
    path = urlsplit(conf.get("api", "base_url", fallback="") or "").path
    return path if path.endswith("/") else path + "/"


def items_views(base_path: str = "/") -> list[dict[str, Any]]:
    """The UI's tabs: Items on a task instance, and the run's iterated tasks on a DAG run.

    The UI substitutes the placeholders (URL-encoded from Airflow 3.2 on, as they are on 3.1: every
    id is then a path segment, where ``+`` and ``:`` keep their meaning). An unmapped task
    instance's ``{MAP_INDEX}`` is left as it is; the app reads that as -1.
    """
    root = base_path.rstrip("/") + URL_PREFIX
    return [
        {
            "name": "Items",
            "href": root + "/ti/{DAG_ID}/{RUN_ID}/{TASK_ID}/{MAP_INDEX}",
            "destination": "task_instance",
            "url_route": "iterate-items",
        },
        {
            "name": "Items",
            "href": root + "/run/{DAG_ID}/{RUN_ID}",
            "destination": "dag_run",
            "url_route": "iterate-run-items",
        },
    ]


class IteratePlugin(AirflowPlugin):
    """airflow-iterate's Items tab (see the README, "The Items tab")."""

    name = "airflow_iterate"
    fastapi_apps = [  # noqa: RUF012 (Airflow's plugin attributes are class-level lists)
        {"app": _ItemsApp(), "url_prefix": URL_PREFIX, "name": "airflow-iterate Items tab"}
    ]
    external_views = items_views(_base_path())
