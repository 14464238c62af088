"""The floor for the bot's per-take HTTP work: a bare aiohttp process doing the same traffic against the same fakes.

    python bench/floor_http.py SPEC.json

SPEC: {"mode": "traffic" | "restart", "fal": base url, "discord_api": base url, "token": bot token,
"takes": [{"status_url", "result_url", "video_url", "channel_id"}], "status_per_take": K, "clip_path": path}

traffic: per take K status GETs (in rounds over all takes, like a poller), one result GET, one download GET of the
clip and one multipart POST of it to Discord (a channel message with the file); prints {"cpu_s", "wall_s"} for
that work alone (not the interpreter start). The rounds run back to back, not at the poll interval: CPU is what
is compared.
restart: N status GETs at once, as a restarted poller would; prints {"wall_s"}.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time

import aiohttp

FAL_AUTH = {"Authorization": "Key test-key"}


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def _traffic(spec: dict) -> dict:
    takes = spec["takes"]
    clip = open(spec["clip_path"], "rb").read()  # noqa: ASYNC230, SIM115
    discord_auth = {"Authorization": f"Bot {spec['token']}"}
    cpu0, t0 = _cpu(), time.monotonic()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)) as http:

        async def get(url: str, headers: dict) -> None:
            async with http.get(url, headers=headers) as r:
                await r.read()

        for _ in range(int(spec["status_per_take"])):
            await asyncio.gather(*(get(t["status_url"], FAL_AUTH) for t in takes))

        async def finish(t: dict) -> None:
            await get(t["result_url"], FAL_AUTH)
            await get(t["video_url"], {})
            form = aiohttp.FormData()
            form.add_field(
                "payload_json", json.dumps({"content": "floor clip"}), content_type="application/json"
            )
            form.add_field("files[0]", clip, filename="clip.mp4", content_type="video/mp4")
            url = f"{spec['discord_api']}/channels/{t['channel_id']}/messages"
            async with http.post(url, data=form, headers=discord_auth) as r:
                await r.read()

        sem = asyncio.Semaphore(50)

        async def bounded(t: dict) -> None:
            async with sem:
                await finish(t)

        await asyncio.gather(*(bounded(t) for t in takes))
    return {"cpu_s": _cpu() - cpu0, "wall_s": time.monotonic() - t0}


async def _restart(spec: dict) -> dict:
    t0 = time.monotonic()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)) as http:

        async def get(url: str) -> None:
            async with http.get(url, headers=FAL_AUTH) as r:
                await r.read()

        await asyncio.gather(*(get(t["status_url"]) for t in spec["takes"]))
    return {"wall_s": time.monotonic() - t0}


def main() -> None:
    spec = json.loads(open(sys.argv[1]).read())  # noqa: SIM115
    run = _traffic if spec["mode"] == "traffic" else _restart
    print(json.dumps(asyncio.run(run(spec))))


if __name__ == "__main__":
    main()
