"""benchvm's survey of one ASV-style benchmark (DESIGN §4), run in a fresh process:

    python survey_harness.py SUITE_DIR ID SOURCE_ROOT OUT_JSON

Coverage starts before anything of the project is imported, so import-time lines count
(module constants, decorators, class bodies). An audit hook records the files the benchmark
opens and the things that make its coverage untrustworthy: code compiled from strings
(exec/eval), threads, its own tracer or profiler, ctypes. The benchmark runs once (setup,
one call, teardown). OUT_JSON gets {"files": {path: [lines]}, "opened": [paths],
"untrusted": [reasons], "error": null or text}. Needs coverage.py in the interpreter.
"""

import json
import os
import sys


def main(argv):
    suite, wanted, root, out = argv[1:5]
    root = os.path.realpath(root)
    result = {"files": {}, "opened": [], "untrusted": [], "error": None}
    try:
        import coverage
    except ImportError as exc:
        result["error"] = "coverage.py is not installed in this interpreter: %s" % exc
        write(out, result)
        return
    here = os.path.dirname(os.path.realpath(__file__))
    cov = coverage.Coverage(
        data_file=None,
        include=[os.path.join(root, "*")],
        omit=[os.path.join(here, "*")],
        branch=False,
    )
    cov.start()
    opened = set()
    untrusted = set()
    started = [False]

    def hook(event, args):
        if not started[0]:
            return
        if event == "open" and args and isinstance(args[0], (str, bytes)):
            path = os.fsdecode(args[0])
            mode = args[1] if len(args) > 1 and isinstance(args[1], str) else "r"
            full = os.path.realpath(path)
            if full.startswith(root + os.sep) and not full.endswith((".py", ".pyc")) and "r" in (mode or "r"):
                opened.add(full)
        elif event == "compile" and len(args) > 1:
            name = args[1]
            if isinstance(name, bytes):
                name = os.fsdecode(name)
            if name is None or str(name).startswith("<"):
                untrusted.add("runs code compiled from a string (exec/eval)")
        elif event in ("sys.settrace", "sys.setprofile"):
            # In a new thread it is coverage following the thread, which is flagged below.
            if threading.current_thread() is threading.main_thread():
                untrusted.add("sets its own tracer or profiler (%s)" % event)
        elif event.startswith("ctypes."):
            untrusted.add("calls native code through ctypes")

    sys.addaudithook(hook)
    # Python 3.11 raises no audit event for a new thread: wrap the one function every
    # thread starts through.
    import _thread
    import threading

    real_start = _thread.start_new_thread

    def start_new_thread(*args, **kwargs):
        if started[0]:
            untrusted.add("starts threads (_thread)")
        return real_start(*args, **kwargs)

    _thread.start_new_thread = start_new_thread
    threading._start_new_thread = start_new_thread
    sys.path.insert(0, here)
    import asv_harness

    sys.path.insert(0, os.path.abspath(suite))
    try:
        started[0] = True
        found = asv_harness.resolve(suite, wanted)
        if found is None:
            raise LookupError("benchmark %r not found in %s" % (wanted, suite))
        module, owner, func, combo = found
        if owner is not None:
            instance = owner()
            func = getattr(instance, func.__name__)
            hooks = [instance]
        else:
            hooks = [module, func]
        for target in hooks:
            asv_harness.call_hook(target, "setup", combo)
        try:
            func(*combo)
        finally:
            for target in reversed(hooks):
                asv_harness.call_hook(target, "teardown", combo)
    except BaseException as exc:  # the survey of this benchmark failed: say why
        result["error"] = "%s: %s" % (type(exc).__name__, exc)
    finally:
        started[0] = False
        cov.stop()
    data = cov.get_data()
    for path in sorted(data.measured_files()):
        lines = data.lines(path) or []
        if lines:
            result["files"][path] = sorted(lines)
    result["opened"] = sorted(opened)
    result["untrusted"] = sorted(untrusted)
    write(out, result)


def write(out, result):
    with open(out + ".tmp", "w") as f:
        json.dump(result, f)
    os.replace(out + ".tmp", out)


if __name__ == "__main__":
    main(sys.argv)
