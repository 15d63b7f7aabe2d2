"""Real local servers for the tests, the demo and the benchmarks (not part of the package).

sshd.py          an OpenSSH sshd in the foreground on 127.0.0.1 with its own host key
delay_proxy.py   a userspace TCP proxy adding per-direction delay, able to cut or stall links
"""
