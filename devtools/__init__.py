"""Real local servers for the tests, the demo and the benchmarks (not part of the package).

sshd.py          an OpenSSH sshd in the foreground on 127.0.0.1 with its own host key
delay_proxy.py   a userspace TCP proxy adding per-direction delay, able to cut or stall links
http_server.py   an HTTP API served by uvicorn on 127.0.0.1 (records, pagination, 429/503,
                 latency under load, TLS with a throwaway CA, a large streamed body) that counts
                 connections and records each request's arrival; its parts are _http_app.py
                 (the ASGI apps), _http_serve.py (the server process), _http_data.py (what it
                 serves, reproducible by tests) and _tls.py (the CA and certificate)
"""
