"""Proof under faults: the real sidecar process against a fake Immich and a fake Discord that
both fail a share of their requests (FAULT_RATE and DISCORD_FAULT_RATE below: 500, 503, 429
with Retry-After, held-then-dropped and dropped connections), killed with SIGKILL at random
points and restarted, while photos keep arriving, faces are recognised late and the config is
edited.

What must hold at the end: nothing lost on either path; on the bot path nothing posted twice
(the per-message nonce makes a resend answer with the earlier message); on the webhook path
duplicates are possible (Discord cannot de-duplicate a webhook) and are counted and printed.
Set FAULT_SEED to replay another run, FAULT_LOG=<file> to keep the sidecars' logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import textwrap
import time
from pathlib import Path

import pytest

from sidecar.engine.store.database import Store
from tests.e2e_harness import free_port, write_config
from tests.fakes import fake_discord as fd
from tests.fakes.fake_immich import FakeImmich
from tests.fakes.fake_immich import Faults as ImmichFaults
from tests.fault_rig import (
    ConfigEdits,
    Pace,
    Workload,
    WrappedSidecar,
    assets_in,
    bot_posts,
    describe,
    immich_faults,
    lost_and_duplicated,
    webhook_posts,
)

# Two minutes of faults and kills, beside the other tests (tests/conftest.py starts it first).
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.long]

SEED = int(os.environ.get("FAULT_SEED", "20250611"))
KILLS = 22
# Config edits written during the faults, at least: every one before the last was proven by a
# poll of a sidecar under faults. The faults go on after the KILLS until then: a sidecar that
# shares a loaded machine starts slower and polls less before its kill, so it takes longer to
# get there, never fewer.
EDITS = 3
CHAOS_LIMIT = 200.0  # seconds of faults at most, however slow the machine
FAULT_RATE = 0.3
# Some Discord requests are never faulted (login, gateway), so its share is drawn higher to
# fail at least a fifth of them all.
DISCORD_FAULT_RATE = 0.4
# Seconds of faults, then of none. Default: no calm at all. FAULT_CALM=1.5 lets batches through
# between storms, so that the kills also hit sends in flight; the share of failed requests then
# drops below a fifth, so the share check applies only without calm spells.
STORM, CALM = 6.0, float(os.environ.get("FAULT_CALM", "0"))
LIFETIME = (1.0, 9.0)  # seconds a sidecar runs before its SIGKILL, where starting takes STARTUP
# Seconds a start takes on an idle machine; where it takes longer (a loaded one), lifetimes are
# stretched alike, up to twice (fault_rig.Pace): a kill lands in a start as often as here.
STARTUP, STRETCH_LIMIT = 3.0, 2.0
# Share of the kills aimed at the narrow window: Discord has accepted a message but its answer
# has not arrived (a "timeout" fault holds it), so the outbox row is not marked sent yet.
AIMED = 0.35
DRAIN_LIMIT = 90.0  # seconds the clean run after the faults may take to deliver everything
WEBHOOK_TOKEN = "fault-hook-token"

TARGETS = textwrap.dedent(f"""\
    photos: {{channel_id: "{fd.PHOTOS_CHANNEL}"}}
    hook: {{webhook_url: '${{HOOK}}'}}
    """)
# A summary message would not link each photo; the backlog after an outage may be long.
RULES = textwrap.dedent("""\
    - name: family
      people: {any: [Alice, Bob]}
      targets: [photos, hook]
      batching: {summary_over: 100000}
    """)


async def fault_storms(immich: FakeImmich, discord: fd.FakeDiscord, stop: asyncio.Event) -> None:
    """Faults on both sides in storms until ``stop``, then off."""
    storm = 0
    while not stop.is_set():
        storm += 1
        immich.faults = ImmichFaults(
            rate=FAULT_RATE, seed=SEED + storm, timeout_delay=2.0, retry_after=1
        )
        # "timeout" (Discord carries the request out, the answer never arrives) counts twice:
        # it is the fault that tests exactly-once
        discord.set_faults(
            fd.Faults(
                rate=DISCORD_FAULT_RATE,
                seed=SEED - storm,
                timeout_delay=2.0,
                retry_after=0.5,
                kinds=(*fd.FAULT_KINDS, "timeout"),
            )
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), STORM)
        if CALM or stop.is_set():
            immich.faults = None
            discord.set_faults(None)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), CALM)


@pytest.mark.timeout(480)  # two to four minutes: a hang, not a slow run, is what this stops
async def test_exactly_once_on_the_bot_path_under_faults_and_sigkills(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    discord = fd.FakeDiscord()
    await discord.start()
    try:
        async with FakeImmich() as immich:
            await run_under_faults(tmp_path, rng, immich, discord)
    finally:
        await discord.stop()


async def run_under_faults(
    tmp: Path, rng: random.Random, immich: FakeImmich, discord: fd.FakeDiscord
) -> None:
    started = time.monotonic()
    workload = Workload(
        immich,
        random.Random(rng.random()),
        watched=(immich.add_person("Alice"), immich.add_person("Bob")),
        other=immich.add_person("Carol"),
    )
    config = tmp / "config.yaml"
    state = tmp / "state.db"
    port = free_port()

    def write(rules: str) -> None:
        write_config(
            config,
            immich_url=immich.url,
            state=state,
            rules=rules,
            targets=TARGETS,
            backfill="1h",
            metrics_port=port,
            extra="discord:\n  token: ${DISCORD_TOKEN}\n",
        )

    write(RULES)
    env = {
        "IMMICH_API_KEY": immich.api_key,
        "DISCORD_TOKEN": fd.TOKEN,
        "HOOK": f"{discord.base_url}/api/v10/webhooks/4242/{WEBHOOK_TOKEN}",
        "FAKE_DISCORD_URL": discord.base_url,
        # the product waits 15 s doubling to 15 min between attempts; minutes of faults are
        # compressed into seconds here
        "FAKE_DISPATCH_RETRY": "0.5,3",
    }
    processes: list[WrappedSidecar] = []

    def sidecar() -> WrappedSidecar:
        processes.append(WrappedSidecar(config, env, port))
        return processes[-1]

    edits = ConfigEdits(
        immich,
        workload,
        random.Random(rng.random()),
        watch_guests=lambda guests: write(
            RULES.replace("[Alice, Bob]", f"[{', '.join(['Alice', 'Bob', *guests])}]")
        ),
    )

    # -- chaos: faults on both sides, uploads, late faces and config edits, SIGKILL at random
    stop_uploads = asyncio.Event()
    storms = asyncio.create_task(fault_storms(immich, discord, stop_uploads))
    uploads = asyncio.create_task(workload.run(stop_uploads))
    editing = asyncio.create_task(edits.run(stop_uploads))
    kills = kills_in_window = 0
    early_exits: list[int] = []
    pace = Pace(STARTUP, STRETCH_LIMIT)
    while kills < KILLS or (edits.count < EDITS and time.monotonic() - started < CHAOS_LIMIT):
        process = sidecar()
        await process.start(wait_started=False)
        aimed = rng.random() < AIMED
        code = await process.run_for(
            rng.uniform(*LIFETIME) * pace.stretch(),
            until=(lambda: discord.answers_held > 0) if aimed else (lambda: False),
        )
        if code is not None:  # it gave up at start (Discord failing the login): restart
            early_exits.append(code)
            assert len(early_exits) <= KILLS, "the sidecar keeps failing to start:\n" + "\n".join(
                process.stderr[-10:]
            )
            continue
        kills_in_window += discord.answers_held > 0
        await process.kill()
        pace.saw(process)
        kills += 1
    stop_uploads.set()
    await uploads
    await storms
    await editing
    chaos_seconds = time.monotonic() - started
    during_faults = sum(bot_posts(discord, fd.PHOTOS_CHANNEL).values()) + sum(
        webhook_posts(discord, WEBHOOK_TOKEN).values()
    )
    immich_calls = sum(r.path.startswith("/api/") for r in immich.requests)
    discord_calls = len(discord.requests)

    # -- faults off, every late face recognised: the next sidecar must deliver the rest
    immich_injected = immich_faults(immich)
    discord_injected = discord.injected.copy()
    workload.recognise_due(everything=True)
    final = sidecar()
    await final.start()

    def complete() -> bool:
        bot, hook = bot_posts(discord, fd.PHOTOS_CHANNEL), webhook_posts(discord, WEBHOOK_TOKEN)
        return all(bot[a] and hook[a] for a in workload.expected)

    await final.wait_until(complete, "every expected delivery", limit=DRAIN_LIMIT)
    await final.wait_for_polls(2)
    assert await final.stop() == 0
    store = Store.open(state)
    rows = store.rows()
    store.close()

    everything = "\n".join(line for p in processes for line in p.stderr)
    if log_file := os.environ.get("FAULT_LOG"):
        posts = [
            f"webhook post: {sorted(assets_in(r['payload']))}"
            for r in discord.interaction_responses
            if r["token"] == WEBHOOK_TOKEN
        ]
        Path(log_file).write_text("\n".join([everything, *posts]))
    bot, hook = bot_posts(discord, fd.PHOTOS_CHANNEL), webhook_posts(discord, WEBHOOK_TOKEN)
    bot_lost, bot_duplicates = lost_and_duplicated(bot, workload.expected)
    hook_lost, hook_duplicates = lost_and_duplicated(hook, workload.expected)
    print(
        f"\nfault run (seed {SEED}, {chaos_seconds:.0f}s of faults, "
        f"{time.monotonic() - started:.0f}s in all; starts took {pace.typical():.1f}s, "
        f"lifetimes x{pace.stretch():.2f}): "
        f"{kills} SIGKILLs "
        f"({kills_in_window} while Discord held back the answer to a request it had carried "
        f"out), "
        f"{len(early_exits)} restarts after a failed start; injected faults: "
        f"Immich {describe(immich_injected, immich_calls)}, "
        f"Discord {describe(discord_injected, discord_calls)}; "
        f"{len(workload.expected)} matching assets ({workload.late_count} recognised late), "
        f"{len(workload.unwanted)} not matching; {edits.count} config edits "
        f"({edits.unproven} still unproven when the faults ended, "
        f"{everything.count('config reloaded')} applied by a running sidecar, "
        f"{everything.count('config reload postponed')} postponed while Immich failed); "
        f"{2 * len(workload.expected)} deliveries "
        f"({during_faults} posted during the faults); "
        f"lost bot/webhook {len(bot_lost)}/{len(hook_lost)}; "
        f"duplicates bot/webhook {bot_duplicates}/{hook_duplicates}"
    )

    assert kills >= 20
    # about FAULT_RATE of the requests failed on each side (few requests: allow for chance)
    if not CALM:
        assert sum(immich_injected.values()) >= 0.2 * immich_calls
        assert sum(discord_injected.values()) >= 0.2 * discord_calls
    assert workload.late_count and workload.unwanted
    # An edit is followed by the next only once a sidecar has polled with it, and the last one
    # by the final sidecar (its guest's photo, checked below with the other deliveries): so
    # every edit took effect (at a start or by a reload: the kills decide, the figures above
    # say), and none was refused.
    assert edits.count >= EDITS
    assert "config reload rejected" not in everything
    assert bot_lost == [] and hook_lost == []
    assert bot_duplicates == 0, {a: n for a, n in bot.items() if n > 1}
    assert not set(workload.unwanted) & (set(bot) | set(hook))
    # A login that meets a passing Discord fault exits 1 ("try again"), never with a crash.
    assert set(early_exits) <= {1}
    assert "Traceback" not in everything
    assert fd.TOKEN not in everything and WEBHOOK_TOKEN not in everything
    assert immich.api_key not in everything
    # The outbox agrees with Discord: every delivery sent, none pending or dead.
    assert {(r.target, r.asset_id) for r in rows} == {
        (t, a) for t in ("photos", "hook") for a in workload.expected
    }
    assert {r.state for r in rows} == {"sent"}
