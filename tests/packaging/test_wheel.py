"""The package as a user gets it, and the README as a user reads it.

The slow tests build the sdist and the wheel with ``python -m build``, install the wheel (with the
``sftp`` and ``http`` extras and the Airflow, provider, asyncssh and aiohttp versions that
requirements/dev.txt pins) into a fresh virtualenv, and from a directory outside the repository, with a clean
environment (no PYTHONPATH), check what the installed distribution says about itself and run every
``python`` code block of README.md through ``dag.test()``. The examples are extracted from the
README itself, so an example that stops working fails here, naming its README line. They run once
per CI run, in ``make test``: in any other virtualenv (``make test-airflow31``) they are skipped.

What the examples need from outside is what a deployment would give them, under the names the
README uses: the connection ``partner_sftp`` to a real OpenSSH sshd on 127.0.0.1 whose login
directory holds ``incoming/``, the connection ``partner_api`` to the HTTP test server
(``devtools/http_server.py``) on 127.0.0.1, a ``warehouse`` connection and a ``batch`` variable (environment
variables, as tests/sftp defines its connections), and ``run_conf`` overriding the
``download_dir`` param.

The fast tests read the repository only: no relative links in the README (they would be dead on a
package index), links into the repository name files that exist, the version is defined once, and
the changelog has its entry.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from devtools.http_server import HTTPTestServer
from devtools.sshd import (
    MISSING_SSHD,
    SSHD,
    SSHServer,
    current_user,
    make_server_directory,
    remove_server_directory,
)

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli", reason="reading pyproject.toml on Python 3.10 needs tomli")

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
DEV_REQUIREMENTS = REPO / "requirements" / "dev.txt"
PACKAGE_INIT = REPO / "src" / "airflow_iterate" / "__init__.py"
HERE = Path(__file__).parent
#: copied out of the repository and run with the fresh virtualenv's Python
RUN_DAG_FILE = HERE / "_run_dag_file.py"
INSTALLED_METADATA = HERE / "_installed_metadata.py"

#: installed next to the wheel, at the versions requirements/dev.txt pins
INSTALL_PINS = (
    "apache-airflow",
    "apache-airflow-providers-sftp",
    "asyncssh",
    "apache-airflow-providers-http",
    "aiohttp",
)
#: the sdist: these files at its top level (besides what setuptools generates), ...
SDIST_TOP_LEVEL = {
    "ARCHITECTURE.md",
    "CHANGELOG.md",
    "LICENSE",
    "MANIFEST.in",
    "README.md",
    "SECURITY.md",
    "pyproject.toml",
}
#: ... every file under these directories (the package, the test suite and what it imports) ...
SDIST_TREES = ("src", "tests", "devtools", "examples")
#: ... and setuptools' own
SDIST_GENERATED = {"PKG-INFO", "setup.cfg"}

PIP_TIMEOUT = 1200
EXAMPLE_TIMEOUT = 300
#: the data the SFTP examples find in their login directory
INCOMING_DIRECTORIES = 2
INCOMING_FILES = 12  # per directory
#: records the partner API (the HTTP test server) serves to the README's HTTP example
PARTNER_API_RECORDS = 200


def _read_pins() -> dict[str, str]:
    pins = {}
    for line in DEV_REQUIREMENTS.read_text().splitlines():
        requirement = line.split("#", 1)[0].strip()
        if "==" in requirement:
            name, version = requirement.split("==", 1)
            pins[re.sub(r"\[.*\]", "", name).strip().lower()] = version.strip()
    return pins


PINS = _read_pins()
try:
    _AIRFLOW_HERE: str | None = importlib.metadata.version("apache-airflow")
except importlib.metadata.PackageNotFoundError:
    _AIRFLOW_HERE = None

needs_pinned_airflow = pytest.mark.skipif(
    PINS["apache-airflow"] != _AIRFLOW_HERE,
    reason=(
        "the packaging test builds and installs the package once per CI run, in `make test` "
        f"(apache-airflow=={PINS['apache-airflow']} from requirements/dev.txt); this virtualenv has "
        f"apache-airflow {_AIRFLOW_HERE} (`make test-airflow31`)"
    ),
)


# -- the README's code examples ------------------------------------------------------------------

PYTHON_FENCE_INFO = {"python", "py", "python3"}
_OPENING_FENCE = re.compile(r"^ {0,3}(?P<fence>`{3,}|~{3,})\s*(?P<info>[^\s`]*)")
#: counted independently of the parser below: every fence line whose info string says Python
_PYTHON_FENCE_LINE = re.compile(r"^\s*(?:`{3,}|~{3,})\s*py(?:thon3?)?\b", re.MULTILINE | re.IGNORECASE)


@dataclass(frozen=True)
class Example:
    #: the README line of the opening fence (1-based)
    line: int
    code: str

    def __str__(self) -> str:
        return f"README.md:{self.line}"


@dataclass(frozen=True)
class _Block:
    #: the opening fence's line (1-based) and the number of lines inside the fences
    line: int
    length: int
    info: str
    text: str


def _fenced_blocks(markdown: str) -> Iterator[_Block]:
    fence: str | None = None
    info, start, body = "", 0, []
    for number, line in enumerate(markdown.splitlines(), start=1):
        if fence is None:
            match = _OPENING_FENCE.match(line)
            if match:
                fence, info, start, body = match["fence"], match["info"].lower(), number, []
            continue
        stripped = line.strip()
        if stripped and set(stripped) == {fence[0]} and len(stripped) >= len(fence):
            yield _Block(start, len(body), info, "\n".join(body) + "\n")
            fence = None
        else:
            body.append(line)
    if fence is not None:
        raise AssertionError(f"README.md:{start}: code block never closed")


def readme_examples(markdown: str) -> list[Example]:
    return [Example(b.line, b.text) for b in _fenced_blocks(markdown) if b.info in PYTHON_FENCE_INFO]


README_TEXT = README.read_text()
EXAMPLES = readme_examples(README_TEXT)


def test_every_python_block_of_the_readme_is_an_example() -> None:
    counted = len(_PYTHON_FENCE_LINE.findall(README_TEXT))
    assert counted > 0
    assert len(EXAMPLES) >= counted, (
        f"README.md has {counted} python code blocks but only {len(EXAMPLES)} were extracted "
        f"(at lines {[e.line for e in EXAMPLES]}): an example would silently not be run"
    )
    for example in EXAMPLES:
        compile(example.code, str(example), "exec")  # a syntax error names the README line


# -- the README's links --------------------------------------------------------------------------

_INLINE_LINK = re.compile(r"\]\(\s*<?([^)\s>]+)")
_REFERENCE_LINK = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?([^\s>]+)", re.MULTILINE)
_HTML_LINK = re.compile(r"""\b(?:href|src)\s*=\s*["']([^"']+)""")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def _prose(markdown: str) -> str:
    """The markdown without its code blocks and inline code (whose brackets are not links)."""
    lines = markdown.splitlines()
    for block in _fenced_blocks(markdown):
        for index in range(block.line - 1, block.line + block.length + 1):
            lines[index] = ""
    return re.sub(r"`[^`\n]*`", "", "\n".join(lines))


def _links(markdown: str) -> list[str]:
    prose = _prose(markdown)
    return [
        *_INLINE_LINK.findall(prose),
        *_REFERENCE_LINK.findall(prose),
        *_HTML_LINK.findall(prose),
    ]


def _github_anchor(heading: str) -> str:
    text = re.sub(r"[`*]|\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _repository_url() -> str:
    urls = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["urls"]
    return str(urls["Source"]).rstrip("/")


def test_readme_links_work_on_a_package_index() -> None:
    links = _links(README_TEXT)
    assert links, "no links found: the link parser is broken"
    relative = [link for link in links if not re.match(r"^(https?://|mailto:|#)", link)]
    assert not relative, (
        "relative links are dead where the README is shown outside the repository (the package "
        f"index): make them absolute ({_repository_url()}/blob/main/...): {relative}"
    )


def test_readme_links_into_the_repository_name_files_that_exist() -> None:
    repository = _repository_url()
    anchors = {_github_anchor(heading) for heading in _HEADING.findall(_prose(README_TEXT))}
    for link in _links(README_TEXT):
        if link.startswith("#"):
            assert link[1:] in anchors, f"README link {link}: no such heading"
        for kind in ("blob", "tree", "raw"):
            prefix = f"{repository}/{kind}/main/"
            if link.startswith(prefix):
                path = link[len(prefix) :].split("#", 1)[0]
                assert (REPO / path).exists(), f"README link {link}: {path} is not in the repository"


# -- one version, one changelog entry ------------------------------------------------------------


def _source_version() -> str:
    for node in ast.parse(PACKAGE_INIT.read_text()).body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["__version__"]:
            assert isinstance(node.value, ast.Constant) and isinstance(node.value.value, str), (
                "__version__ must stay a string literal: setuptools reads it without importing the package"
            )
            return node.value.value
    raise AssertionError(f"no __version__ = '...' in {PACKAGE_INIT}")


def test_the_version_is_defined_once() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" not in pyproject["project"]
    assert pyproject["project"]["dynamic"] == ["version"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "airflow_iterate.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+(?:(?:a|b|rc)\d+)?(?:\.dev\d+)?", _source_version())


def test_the_changelog_has_an_entry_for_this_version() -> None:
    changelog = (REPO / "CHANGELOG.md").read_text()
    assert "\n## [Unreleased]\n" in changelog
    assert re.search(rf"^## \[{re.escape(_source_version())}\] - \d{{4}}-\d{{2}}-\d{{2}}$", changelog, re.M)


# -- building and installing ---------------------------------------------------------------------


@dataclass(frozen=True)
class Dists:
    sdist: Path
    wheel: Path


@dataclass(frozen=True)
class Installed:
    """A fresh virtualenv with the wheel, and a place outside the repository to run from."""

    root: Path
    python: Path
    airflow_home: Path

    def env(self, **extra: str) -> dict[str, str]:
        """A clean environment, as a user's shell would have: no PYTHONPATH, nothing of the tests'."""
        home = self.root / "home"
        home.mkdir(exist_ok=True)
        return {
            "PATH": f"{self.python.parent}{os.pathsep}/usr/local/bin{os.pathsep}/usr/bin{os.pathsep}/bin",
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "AIRFLOW_HOME": str(self.airflow_home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            **extra,
        }


def _run(command: list[str | Path], *, what: str, timeout: float, **kwargs: object) -> str:
    proc = subprocess.run(
        [str(part) for part in command],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        **kwargs,  # type: ignore[call-overload]
    )
    assert proc.returncode == 0, (
        f"{what} failed (exit {proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}"
    )
    return str(proc.stdout)


def _without_repository(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"}}


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> Dists:
    """The sdist, and the wheel built from it (``python -m build`` in an isolated environment)."""
    out = tmp_path_factory.mktemp("dist")
    _run(
        [sys.executable, "-m", "build", "--outdir", out, REPO],
        what="python -m build",
        timeout=600,
        cwd=out,
        env=_without_repository(dict(os.environ)),
    )
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return Dists(sdist, wheel)


@pytest.fixture(scope="module")
def installed(dists: Dists, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("user")
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", venv], what="python -m venv", timeout=120, cwd=root)
    python = venv / "bin" / "python"
    pins = [f"{name}=={PINS[name]}" for name in INSTALL_PINS]
    _run(
        [python, "-m", "pip", "install", "--quiet", f"{dists.wheel}[sftp,http]", *pins],
        what=f"pip install {dists.wheel.name}[sftp,http] {' '.join(pins)}",
        timeout=PIP_TIMEOUT,
        cwd=root,
        env=_without_repository(dict(os.environ)),  # keeps pip's own settings (index, cache)
    )
    result = Installed(root, python, root / "airflow-home")
    _run(
        [venv / "bin" / "airflow", "db", "migrate"],
        what="airflow db migrate",
        timeout=300,
        cwd=root,
        env=result.env(),
    )
    return result


# -- what was built ------------------------------------------------------------------------------


@needs_pinned_airflow
@pytest.mark.slow
def test_the_wheel_holds_the_packages_and_the_licence_only(dists: Dists) -> None:
    version = _source_version()
    assert dists.wheel.name == f"airflow_iterate-{version}-py3-none-any.whl"
    with zipfile.ZipFile(dists.wheel) as wheel:
        names = wheel.namelist()
    dist_info = f"airflow_iterate-{version}.dist-info"
    assert {name.split("/", 1)[0] for name in names} == {
        "airflow_iterate",
        "airflow_iterate_provider",
        dist_info,
    }
    assert "airflow_iterate/py.typed" in names
    assert f"{dist_info}/licenses/LICENSE" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith((".pyc", ".pyo"))]


def _sdist_expected() -> set[str]:
    expected = SDIST_TOP_LEVEL | SDIST_GENERATED
    expected |= {f"requirements/{p.name}" for p in (REPO / "requirements").glob("*.txt")}
    for tree in SDIST_TREES:
        for path in (REPO / tree).rglob("*"):
            relative = path.relative_to(REPO)
            if (
                path.is_file()
                and "__pycache__" not in relative.parts
                and not any(part.endswith(".egg-info") for part in relative.parts)
                and path.suffix not in {".pyc", ".pyo"}
            ):
                expected.add(relative.as_posix())
    return expected


@needs_pinned_airflow
@pytest.mark.slow
def test_the_sdist_holds_what_builds_and_tests_the_package(dists: Dists) -> None:
    version = _source_version()
    prefix = f"airflow_iterate-{version}/"
    with tarfile.open(dists.sdist) as sdist:
        members = {m.name: m for m in sdist.getmembers() if m.isfile()}
        changelog = sdist.extractfile(members[f"{prefix}CHANGELOG.md"])
        licence = sdist.extractfile(members[f"{prefix}LICENSE"])
        assert changelog is not None and licence is not None
        shipped_changelog, shipped_licence = changelog.read().decode(), licence.read().decode()
    assert all(name.startswith(prefix) for name in members)
    files = {name[len(prefix) :] for name in members}
    egg_info = {f for f in files if f.startswith("src/airflow_iterate.egg-info/")}
    assert "src/airflow_iterate.egg-info/PKG-INFO" in egg_info
    files -= egg_info

    forbidden = [
        f
        for f in files
        if re.search(
            r"(^|/)(__pycache__|\.demo|\.bench|\.venv[^/]*|\.\w+_cache|benchmarks|\.ci|build|dist)/", f
        )
        or f.endswith((".pyc", ".pyo", ".db", ".log"))
    ]
    assert not forbidden, f"the sdist carries files that are not the project's: {forbidden}"
    expected = _sdist_expected()
    assert files == expected, (
        f"missing from the sdist: {sorted(expected - files)}; not expected in it: {sorted(files - expected)}"
    )
    assert shipped_changelog == (REPO / "CHANGELOG.md").read_text()
    assert shipped_licence == (REPO / "LICENSE").read_text()


# -- what was installed --------------------------------------------------------------------------


def _copy_out(script: Path, installed: Installed) -> Path:
    """The script outside the repository, so that running it puts no repository directory on sys.path."""
    target = installed.root / script.name
    target.write_text(script.read_text())
    return target


@needs_pinned_airflow
@pytest.mark.slow
def test_the_installed_distribution_describes_itself(installed: Installed) -> None:
    out = _run(
        [installed.python, _copy_out(INSTALLED_METADATA, installed)],
        what="reading the installed metadata",
        timeout=300,
        cwd=installed.root,
        env=installed.env(),
    )
    meta = json.loads(out.strip().splitlines()[-1])
    site_packages = installed.root / "venv" / "lib"
    assert Path(meta["module_file"]).is_relative_to(site_packages), meta["module_file"]

    # one version everywhere: the source's literal, the metadata, the module, the provider info
    version = _source_version()
    assert meta["version"] == meta["module_version"] == version
    assert meta["provider_info_versions"] == [version]
    assert meta["registered_provider_version"] == version  # `airflow providers list` shows it

    assert meta["name"] == "airflow-iterate"
    assert meta["author"] == "airflow-iterate contributors"
    assert meta["license_expression"] == "Apache-2.0"
    assert meta["license_file_entries"] == ["LICENSE"]
    (licence_text,) = meta["license_files"].values()
    assert licence_text == (REPO / "LICENSE").read_text()
    assert licence_text.split()[:4] == ["Apache", "License", "Version", "2.0,"]

    classifiers = set(meta["classifiers"])
    lowest = int(re.fullmatch(r">=3\.(\d+)", meta["requires_python"])[1])  # type: ignore[index]
    pythons = {f"Programming Language :: Python :: 3.{minor}" for minor in range(lowest, 14)}
    assert {
        "Development Status :: 3 - Alpha",
        "Framework :: Apache Airflow",
        "Framework :: Apache Airflow :: Provider",
        "Typing :: Typed",
        *pythons,
    } <= classifiers
    assert any(c.startswith("Intended Audience :: ") for c in classifiers)
    assert any(c.startswith("Topic :: ") for c in classifiers)
    assert not [c for c in classifiers if c.startswith("License ::")]  # License-Expression says it
    assert meta["keywords"]

    urls = dict(entry.split(", ", 1) for entry in meta["project_urls"])
    repository = _repository_url()
    assert repository == "https://github.com/airflow-iterate/airflow-iterate"
    assert set(urls) == {"Homepage", "Source", "Changelog", "Issues", "Documentation"}
    assert urls["Changelog"] == f"{repository}/blob/main/CHANGELOG.md"
    assert urls["Issues"] == f"{repository}/issues"
    assert all(url.startswith(repository) for url in urls.values())

    # the development tools are pinned in requirements/, never published as an extra
    assert sorted(meta["provides_extra"]) == ["http", "sftp"]
    requirements = " ".join(meta["requires_dist"])
    for tool in ("pytest", "ruff", "mypy", "matplotlib", "dev"):
        assert tool not in requirements


# -- every README example, from the installed wheel ----------------------------------------------


@pytest.fixture(scope="module")
def partner_sftp() -> Iterator[SSHServer]:
    """A real OpenSSH server; its login directory holds ``incoming/`` with a few XML files."""
    if not SSHD.is_file():
        pytest.fail(MISSING_SSHD, pytrace=False)
    server = SSHServer(make_server_directory())
    for d in range(INCOMING_DIRECTORIES):
        directory = server.data_dir / "incoming" / f"batch-{d}"
        directory.mkdir(parents=True)
        for i in range(INCOMING_FILES):
            (directory / f"doc-{i:03d}.xml").write_text(
                f'<?xml version="1.0"?>\n<doc n="{i}">{"x" * i}</doc>\n'
            )
    try:
        server.start()
        yield server
    finally:
        server.stop()
        remove_server_directory(server.directory)


@pytest.fixture(scope="module")
def partner_api() -> Iterator[HTTPTestServer]:
    """The HTTP test server: records 1..200, listings paginated four ways."""
    with HTTPTestServer(records=PARTNER_API_RECORDS) as server:
        yield server


@pytest.fixture(scope="module")
def deployment_env(
    installed: Installed, partner_sftp: SSHServer, partner_api: HTTPTestServer
) -> dict[str, str]:
    """The connections and variables the README's examples name, as a deployment defines them."""
    sftp = {
        "conn_type": "sftp",
        "host": partner_sftp.host,
        "port": partner_sftp.port,
        "login": current_user(),
        "extra": partner_sftp.connection_extra(),
    }
    warehouse = {"conn_type": "generic", "host": "warehouse.example.com", "schema": "analytics"}
    api = {"conn_type": "http", "host": partner_api.host, "port": partner_api.port, "schema": "http"}
    return {
        "AIRFLOW_CONN_PARTNER_SFTP": json.dumps(sftp),
        "AIRFLOW_CONN_PARTNER_API": json.dumps(api),
        "AIRFLOW_CONN_WAREHOUSE": json.dumps(warehouse),
        "AIRFLOW_VAR_BATCH": json.dumps({"rows": 500}),
    }


@needs_pinned_airflow
@pytest.mark.slow
@pytest.mark.parametrize("example", EXAMPLES, ids=str)
def test_readme_example_runs_from_the_installed_wheel(
    example: Example, installed: Installed, deployment_env: dict[str, str]
) -> None:
    dags = installed.root / f"dags-readme-line-{example.line}"
    dags.mkdir()
    dag_file = dags / f"readme_line_{example.line}.py"
    dag_file.write_text(example.code)
    run_conf = {"download_dir": str(installed.root / "downloads")}
    proc = subprocess.run(
        [str(installed.python), str(_copy_out(RUN_DAG_FILE, installed)), str(dag_file), json.dumps(run_conf)],
        cwd=installed.root,
        env=installed.env(AIRFLOW__CORE__DAGS_FOLDER=str(dags), **deployment_env),
        capture_output=True,
        text=True,
        timeout=EXAMPLE_TIMEOUT,
        check=False,
    )
    assert proc.returncode == 0, (
        f"the README example at README.md line {example.line} failed (exit {proc.returncode}):\n"
        f"{example.code}\n--- its output (end) ---\n{proc.stdout[-8000:]}\n{proc.stderr[-8000:]}"
    )
