"""The harness that runs inside the sandbox; :func:`genai_lib.sandbox.run` runs this file's text with
``python -I -B -c <text> hook|nohook`` and writes the settings to its stdin. Never imported.

`_boot` reads its settings from stdin, sets the limits,
becomes nobody (if asked) and calls `_install`, which keeps the verdict pipe, the nonce and the audit hook
in closures and returns nothing: once it has returned, they are held only by the interpreter's C-level
list of audit hooks. `_boot` then runs the program and the trusted tests, and asks for its verdict with
sys.audit("genai.sandbox.verdict", ...); the hook writes it only when that call comes from `_boot`'s own
frame, which it noted at install time. A frame can read another's locals but cannot make it run code, so
the program cannot forge the call; traceback and generator frames (the only way to the hook's own frame)
and gc are refused. Everything used after the program starts is bound beforehand, so a program that
replaces builtins or entries of sys.modules cannot change what the harness does.
"""


def _install(cfg, enforce, os, pathlib, stat, sys):
    """Install the audit hook that writes the verdict and (when ``enforce``) refuses what the sandbox forbids.

    The modules come in as arguments, so nothing here is looked up in a namespace the program can change.
    """
    write, exit_, lstat, stat_, readlink, sep, fspath = (os.write, os._exit, os.lstat, os.stat, os.readlink,
                                                         os.sep, os.fspath)
    is_link, is_dir, getframe, me, getpid, pid = (stat.S_ISLNK, stat.S_ISDIR, sys._getframe, sys._getframe(1),
                                                  os.getpid, os.getpid())
    str_, type_, repr_, any_, enum_ = str, type, repr, any, enumerate
    OSErr, BaseExc = OSError, BaseException
    flushes = (sys.stdout.flush, sys.stderr.flush)
    vfd, nonce = cfg["verdict_fd"], cfg["nonce"].encode()
    root = os.path.realpath(cfg["workdir"])
    readable = tuple(os.path.realpath(p) for p in cfg["readable"]) + (root,)
    PATHS = (str, bytes, int, pathlib.PurePosixPath, pathlib.PosixPath)
    NETWORK = ("socket.", "ssl.")
    PROCESS = ("os.fork", "os.forkpty", "os.posix_spawn", "os.exec", "os.spawn", "os.system", "subprocess.Popen",
               "pty.spawn", "os.kill", "os.setuid", "os.setgid", "os.setreuid", "os.setregid")
    HARNESS = ("sys._current_frames", "sys.settrace", "sys.setprofile", "gc.get_objects", "gc.get_referrers",
               "gc.get_referents", "sys.addaudithook")
    FRAMES = ("tb_frame", "gi_frame", "cr_frame", "ag_frame")
    NATIVE = ("ctypes", "_ctypes", "cffi", "_posixsubprocess", "_xxsubinterpreters")
    WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
    PATH_ARGS = {"os.remove": 1, "os.rmdir": 1, "os.mkdir": 1, "os.rename": 2, "os.link": 2, "os.chmod": 1,
                 "os.chown": 1, "os.truncate": 1, "os.utime": 1, "shutil.rmtree": 1, "os.chflags": 1,
                 "os.setxattr": 1, "os.removexattr": 1, "os.mkfifo": 1, "os.mknod": 1}
    seen, busy, own = [], [], []
    class SandboxViolation(Exception):
        pass
    def refuse(what):
        seen.append(what)
        raise SandboxViolation("sandbox: " + what + " is not allowed")
    def checked(p, what):  # the path as a str, converted by functions bound before the program ran
        if type_(p) not in PATHS:  # a custom path object could name one file to the hook and another to open
            refuse(what + " a path of type " + type_(p).__name__ + " (use str, bytes or pathlib)")
        if type_(p) is int:
            return p
        p = fspath(p)
        return p.decode("utf-8", "surrogateescape") if type_(p) is bytes else str_(p)
    def resolve(p, depth=0):  # os.path.realpath from the working folder (chdir is refused), tamper-proof
        if not p.startswith(sep):
            p = root + sep + p
        parts, out = p.split(sep), ""
        for i, part in enum_(parts):
            if part in ("", "."):
                continue
            if part == "..":
                out = out[:out.rfind(sep)]
                continue
            nxt = out + sep + part
            try:
                link = is_link(lstat(nxt).st_mode)
            except OSErr:
                link = False
            if link and depth < 40:
                target = readlink(nxt)
                return resolve((target if target.startswith(sep) else out + sep + target) + sep
                               + sep.join(parts[i + 1:]), depth + 1)
            out = nxt
        return out or sep
    def under(p, roots):
        real = resolve(p)
        return real == "/dev/null" or any_(real == r or real.startswith(r + sep) for r in roots)
    def verdict(status, message):
        own.append(1)
        try:
            caller = getframe(2)
        finally:
            own.pop()
        if caller is not me:
            refuse("forging the harness's verdict")
        if getpid() != pid:  # a forked copy of the harness (only without the hook) has no say
            exit_(0)
        for flush in flushes:
            try:
                flush()
            except BaseExc:
                pass
        if seen and status != "memory":  # a refusal counts even when the program caught it
            status, message = "forbidden", "sandbox: " + seen[0] + " is not allowed"
            for what in seen[1:3]:
                message = message + "; also " + what
        line = str_(status) + " " + str_(message)[:500].replace("\n", " ")
        write(vfd, nonce + b" " + line.encode("utf-8", "replace") + b"\n")
        exit_(0)
    def check(event, args):
        if event.startswith(NETWORK):
            refuse("network access (" + event + ")")
        elif event.startswith(PROCESS):
            refuse("starting or signalling processes (" + event + ")")
        elif event in HARNESS:
            refuse("looking into the harness (" + event + ")")
        elif event == "object.__getattr__" and args[1] in FRAMES:
            refuse("reading frames (" + str_(args[1]) + ")")
        elif event.startswith("ctypes.") or (event == "import" and str_(args[0]).split(".")[0] in NATIVE):
            refuse("native code (" + (str_(args[0]) if event == "import" else event) + ")")
        elif event in ("os.chdir", "os.fchdir"):
            refuse("changing the working folder")
        elif event == "open":
            path, mode, flags = args
            p = None if path is None else checked(path, "opening")
            if p is None or type_(p) is int:
                return
            if (type_(mode) is str and any_(c in mode for c in "wax+")) or (flags or 0) & WRITE:
                if not under(p, (root,)):
                    refuse("writing " + repr_(p) + " (outside the working folder)")
            elif resolve(p).startswith("/proc") or not under(p, readable):
                refuse("reading " + repr_(p) + " (outside the allowed paths)")
            elif not under(p, (root,)):
                try:
                    folder = is_dir(stat_(p).st_mode)
                except OSErr:
                    folder = False
                if folder:
                    refuse("opening the folder " + repr_(p) + " (a dir_fd outside the working folder)")
        elif event in ("os.listdir", "os.scandir") and args and args[0] is not None:
            p = checked(args[0], "listing")
            if type_(p) is not int and not under(p, readable):
                refuse("listing " + repr_(p) + " (outside the allowed paths)")
        elif event == "os.symlink":
            target, p = checked(args[0], "linking"), checked(args[1], "linking")
            if type_(target) is int or target.startswith(sep) or ".." in target.split(sep) or not under(p, (root,)):
                refuse("a symlink to " + repr_(target) + " (links may only point down inside the working folder)")
        elif event in PATH_ARGS:
            for p in args[:PATH_ARGS[event]]:
                p = checked(p, event)
                if type_(p) is not int and not under(p, (root,)):
                    refuse(event + " on " + repr_(p) + " (outside the working folder)")
    def hook(event, args):
        if event == "genai.sandbox.verdict":
            verdict(*args)
        elif enforce:
            if busy and not own and event in ("sys._getframe", "object.__getattr__"):  # program code run by the hook
                refuse("looking into the harness while it checks an operation (" + event + ")")
            busy.append(1)
            try:
                check(event, args)
            finally:
                busy.pop()
    sys.addaudithook(hook)


def _boot():
    """Read the settings, set the limits, install the hook, run the program and the tests, ask for the verdict."""
    import builtins, json, os, pathlib, resource, stat, sys
    cfg = json.loads(sys.stdin.buffer.read())
    sys.stdin.close()
    sys.stdin = open(os.devnull)
    for name, (soft, hard) in cfg["limits"].items():  # before any generated code runs
        try:
            resource.setrlimit(getattr(resource, name), (soft, hard))
        except (AttributeError, ValueError, OSError):  # e.g. macOS refuses RLIMIT_AS; the other layers remain
            pass
    if cfg["drop_to"]:  # root inside bubblewrap: become nobody, which also drops every capability
        os.setgroups([])
        os.setgid(cfg["drop_to"])
        os.setuid(cfg["drop_to"])
    os.chdir(cfg["workdir"])
    os.environ["TMPDIR"] = cfg["workdir"]  # tempfile then writes to the working folder
    source, tests = cfg["source"], cfg["tests"]
    audit, exit_, compile_, exec_, dict_, repr_, str_, type_, isinstance_ = (sys.audit, os._exit, compile, exec,
                                                                            dict, repr, str, type, isinstance)
    MemErr, Exit, Interrupt, OSErr, BaseExc = MemoryError, SystemExit, KeyboardInterrupt, OSError, BaseException
    pristine = dict(builtins.__dict__)
    _install(cfg, sys.argv[1:] == ["hook"], os, pathlib, stat, sys)
    del cfg
    end = "the tests finished" if tests is not None else "its last line"
    stage = "program"
    try:
        ns = {"__name__": "__main__", "__builtins__": dict_(pristine)}
        exec_(compile_(source, "<generated>", "exec"), ns)
        if tests is not None:  # trusted code, with its own untouched builtins
            stage = "tests"
            tns = dict_(ns)
            tns.update({"__name__": "__tests__", "__builtins__": dict_(pristine)})
            exec_(compile_(tests, "<tests>", "exec"), tns)
    except MemErr:
        audit("genai.sandbox.verdict", "memory", "MemoryError: the program hit the memory limit")
    except Exit as exc:
        try:
            code = repr_(exc.code)
        except BaseExc:
            code = "?"
        audit("genai.sandbox.verdict", "failed",
              "the program exited (SystemExit(" + code + ")) before " + end + ", in the " + stage)
    except Interrupt:
        audit("genai.sandbox.verdict", "failed", "KeyboardInterrupt: the program stopped itself before " + end)
    except BaseExc as exc:
        try:
            what = type_(exc).__name__ + ": " + str_(exc)
        except BaseExc:
            what = type_(exc).__name__
        if isinstance_(exc, OSErr) and exc.errno in (1, 11, 13, 30, 101, 111):  # EPERM EAGAIN EACCES EROFS, no net
            audit("genai.sandbox.verdict", "forbidden", "the kernel refused: " + what)
        audit("genai.sandbox.verdict", "failed", what)
    audit("genai.sandbox.verdict", "passed", "the tests ran to the end" if tests is not None else "ran to the end")
    exit_(3)

if __name__ == "__main__":
    _boot()
