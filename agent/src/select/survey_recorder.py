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
    # Programs other than Python that the process ran (the recorder does not follow them).
    programs = set()
    # What the process did that a forked child would share with its siblings (files
    # written, directories made, processes started, files left open): asv_harness.py
    # once-each surveys such a module with fresh processes instead.
    shared = []
    # The text of the checkout's imported modules, read when a string is compiled.
    module_text = {}
    import _thread
    import stat
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
        # Whether the audited operation is the import system loading a module: it and its
        # callers up to a loader's get_code are all importlib's (get_data, get_source,
        # pkgutil.get_data: a read as text, not an import). Frames: this one, observe,
        # hook, then the caller of the audited operation.
        depth = 3
        while True:
            try:
                frame = sys._getframe(depth)
            except ValueError:
                return False
            if not frame.f_code.co_filename.startswith("<frozen importlib"):
                return False
            if frame.f_code.co_name == "get_code":
                return True
            depth += 1

    def from_checkout(source):
        # Text every line of which is in one of the checkout's imported modules (a
        # docstring, a string constant of code that never ran, a template): that file
        # becomes a data file of the benchmark, so any change to it selects.
        if isinstance(source, bytes):
            source = source.decode("utf-8", "replace")
        if not isinstance(source, str):
            return
        lines = sorted({l.strip() for l in source.splitlines() if l.strip()}, key=len, reverse=True)
        if not lines:
            return
        for module in list(sys.modules.values()):
            path = getattr(module, "__file__", None)
            if not isinstance(path, str) or not path.endswith(".py"):
                continue
            path = os.path.realpath(path)
            if not under(path) or path in opened:
                continue
            if path not in module_text:
                active[0] = False  # the recorder's own read is not the process's
                try:
                    with open(path, "rb") as f:
                        module_text[path] = f.read().decode("utf-8", "replace")
                except OSError:
                    module_text[path] = ""
                finally:
                    active[0] = True
            text = module_text[path]
            # The longest line first: generated code's rarely appears anywhere.
            if all(line in text for line in lines):
                opened.add(path)

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
        if programs:
            return "after running %s" % sorted(programs)[0]
        return None

    def wrote(what):
        # Python's own bytecode cache, written by the import system, is not shared state.
        try:
            if sys._getframe(3).f_code.co_filename.startswith("<frozen importlib"):
                return
        except ValueError:
            pass
        if len(shared) < 5:
            shared.append(what)

    def observe(event, args):
        if event == "open" and args and isinstance(args[0], (str, bytes)):
            mode = args[1] if len(args) > 1 else None
            flags = args[2] if len(args) > 2 and isinstance(args[2], int) else 0
            if isinstance(mode, str):
                reads = "r" in mode or "+" in mode
                writes = mode != "r" and mode != "rb" and mode != "rt"
            else:  # os.open: the flags say
                access = flags & os.O_ACCMODE
                reads = access in (os.O_RDONLY, os.O_RDWR)
                writes = access != os.O_RDONLY or bool(flags & (os.O_CREAT | os.O_TRUNC))
            full = os.path.realpath(os.fsdecode(args[0]))
            if writes and not full.startswith(("/dev/", "/proc/", "/sys/")) and not full.startswith(where[0]):
                wrote("writes %s" % full)
            if not reads:
                return
            if full.endswith((".py", ".pyc")) and importing():
                return
            if not os.path.isfile(full):
                return
            if under(full):
                opened.add(full)
            elif not full.startswith(machine) and full != main_script():
                outside.add(full)
        elif event == "sqlite3.connect" and args and isinstance(args[0], (str, bytes)):
            # SQLite opens the file itself, below Python's open().
            full = os.path.realpath(os.fsdecode(args[0]))
            if os.path.isfile(full):
                if under(full):
                    opened.add(full)
                elif not full.startswith(machine):
                    outside.add(full)
            wrote("opens SQLite database %s" % full)
        elif event in ("os.mkdir", "os.rename", "os.remove", "os.rmdir", "os.truncate", "os.link", "os.symlink"):
            wrote("%s %s" % (event, args[0] if args else ""))
        elif event in ("subprocess.Popen", "os.posix_spawn", "os.exec", "os.spawn", "os.system"):
            wrote("starts a process (%s)" % event)
            program = args[0] if args else None
            if program is None and event == "subprocess.Popen" and len(args) > 1:
                argv = args[1]  # no executable given: the first word of the command
                program = argv if isinstance(argv, (str, bytes)) else next(iter(argv or []), None)
            if isinstance(program, os.PathLike):
                program = os.fspath(program)
            if isinstance(program, (str, bytes)):
                program = os.fsdecode(program)
                # Python children are followed: they report for themselves.
                if os.path.basename(program).startswith("python") or program == sys.executable:
                    return
                programs.add(os.path.basename(program.split()[0]) if program.strip() else program)
            else:
                programs.add(event)
        elif event == "socket.connect":
            network[0] = True
        elif event == "marshal.loads" and not importing():
            untrusted.add("loads code with marshal")
        elif event == "compile" and len(args) > 1 and not importing():
            # No Python caller: the interpreter compiling `python -c` code, which is the
            # benchmark's own command line.
            try:
                caller = sys._getframe(2).f_code.co_filename
            except ValueError:
                return
            why = foreign_text()
            if why:
                untrusted.add("runs code compiled from a string %s (in %s)" % (why, caller))
            from_checkout(args[0])
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

    def shared_state():
        # Why a fork of this process would not be a fresh process for its children, or
        # None (asv_harness.py once-each asks after importing a module).
        if shared:
            return shared[0]
        if threading.active_count() > 1:
            return "runs threads"
        for fd in os.listdir("/proc/self/fd"):
            try:
                if int(fd) > 2 and stat.S_ISREG(os.fstat(int(fd)).st_mode):
                    return "keeps a file open (fd %s)" % fd
            except (OSError, ValueError):
                pass
        return None

    globals()["benchvm_survey_shared_state"] = shared_state
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
