"""User-Agent parsing: ``user_agents.parse`` uncached (the usual Python choice) against the product's
parser (ua-parser 1.0 with the Rust matcher from ua-parser-rs) on a cache miss and on a cache hit.

Every string in the miss runs is distinct, so no cache anywhere can answer it; the hit run repeats
the same strings through a warmed cache.
"""

from __future__ import annotations

import time

from loadtests import traffic


def _mean_us(fn, items) -> float:
    t0 = time.perf_counter_ns()
    for x in items:
        fn(x)
    return (time.perf_counter_ns() - t0) / len(items) / 1000


def run(n_miss: int = 2000, n_baseline: int = 300, hit_rounds: int = 20) -> dict:
    from collector.pipeline.useragent import UserAgentParser

    uas = traffic.user_agents(n_miss + n_baseline + 1, seed=23)
    ours_miss_set, baseline_set = uas[:n_miss], uas[n_miss:]
    out: dict = {}
    try:
        import user_agents
    except ImportError:
        out["baseline_us"] = None
    else:
        user_agents.parse(uas[-1])  # import-time work (regex compilation) is not a parse
        out["baseline_us"] = _mean_us(user_agents.parse, baseline_set[:-1])
    parser = UserAgentParser(cache_size=n_miss * 2)
    parser.parse(uas[-1])
    out["miss_us"] = _mean_us(parser.parse, ours_miss_set)
    hits = ours_miss_set * hit_rounds
    out["hit_us"] = _mean_us(parser.parse, hits)
    # the realistic mix: a skewed popularity over a few hundred strings through a fresh cache
    mix = [uas[i] for i in traffic.zipf_indices(min(300, len(uas)), 50_000)]
    fresh = UserAgentParser()
    out["mix_mean_us"] = _mean_us(fresh.parse, mix)
    out["mix_hit_rate"] = fresh.parse.cache_info().hits / len(mix)
    if out["baseline_us"]:
        out["miss_speedup"] = out["baseline_us"] / out["miss_us"]
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
