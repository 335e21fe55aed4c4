"""The report in a real browser: Chromium (Debian's package), headless, with every network path closed, renders the
page of a ledger real servers wrote, and its screenshot holds every chart's every series, in its colour."""

import os
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from server.report.charts import AGENT_COLOURS, DECISION_COLOURS, TOKEN_COLOURS
from tests.processes import run_cli
from tests.report.page import parse

pytestmark = pytest.mark.subprocess

_CHROMIUM = next((found for name in ("chromium", "chromium-browser") if (found := shutil.which(name))), None)
_WINDOW = (1100, 3200)
_AT_LEAST = 300
"""Pixels of a series' colour that only its bars give: a legend's swatch is 144."""
_OFFLINE = [
    "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--force-device-scale-factor=1",
    "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-sync",
    "--disable-background-networking", "--disable-component-update", "--disable-default-apps",
    "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
]  # fmt: skip
"""No name resolves and every connection goes to a closed port: nothing the page asked for could arrive."""


def _chromium(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    if _CHROMIUM is None:
        pytest.skip("chromium is not on PATH: apt-get install chromium (Debian's package) to render the report")
    profile = folder / "profile"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(folder)}
    command = [_CHROMIUM, *_OFFLINE, f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env, cwd=folder)


def _colours(png: Path) -> Counter[tuple[int, ...]]:
    with Image.open(png) as image:
        assert image.size == _WINDOW
        found = image.convert("RGB").getcolors(maxcolors=_WINDOW[0] * _WINDOW[1])
    assert found is not None
    return Counter({colour: count for count, colour in found if isinstance(colour, tuple)})


def _pixels(colours: Counter[tuple[int, ...]], hex_colour: str) -> int:
    """Pixels within 2 of `hex_colour` in each channel (a renderer may round)."""
    want = tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return sum(n for colour, n in colours.items() if all(abs(a - b) <= 2 for a, b in zip(colour, want, strict=True)))


def test_chromium_draws_every_series_of_every_chart(written: Path, tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    proc = run_cli(written, "ledger", "report", "--html", str(report))
    assert proc.returncode == 0, proc.stderr
    shot = tmp_path / "report.png"
    rendered = _chromium(tmp_path, f"--screenshot={shot}", f"--window-size={_WINDOW[0]},{_WINDOW[1]}", report.as_uri())
    assert shot.exists(), rendered.stderr[-2000:]
    colours = _colours(shot)
    series = {
        "EXECUTE": DECISION_COLOURS["EXECUTE"],
        "ESCALATE": DECISION_COLOURS["ESCALATE"],
        "ERROR": DECISION_COLOURS["ERROR"],
        "llm-planner-001, the busiest agent": AGENT_COLOURS[0],
        "alpha": AGENT_COLOURS[1],
        "prompt tokens": TOKEN_COLOURS["prompt"],
        "completion tokens": TOKEN_COLOURS["completion"],
    }
    drawn = {name: _pixels(colours, colour) for name, colour in series.items()}
    assert all(count >= _AT_LEAST for count in drawn.values()), drawn
    unused = {name: _pixels(colours, colour) for name, colour in DECISION_COLOURS.items() if name not in series}
    assert unused == {"INSUFFICIENT_INFORMATION": 0, "SKIP": 0}


def test_chromium_parses_the_page_into_nothing_but_what_it_says(written: Path, tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    assert run_cli(written, "ledger", "report", "--html", str(report)).returncode == 0
    dumped = _chromium(tmp_path, "--dump-dom", report.as_uri())
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    page = parse(dumped.stdout)
    assert not {tag for tag, _ in page.elements} & {"script", "img", "iframe", "object", "embed", "link", "a"}
    assert len([tag for tag, _ in page.elements if tag == "svg"]) == 3
    assert parse(report.read_text(encoding="utf-8")).tables == page.tables
