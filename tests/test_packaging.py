"""What the distribution installs, and what ``import rxstream`` loads.

The wheel holds the rxstream package alone (the benchmarks inside it, as rxstream._benchmarks),
and ``rxstream bench`` runs from an installed copy, away from the repository.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Every test here starts interpreters, and pip builds in an isolated environment, fetching setuptools from the index.
pytestmark = pytest.mark.network


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = out.glob("rxstream-*.whl")
    return built


def test_the_wheel_installs_rxstream_and_nothing_else(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert tops == {"rxstream", next(top for top in tops if top.endswith(".dist-info"))}
    assert "rxstream/py.typed" in names
    assert "rxstream/_benchmarks/suite.py" in names
    assert not any(name.startswith("benchmarks/") for name in names)


def test_rxstream_bench_runs_from_an_installed_copy(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    # Run from an empty directory with the installed copy first on the path: no repository in sight.
    env = {**os.environ, "PYTHONPATH": str(target)}
    where = subprocess.run(
        [sys.executable, "-c", "import rxstream; print(rxstream.__file__)"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.strip() == str(target / "rxstream" / "__init__.py")
    result = subprocess.run(
        [sys.executable, "-m", "rxstream", "bench", "--quick"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "pipeline vs seed loop" in result.stdout  # a quick run lists the rows it ran


def test_import_rxstream_leaves_the_network_the_store_and_the_test_tools_unloaded() -> None:
    code = (
        "import sys, rxstream; print(sorted(m for m in "
        "('httpx', 'websockets', 'sqlite3', 'psycopg', 'psycopg_pool', 'redis', 'starlette', 'rxstream._benchmarks', 'hypothesis', 'pytest', 'rxstream.testing') "
        "if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
    first_use = (
        "import sys, rxstream; rxstream.stream_sse; rxstream.SQLiteStore; print('httpx' in sys.modules, 'sqlite3' in sys.modules, 'psycopg' in sys.modules); "
        "rxstream.PostgresStore; print('psycopg_pool' in sys.modules, 'redis' in sys.modules); "
        "rxstream.from_redis_stream; print('redis' in sys.modules)"
    )
    assert subprocess.run(
        [sys.executable, "-c", first_use], capture_output=True, text=True, check=True
    ).stdout.split() == ["True", "True", "False", "True", "False", "True"]


def test_the_pytest_plugin_loads_without_hypothesis_or_the_servers() -> None:
    """pytest loads the plugin wherever rxstream is installed, with or without the testing extra:
    it costs no more than rxstream until a test starts a server."""
    code = (
        "import sys; import rxstream.testing._plugin; "
        "print(sorted(m for m in ('hypothesis', 'websockets', 'httpx', 'rxstream.server') if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"


def test_the_plugin_is_registered_for_pytest() -> None:
    from importlib.metadata import entry_points

    (plugin,) = [point for point in entry_points(group="pytest11") if point.value.startswith("rxstream")]
    assert plugin.value == "rxstream.testing._plugin"


def test_the_cli_builds_its_parser_without_the_benchmark_suite() -> None:
    code = "import sys; from rxstream.cli import build_parser; build_parser(); print('rxstream._benchmarks.suite' in sys.modules)"
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
        == "False"
    )


def test_an_unknown_attribute_is_an_attribute_error() -> None:
    import rxstream

    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        rxstream.nonsense  # noqa: B018
    assert set(rxstream.__all__) <= set(dir(rxstream))


TYPED_PROGRAM = """
import rxstream


async def ask(url: str) -> str:
    response: rxstream.Response = await rxstream.stream_sse(url, request=rxstream.chat_request("m", "hi"))
    async with rxstream.stream_text(url, request={}) as text:
        pieces = [piece async for piece in text]
    return response.text + "".join(pieces) + str(text.stats.chunks)
"""


def test_mypy_strict_sees_the_types_of_an_editable_install(tmp_path: Path) -> None:
    # A copy of the checkout, so that the install's build/ folder lands there, not in the repository.
    project = tmp_path / "project"
    shutil.copytree(ROOT, project, ignore=shutil.ignore_patterns(".*", "build", "*.egg-info", "__pycache__"))
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "venv")], check=True, timeout=60)
    python = tmp_path / "venv" / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps", "-e", str(project)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    user = tmp_path / "user"  # outside the checkout: only the install can make rxstream visible
    user.mkdir()
    (user / "good.py").write_text(TYPED_PROGRAM)
    (user / "misspelt.py").write_text(TYPED_PROGRAM.replace("request={}", "reqeust={}"))

    def mypy(program: str) -> str:
        command = [sys.executable, "-m", "mypy", "--strict", "--python-executable", str(python), program]
        result = subprocess.run(command, cwd=user, capture_output=True, text=True, timeout=300)
        return result.stdout + result.stderr

    assert "Success: no issues found" in mypy("good.py")
    assert 'Unexpected keyword argument "reqeust" for "stream_text"' in mypy("misspelt.py")
