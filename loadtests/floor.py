"""The floor: a raw ASGI handler doing only the work that any design of a single-event beacon must do,
under the collector's uvicorn settings. It measures, in the same run as the collector, how close to
the bare Starlette route such a handler can get on this machine (the product brief's reachable figure).

Per ``POST /api/event``: read the body, decode the JSON object, take the client from the right-most
``X-Forwarded-For`` address, a City and an ASN lookup of it (``maxminddb`` with its C extension, the
benchmark's databases), a cached User-Agent parse (the collector's own parser and cache), one
HMAC-SHA256, encode the row with orjson, one ``write()`` to an append-only file, answer 202. Nothing
else: no validation, scrubbing, consent, rate limit, CORS, metrics, checksums or storage. A
``POST /api/batch`` (a JSON array) does the same with the lookups and the parse once per request (its
events share the address and the User-Agent) and, per event, the HMAC and the row's encoding; one
``write()`` per request.

Run as ``python -m loadtests.floor PORT CITY_DB ASN_DB SPOOL_FILE``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import sys
import time

import maxminddb
import orjson

from collector.pipeline.useragent import UserAgentParser

ACCEPTED = {"type": "http.response.start", "status": 202,
            "headers": [(b"content-length", b"2"), (b"content-type", b"text/plain; charset=utf-8")]}
OK = {"type": "http.response.body", "body": b"ok"}
ALIVE = {"type": "http.response.body", "body": b'{"alive":true}'}
HEALTH = {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"14")]}


def create_app(city_db: str, asn_db: str, spool: str):
    city = maxminddb.open_database(city_db, maxminddb.MODE_AUTO)
    asn = maxminddb.open_database(asn_db, maxminddb.MODE_AUTO)
    parse = UserAgentParser().parse
    secret = os.urandom(32)
    fd = os.open(spool, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    new, sha, dumps, loads, write = hmac.new, hashlib.sha256, orjson.dumps, orjson.loads, os.write

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":  # startup, then shutdown: nothing to do for either
            await receive()
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["path"] == "/healthz":
            await send(HEALTH)
            await send(ALIVE)
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        ua = xff = b""
        for name, value in scope["headers"]:
            if name == b"user-agent":
                ua = value
            elif name == b"x-forwarded-for":
                xff = value
        ip = xff.rsplit(b",", 1)[-1].strip().decode("latin-1") or scope["client"][0]
        agent = ua.decode("latin-1")
        doc = loads(body)
        place, net = city.get(ip) or {}, asn.get(ip) or {}
        browser = parse(agent)
        country = (place.get("country") or {}).get("iso_code", "")
        number, org = net.get("autonomous_system_number", 0), net.get("autonomous_system_organization", "")
        now = time.time()
        lines = []
        for p in (doc if isinstance(doc, list) else (doc,)):  # a batch's events share its address and UA
            cid = p.get("cid")
            msg = "\x1f".join(("visitor", p["d"], cid) if cid else ("visitor-ip", p["d"], ip, agent)).encode()
            lines.append(dumps({"ts": now, "site": p["d"], "name": p["n"], "url": p["u"], "referrer": p.get("r", ""),
                                "country": country, "asn": number, "isp": org, "browser": browser.browser,
                                "os": browser.os, "device": browser.device,
                                "visitor_id": new(secret, msg, sha).hexdigest()[:32]}))
        lines.append(b"")
        write(fd, b"\n".join(lines))
        await send(ACCEPTED)
        await send(OK)

    return app


def main(port: int, city_db: str, asn_db: str, spool: str) -> None:
    from loadtests import bare

    bare.run(create_app(city_db, asn_db, spool), port)  # the bare route's server settings


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4])
