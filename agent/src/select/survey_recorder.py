"""benchvm's survey recorder (ARCHITECTURE §4), installed as sitecustomize.py in a directory put
first on PYTHONPATH of a surveyed command. Every Python process the command starts then:

- starts coverage.py before anything of the project is imported, so import-time lines count
  (module constants, decorators, class bodies), measuring only the paths in
  BENCHVM_SURVEY_INCLUDE (os.pathsep-separated; a directory means everything under it);
- records, with an audit hook, the files it reads under those paths other than by importing
  them (data files, and Python files read as text), and what makes its coverage
  untrustworthy: code compiled from a string whose text comes from outside what the survey
  tracks (a file outside those paths and the Python environment, or after network access),
  code loaded with marshal, threads, its own tracer or profiler, ctypes. Code compiled from a
  string the process built itself is attributed to the code that built it (ARCHITECTURE §4);

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
    # The Python environment: the interpreter's and the venv's files, fixed by the
    # environment hash.
    environment = tuple(
        sorted({os.path.realpath(p) + os.sep for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)})
    )
    # With the machine's own files (time zones, certificates, devices), which are the same
    # for both sides of a comparison: reading them makes compiled text no less the
    # process's own.
    machine = environment + ("/usr/", "/etc/", "/lib/", "/lib64/", "/dev/", "/proc/", "/sys/")
    result = {"files": {}, "opened": [], "untrusted": [], "error": None}

    where = [out]

    def mark():
        with open(os.path.join(where[0], "%d.start" % os.getpid()), "w"):
            pass

    def redirect(path):
        # A forked child that reports for one benchmark (asv_harness.py once-each): its
        # report, and those of the processes it starts, go to `path` from now on.
        try:
            os.remove(os.path.join(where[0], "%d.start" % os.getpid()))
        except OSError:
            pass
        where[0] = path
        os.environ["BENCHVM_SURVEY_OUT"] = path
        mark()

    globals()["benchvm_survey_redirect"] = redirect

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
    # Files read from outside the checkout and the environment, and whether the process
    # has used the network.
    outside = set()
    network = [False]
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

    def main_script():
        # The command's own script (the benchmark harness), read by the interpreter.
        return os.path.realpath(sys.argv[0]) if sys.argv and sys.argv[0] else None

    def importing():
        # The import system reads modules through importlib's get_data, called from
        # importlib itself; pkgutil.get_data and friends call it from elsewhere.
        # Frames: this one, observe, hook, then the caller of the audited operation.
        try:
            caller, its_caller = sys._getframe(3), sys._getframe(4)
        except ValueError:
            return False
        frozen = "<frozen importlib"
        return caller.f_code.co_filename.startswith(frozen) and its_caller.f_code.co_filename.startswith(frozen)

    def foreign_text():
        # Text the process built from its own code and constants is as safe to attribute
        # to the code that built it as any other value it computes. What the survey does
        # not track is where it stays conservative: a file read from outside the checkout
        # and the environment, or the network, before the string was compiled (the text
        # may hold anything derived from them).
        if network[0]:
            return "after using the network"
        if outside:
            return "after reading %s, outside the checkout" % sorted(outside)[0]
        return None

    def observe(event, args):
        if event == "open" and args and isinstance(args[0], (str, bytes)):
            mode = args[1] if len(args) > 1 and isinstance(args[1], str) else "r"
            if not ("r" in mode or "+" in mode):
                return
            full = os.path.realpath(os.fsdecode(args[0]))
            if full.endswith((".py", ".pyc")) and importing():
                return
            if not os.path.isfile(full):
                return
            if under(full):
                opened.add(full)
            elif not full.startswith(machine) and full != main_script():
                outside.add(full)
        elif event == "socket.connect":
            network[0] = True
        elif event == "marshal.loads" and not importing():
            untrusted.add("loads code with marshal")
        elif event == "compile" and len(args) > 1:
            name = args[1]
            if isinstance(name, bytes):
                name = os.fsdecode(name)
            if name is None or str(name).startswith("<"):
                # No Python caller: the interpreter compiling `python -c` code, which is
                # the benchmark's own command line.
                try:
                    caller = sys._getframe(2).f_code.co_filename
                except ValueError:
                    return
                why = foreign_text()
                if why:
                    untrusted.add("runs code compiled from a string %s (in %s)" % (why, caller))
        elif event in ("sys.settrace", "sys.setprofile"):
            # In a new thread it is coverage following the thread, which is flagged below.
            if threading.current_thread() is threading.main_thread():
                untrusted.add("sets its own tracer or profiler (%s)" % event)
        elif event == "ctypes.dlopen" and args and isinstance(args[0], (str, bytes)):
            # Native code of the environment is fixed by the environment hash; a library
            # of the checkout's own runs code coverage cannot see.
            name = os.fsdecode(args[0])
            if os.sep in name and under(os.path.realpath(name)):
                untrusted.add("loads native code of the checkout through ctypes (%s)" % name)

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
        _write(os.path.join(where[0], "%d.json" % os.getpid()), result)

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
