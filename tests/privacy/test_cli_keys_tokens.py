import subprocess
import sys

from collector.privacy.tokens import verify
from collector.testing import ROOT, SECRET, env_for, free_port, make_settings


def cli(env, *args):
    return subprocess.run([sys.executable, "-m", "collector", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=60)


def test_token_mint_prints_a_verifiable_token(tmp_path):
    env = env_for(make_settings(tmp_path / "data", port=free_port()), tmp_path / "c.toml")
    out = cli(env, "token", "mint", "--site", "example.org", "--member-ref", "MBR123456",
              "--purposes", "analytics_linking", "--ttl", "120")
    assert out.returncode == 0, out.stderr
    ident = verify(out.stdout.strip(), SECRET, "example.org")
    assert ident.member_ref == "MBR123456" and ident.purposes == ("analytics_linking",)
    assert ident.expires_at - ident.issued_at == 120
    bad = cli(env, "token", "mint", "--site", "nope.org", "--member-ref", "x")
    assert bad.returncode != 0 and "not configured" in bad.stderr


def test_keys_status_and_rotate(tmp_path):
    env = env_for(make_settings(tmp_path / "data", port=free_port()), tmp_path / "c.toml")
    status = cli(env, "keys", "status")
    assert status.returncode == 0 and "visitor" in status.stdout and "member" in status.stdout
    old = [line.split()[1] for line in status.stdout.splitlines() if line.startswith("visitor")]
    rotated = cli(env, "keys", "rotate")
    assert rotated.returncode == 0 and "rotated" in rotated.stdout
    new = [line.split()[1] for line in cli(env, "keys", "status").stdout.splitlines() if line.startswith("visitor")]
    assert new and new != old
    audit = (tmp_path / "data" / "keys" / "audit.log").read_text()
    assert '"action": "destroy"' in audit and '"reason": "rotated"' in audit
