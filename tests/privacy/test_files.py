"""Only the service user can read what the collector keeps: the data directory is 0700 and nothing in
it (ClickHouse parts, spool, keys, tokens, consent state, the internal socket) is readable by group
or others, even when an earlier version left the directory open."""

from __future__ import annotations

import json
import os
import stat

import httpx

from collector.testing import CHROME_UA, CollectorProcess, make_settings


def test_everything_in_the_data_directory_is_private(tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    os.chmod(data, 0o755)  # as an older version created it
    proc = CollectorProcess(make_settings(data), tmp_path).start()
    try:
        body = {"n": "pageview", "u": "https://example.org/plans", "d": "example.org", "cid": "abcdefg.FilesTest01"}
        assert httpx.post(proc.url + "/api/event", content=json.dumps(body),
                          headers={"Content-Type": "text/plain", "User-Agent": CHROME_UA}).status_code == 202
        proc.flush()
        open_to_others = []
        for root, dirs, files in os.walk(data):
            for name in dirs + files:
                path = os.path.join(root, name)
                mode = os.lstat(path).st_mode
                if stat.S_ISLNK(mode):
                    continue
                if mode & 0o077:
                    open_to_others.append(f"{os.path.relpath(path, data)} {oct(mode & 0o777)}")
        assert stat.S_IMODE(os.stat(data).st_mode) == 0o700
        assert (data / "clickhouse").is_dir() and (data / "spool").is_dir() and (data / "admin.sock").exists()
        assert open_to_others == []
    finally:
        assert proc.stop() == 0
