"""benchvm's survey recorder (ARCHITECTURE §4), installed as sitecustomize.py in a directory put
first on PYTHONPATH of a surveyed command. Every Python process the command starts then:

- starts coverage.py before anything of the project is imported, so import-time lines count
  (module constants, decorators, class bodies), measuring only the paths in
  BENCHVM_SURVEY_INCLUDE (os.pathsep-separated; a directory means everything under it);
- records, with an audit hook, the non-Python files it opens under those paths, and what
  makes its coverage untrustworthy: code compiled from strings (exec/eval) outside the
  standard library, threads, its own tracer or profiler, ctypes;
- writes BENCHVM_SURVEY_OUT/<pid>.json at exit: {"files": {path: [lines]}, "opened":
  [paths], "untrusted": [reasons], "error": null or text}. BENCHVM_SURVEY_OUT/<pid>.start
  is written first, so a process that never reports (os._exit, a signal, a forked child) is
  seen as missing, not as having covered nothing.

Without BENCHVM_SURVEY_OUT it does nothing. It needs coverage.py importable.
"""

import os
import sys


def _write(path, result):
    import json

    with open(path + ".tmp", "w") as f:
        json.dump(result, f)
    os.replace(path + ".tmp", path)


def _start(out):
    import sysconfig

    include = [
        os.path.realpath(p)
        for p in os.environ.get("BENCHVM_SURVEY_INCLUDE", "").split(os.pathsep)
        if p
    ]
    here = os.path.dirname(os.path.realpath(__file__))
    stdlib = os.path.realpath(sysconfig.get_paths()["stdlib"]) + os.sep
    result = {"files": {}, "opened": [], "untrusted": [], "error": None}

    def mark():
        with open(os.path.join(out, "%d.start" % os.getpid()), "w"):
            pass

    mark()
    try:
        import coverage
    except ImportError as exc:
        result["error"] = "coverage.py is not importable: %s" % exc
        _write(os.path.join(out, "%d.json" % os.getpid()), result)
        return
    patterns = [p if p.endswith(".py") else os.path.join(p, "*") for p in include]
    cov = coverage.Coverage(
        data_file=None,
        include=patterns or ["/nonexistent/*"],
        omit=[os.path.join(here, "*")],
        branch=False,
        config_file=False,
    )
    cov.set_option("run:disable_warnings", ["no-data-collected", "module-not-measured", "couldnt-parse"])
    cov.start()
    active = [True]
    opened = set()
    untrusted = set()
    import _thread
    import threading

    def under(path):
        return any(path == p or path.startswith(p + os.sep) for p in include)

    def hook(event, args):
        # An exception here would fail the operation audited: never raise.
        try:
            if active[0]:
                observe(event, args)
        except Exception:
            pass

    def observe(event, args):
        if event == "open" and args and isinstance(args[0], (str, bytes)):
            mode = args[1] if len(args) > 1 and isinstance(args[1], str) else "r"
            full = os.path.realpath(os.fsdecode(args[0]))
            if under(full) and not full.endswith((".py", ".pyc")) and "r" in (mode or "r"):
                if os.path.isfile(full):
                    opened.add(full)
        elif event == "compile" and len(args) > 1:
            name = args[1]
            if isinstance(name, bytes):
                name = os.fsdecode(name)
            if name is None or str(name).startswith("<"):
                # dataclasses, namedtuple and friends generate methods from the class
                # definition, which is covered: only strings compiled elsewhere count.
                # No Python caller: the interpreter compiling `python -c` code, which is
                # the benchmark's own command line.
                try:
                    caller = sys._getframe(2).f_code.co_filename
                except ValueError:
                    return
                if not caller.startswith(stdlib) or "-packages" in caller:
                    untrusted.add("runs code compiled from a string (exec/eval in %s)" % caller)
        elif event in ("sys.settrace", "sys.setprofile"):
            # In a new thread it is coverage following the thread, which is flagged below.
            if threading.current_thread() is threading.main_thread():
                untrusted.add("sets its own tracer or profiler (%s)" % event)
        elif event.startswith("ctypes."):
            untrusted.add("calls native code through ctypes")

    sys.addaudithook(hook)
    # Python 3.11 raises no audit event for a new thread: wrap the function every thread
    # starts through.
    real_start = _thread.start_new_thread

    def start_new_thread(*args, **kwargs):
        untrusted.add("starts threads (_thread)")
        return real_start(*args, **kwargs)

    _thread.start_new_thread = start_new_thread
    threading._start_new_thread = start_new_thread
    # A forked child is a new process to account for: it must report at exit too.
    os.register_at_fork(after_in_child=mark)

    def finish():
        active[0] = False
        cov.stop()
        data = cov.get_data()
        for path in sorted(data.measured_files()):
            lines = data.lines(path) or []
            if lines:
                result["files"][path] = sorted(lines)
        result["opened"] = sorted(opened)
        result["untrusted"] = sorted(untrusted)
        _write(os.path.join(out, "%d.json" % os.getpid()), result)

    import atexit

    atexit.register(finish)


if os.environ.get("BENCHVM_SURVEY_OUT"):
    try:
        _start(os.environ["BENCHVM_SURVEY_OUT"])
    except Exception as exc:  # never break the surveyed command; report instead
        _write(
            os.path.join(os.environ["BENCHVM_SURVEY_OUT"], "%d.json" % os.getpid()),
            {"files": {}, "opened": [], "untrusted": [], "error": "the recorder failed: %r" % exc},
        )
