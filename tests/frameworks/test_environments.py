"""A framework's environment is built once and kept: a finished one is reused, one cut short is built again, and
one pip cannot install skips the test that needs it with pip's own words. None of these asks the registry."""

import subprocess
from pathlib import Path

import pytest

from tests.frameworks.environments import Framework, cache_root, framework_python

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]  # each builds a virtual environment (a few seconds)

# pip is in every new environment already, so installing it needs no registry.
_OFFLINE = Framework("offline", ("pip",))


@pytest.fixture(autouse=True)
def _cache_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def test_an_environment_named_by_its_pins_is_reused_once_finished_and_built_again_if_cut_short() -> None:
    python = framework_python(_OFFLINE)
    home = python.parents[1]
    assert home == cache_root() / f"offline-{_OFFLINE.key}"
    ran = subprocess.run([python, "-c", "import sys; print(sys.prefix)"], capture_output=True, text=True, check=True)
    assert Path(ran.stdout.strip()) == home
    assert Framework("offline", ("pip", "setuptools")).key != _OFFLINE.key
    (home / "kept").write_text("a file the next call must not remove")

    assert framework_python(_OFFLINE).parents[1] == home
    assert (home / "kept").exists()

    (home / "planner-mcp-ready").unlink()  # as a build killed before its end leaves it
    framework_python(_OFFLINE)
    assert not (home / "kept").exists() and (home / "planner-mcp-ready").exists()


def test_an_environment_pip_cannot_install_skips_with_pips_reason(tmp_path: Path) -> None:
    absent = tmp_path / "absent-1.0-py3-none-any.whl"
    broken = Framework("broken", (str(absent),))

    with pytest.raises(pytest.skip.Exception) as skipped:
        framework_python(broken)

    assert f"broken: pip could not install {absent}" in str(skipped.value)
    assert "ERROR" in str(skipped.value)
    assert not (cache_root() / f"broken-{broken.key}").exists()
