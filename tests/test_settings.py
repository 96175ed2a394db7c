import pytest

from collector import settings as S
from collector.http.clientip import ClientIp


def test_environment_and_file(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('port = 9000\n[sites."example.org"]\nsecret = "s"\nauth_prefixes = ["/member/"]\n')
    s = S.load({"COLLECTOR_CONFIG": str(cfg), "COLLECTOR_PORT": "9100", "COLLECTOR_GEO_PRECISION": "country"})
    assert s.port == 9100 and s.geo_precision == "country"
    assert s.site("example.org").auth_prefixes == ("/member/",) and s.site("nope") is None
    assert S.load({"COLLECTOR_SITES": "a.org, b.org"}).site("b.org").domain == "b.org"


@pytest.mark.parametrize("env,message", [
    ({"COLLECTOR_SITES": "a.org", "COLLECTOR_TRUSTED_PROXIES": "0.0.0.0/0"}, "trusts every address"),
    ({"COLLECTOR_SITES": "a.org", "COLLECTOR_TRUSTED_PROXIES": "::/0"}, "trusts every address"),
    ({"COLLECTOR_SITES": "a.org", "COLLECTOR_PORT": "eighty"}, "setting port"),
    ({"COLLECTOR_SITES": "a.org", "COLLECTOR_FSYNC": "never"}, "COLLECTOR_FSYNC"),
    ({"COLLECTOR_SITES": "a.org", "COLLECTOR_CLICKHOUSE_DSN": "mysql://x"}, "scheme"),
])
def test_unusable_configuration_is_refused_with_a_reason(env, message):
    with pytest.raises(S.ConfigError, match=message):
        S.load(env)


def test_client_ip_from_trusted_proxies_only():
    c = ClientIp(("127.0.0.0/8", "10.0.0.0/8"))
    assert c.resolve("127.0.0.1", "203.0.113.9") == "203.0.113.9"
    # right-most untrusted address: the left part could be forged by the client
    assert c.resolve("127.0.0.1", "1.1.1.1, 203.0.113.9, 10.0.0.5") == "203.0.113.9"
    assert c.resolve("198.51.100.7", "203.0.113.9") == "198.51.100.7"
    assert c.resolve("127.0.0.1", "garbage") == "127.0.0.1"
    assert c.resolve("127.0.0.1", "[2001:db8::1]:443") == "2001:db8::1"
    assert ClientIp(()).resolve("127.0.0.1", "203.0.113.9") == "127.0.0.1"


def test_serving_needs_sites_but_other_commands_do_not(tmp_path):
    import subprocess
    import sys

    from collector.testing import ROOT

    env = {"PATH": "/usr/bin:/bin", "COLLECTOR_DATA_DIR": str(tmp_path / "data"), "COLLECTOR_PORT": "1"}
    serve = subprocess.run([sys.executable, "-m", "collector", "serve"], env=env, cwd=ROOT, capture_output=True,
                           text=True, timeout=60)
    assert serve.returncode != 0 and "no sites configured" in serve.stderr + serve.stdout
    keys = subprocess.run([sys.executable, "-m", "collector", "keys", "status"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert keys.returncode == 0 and "visitor" in keys.stdout
