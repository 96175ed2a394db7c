import pytest

from collector import settings as S
from collector.clientip import ClientIp


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
    ({}, "no sites configured"),
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
