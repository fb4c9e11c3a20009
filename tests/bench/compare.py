#!/usr/bin/python3
"""compare.py: the issue's speed figures for today's nomade (the baseline
commit, built by base.sh) and this branch's, measured in the same run and
interleaved round by round, so that a machine shared with other work
slows both alike. Printed side by side with the target and pass/miss:
  order     candle-close push -> order request inside nomade, p50 and p99
            (bench_order.py: `nomade run --exec bybit` against the stand-in)
  backtest  the default strategy over 2023's 1m candles: candles/s of the
            run stage (median of the rounds) and the whole command's peak
            RSS (bench_backtest.sh)
  reload    save -> new strategy active, the median of every save
            (bench_reload.lua)
Without a baseline binary (it did not build) the branch is timed alone.
  /usr/bin/python3 tests/bench/compare.py BRANCH_NOMADE [BASE_NOMADE [BASE_NAME]]
  BENCH_ROUNDS (3) rounds; BENCH_CANDLES (1000) order candles per build in all
"""
import os
import re
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_order  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def backtest(nomade):
    """{rate: candles/s, rss_mb}, or {why} (no data, or it failed)."""
    out = subprocess.run([os.path.join(HERE, "bench_backtest.sh"), nomade], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True).stdout
    rate = re.search(r"run [\d.]+ s \((\d+) candles/s", out)
    rss = re.search(r"peak RSS (\d+) KB", out)
    if not rate or not rss:
        return {"why": (out.strip().splitlines() or ["bench_backtest.sh printed nothing"])[-1]}
    return {"rate": float(rate.group(1)), "rss_mb": int(rss.group(1)) * 1024 / 1e6}  # time(1) %M is KiB


def reload(nomade):
    """The samples (ms) of one bench_reload.lua run."""
    out = subprocess.run([nomade, "script", os.path.join(HERE, "bench_reload.lua"), nomade], capture_output=True,
                         text=True).stdout
    m = re.search(r"samples ms: ([\d. ]+)", out)
    return [float(x) for x in m.group(1).split()] if m else []


def order(nomade, candles):
    m, err = bench_order.measure(nomade, candles)
    if err:
        return {"why": err, "inside": [], "e2e": [], "odd": []}
    return m


def rounds(builds, n, candles):
    """Every figure's samples per build; the builds alternate which goes first."""
    got = {name: {"rate": [], "rss_mb": [], "reload": [], "inside": [], "e2e": [], "notes": []} for name, _ in builds}
    for r in range(n):
        order_ = builds if r % 2 == 0 else builds[::-1]
        for name, nomade in order_:
            g = got[name]
            b = backtest(nomade)
            if "why" in b:
                g["notes"].append("backtest: " + b["why"])
            else:
                g["rate"].append(b["rate"])
                g["rss_mb"].append(b["rss_mb"])
            g["reload"].extend(reload(nomade))
            o = order(nomade, max(1, candles // n))
            g["inside"].extend(o["inside"])
            g["e2e"].extend(o["e2e"])
            g["notes"].extend(["order: " + x for x in ([o["why"]] if "why" in o else o["odd"])])
            print("  round %d/%d %s done" % (r + 1, n, name), file=sys.stderr)
    return got


def figure(xs, how):
    if not xs:
        return None
    if how == "median":
        return statistics.median(xs)
    return bench_order.pct(xs, int(how[1:]))


# name, samples, how, unit format, target, passes
FIGURES = [
    ("order p50 close -> request, us", "inside", "p50", "%.0f", "-", None),
    ("order p90 close -> request, us", "inside", "p90", "%.0f", "-", None),
    ("order p99 close -> request, us", "inside", "p99", "%.0f", "<= 200", lambda v: v <= 200),
    ("order p50 end-to-end, us", "e2e", "p50", "%.0f", "-", None),
    ("order p99 end-to-end, us", "e2e", "p99", "%.0f", "-", None),
    ("backtest candles/s (median)", "rate", "median", "%.0f", ">= 2,000,000", lambda v: v >= 2.0e6),
    ("backtest peak RSS, MB (median)", "rss_mb", "median", "%.1f", "<= 50", lambda v: v <= 50),
    ("reload median, ms", "reload", "median", "%.0f", "<= 50", lambda v: v <= 50),
]


def cell(samples, how, fmt, passes):
    v = figure(samples, how)
    if v is None:
        return "n/a"
    text = fmt % v
    if passes:
        text += " pass" if passes(v) else " MISS"
    return text


def table(builds, got):
    names = [name for name, _ in builds]
    print("%-32s %-13s" % ("figure", "target") + "".join(" %-18s" % n for n in names))
    for label, key, how, fmt, target, passes in FIGURES:
        print("%-32s %-13s" % (label, target) + "".join(" %-18s" % cell(got[n][key], how, fmt, passes)
                                                      for n in names))
    print("%-32s %-13s" % ("samples: order, reload", "") +
          "".join(" %-18s" % ("%d, %d" % (len(got[n]["inside"]), len(got[n]["reload"]))) for n in names))
    for n in names:
        for note in sorted(set(got[n]["notes"])):
            print("  %s: %s" % (n, note))


def main(argv):
    branch = argv[1]
    base = argv[2] if len(argv) > 2 and argv[2] else None
    base_name = argv[3] if len(argv) > 3 else "today"
    n = int(os.environ.get("BENCH_ROUNDS", "3"))
    candles = int(os.environ.get("BENCH_CANDLES", "1000"))
    builds = [("today " + base_name, base)] if base else []
    builds.append(("branch", branch))
    if not base:
        print("the baseline did not build: the branch's figures alone")
    print("make bench: %d rounds, interleaved; order: %d candles per build, loopback, tribunal off"
          % (n, candles))
    got = rounds(builds, n, candles)
    table(builds, got)


if __name__ == "__main__":
    main(sys.argv)
