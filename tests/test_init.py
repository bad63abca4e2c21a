"""``immich-sidecar init`` against the fake Immich (2.7 and 3.1 shapes): the file it writes
lists Immich's people and albums, passes check-config and doctor, and once a rule is
uncommented the real ``run`` posts that person's photo. Without a terminal it asks nothing;
on one (a pseudo-terminal here) it asks."""

from __future__ import annotations

import asyncio
import io
import os
import pty
import re
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from sidecar.cli.main import main
from sidecar.config.loader import load_settings
from sidecar.doctor.runner import diagnose
from sidecar.init.command import Questions, Request, run
from sidecar.init.inventory import Inventory, Named
from sidecar.init.place import SETTINGS, detect_place
from sidecar.init.render import MAX_RULES, Source, render, rules_for
from tests.e2e_harness import REPO, SidecarProcess, free_port
from tests.fakes.fake_immich import FakeImmich

VERSIONS = [(2, 7, 5), (3, 1, 0)]
IDS = ["immich-2.7", "immich-3.1"]


class Library:
    """A household's Immich: people photographed more or less, a face nobody named, two people
    of one name, albums of several sizes."""

    def __init__(self, immich: FakeImmich) -> None:
        self.immich = immich
        self.alice = immich.add_person("Alice")
        self.bob = immich.add_person("Bob")
        self.zoe = immich.add_person("Zoë Martin")
        self.unnamed = immich.add_person("")
        self.sam = [immich.add_person("Sam"), immich.add_person("sam")]
        when = datetime.now(UTC) - timedelta(days=3)
        for people, times in (([self.bob], 5), ([self.alice], 2), ([self.zoe], 1)):
            for _ in range(times):
                immich.add_asset(created_at=when, people=people)
        for person in (self.unnamed, *self.sam):
            immich.add_asset(created_at=when, people=[person])
        self.trip = immich.add_album("Trip 2024", [immich.add_asset(created_at=when)] * 1)
        self.family = immich.add_album(
            "Family", [immich.add_asset(created_at=when) for _ in range(3)]
        )


@pytest.fixture(params=VERSIONS, ids=IDS)
async def library(request):
    async with FakeImmich(version=request.param) as immich:
        yield Library(immich)


def request_for(out: Path, **kw) -> Request:
    defaults = dict(
        url=None, api_key_file=None, out=str(out), force=False, place="laptop", default_out=""
    )
    return Request(**{**defaults, **kw})


def environ(immich: FakeImmich) -> dict[str, str]:
    return {"IMMICH_URL": immich.url, "IMMICH_API_KEY": immich.api_key}


async def init(request: Request, env: dict[str, str]) -> tuple[int, str]:
    err = io.StringIO()
    code = await asyncio.to_thread(run, request, environ=env, questions=Questions(), err=err)
    return code, err.getvalue()


def uncomment(text: str, rule: str) -> str:
    """Remove the '# ' of one rule's lines, as a person does in an editor."""
    lines = text.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith(f'  # - name: "{rule}"'))
    end = start + 1
    while end < len(lines) and lines[end].startswith("  #   "):
        end += 1
    for i in range(start, end):
        lines[i] = "  " + lines[i].removeprefix("  # ")
    return "".join(lines)


async def test_the_file_lists_every_named_person_and_album_and_passes_check_config_and_doctor(
    library, tmp_path, capsys, monkeypatch
):
    out = tmp_path / "config.yaml"
    code, said = await init(request_for(out), environ(library.immich))
    assert code == 0, said
    text = out.read_text()
    rules = re.findall(r'^  # - name: "([^"]+)"', text, re.M)
    # Most photographed first (then by name), then the largest album first; nobody unnamed.
    people = ["bob", "alice", "sam", "sam-2", "zoe-martin"]
    assert rules == ["everything-new", *people, "album-family", "album-trip-2024"]
    assert '#   people: {any: ["Bob"]}' in text and '#   people: {any: ["Zoë Martin"]}' in text
    for sam in library.sam:  # one name, two people: by id, so that the rule is not ambiguous
        assert f'#   people: {{any: ["{sam}"]}}' in text
    assert '#   albums: {any: ["Family"]}' in text
    assert '# - name: "bob"   # 5 photos and videos' in text
    assert f"from Immich {'.'.join(map(str, library.immich.version))} at " in text
    assert "The API key has every permission the sidecar uses." in text
    assert library.immich.api_key not in text  # the key comes from the environment
    assert "console: {console: true}" in text
    assert '# discord: {webhook_url: "${DISCORD_WEBHOOK_URL}"}' in text

    monkeypatch.setenv("IMMICH_API_KEY", library.immich.api_key)
    assert main(["check-config", str(out)]) == 0
    assert "OK: 0 rules, 1 target (1 console)" in capsys.readouterr().out
    for rule in rules:  # each rule, once uncommented, is right for this Immich too
        out.write_text(uncomment(text, rule))
        report = io.StringIO()
        assert await diagnose(load_settings(out), report) == 0, report.getvalue()


async def test_after_uncommenting_a_rule_run_posts_that_persons_photo(library, tmp_path):
    """End to end: the real ``init`` and ``run`` processes, nothing changed in the file but
    one rule uncommented and the metrics port (tests run side by side)."""
    immich = library.immich
    photo = immich.add_asset(
        created_at=datetime.now(UTC) - timedelta(minutes=5), people=[library.alice]
    )
    other = immich.add_asset(created_at=datetime.now(UTC), people=[library.bob])
    env = {**os.environ, **environ(immich), "PYTHONUNBUFFERED": "1"}
    made = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sidecar", "init", "--for", "laptop", cwd=tmp_path, env=env,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(made.communicate(), 60)
    assert made.returncode == 0, err.decode()
    out = tmp_path / "config" / "config.yaml"  # the file run reads without -c
    assert "wrote config/config.yaml" in err.decode()
    port = free_port()
    text = uncomment(out.read_text(), "alice").replace("127.0.0.1:9187", f"127.0.0.1:{port}")
    out.write_text(text)

    sidecar = SidecarProcess(out, {"IMMICH_API_KEY": immich.api_key}, port, cwd=tmp_path)
    await sidecar.start()
    try:
        await sidecar.wait_for_delivery(photo)
    finally:
        assert await sidecar.stop() == 0
    [line] = sidecar.delivered(photo)
    assert line["rule"] == "alice" and line["people"] == ["Alice"]
    assert sidecar.delivered(other) == []  # Bob's rule is still commented out: no rule has him
    assert (tmp_path / "data" / "state.db").exists()  # laptop: state beside the config


async def test_it_refuses_to_overwrite_without_force(library, tmp_path):
    out = tmp_path / "config.yaml"
    out.write_text("mine\n")
    code, said = await init(request_for(out), environ(library.immich))
    assert code == 2
    assert f"{out} exists; give --force to replace it, or --out another file" in said
    assert out.read_text() == "mine\n"
    assert library.immich.api_requests() == []  # refused before asking Immich anything
    code, said = await init(request_for(out, force=True), environ(library.immich))
    assert code == 0, said
    assert out.read_text().startswith("# Written by `immich-sidecar init`")


async def test_without_a_terminal_it_asks_nothing_and_says_what_is_missing(library, tmp_path):
    out = tmp_path / "config.yaml"
    code, said = await init(request_for(out), {"IMMICH_API_KEY": library.immich.api_key})
    assert (code, said.strip()) == (
        2,
        "immich-sidecar init: no Immich URL: set IMMICH_URL or give --url "
        "(e.g. http://localhost:2283)",
    )
    code, said = await init(request_for(out, url=library.immich.url), {})
    assert code == 2
    assert "no Immich API key: set IMMICH_API_KEY or give --api-key-file FILE" in said
    assert not out.exists()


async def test_a_refused_key_writes_nothing(library, tmp_path):
    out = tmp_path / "config.yaml"
    code, said = await init(
        request_for(out), {"IMMICH_URL": library.immich.url, "IMMICH_API_KEY": "wrong"}
    )
    assert code == 2
    assert "refused the API key" in said and "HTTP 401" in said and "wrong" not in said
    assert not out.exists()


async def test_the_key_from_a_file_is_named_by_its_file(library, tmp_path, capsys):
    key = tmp_path / "immich_api_key"
    key.write_text(library.immich.api_key + "\n")
    out = tmp_path / "conf" / "config.yaml"
    code, said = await init(request_for(out, url=library.immich.url, api_key_file=str(key)), {})
    assert code == 0, said
    text = out.read_text()
    assert f'api_key_file: "{key}"' in text and library.immich.api_key not in text
    assert main(["check-config", str(out)]) == 0, capsys.readouterr().err


@pytest.mark.parametrize("version", VERSIONS, ids=IDS)
async def test_what_the_key_lacks_is_written_at_the_top(version, tmp_path):
    async with FakeImmich(version=version, permissions=("asset.read", "asset.view")) as immich:
        immich.add_person("Alice")
        out = tmp_path / "config.yaml"
        code, said = await init(request_for(out), environ(immich))
    assert code == 0, said
    text = out.read_text()
    assert "# The API key lacks permissions;" in text
    assert "#   watching for new photos: asset.statistics" in text
    assert "#   album rules: album.read" in text
    assert "# Not listed: people: the API key may not list them (person.read)" in text
    assert "# Not listed: albums: the API key may not list them (album.read)" in text
    assert "# - name:" in text  # still the everything-new rule to uncomment


async def test_the_container_settings_and_the_printed_file(library, tmp_path, capsys):
    args = [
        "init", "--url", library.immich.url, "--api-key-file", str(key_file(library, tmp_path)),
        "--for", "container", "--out", "-",
    ]  # fmt: skip
    code = await asyncio.to_thread(main, args)
    printed = capsys.readouterr()
    assert code == 0, printed.err
    data = yaml.safe_load(printed.out)
    assert data["state"] == {"path": "/data/state.db"}
    assert data["metrics"] == {"listen": "0.0.0.0:9187"}
    assert data["poll"]["interval"] == "2m" and data["rules"] is None


def key_file(library: Library, tmp_path: Path) -> Path:
    path = tmp_path / "key"
    path.write_text(library.immich.api_key)
    return path


def test_the_place_is_a_container_inside_docker_podman_or_kubernetes():
    assert detect_place({}, lambda path: False) == "laptop"
    assert detect_place({}, lambda path: path == Path("/.dockerenv")) == "container"
    assert detect_place({"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, lambda path: False) == (
        "container"
    )


def test_names_that_yaml_or_the_config_would_misread_come_back_as_written(tmp_path):
    odd = ["yes", "null", "1e3", 'Quote "Q" O\'Hare', "${HOME}", "back\\slash", "#hash", "Zoë"]
    people = tuple(Named(name, f"id-{n}", 10 - n, True) for n, name in enumerate(odd))
    inventory = Inventory("2.7.5", "", (), people, (), True)
    source = Source('"http://immich:2283"', "http://immich:2283", "api_key: k", "key", "")
    on = {rule.name for rule in rules_for(inventory)} - {"everything-new"}
    path = tmp_path / "c.yaml"
    path.write_text(render(inventory, SETTINGS["laptop"], source, on, datetime.now(UTC).date()))
    settings = load_settings(path, {})
    assert [r.people.any[0] for r in settings.rules] == odd
    assert len({r.name for r in settings.rules}) == len(odd)


def test_a_huge_library_is_cut_at_a_thousand_rules_and_says_so(tmp_path):
    people = tuple(Named(f"P{n}", f"id-{n}", 1, True) for n in range(MAX_RULES + 5))
    albums = (Named("A", "a", 1, True),)
    inventory = Inventory("3.1.0", "", (), people, albums, True)
    source = Source('"http://immich:2283"', "http://immich:2283", "api_key: k", "key", "")
    text = render(inventory, SETTINGS["laptop"], source, (), datetime.now(UTC).date())
    assert len(re.findall(r"^  # - name:", text, re.M)) == MAX_RULES + 1
    assert "# ... and 6 more people and albums, left out of this file." in text


# -- on a terminal it asks --------------------------------------------------------------------


def answer_on_a_terminal(args: list[str], env: dict[str, str], answers: list[tuple[str, str]],
                         cwd: Path) -> tuple[int, str]:  # fmt: skip
    """Run ``immich-sidecar init`` on a pseudo-terminal; each (prompt, answer) waits for the
    prompt, then types the answer. Returns the exit code and everything shown."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: init on the terminal
        os.chdir(cwd)
        os.execve(sys.executable, [sys.executable, "-m", "sidecar", "init", *args], env)
    shown = b""  # everything the terminal showed
    unread = b""  # what came after the last prompt answered
    deadline = time.monotonic() + 60
    for prompt, answer in answers:
        while prompt.encode() not in unread:
            assert time.monotonic() < deadline, shown.decode(errors="replace")
            chunk = os.read(fd, 4096)
            shown, unread = shown + chunk, unread + chunk
        os.write(fd, answer.encode() + b"\n")
        unread = unread.split(prompt.encode(), 1)[1]
    rest = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the child is gone
            break
        if not chunk:
            break
        rest += chunk
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), (shown + rest).decode(errors="replace")


@pytest.mark.parametrize("version", VERSIONS, ids=IDS)
async def test_on_a_terminal_it_asks_for_what_is_missing_and_which_rules_to_turn_on(
    version, tmp_path
):
    async with FakeImmich(version=version) as immich:
        Library(immich)
        env = {k: v for k, v in os.environ.items() if not k.startswith("IMMICH_")}
        env["PYTHONPATH"] = str(REPO)
        out = tmp_path / "mine.yaml"
        code, shown = await asyncio.to_thread(
            answer_on_a_terminal,
            ["--out", str(out)],
            env,
            [
                ("Where will the sidecar run: laptop or container?", "laptop"),
                ("Immich URL, as the sidecar will reach it [http://localhost:2283]:", immich.url),
                ("Immich API key (not shown, not written to the file):", immich.api_key),
                ("Turn on which? Numbers like 1,3 (Enter: none):", "2,7"),
            ],
            tmp_path,
        )
    assert code == 0, shown
    assert immich.api_key not in shown  # not echoed
    assert '1. "everything-new"' in shown and '2. "bob"' in shown
    text = out.read_text()
    assert '  - name: "bob"' in text and '  - name: "album-family"' in text  # turned on
    assert '  # - name: "alice"' in text
    settings = load_settings(out, {"IMMICH_API_KEY": "x"})
    assert [r.name for r in settings.rules] == ["bob", "album-family"]
