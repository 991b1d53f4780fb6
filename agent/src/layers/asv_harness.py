"""benchvm's runner for ASV-style benchmark suites.

Written to disk by benchvm-agent and run with the side's interpreter:

    python asv_harness.py list SUITE_DIR        -> JSON list of benchmarks on stdout
    python asv_harness.py run SUITE_DIR ID      -> {"value": N, "unit": U} on the last line

One `run` is one sample: the agent starts a fresh process per sample so that base and head
can be interleaved in randomized pairs. Supported ASV conventions: module-level functions
and class methods named time_*, peakmem_*, track_*; `params` / `param_names`; `setup` and
`teardown` on the class, the function or the module; `number`, `repeat`, `unit`,
`sample_time`; NotImplementedError from setup skips a parameter combination.
Not supported: setup_cache, timeraw_*, mem_* (reported as not found).

BENCHVM_WARMUP_TIME=S (set by the local loop's --warmup-time, never by `compare`) makes a
time_* benchmark run untimed for at least S seconds before it is timed.
"""

import importlib
import inspect
import itertools
import json
import os
import resource
import sys
import time
import timeit

PREFIXES = {"time_": "time", "peakmem_": "peakmem", "track_": "track"}

# Heap padding: the allocations made before a benchmark (its package's import-time tables,
# say) decide where its own objects land, and with that cache and TLB behaviour. Two
# versions of a package that allocate differently at import can then time untouched code
# differently, consistently, in every pair. Allocating a run-dependent number of small
# objects first (pymalloc sizes, up to ~2 MB) spreads that layout bias into noise, as the
# agent's environment padding does for stack alignment. The amount derives from the
# padding variable's length, so a run is reproducible from the report's seed.
_HEAP_PAD = []


def pad_heap():
    n = len(os.environ.get("BENCHVM_ENV_PAD", ""))
    _HEAP_PAD.extend(bytes(16 + (i * 7919) % 240) for i in range(n * 4))


def kind_of(name):
    for prefix, kind in PREFIXES.items():
        if name.startswith(prefix):
            return kind
    return None


def modules(suite):
    """Dotted module names of every .py file under the suite, sorted."""
    names = []
    for root, dirs, files in os.walk(suite):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "__")))
        rel = os.path.relpath(root, suite)
        package = [] if rel == "." else rel.split(os.sep)
        for f in sorted(files):
            if f.endswith(".py") and not f.startswith("_"):
                names.append(".".join(package + [f[:-3]]))
    return names


def param_sets(obj):
    params = getattr(obj, "params", None)
    if params is None:
        return [()]
    # ASV: a flat list is one parameter; a list of lists is a grid.
    if not params or not isinstance(params[0], (list, tuple)):
        params = [params]
    return list(itertools.product(*params))


def benchmark_id(qualname, combo):
    if not combo:
        return qualname
    return "%s(%s)" % (qualname, ", ".join(repr(p) for p in combo))


def discover(suite):
    sys.path.insert(0, os.path.abspath(suite))
    found = []
    for modname in modules(suite):
        module = importlib.import_module(modname)
        for name, obj in sorted(vars(module).items()):
            if inspect.isfunction(obj) and obj.__module__ == modname and kind_of(name):
                found.extend(entries(modname, [name], obj, obj))
            elif inspect.isclass(obj) and obj.__module__ == modname:
                for attr in sorted(dir(obj)):
                    method = getattr(obj, attr)
                    if callable(method) and kind_of(attr):
                        found.extend(entries(modname, [name, attr], obj, method))
    return found


def entries(modname, path, owner, func):
    kind = kind_of(path[-1])
    qualname = ".".join([modname] + path)
    unit = {"time": "s", "peakmem": "bytes"}.get(kind) or getattr(func, "unit", "unit")
    return [
        {"id": benchmark_id(qualname, combo), "kind": kind, "unit": unit}
        for combo in param_sets(owner)
    ]


def resolve(suite, wanted):
    """Finds (module, owner class or None, function, params) for a benchmark id."""
    for entry_module in modules(suite):
        if not wanted.startswith(entry_module + "."):
            continue
        module = importlib.import_module(entry_module)
        rest = wanted[len(entry_module) + 1 :]
        path, _, _ = rest.partition("(")
        parts = path.split(".")
        obj = module
        for part in parts:
            obj = getattr(obj, part, None)
            if obj is None:
                break
        if obj is None:
            continue
        owner = getattr(module, parts[0]) if len(parts) == 2 else None
        for combo in param_sets(owner if owner is not None else obj):
            if benchmark_id(entry_module + "." + path, combo) == wanted:
                return module, owner, obj, combo
    return None


def call_hook(target, name, combo):
    hook = getattr(target, name, None)
    if hook is not None:
        hook(*combo)


def warm_up(func, combo):
    """Calls the benchmark untimed until BENCHVM_WARMUP_TIME seconds have passed (unset: 0)."""
    deadline = time.perf_counter() + float(os.environ.get("BENCHVM_WARMUP_TIME") or 0)
    while time.perf_counter() < deadline:
        func(*combo)


def measure(kind, func, combo):
    if kind == "time":
        warm_up(func, combo)
        sample_time = getattr(func, "sample_time", 0.01)
        number = getattr(func, "number", 0)
        repeat = getattr(func, "repeat", 0) or 5
        timer = timeit.Timer(lambda: func(*combo))
        if not number:
            # Grow the loop until one repeat lasts sample_time; this doubles as warm-up.
            number = 1
            while timer.timeit(number) < sample_time and number < 10**7:
                number *= 2
        times = sorted(timer.repeat(repeat=repeat, number=number))
        return times[len(times) // 2] / number
    if kind == "peakmem":
        func(*combo)
        # ru_maxrss is KiB on Linux.
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    value = func(*combo)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError("track_* must return a number, got %r" % (value,))
    return value


def prepare(suite, wanted):
    """The benchmark's callable (bound to a fresh instance for a class benchmark), the
    objects whose setup/teardown apply, and its parameters."""
    sys.path.insert(0, os.path.abspath(suite))
    found = resolve(suite, wanted)
    if found is None:
        raise SystemExit("benchmark %r not found in %s" % (wanted, suite))
    module, owner, func, combo = found
    if owner is not None:
        instance = owner()
        return getattr(instance, func.__name__), [instance], combo
    return func, [module, func], combo


def run(suite, wanted):
    # Only timings are layout-sensitive; padding would add noise to peakmem_* figures.
    if kind_of(wanted.partition("(")[0].rsplit(".", 1)[-1]) == "time":
        pad_heap()
    func, hooks, combo = prepare(suite, wanted)
    kind = kind_of(func.__name__)
    try:
        for target in hooks:
            call_hook(target, "setup", combo)
    except NotImplementedError as exc:
        return {"skipped": "setup raised NotImplementedError %s" % (exc,)}
    try:
        value = measure(kind, func, combo)
    finally:
        for target in reversed(hooks):
            call_hook(target, "teardown", combo)
    unit = {"time": "s", "peakmem": "bytes"}.get(kind) or getattr(func, "unit", "unit")
    return {"value": value, "unit": unit}


def once(suite, wanted):
    """Setup, one call and teardown, nothing timed: what a survey runs under coverage. The
    call's result (its repr) is the benchmark's outcome, for checking a selection."""
    func, hooks, combo = prepare(suite, wanted)
    for target in hooks:
        call_hook(target, "setup", combo)
    try:
        value = func(*combo)
    finally:
        for target in reversed(hooks):
            call_hook(target, "teardown", combo)
    return {"ran": wanted, "outcome": repr(value)}


def main(argv):
    if len(argv) == 3 and argv[1] == "list":
        print(json.dumps(discover(argv[2])))
    elif len(argv) == 4 and argv[1] == "run":
        print(json.dumps(run(argv[2], argv[3])))
    elif len(argv) == 4 and argv[1] == "once":
        print(json.dumps(once(argv[2], argv[3])))
    else:
        raise SystemExit("usage: asv_harness.py list SUITE | run SUITE ID | once SUITE ID")


if __name__ == "__main__":
    main(sys.argv)
