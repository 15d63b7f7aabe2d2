"""The Items tab: an app on Airflow's API server reading the item ledgers of iterated tasks.

- ``_ledger.py``  what the tab knows of the ledger's public format, and the views it computes
                  from documents and failure pages (no Airflow: tested on its own)
- ``_store.py``   reading ledgers, failure pages and task instances from the metadata DB (the task
                  state store on Airflow 3.3+, XComs before), never one row per item
- ``_rerun.py``   "Rerun failed items": the request in the state store and the clear, through
                  Airflow's own REST API handlers, as the caller
- ``_csrf.py``    the token that protects the POST route against cross-site requests
- ``_app.py``     the FastAPI app: pages, JSON endpoints, Airflow's auth on every route
- ``templates/``, ``static/``  the server-rendered pages and their plain JavaScript
"""
