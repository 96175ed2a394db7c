"""Analyst views through the whole ingest path: groups seen by fewer distinct visitors or networks
than the threshold fold into "(other)"."""

import json

from starlette.testclient import TestClient

from collector.http.app import create_app
from tests.conftest import flush, rows
from collector.testing import CHROME_UA, make_settings


def visit(client, path, cid, search=None, gpc=False, net=1):
    body = {"n": "pageview", "u": f"https://example.org{path}" + (f"?q={search}" if search else ""),
            "d": "example.org", "cid": cid}
    headers = {"Content-Type": "text/plain", "User-Agent": CHROME_UA, "X-Forwarded-For": f"198.51.{net}.7",
               **({"Sec-GPC": "1"} if gpc else {})}
    assert client.post("/api/event", content=json.dumps(body), headers=headers).status_code == 202


def test_small_groups_fold_into_other(tmp_path):
    settings = make_settings(tmp_path / "data", min_group_visitors=3)
    with TestClient(create_app(settings), client=("127.0.0.1", 50000)) as c:
        for i in range(3):
            visit(c, "/plans", f"abcdefg.popular{i:04d}", search="dental", net=10 + i)
        visit(c, "/rare-condition", "abcdefg.lonely0001", search="rare disease", net=20)
        for i in range(5):  # many GPC visits do not make a group visible on their own
            visit(c, "/gpc-only", f"abcdefg.private{i:04d}", gpc=True, net=30 + i)
        for i in range(4):  # invented client ids behind one network do not either
            visit(c, "/sybil", f"abcdefg.sybil{i:04d}", net=40)
        flush(c)
        pages = {r["path"]: r for r in rows(c, "SELECT path, pageviews, visitors FROM pages_daily")}
        searches = {r["search_term"]: r for r in rows(c, "SELECT search_term, searches FROM searches_daily")}
        total = rows(c, "SELECT count() AS n FROM events")[0]["n"]
        sources = rows(c, "SELECT source, visits FROM sources_daily")
    assert set(pages) == {"/plans", "(other)"} and pages["/plans"]["visitors"] == 3 and pages["/plans"]["pageviews"] == 3
    assert pages["(other)"]["pageviews"] == 1 + 5 + 4 and pages["(other)"]["visitors"] == 1 + 4
    assert set(searches) == {"dental", "(other)"} and searches["(other)"]["searches"] == 1
    assert total == 13  # the raw table keeps everything; only the views fold
    assert sources == [{"source": "Direct", "visits": 8}]  # one visit per tab; GPC makes no visit


def test_threshold_follows_the_setting(tmp_path):
    for k, expected in ((1, {"/a", "/b"}), (2, {"/a", "(other)"})):
        settings = make_settings(tmp_path / "data", min_group_visitors=k)
        with TestClient(create_app(settings), client=("127.0.0.1", 50000)) as c:
            if k == 1:
                visit(c, "/a", "abcdefg.one00001", net=1)
                visit(c, "/a", "abcdefg.two00002", net=2)
                visit(c, "/b", "abcdefg.one00001", net=1)
                flush(c)
            assert {r["path"] for r in rows(c, "SELECT path FROM pages_daily")} == expected
