"""Analyst views leave out groups seen by fewer distinct visitors than the threshold."""

import json

from starlette.testclient import TestClient

from collector.http.app import create_app
from tests.conftest import flush, rows
from collector.testing import CHROME_UA, make_settings


def visit(client, path, cid, search=None, gpc=False):
    body = {"n": "pageview", "u": f"https://example.org{path}" + (f"?q={search}" if search else ""),
            "d": "example.org", "cid": cid}
    headers = {"Content-Type": "text/plain", "User-Agent": CHROME_UA, **({"Sec-GPC": "1"} if gpc else {})}
    assert client.post("/api/event", content=json.dumps(body), headers=headers).status_code == 202


def test_small_groups_are_suppressed(tmp_path):
    settings = make_settings(tmp_path / "data", min_group_visitors=3)
    with TestClient(create_app(settings), client=("127.0.0.1", 50000)) as c:
        for i in range(3):
            visit(c, "/plans", f"abcdefg.popular{i:04d}", search="dental")
        visit(c, "/rare-condition", "abcdefg.lonely0001", search="rare disease")
        for i in range(5):  # many GPC visits do not make a group visible on their own
            visit(c, "/gpc-only", f"abcdefg.private{i:04d}", gpc=True)
        flush(c)
        pages = {r["path"]: r for r in rows(c, "SELECT path, pageviews, visitors FROM pages_daily")}
        searches = {r["search_term"] for r in rows(c, "SELECT search_term FROM searches_daily")}
        total = rows(c, "SELECT count() AS n FROM events")[0]["n"]
    assert set(pages) == {"/plans"} and pages["/plans"]["visitors"] == 3 and pages["/plans"]["pageviews"] == 3
    assert searches == {"dental"}
    assert total == 9  # the raw table keeps everything; only the views suppress


def test_threshold_follows_the_setting(tmp_path):
    for k, expected in ((1, {"/a", "/b"}), (2, {"/a"})):
        settings = make_settings(tmp_path / "data", min_group_visitors=k)
        with TestClient(create_app(settings), client=("127.0.0.1", 50000)) as c:
            if k == 1:
                visit(c, "/a", "abcdefg.one00001")
                visit(c, "/a", "abcdefg.two00002")
                visit(c, "/b", "abcdefg.one00001")
                flush(c)
            assert {r["path"] for r in rows(c, "SELECT path FROM pages_daily")} == expected
