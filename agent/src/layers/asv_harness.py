"""benchvm's runner for asv benchmark suites.

Written to disk by benchvm-agent and run with the side's interpreter:

    python asv_harness.py list SUITE_DIR             -> {"benchmarks": [...], "errors": [...]}
    python asv_harness.py run SUITE_DIR ID [MODULE]  -> {"value": N, "unit": U} on the last line
    python asv_harness.py once SUITE_DIR ID [MODULE] -> setup, one call, teardown (the survey)
    python asv_harness.py cache SUITE_DIR ID [MODULE] -> runs ID's setup_cache once
    python asv_harness.py serve SUITE_DIR            -> one sample per request line (below)

One `run` is one sample in a fresh process. `serve` is the cheaper way to the same samples
for time_* benchmarks: one process per side pads its heap (before it imports anything of the
suite), imports each benchmark's module once, then forks a child per sample, which runs
setup, times, tears down and exits, so every sample still starts from the same state and
none sees another's (asv times its benchmarks from a forked server too). The agent starts a
new server every round, with a new padding. A request is a JSON line {"id", "module",
"number", "timeout"}, or {"preload": FILE}, which imports and finds the benchmarks FILE
lists ([[id, module], ...]) ahead and answers {"preloaded": n}: `number` (the calls per
repeat, calibrated by the first sample and returned with it) skips the calibration;
`timeout` bounds the child, which is killed when it runs longer. The answer is a JSON line:
{"value", "unit", "number", "wall", "user", "sys", "maxrss"}, {"skipped"}, {"error"} or
{"timed_out"}. Whatever the benchmarks print goes to stderr, so stdout carries only answers.

Lockstep: a request with "lockstep": N (and a "number") lets the agent interleave this
sample with the other side's, both children alive at once on one CPU. After setup and any
warm-up the child answers {"id", "ready": B} (B = min(N, number) blocks), then times one block
of the `number` calls for each "go" line it reads from the request stream, answering
{"id", "done": k} after each; a "stop" line ends it early with an error. The final answer is
as above, the value being the blocks' total time per call (asv's `repeat` does not apply).

Discovery follows asv's: the suite directory is imported as a package (only that name is
resolved from its parent directory, so nothing else there becomes importable), every module
and subpackage below it is walked, and every public function and class attribute whose name
(or `benchmark_name`) matches a benchmark kind is one benchmark, or one per parameter
combination. Ids are asv's: `module.Class.method`, relative to the suite, with the parameter
reprs in parentheses. A module that cannot be imported is reported in "errors" and costs
only its own benchmarks.

setup_cache: with BENCHVM_ASV_CACHE set, `cache` runs it once per key in
$BENCHVM_ASV_CACHE/<sha1 of the key>/ (the directory its benchmarks then run in, as in asv)
and pickles the result; `run` loads it from there. Without the variable (the local loop's
survey), `run` and `once` call setup_cache in-process, in a fresh temporary directory.

BENCHVM_WARMUP_TIME=S (set by the local loop's --warmup-time, never by `compare`) makes a
time_* benchmark run untimed for at least S seconds before it is timed, unless the benchmark
sets warmup_time itself.
"""

import copy
import hashlib
import importlib
import importlib.machinery
import importlib.util
import inspect
import itertools
import json
import os
import pickle
import pkgutil
import re
import resource
import select
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import timeit
import traceback

# asv's benchmark kinds, by the name of the function (or the last part of its
# benchmark_name); asv's own type names go into the listing for comparison with asv.
KINDS = [
    ("timeraw", re.compile(r"^(Timeraw[A-Z_].+)|(timeraw_.+)$"), "time"),
    ("time", re.compile(r"^(Time[A-Z_].+)|(time_.+)$"), "time"),
    ("mem", re.compile(r"^(Mem[A-Z_].+)|(mem_.+)$"), "memory"),
    ("peakmem", re.compile(r"^(PeakMem[A-Z_].+)|(peakmem_.+)$"), "peakmemory"),
    ("track", re.compile(r"^(Track[A-Z_].+)|(track_.+)$"), "track"),
]
UNITS = {"time": "s", "timeraw": "s", "mem": "bytes", "peakmem": "bytes"}
CACHE_VAR = "BENCHVM_ASV_CACHE"

# Heap padding: the allocations made before a benchmark (its package's import-time tables,
# say) decide where its own objects land, and with that cache and TLB behaviour. Two
# versions of a package that allocate differently at import can then time untouched code
# differently, consistently, in every pair. Allocating a run-dependent number of small
# objects first (pymalloc sizes, up to ~2 MB) spreads that layout bias into noise, as the
# agent's environment padding does for stack alignment. The amount derives from the
# padding variable's length, so a run is reproducible from the report's seed.
_HEAP_PAD = []


def pad_heap(n=None):
    if n is None:
        n = len(os.environ.get("BENCHVM_ENV_PAD", ""))
    _HEAP_PAD.extend(bytes(16 + (i * 7919) % 240) for i in range(n * 4))


class Skip(Exception):
    """This benchmark, or this parameter combination, is not to be measured."""


def kind_of(name):
    for kind, pattern, _ in KINDS:
        if pattern.match(name):
            return kind
    return None


def asv_type(kind):
    return next(t for k, _, t in KINDS if k == kind)


# --- importing the suite ------------------------------------------------------------------


class SuiteFinder:
    """Resolves exactly one top-level name, the suite's package, from the suite's parent
    directory. Putting the parent on sys.path instead would also expose whatever else sits
    there (often the project's own source tree, shadowing the installed one)."""

    def __init__(self, package, parent):
        self.package = package
        self.parent = parent

    def find_spec(self, fullname, path, target=None):
        if fullname != self.package:
            return None
        return importlib.machinery.PathFinder.find_spec(fullname, [self.parent], target)


def import_suite(suite):
    """Makes the suite importable as a package; returns the package's name."""
    suite = os.path.abspath(suite)
    parent, package = os.path.split(suite)
    if not package.isidentifier():
        raise SystemExit(
            "the suite directory %r is not a Python identifier; asv imports the suite as "
            "a package, so rename it" % package
        )
    sys.meta_path.insert(0, SuiteFinder(package, parent))
    # Suites written for benchvm before it imported them as a package (`import _data`
    # next to the benchmark) keep working; last on the path, so it shadows nothing.
    sys.path.append(suite)
    return package


def last_line(exc):
    lines = traceback.format_exception_only(type(exc), exc)
    return (lines[-1] if lines else repr(exc)).strip()


def relative(name):
    """A module's name within the suite (`""` for the suite's package itself)."""
    return name.partition(".")[2]


def walk_modules(name, errors):
    """The package `name` and every module below it, as asv walks them; a module that
    cannot be imported goes to `errors` and is skipped (with what is below it)."""
    try:
        module = importlib.import_module(name)
    except BaseException as exc:  # noqa: B036 - a suite's import can raise anything
        if isinstance(exc, KeyboardInterrupt):
            raise
        errors.append({"module": relative(name), "error": last_line(exc)})
        return
    yield module
    if getattr(module, "__path__", None):
        for _, sub, _ in pkgutil.iter_modules(module.__path__, name + "."):
            yield from walk_modules(sub, errors)


# --- what a benchmark is ------------------------------------------------------------------


def attr_case_insensitive(source, name):
    found = [getattr(source, k) for k in dir(source) if k.lower() == name]
    if len(found) > 1:
        raise ValueError("%r has more than one %s" % (source, name))
    return found[0] if found else None


def first_attr(sources, name, default=None):
    for source in sources:
        value = getattr(source, name, None)
        if value is not None:
            return value
    return default


def without_address(obj):
    """repr(obj), less a default repr's memory address, so ids are stable across runs."""
    text = repr(obj)
    match = re.match(r"^(<.*) at (0x[0-9a-fA-F]+)(>)$", text)
    if match:
        own = re.match(r"^<.* at (0x[0-9a-fA-F]+)>$", object.__repr__(obj))
        if own and own.group(1) == match.group(2):
            text = match.group(1) + match.group(3)
    return text


def param_lists(params, param_names, name):
    """asv's reading of `params`: a flat list is one parameter, a list of lists a grid;
    missing names are param1, param2, ..."""
    try:
        names = [str(x) for x in list(param_names)]
    except (TypeError, ValueError):
        raise ValueError("%s.param_names is not a list of strings" % name)
    try:
        params = list(params)
    except (TypeError, ValueError):
        raise ValueError("%s.params is not a list" % name)
    if params and not isinstance(params[0], (tuple, list)):
        params = [params]
    else:
        params = [list(entry) for entry in params]
    names = names[: len(params)]
    names += ["param%d" % (k + 1) for k in range(len(names), len(params))]
    return params, names


def param_reprs(params):
    """Each parameter's values as address-free reprs; equal reprs within one parameter get
    " (0)", " (1)", ... so every combination has its own id."""
    out = []
    for values in params:
        reprs = [without_address(v) for v in values]
        seen = {}
        dupes = {r for r in reprs if reprs.count(r) > 1}
        for i, r in enumerate(reprs):
            if r in dupes:
                reprs[i] = "%s (%d)" % (r, seen.get(r, 0))
                seen[r] = seen.get(r, 0) + 1
        out.append(reprs)
    return out


class Bench:
    """One discovered benchmark (all its parameter combinations)."""

    def __init__(self, name, kind, module, func, sources):
        self.name = name
        self.kind = kind
        self.module = module
        self.func = func
        self.sources = sources
        self.setups = [
            s for s in (attr_case_insensitive(x, "setup") for x in sources) if s
        ][::-1]
        self.teardowns = [
            t for t in (attr_case_insensitive(x, "teardown") for x in sources) if t
        ]
        self.setup_cache = first_attr(sources, "setup_cache")
        self.params, self.param_names = param_lists(
            first_attr(sources, "params", []), first_attr(sources, "param_names", []), name
        )
        self.reprs = param_reprs(self.params)
        self.skip_params = [tuple(p) for p in first_attr(sources, "skip_params", [])]
        self.pretty_name = getattr(func, "pretty_name", None)

    def attr(self, name, default=None):
        return first_attr(self.sources, name, default)

    def combos(self):
        """(id, values) for every parameter combination, in asv's order."""
        if not self.params:
            return [(self.name, ())]
        ids = itertools.product(*self.reprs)
        values = itertools.product(*self.params)
        return [
            ("%s(%s)" % (self.name, ", ".join(i)), tuple(v)) for i, v in zip(ids, values)
        ]

    def cache_key(self):
        """asv's key: the setup_cache's module (relative to the suite) and line."""
        if self.setup_cache is None:
            return None
        module = inspect.getmodule(self.setup_cache)
        mname = ".".join(module.__name__.split(".", 1)[1:]) if module else ""
        if not mname:
            mname = inspect.getsourcefile(self.setup_cache)
        return "%s:%d" % (mname, inspect.getsourcelines(self.setup_cache)[1])

    def listing(self):
        unit = UNITS.get(self.kind) or str(self.attr("unit", "unit"))
        kind_type = asv_type(self.kind)
        if self.kind == "track":
            kind_type = str(self.attr("type", "track"))
        key = self.cache_key()
        cache = None
        if key is not None:
            cache = {
                "key": key,
                "dir": hashlib.sha1(key.encode()).hexdigest()[:16],
                "timeout": getattr(self.setup_cache, "timeout", None),
            }
        timeout = self.attr("timeout")
        return [
            {
                "id": bid,
                "name": self.name,
                "module": relative(self.module.__name__),
                "kind": self.kind,
                "type": kind_type,
                "unit": unit,
                "params": self.reprs,
                "param_names": self.param_names,
                "pretty_name": self.pretty_name,
                "timeout": float(timeout) if timeout is not None else None,
                "setup_cache": cache,
            }
            for bid, _ in self.combos()
        ]


def bench_of(attr_name, module, klass, func):
    """The benchmark `func` is, as asv decides it, or None."""
    if getattr(func, "skip_benchmark", False):
        return None
    name = getattr(func, "benchmark_name", None)
    kind = kind_of(name.split(".")[-1] if name else attr_name)
    if kind is None:
        return None
    relative = module.__name__.split(".", 1)[1:]
    if klass is None:
        name = name or ".".join(relative + [func.__name__])
        sources = [func, module]
    else:
        instance = klass()
        func = getattr(instance, attr_name)
        name = name or ".".join(relative + [klass.__name__, attr_name])
        sources = [func, instance, module]
    return Bench(name, kind, module, func, sources)


def benches_in(module, errors):
    for attr_name, value in list(vars(module).items()):
        if attr_name.startswith("_"):
            continue
        try:
            if inspect.isclass(value) and not inspect.isabstract(value):
                for name, member in inspect.getmembers(value):
                    if inspect.isfunction(member) or inspect.ismethod(member):
                        bench = bench_of(name, module, value, member)
                        if bench is not None:
                            yield bench
            elif inspect.isfunction(value):
                bench = bench_of(attr_name, module, None, value)
                if bench is not None:
                    yield bench
        except Exception as exc:
            where = ".".join(p for p in (relative(module.__name__), attr_name) if p)
            errors.append({"module": where, "error": last_line(exc)})


def discover(suite):
    package = import_suite(suite)
    errors = []
    found = []
    for module in walk_modules(package, errors):
        for bench in benches_in(module, errors):
            found.extend(bench.listing())
    return {"benchmarks": found, "errors": errors}


def find(suite, wanted, module_hint=None):
    """The benchmark with id `wanted` and its parameter values. Imports only the module
    named by `module_hint` (or, without it, the one the id names, as asv guesses it);
    walks the whole suite only for ids renamed with benchmark_name."""
    package = import_suite(suite)
    name = wanted.partition("(")[0]
    if module_hint is not None:
        guesses = [module_hint]
    else:
        parts = name.split(".")
        guesses = [".".join(parts[:-i]) for i in (1, 2) if len(parts) > i]
    for guess in guesses:
        full = package + "." + guess if guess else package
        try:
            if importlib.util.find_spec(full) is None:
                continue
        except (ImportError, ValueError):
            # A guess through a module (`mod.Class`) is not a package to look into.
            continue
        module = importlib.import_module(full)
        hit = match_in([module], wanted)
        if hit is not None:
            return hit
    errors = []
    hit = match_in(walk_modules(package, errors), wanted)
    if hit is None:
        detail = "; ".join("%(module)s: %(error)s" % e for e in errors)
        raise SystemExit(
            "benchmark %r not found in %s%s" % (wanted, suite, " (%s)" % detail if detail else "")
        )
    return hit


def match_in(modules, wanted):
    for module in modules:
        for bench in benches_in(module, []):
            for bid, values in bench.combos():
                if bid == wanted:
                    return bench, values
    return None


# --- running one -------------------------------------------------------------------------


def load_cache(bench):
    """The setup_cache result, with the working directory set as asv sets it: prepared by
    `cache` under BENCHVM_ASV_CACHE, or (without it) made here in a temporary directory."""
    root = os.environ.get(CACHE_VAR)
    key = bench.cache_key()
    if root:
        where = os.path.join(root, hashlib.sha1(key.encode()).hexdigest()[:16])
        error = os.path.join(where, "error")
        if os.path.exists(error):
            with open(error) as f:
                raise RuntimeError("setup_cache failed: %s" % f.read().strip())
        result = os.path.join(where, "cache.pickle")
        if os.path.exists(result):
            os.chdir(where)
            with open(result, "rb") as f:
                return pickle.load(f)
    os.chdir(tempfile.mkdtemp(prefix="benchvm-setup-cache-"))
    return make_cache(bench)


def make_cache(bench):
    # asv runs the parameter-free setups (a module's seed, say) before setup_cache.
    for setup in bench.setups:
        if not inspect.ismethod(setup):
            try:
                inspect.signature(setup).bind()
            except TypeError:
                continue
            setup()
    return bench.setup_cache()


def arguments(bench, values):
    if bench.setup_cache is None:
        return values
    cache = load_cache(bench)
    # asv passes the cache first, unless setup_cache returned None.
    return values if cache is None else (cache,) + values


def is_skip(exc):
    """NotImplementedError (asv_runner's SkipNotImplemented is one) skips."""
    return isinstance(exc, NotImplementedError)


def call_hook(hook, args):
    """Calls a setup or teardown with the benchmark's arguments. Unlike asv, a hook that
    cannot take them but takes none (a module's `setup()` above parametrized classes, as
    suites written for benchvm have) is called without them."""
    if args:
        try:
            inspect.signature(hook).bind(*args)
        except TypeError:
            try:
                inspect.signature(hook).bind()
            except TypeError:
                pass
            else:
                args = ()
        except ValueError:
            pass  # no signature to read (a builtin): call as asv does
    hook(*args)


def do_setup(bench, args):
    try:
        for setup in bench.setups:
            call_hook(setup, args)
    except NotImplementedError as exc:
        raise Skip("setup raised %s" % last_line(exc))


def do_teardown(bench, args):
    for teardown in bench.teardowns:
        call_hook(teardown, args)


def repeat_plan(bench, default):
    """(min, max, max_time) repeats from asv's `repeat`: an int, or a (min, max, max_time)
    tuple; 0 means benchvm's default."""
    repeat = bench.attr("repeat", 0)
    try:
        low, high, max_time = repeat
        return int(low), int(high), float(max_time)
    except (TypeError, ValueError):
        n = int(repeat) or default
        return n, n, float("inf")


def warmup_seconds(bench):
    own = bench.attr("warmup_time")
    if own is not None and own >= 0:
        return float(own)
    return float(os.environ.get("BENCHVM_WARMUP_TIME") or 0)


# The calls per repeat the last time_it used, and the one a `serve` request asks for.
NUMBER = {"used": None, "asked": 0}


def time_it(bench, call, redo_setup):
    """Median seconds per call over the repeats of one process, as asv's attributes say."""
    timer = bench.attr("timer", timeit.default_timer)
    deadline = time.perf_counter() + warmup_seconds(bench)
    while time.perf_counter() < deadline:
        call()
    sample_time = float(bench.attr("sample_time", 0.01))
    number = int(bench.attr("number", 0)) or NUMBER["asked"]
    low, high, max_time = repeat_plan(bench, int(os.environ.get("BENCHVM_REPEAT") or 5))
    min_run_count = int(bench.attr("min_run_count", 2))
    runs = 0
    if not number:
        # Grow the loop until one repeat lasts sample_time; this doubles as warm-up. A
        # timer that never advances (asv's test of a bad timer) stops at 10**7.
        number = 1
        while number < 10**7:
            t = timeit.Timer(call, timer=timer).timeit(number)
            runs += number
            if t >= sample_time:
                break
            number = max(number + 1, int(number * min(10.0, max(1.1, sample_time / max(t, 1e-9)))))
    if LOCKSTEP:
        NUMBER["used"] = number
        return time_in_lockstep(call, timer, number)
    started = time.perf_counter()
    samples = []
    while len(samples) < high:
        if samples:
            redo_setup()
        samples.append(timeit.Timer(call, timer=timer).timeit(number) / number)
        runs += number
        if (
            len(samples) >= low
            and runs >= min_run_count
            and time.perf_counter() - started > max_time
        ):
            break
    samples.sort()
    NUMBER["used"] = number
    return samples[len(samples) // 2]


# Set in a forked child of a lockstep request: its id, the most blocks, and the request and
# answer streams it talks to the agent through.
LOCKSTEP = {}


class Stopped(Exception):
    """The agent ended a lockstep sample early (the other side failed)."""


def time_in_lockstep(call, timer, number):
    """Seconds per call over `number` calls timed in blocks, one block per "go" from the
    agent, so the other side's sample can take turns with this one on the same CPU."""
    blocks = max(1, min(int(LOCKSTEP["blocks"]), number))
    sizes = [number // blocks + (k < number % blocks) for k in range(blocks)]
    tell({"ready": blocks})
    total = 0.0
    for k, size in enumerate(sizes):
        if next_order() != "go":
            raise Stopped("stopped by the agent")
        total += timeit.Timer(call, timer=timer).timeit(size)
        tell({"done": k})
    return total / number


def tell(message):
    message["id"] = LOCKSTEP["id"]
    os.write(LOCKSTEP["answers"], (json.dumps(message) + "\n").encode())


def next_order():
    """The agent's next line on the request stream ("go" or "stop"); "stop" at its end."""
    line = b""
    while not line.endswith(b"\n"):
        byte = os.read(LOCKSTEP["requests"], 1)
        if not byte:
            return "stop"
        line += byte
    return line.decode(errors="replace").strip()


RAW_DRIVER = """
import sys, timeit
stmt, setup, number = sys.stdin.read().split("\\0")
print(repr(timeit.timeit(stmt=stmt, setup=setup, number=int(number))))
"""


def time_raw(bench, args):
    """Seconds per call of the code the benchmark returns, in a fresh interpreter."""
    code = bench.func(*args)
    stmt, setup = code if isinstance(code, tuple) else (code, "")
    number = int(bench.attr("number", 1)) or 1
    low, _, _ = repeat_plan(bench, 1)
    env = dict(os.environ)
    env.update({str(k): str(v) for k, v in (bench.attr("env") or {}).items()})
    samples = []
    for _ in range(low):
        proc = subprocess.run(
            [sys.executable, "-c", RAW_DRIVER],
            input="\0".join([textwrap.dedent(stmt), textwrap.dedent(setup), str(number)]),
            capture_output=True,
            text=True,
            env=env,
        )
        if proc.returncode != 0:
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise RuntimeError("the timeraw interpreter failed: %s" % tail)
        samples.append(float(proc.stdout.strip()) / number)
    samples.sort()
    return samples[len(samples) // 2]


def mem_size(obj):
    """asv's mem_* figure: what one more reference to a copy of the object costs, by
    pympler's asizeof (which asv needs for mem_* too)."""
    try:
        from pympler.asizeof import asizeof
    except ImportError:
        raise Skip("mem_* needs pympler in the environment, as asv does")
    return asizeof([obj, copy.copy(obj)]) - asizeof([obj, obj])


def measure(bench, args):
    call = (lambda: bench.func(*args)) if args else bench.func
    if bench.kind == "time":
        return time_it(bench, call, lambda: (do_teardown(bench, args), do_setup(bench, args)))
    if bench.kind == "timeraw":
        return time_raw(bench, args)
    if bench.kind == "mem":
        return mem_size(call())
    if bench.kind == "peakmem":
        call()
        # ru_maxrss is KiB on Linux.
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    value = call()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError("track_* must return a number, got %r" % (value,))
    return value


def run(suite, wanted, module_hint=None):
    # Only timings are layout-sensitive; padding would add noise to memory figures.
    if kind_of(wanted.partition("(")[0].rsplit(".", 1)[-1]) == "time":
        pad_heap()
    return run_found(*find(suite, wanted, module_hint))


def run_found(bench, values):
    if values in bench.skip_params:
        return {"skipped": "in skip_params"}
    args = arguments(bench, values)
    try:
        do_setup(bench, args)
        try:
            value = measure(bench, args)
        finally:
            do_teardown(bench, args)
    except Skip as why:
        return {"skipped": str(why)}
    except NotImplementedError as exc:
        if type(exc).__name__ == "SkipNotImplemented":
            return {"skipped": last_line(exc)}
        raise
    unit = UNITS.get(bench.kind) or str(bench.attr("unit", "unit"))
    return {"value": value, "unit": unit}


def once(suite, wanted, module_hint=None):
    """Setup, one call and teardown, nothing timed: what a survey runs under coverage. The
    call's result (its repr) is the benchmark's outcome, for checking a selection."""
    bench, values = find(suite, wanted, module_hint)
    if values in bench.skip_params:
        return {"ran": wanted, "outcome": "skipped"}
    args = arguments(bench, values)
    do_setup(bench, args)
    try:
        value = bench.func(*args)
    finally:
        do_teardown(bench, args)
    return {"ran": wanted, "outcome": repr(value)}


def once_each(suite, out, timeout, module_hint, *wanted):
    """`once` for several benchmarks of one module at the cost of one import: the module is
    imported here, then a forked child runs each benchmark and answers in OUT/<index>/
    (`answer`: the JSON `once` gives; `error`: how it failed). Under the survey recorder the
    child reports its coverage there too, the import's lines included, as a fresh process
    would; a child that outlives TIMEOUT seconds is killed (its report is then missing).
    Answers {"fork": false, "why": …} and runs nothing when the import left state the
    children would share (the recorder says), or without the recorder."""
    recorder = sys.modules.get("sitecustomize")
    redirect = getattr(recorder, "benchvm_survey_redirect", None)
    try:
        find(suite, wanted[0], module_hint or None)
    except BaseException:  # noqa: B036 - each child tries again and reports its own error
        pass
    # What the import left that the children would share (a file written, a process
    # started, a file kept open): fresh processes then, as the caller falls back to.
    shared = getattr(recorder, "benchvm_survey_shared_state", None)
    why = shared() if shared is not None else "no survey recorder"
    if why is not None:
        return {"fork": False, "why": why}
    for index, one in enumerate(wanted):
        where = os.path.join(out, str(index))
        os.makedirs(where, exist_ok=True)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                if redirect is not None:
                    redirect(where)
                result = once(suite, one, module_hint or None)
                with open(os.path.join(where, "answer"), "w") as f:
                    json.dump(result, f)
            except BaseException as exc:  # noqa: B036 - a benchmark may raise anything
                traceback.print_exc()
                with open(os.path.join(where, "error"), "w") as f:
                    f.write(last_line(exc))
                code = 1
            # A normal exit, so the recorder's report is written.
            sys.exit(code)
        if not exits_within(pid, float(timeout)):
            os.kill(pid, signal.SIGKILL)
            with open(os.path.join(where, "error"), "w") as f:
                f.write("timed out after %s s" % timeout)
        os.waitpid(pid, 0)
    return {"fork": True, "ran": len(wanted)}


def exits_within(pid, seconds):
    """Whether child `pid` exits within `seconds` (it is not reaped)."""
    if hasattr(os, "pidfd_open"):
        exited = os.pidfd_open(pid)
        try:
            return bool(select.select([exited], [], [], seconds)[0])
        finally:
            os.close(exited)
    deadline = time.monotonic() + seconds  # Python < 3.9
    while time.monotonic() < deadline:
        if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
            return True
        time.sleep(0.01)
    return False


def cache(suite, wanted, module_hint=None):
    """Runs the setup_cache of benchmark `wanted` once, in its directory under
    BENCHVM_ASV_CACHE; a failure leaves an `error` file that its benchmarks report."""
    bench, _ = find(suite, wanted, module_hint)
    where = os.path.join(
        os.environ[CACHE_VAR], hashlib.sha1(bench.cache_key().encode()).hexdigest()[:16]
    )
    os.makedirs(where, exist_ok=True)
    os.chdir(where)
    try:
        result = make_cache(bench)
        with open("cache.pickle.partial", "wb") as f:
            pickle.dump(result, f)
        os.replace("cache.pickle.partial", "cache.pickle")
    except BaseException as exc:  # noqa: B036 - recorded for the benchmarks, then re-raised
        with open("error", "w") as f:
            f.write(last_line(exc))
        raise
    return {"cached": bench.cache_key()}


def serve(suite):
    answers = os.fdopen(os.dup(1), "w")
    ANSWERS.append(answers.fileno())
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    requests = os.fdopen(os.dup(0), "r")
    ANSWERS.append(requests.fileno())
    # What the suite reads from stdin, at import or in a sample, is empty, as in a fresh run.
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    try:
        import ctypes

        LIBC.append(ctypes.CDLL(None))
    except (ImportError, OSError):
        pass
    # Once per server, which is once per side and round: each benchmark gets one sample of a
    # server, so its samples see as many paddings as a padding per sample would give them,
    # and the suite's own import lands at a new place too. A child padding itself cost about
    # 3.5 ms of every sample (docs/perf/vs-asv.md).
    pad_heap()
    found = {}
    for line in requests:
        if line.strip() in ("go", "stop"):
            # Meant for a lockstep child that ended before reading it.
            continue
        request = json.loads(line)
        if "preload" in request:
            # A server started ahead of its round imports what it will be asked for now,
            # while it runs beside the sampling CPU, and says when it is done; a failure is
            # the real request's to tell.
            with open(request["preload"]) as f:
                wanted_list = json.load(f)
            for wanted, module in wanted_list:
                try:
                    found.setdefault((wanted, module), find(suite, wanted, module))
                except BaseException:  # noqa: B036 - told again when asked for
                    pass
            answers.write(json.dumps({"id": "", "preloaded": len(wanted_list)}) + "\n")
            answers.flush()
            continue
        key = (request["id"], request.get("module"))
        try:
            if key not in found:
                found[key] = find(suite, request["id"], request.get("module"))
            result = forked_sample(found[key], request)
        except BaseException as exc:  # noqa: B036 - the agent decides; the server goes on
            traceback.print_exc()
            result = {"error": last_line(exc)}
        # The request's id goes back with its answer, so no answer can be taken for another's.
        result["id"] = request["id"]
        answers.write(json.dumps(result) + "\n")
        answers.flush()


# The server's own request and answer streams: a forked sample closes them first.
ANSWERS = []
PR_SET_PDEATHSIG = 1
# The C library, loaded once by the server: a child importing ctypes itself spent about
# 3 ms of every sample's fork-to-answer time on it (docs/perf/sample-server.md).
LIBC = []


def forked_sample(hit, request):
    """One sample in a forked child (its own process group, killed with whatever it left
    once it has answered), bounded by the request's timeout."""
    read, write = os.pipe()
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        try:
            os.setpgid(0, 0)
            os.close(read)
            if request.get("lockstep") and request.get("number"):
                answers_fd, requests_fd = ANSWERS
                LOCKSTEP.update(
                    id=request["id"],
                    blocks=request["lockstep"],
                    answers=answers_fd,
                    requests=requests_fd,
                )
            else:
                for fd in ANSWERS:
                    os.close(fd)
            try:
                # Dies with the server, should the agent kill the server mid-sample.
                LIBC[0].prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
            except (IndexError, AttributeError, OSError):
                pass
            try:
                NUMBER["asked"] = int(request.get("number") or 0)
                result = run_found(*hit)
                if NUMBER["used"] is not None:
                    result["number"] = NUMBER["used"]
                if "value" in result:
                    result["value"] = float(result["value"])
            except BaseException as exc:  # noqa: B036 - reported, then the child exits
                traceback.print_exc()
                result = {"error": last_line(exc)}
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            except BaseException:  # noqa: B036 - a suite may have closed them
                pass
            os.write(write, json.dumps(result).encode())
        finally:
            os._exit(0)
    os.close(write)
    # Python < 3.9 has no pidfd_open: then the end of the pipe is the end of the sample.
    exited = os.pidfd_open(pid) if hasattr(os, "pidfd_open") else None
    watched = [read] if exited is None else [read, exited]
    deadline = started + float(request["timeout"])
    chunks, timed_out = [], False
    # Until the child exits (a grandchild holding the pipe does not count) or time is up.
    while True:
        left = deadline - time.perf_counter()
        ready = select.select(watched, [], [], left)[0] if left > 0 else []
        if not ready:
            timed_out = True
            os.kill(pid, signal.SIGKILL)
            break
        if exited is not None and exited in ready:
            break
        chunk = os.read(read, 1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - started
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass
    os.set_blocking(read, False)
    try:
        while True:
            chunk = os.read(read, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    except BlockingIOError:
        pass
    os.close(read)
    if exited is not None:
        os.close(exited)
    if timed_out:
        return {"timed_out": wall}
    try:
        result = json.loads(b"".join(chunks))
    except ValueError:
        code = os.waitstatus_to_exitcode(status)
        return {"error": "the sample's process ended (%d) without an answer" % code}
    result.update(wall=wall, user=usage.ru_utime, sys=usage.ru_stime, maxrss=usage.ru_maxrss * 1024)
    return result


def answer(result):
    """The result, as JSON on stdout's last line: on a line of its own, whatever the suite
    printed before it without a newline."""
    sys.stdout.write("\n" + json.dumps(result) + "\n")
    sys.stdout.flush()


def main(argv):
    modes = {"run": run, "once": once, "cache": cache}
    if len(argv) == 3 and argv[1] == "list":
        answer(discover(argv[2]))
    elif len(argv) == 3 and argv[1] == "serve":
        serve(argv[2])
    elif len(argv) in (4, 5) and argv[1] in modes:
        answer(modes[argv[1]](*argv[2:]))
    elif len(argv) > 6 and argv[1] == "once-each":
        answer(once_each(*argv[2:]))
    else:
        raise SystemExit(
            "usage: asv_harness.py {list,serve} SUITE | {run,once,cache} SUITE ID [MODULE]"
            " | once-each SUITE OUT TIMEOUT MODULE ID..."
        )


if __name__ == "__main__":
    main(sys.argv)
