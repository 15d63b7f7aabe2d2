"""The Items tab's FastAPI app, mounted by Airflow's API server under ``/iterate``.

Every route authenticates the caller as Airflow's own routes do (the session cookie the UI holds,
or a bearer token; none: 401) and checks the DAG's permissions with Airflow's auth manager:
reading a task instance's items needs read access to its task instances and to its XComs (labels
and errors are the items' inputs and results), rerunning them needs edit access to its task
instances. Pages are server-rendered (Jinja, autoescaped) with a small script that reads the
JSON endpoints and writes every text from items with ``textContent``; a Content Security Policy
lets only that script run, and only Airflow's own pages may frame them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
from airflow.configuration import conf
from fastapi import Depends, FastAPI, HTTPException, Query, Request, status
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from . import _csrf
from ._ledger import (
    FINISHED_STATES,
    ITERATE_OPERATORS,
    entry_matches,
    like_fragment,
    locate,
    overview,
    pages_for,
)
from ._rerun import RerunUnavailable, rerun_failed_items, unavailable_reason
from ._store import (
    LedgerLocation,
    TaskInstanceKey,
    find_ledger,
    run_ledgers,
    run_task_instances,
    task_instance,
)

__all__ = ["create_app"]

HERE = Path(__file__).parent
STATIC = {"items.js": "text/javascript", "items.css": "text/css"}
#: how often a page asks for news while its task instance runs
POLL_SECONDS = 2.0
MAX_FAILED_PAGE = 200
MAX_FOUND = 20
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
    ),
    "X-Frame-Options": "SAMEORIGIN",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

ReadItems = [
    Depends(requires_access_dag("GET", DagAccessEntity.TASK_INSTANCE)),
    Depends(requires_access_dag("GET", DagAccessEntity.XCOM)),
]


def _map_index(text: str) -> int:
    """The UI leaves ``{MAP_INDEX}`` as it is on an unmapped task instance's page: that is -1."""
    return int(text) if re.fullmatch(r"-?\d+", text) else -1


def _key(dag_id: str, run_id: str, task_id: str, map_index: str | int) -> TaskInstanceKey:
    return TaskInstanceKey(dag_id, run_id, task_id, _map_index(str(map_index)))


def _secret() -> str:
    from airflow.api_fastapi.auth.tokens import get_signing_key

    return str(get_signing_key("api", "secret_key"))


def _may_edit(user: Any, dag_id: str) -> bool:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.models.dag import DagModel

    return bool(
        get_auth_manager().is_authorized_dag(
            method="PUT",
            access_entity=DagAccessEntity.TASK_INSTANCE,
            details=DagDetails(id=dag_id, team_name=DagModel.get_team_name(dag_id)),
            user=user,
        )
    )


def _own_hosts(request: Request) -> list[str]:
    base = urlsplit(conf.get("api", "base_url", fallback="") or "").netloc
    return [request.headers.get("host", ""), request.headers.get("x-forwarded-host", ""), base]


def _base(request: Request) -> str:
    """This app's path as the browser sees it (``[api] base_url``'s path + ``/iterate``)."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def _failed_view(
    location: LedgerLocation, document: dict[str, Any], offset: int, limit: int, search: str
) -> dict[str, Any]:
    """A page of the failed items, all of them or those whose label contains ``search``."""
    per_page = int(document.get("failures_per_page") or 50)
    pages = int(document.get("failed_pages") or 0)
    failed = int((document.get("counts") or {}).get("failed") or 0)
    view: dict[str, Any] = {"offset": offset, "limit": limit, "search": search}
    if not search:
        numbers = pages_for(offset, limit, per_page, pages)
        found = location.pages(list(numbers))
        entries: list[Any] = []
        for number in numbers:
            entries.extend(found.get(number, [None] * per_page))
        if not found and pages == 0:  # only the document's own first failures
            entries = list(document.get("failed") or [])[offset : offset + limit]
            numbers = range(0, 0)
        skip = offset - numbers.start * per_page if numbers else 0
        listed = [e for e in entries[skip : skip + limit] if e is not None]
        view.update(items=listed, total=failed, more=False)
        return view
    needle = search.lower()
    fragment = like_fragment(search)
    candidates = (
        location.page_numbers_containing([fragment], pages) if fragment is not None else list(range(pages))
    )
    items: list[Any] = []
    count = 0
    exhausted = True
    for _, page in location.iter_pages(candidates):
        for entry in page:
            if isinstance(entry, dict) and entry_matches(entry, needle):
                if count >= offset and len(items) < limit:
                    items.append(entry)
                count += 1
        if count > offset + limit:
            exhausted = False
            break
    view.update(items=items, total=count if exhausted else None, more=not exhausted)
    return view


def _find_failure(location: LedgerLocation, document: dict[str, Any], index: int) -> dict[str, Any] | None:
    if not int((document.get("counts") or {}).get("failed") or 0):
        return None
    for entry in document.get("failed") or ():
        if entry.get("index") == index:
            return dict(entry)
    pages = int(document.get("failed_pages") or 0)
    fragments = location.index_fragments(index)
    for _, page in location.iter_pages(location.page_numbers_containing(fragments, pages, ignore_case=False)):
        for entry in page:
            if isinstance(entry, dict) and entry.get("index") == index:
                return dict(entry)
    return None


def _not_iterated_message(ti: dict[str, Any], key: TaskInstanceKey) -> tuple[bool, str]:
    operator = ti.get("operator") or "?"
    if operator == "IteratePlanOperator":
        group = key.task_id.rsplit(".", 1)[0]
        return True, (
            f"This task plans the chunks of the chunked task {group!r}; it runs no items. The DAG run's "
            "Items tab shows every chunk, each chunk's own Items tab its items."
        )
    if operator in ITERATE_OPERATORS:
        state = ti.get("state") or "not scheduled yet"
        if ti.get("state") in FINISHED_STATES:
            return True, f"This iterated task instance ended ({state}) without writing an item ledger."
        return True, f"This iterated task instance has not started its items yet ({state})."
    return False, (
        f"This task ({operator}) is not an iterated task: it has no items. Tasks that call .iterate() "
        "show every item here."
    )


def create_app() -> FastAPI:
    app = FastAPI(title="airflow-iterate Items tab", docs_url=None, redoc_url=None, openapi_url=None)
    templates = Environment(
        loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True)
    )

    def page(request: Request, template: str, config: dict[str, Any], title: str) -> HTMLResponse:
        config = {**config, "base": _base(request), "poll_seconds": POLL_SECONDS}
        html = templates.get_template(template).render(
            title=title, config=config, static=f"{_base(request)}/static"
        )
        return HTMLResponse(html, headers=SECURITY_HEADERS)

    def answer(payload: dict[str, Any], status_code: int = 200) -> JSONResponse:
        return JSONResponse(payload, status_code=status_code, headers={"Cache-Control": "no-store"})

    @app.get("/static/{name}")
    def static(name: str, user: GetUserDep) -> FileResponse:
        if name not in STATIC:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such file")
        return FileResponse(
            HERE / "static" / name,
            media_type=STATIC[name],
            headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"},
        )

    @app.get(
        "/ti/{dag_id}/{run_id}/{task_id}/{map_index}",
        response_class=HTMLResponse,
        dependencies=[Depends(requires_access_dag("GET", DagAccessEntity.TASK_INSTANCE))],
    )
    def task_instance_page(
        request: Request, dag_id: str, run_id: str, task_id: str, map_index: str, user: GetUserDep
    ) -> HTMLResponse:
        key = _key(dag_id, run_id, task_id, map_index)
        config = {
            "kind": "ti",
            "dag_id": key.dag_id,
            "run_id": key.run_id,
            "task_id": key.task_id,
            "map_index": key.map_index,
            "csrf": _csrf.make_token(_secret(), str(user.get_id())),
        }
        label = key.task_id if key.map_index < 0 else f"{key.task_id} [{key.map_index}]"
        return page(request, "items.html", config, f"Items of {label}")

    @app.get(
        "/run/{dag_id}/{run_id}",
        response_class=HTMLResponse,
        dependencies=[Depends(requires_access_dag("GET", DagAccessEntity.RUN))],
    )
    def run_page(request: Request, dag_id: str, run_id: str) -> HTMLResponse:
        config = {"kind": "run", "dag_id": dag_id, "run_id": run_id}
        return page(request, "items.html", config, f"Iterated tasks of {run_id}")

    @app.get("/api/ti/{dag_id}/{run_id}/{task_id}/{map_index}", dependencies=ReadItems)
    def task_instance_items(
        dag_id: str,
        run_id: str,
        task_id: str,
        map_index: int,
        session: SessionDep,
        user: GetUserDep,
        failed_offset: Annotated[int, Query(ge=0)] = 0,
        failed_limit: Annotated[int, Query(ge=1, le=MAX_FAILED_PAGE)] = 50,
        search: Annotated[str, Query(max_length=200)] = "",
    ) -> JSONResponse:
        key = _key(dag_id, run_id, task_id, map_index)
        ti = task_instance(session, key)
        if ti is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such task instance")
        finished = ti["state"] in FINISHED_STATES
        payload: dict[str, Any] = {
            "task_instance": {**key.__dict__, **ti},
            "finished": finished,
            "poll": not finished,
        }
        location, document = find_ledger(session, key)
        if location is None or document is None:
            iterated, message = _not_iterated_message(ti, key)
            payload.update(iterated=iterated, ledger=None, message=message, rerun={"offered": False})
            payload["poll"] = payload["poll"] and iterated
            return answer(payload)
        reason = unavailable_reason()
        failed = int((document.get("counts") or {}).get("failed") or 0)
        gathered = document.get("chunks") is not None
        allowed = _may_edit(user, key.dag_id)
        payload.update(
            iterated=True,
            store=location.where,
            ledger={k: v for k, v in document.items() if k != "failed"},
            current=document.get("try_number") == ti["try_number"],
            failed=_failed_view(location, document, failed_offset, failed_limit, search.strip()),
            rerun={
                "available": reason is None,
                "reason": reason,
                "allowed": allowed,
                "offered": reason is None
                and allowed
                and finished
                and failed > 0
                and not gathered
                and document.get("state") != "running",
                "gathered": gathered,
            },
        )
        return answer(payload)

    @app.get("/api/ti/{dag_id}/{run_id}/{task_id}/{map_index}/find", dependencies=ReadItems)
    def find_item(
        dag_id: str,
        run_id: str,
        task_id: str,
        map_index: int,
        session: SessionDep,
        index: Annotated[int | None, Query()] = None,
        label: Annotated[str, Query(max_length=200)] = "",
    ) -> JSONResponse:
        key = _key(dag_id, run_id, task_id, map_index)
        location, document = find_ledger(session, key)
        if location is None or document is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "this task instance has no item ledger")
        if index is not None:
            return answer({"found": [locate(document, index, _find_failure(location, document, index))]})
        needle = label.strip().lower()
        if not needle:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, "give an index or a label")
        found: list[dict[str, Any]] = [
            {"index": item.get("index"), "status": "running", "item": item}
            for item in document.get("in_flight") or ()
            if entry_matches(item, needle)
        ]
        failures = _failed_view(location, document, 0, MAX_FOUND, label.strip())
        found += [{"index": e.get("index"), "status": "failed", "failure": e} for e in failures["items"]]
        return answer(
            {
                "found": found[:MAX_FOUND],
                "more": len(found) > MAX_FOUND or failures["more"],
                "note": (
                    "Labels are kept for running and failed items only; find a succeeded item by its index."
                ),
            }
        )

    @app.get("/api/run/{dag_id}/{run_id}", dependencies=ReadItems)
    def run_items(dag_id: str, run_id: str, session: SessionDep) -> JSONResponse:
        task_instances = run_task_instances(session, dag_id, run_id)
        if not task_instances:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such DAG run, or it has no task instances")
        view = overview(run_ledgers(session, dag_id, run_id), task_instances)
        iterated = [ti for ti in task_instances.values() if ti.get("operator") in ITERATE_OPERATORS]
        view["poll"] = any(ti["state"] not in FINISHED_STATES for ti in iterated)
        return answer(view)

    @app.post(
        "/api/ti/{dag_id}/{run_id}/{task_id}/{map_index}/rerun-failed",
        dependencies=[Depends(requires_access_dag("PUT", DagAccessEntity.TASK_INSTANCE))],
    )
    def rerun_failed(
        request: Request,
        dag_id: str,
        run_id: str,
        task_id: str,
        map_index: int,
        session: SessionDep,
        user: GetUserDep,
    ) -> JSONResponse:
        if _csrf.cross_site(request.headers, _own_hosts(request)):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "cross-site request refused")
        if not _csrf.valid_token(_secret(), str(user.get_id()), request.headers.get(_csrf.HEADER)):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "missing or expired page token: reload the page")
        key = _key(dag_id, run_id, task_id, map_index)
        ti = task_instance(session, key)
        if ti is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such task instance")
        _, document = find_ledger(session, key)
        if document is None or not int((document.get("counts") or {}).get("failed") or 0):
            raise HTTPException(status.HTTP_409_CONFLICT, "this task instance has no failed items to rerun")
        if ti["state"] not in FINISHED_STATES:
            detail = f"the task instance is {ti['state']}: wait until it ends"
            raise HTTPException(status.HTTP_409_CONFLICT, detail)
        try:
            cleared = rerun_failed_items(session, key, user)
        except RerunUnavailable as exc:
            raise HTTPException(status.HTTP_501_NOT_IMPLEMENTED, str(exc)) from exc
        return answer({"cleared": cleared, "previous_try": ti["try_number"]})

    return app
