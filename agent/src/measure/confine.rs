//! Confinement of the processes that run a side's code (its install, its benchmarks, its
//! sample server, its survey): with Landlock they may write only beneath the paths their
//! side was given (its checkout, venv and TMPDIR, and what the step writes), so a pull
//! request's code cannot write `~/.ssh/authorized_keys`, the git mirrors, the uv cache, the
//! agent, the other side's venv or the dead-man switch's files. The confinement also makes
//! them unable to ptrace or read `/proc/<pid>/environ|mem` of any process outside it, or to
//! signal one or connect to its abstract UNIX sockets (Landlock ABI 6; sockets with a path,
//! such as a user's D-Bus or docker.sock, are not covered: docs/untrusted-code.md); `no_new_privs` makes set-user-ID programs (sudo) run
//! without their privileges, and the process keeps no capabilities (an agent run as root
//! still runs benchmarks without them).
//!
//! Where the kernel lets the agent make a user namespace (always as root; for other users
//! where unprivileged ones are allowed), each confined process also gets, in one, a view of
//! the file system of its own: the home and the agent's cache are read-only in it (except the side's
//! writable paths beneath them), so it cannot `chmod` `~/.ssh` (sshd's StrictModes would
//! then refuse the controller's next login), truncate a file on a kernel whose Landlock
//! cannot refuse that, or change a mirror's or cache's modes; `/dev/shm` is a fresh tmpfs
//! that goes with the last of its processes, so a full one does not outlive the run; and
//! `/run/user` (a user's systemd and D-Bus sockets) is an empty read-only directory. Where
//! the kernel refuses the namespace (unprivileged user namespaces off, or Ubuntu's AppArmor
//! restriction without the profile cloud-init installs), the Landlock confinement stands
//! alone and the comment's machine section says so ([`mount_namespace`]).
//!
//! The ruleset is built in the agent before the fork (it opens files and allocates); the
//! forked child makes only system calls (unshare, mount, and the two that apply the
//! ruleset), which are safe there. The `landlock` crate is not used for that reason: it
//! builds and applies in one call. The kernel interface is small and documented in
//! landlock(7); the namespace's in user_namespaces(7) and mount_namespaces(7).

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

// Access rights from <linux/landlock.h>.
const WRITE_FILE: u64 = 1 << 1;
const REMOVE_DIR: u64 = 1 << 4;
const REMOVE_FILE: u64 = 1 << 5;
const MAKE_CHAR: u64 = 1 << 6;
const MAKE_DIR: u64 = 1 << 7;
const MAKE_REG: u64 = 1 << 8;
const MAKE_SOCK: u64 = 1 << 9;
const MAKE_FIFO: u64 = 1 << 10;
const MAKE_BLOCK: u64 = 1 << 11;
const MAKE_SYM: u64 = 1 << 12;
/// ABI 2: linking or renaming a file into another directory.
const REFER: u64 = 1 << 13;
/// ABI 3: truncating a file.
const TRUNCATE: u64 = 1 << 14;
/// ABI 6 scopes: no connection to an abstract UNIX socket created outside the domain, no
/// signals to processes outside it.
const SCOPE_ABSTRACT_UNIX_SOCKET: u64 = 1 << 0;
const SCOPE_SIGNAL: u64 = 1 << 1;

const CREATE_RULESET_VERSION: u32 = 1;
const RULE_PATH_BENEATH: libc::c_int = 1;

#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
    handled_access_net: u64,
    scoped: u64,
}

#[repr(C, packed)]
struct PathBeneathAttr {
    allowed_access: u64,
    parent_fd: i32,
}

/// `struct __user_cap_header_struct` of <linux/capability.h>.
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

/// `struct __user_cap_data_struct`: version 3 takes two of them (capabilities 0-63).
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// Device files every program may write (they hold nothing).
const DEVICES: [&str; 3] = ["/dev/null", "/dev/zero", "/dev/full"];

/// Where POSIX shared memory and semaphores live (multiprocessing's locks).
const SHARED_MEMORY: &str = "/dev/shm";

/// The Landlock ABI version this kernel offers; `None` when it has none (before Linux
/// 5.13, or Landlock not enabled at boot).
pub fn abi() -> Option<u32> {
    // SAFETY: with the version flag the kernel reads no attribute; NULL and 0 are required.
    let version = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<RulesetAttr>(),
            0usize,
            CREATE_RULESET_VERSION,
        )
    };
    u32::try_from(version).ok().filter(|&v| v > 0)
}

/// The write accesses this ABI can refuse: all of them are handled, so a confined
/// process has each only beneath its writable paths.
fn handled(abi: u32) -> u64 {
    let mut access = WRITE_FILE
        | REMOVE_DIR
        | REMOVE_FILE
        | MAKE_CHAR
        | MAKE_DIR
        | MAKE_REG
        | MAKE_SOCK
        | MAKE_FIFO
        | MAKE_BLOCK
        | MAKE_SYM;
    if abi >= 2 {
        access |= REFER;
    }
    if abi >= 3 {
        access |= TRUNCATE;
    }
    access
}

/// A ruleset ready to apply: built before the fork, applied in the child.
#[derive(Debug)]
pub struct Ruleset {
    fd: Option<OwnedFd>,
    /// The rights a rule grants (all the ABI handles).
    handled: u64,
    namespace: Option<Namespace>,
}

impl Ruleset {
    /// The ruleset that lets a process write only beneath `writable` (each must exist),
    /// in a namespace where the home and the agent's cache are read-only (where the kernel
    /// allows one: [`mount_namespace`]). On a kernel without Landlock the ruleset applies
    /// only `no_new_privs` and the namespace.
    pub fn new(writable: &[PathBuf]) -> io::Result<Self> {
        let namespace = if mount_namespace() {
            Some(Namespace::plan(writable, &protected_roots())?)
        } else {
            None
        };
        Self::build(writable, namespace)
    }

    /// As [`Ruleset::new`], with `read_only` as the protected directories instead of the
    /// home and the cache, and the namespace required: an error where the kernel refuses it.
    pub fn protecting(writable: &[PathBuf], read_only: &[PathBuf]) -> io::Result<Self> {
        if !mount_namespace() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "this kernel gives the agent no mount namespace",
            ));
        }
        Self::build(writable, Some(Namespace::plan(writable, read_only)?))
    }

    fn build(writable: &[PathBuf], namespace: Option<Namespace>) -> io::Result<Self> {
        let Some(abi) = abi() else {
            return Ok(Self {
                fd: None,
                handled: 0,
                namespace,
            });
        };
        let handled = handled(abi);
        let attr = RulesetAttr {
            handled_access_fs: handled,
            handled_access_net: 0,
            scoped: if abi >= 6 {
                SCOPE_SIGNAL | SCOPE_ABSTRACT_UNIX_SOCKET
            } else {
                0
            },
        };
        // SAFETY: attr is a valid struct of the size given; the kernel accepts a larger
        // struct from an older ABI's view as long as the fields it does not know are zero.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_landlock_create_ruleset,
                &attr as *const RulesetAttr,
                std::mem::size_of::<RulesetAttr>(),
                0u32,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the kernel returned a new descriptor (close-on-exec) that nothing else owns.
        let ruleset = unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) };
        for path in writable {
            allow(&ruleset, path, handled)?;
        }
        // In the namespace the child mounts its own /dev/shm and adds the rule for it.
        if namespace.as_ref().is_none_or(|n| !n.shm) && Path::new(SHARED_MEMORY).is_dir() {
            allow(&ruleset, Path::new(SHARED_MEMORY), handled)?;
        }
        for device in DEVICES.iter().map(Path::new).filter(|d| d.exists()) {
            allow(&ruleset, device, handled)?;
        }
        Ok(Self {
            fd: Some(ruleset),
            handled,
            namespace,
        })
    }

    /// Applies the ruleset to `command`'s process when it starts. The ruleset must live
    /// until the command has been spawned.
    pub fn apply_to(&self, command: &mut Command) {
        let fd = self.fd.as_ref().map(|f| f.as_raw_fd());
        let handled = self.handled;
        let namespace = self.namespace.clone();
        // SAFETY: the hook runs in the forked child before exec and makes only system
        // calls (those of `Namespace::enter`, prctl, capset, landlock_restrict_self), all
        // async-signal-safe, and allocates nothing; `fd` is open until the spawn returns
        // (the ruleset outlives it).
        unsafe {
            command.pre_exec(move || {
                if let Some(namespace) = &namespace {
                    namespace.enter()?;
                    if namespace.shm
                        && let Some(fd) = fd
                    {
                        allow_raw(fd, c"/dev/shm", handled)?;
                    }
                }
                if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                    return Err(io::Error::last_os_error());
                }
                // No capabilities, now or (with no_new_privs) after the exec, even for
                // root: CAP_SYS_ADMIN or CAP_PERFMON would let it read any process's
                // memory and environment (mm_access), CAP_DAC_OVERRIDE any file.
                let header = CapHeader {
                    version: CAPABILITY_VERSION_3,
                    pid: 0,
                };
                let none = [CapData::default(); 2];
                if libc::syscall(libc::SYS_capset, &header, none.as_ptr()) != 0 {
                    return Err(io::Error::last_os_error());
                }
                if let Some(fd) = fd
                    && libc::syscall(libc::SYS_landlock_restrict_self, fd, 0u32) != 0
                {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
}

/// Confines `command` to writing beneath `writable` (nothing done for `None`). The ruleset
/// returned must be kept until the command has been spawned.
pub fn confine(command: &mut Command, writable: Option<&[PathBuf]>) -> io::Result<Option<Ruleset>> {
    let ruleset = writable.map(Ruleset::new).transpose()?;
    if let Some(ruleset) = &ruleset {
        ruleset.apply_to(command);
    }
    Ok(ruleset)
}

/// Whether the agent can give a confined process a mount namespace of its own: tried once,
/// in a forked child that enters the namespace [`Ruleset::new`] would plan and exits.
pub fn mount_namespace() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        Namespace::plan(&[], &protected_roots()).is_ok_and(|namespace| namespace.try_once())
    })
}

/// Directories added to those a confined process sees read-only ([`protect`]).
static PROTECTED: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// Makes `dir` read-only, too, for every process confined from now on (the cache a run
/// was given with `--cache`).
pub fn protect(dir: &Path) {
    let mut protected = PROTECTED.lock().unwrap_or_else(|e| e.into_inner());
    if !protected.iter().any(|p| p == dir) {
        protected.push(dir.to_owned());
    }
}

/// The directories a confined process sees read-only: the home (sshd's StrictModes, the
/// agent, git mirrors, uv's Pythons), the agent's default cache and those [`protect`]ed.
fn protected_roots() -> Vec<PathBuf> {
    let mut roots = vec![crate::cache::default_dir()];
    if let Some(home) = std::env::var_os("HOME") {
        roots.push(PathBuf::from(home));
    }
    roots.extend(
        PROTECTED
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned(),
    );
    roots
}

/// The mount namespace a confined process enters: planned before the fork, entered in
/// the child with system calls alone.
#[derive(Debug, Clone)]
struct Namespace {
    /// Writable paths beneath a protected directory, bound onto themselves first so that
    /// they stay writable in its read-only copy.
    keep_writable: Vec<CString>,
    /// Protected directories, the deepest first, with the mount flags their read-only
    /// remount must keep (a user namespace may not clear them).
    read_only: Vec<(CString, libc::c_ulong)>,
    /// The host's mount points beneath a protected directory (not beneath a writable
    /// path), with their locked flags: read-only too.
    read_only_beneath: Vec<(CString, libc::c_ulong)>,
    /// `/dev/shm` exists and gets a private tmpfs.
    shm: bool,
    /// `/run/user` exists and is hidden.
    run_user: bool,
}

impl Namespace {
    fn plan(writable: &[PathBuf], protected: &[PathBuf]) -> io::Result<Self> {
        let writable: Vec<PathBuf> = writable
            .iter()
            .map(|w| {
                w.canonicalize().map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!("{} (a writable path of the confinement): {e}", w.display()),
                    )
                })
            })
            .collect::<io::Result<_>>()?;
        let mut roots: Vec<PathBuf> = protected
            .iter()
            .filter_map(|p| p.canonicalize().ok())
            .filter(|p| p.is_dir() && p.parent().is_some())
            // A directory beneath (or at) a writable path stays writable.
            .filter(|p| !writable.iter().any(|w| p.starts_with(w)))
            .collect();
        roots.sort();
        roots.dedup();
        roots.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        let keep_writable = writable
            .iter()
            .filter(|w| roots.iter().any(|r| w.starts_with(r)))
            .map(|w| c_path(w))
            .collect::<io::Result<_>>()?;
        let read_only = roots
            .iter()
            .map(|r| Ok((c_path(r)?, locked_flags(r)?)))
            .collect::<io::Result<_>>()?;
        let read_only_beneath = mount_points()?
            .into_iter()
            .filter(|m| roots.iter().any(|r| m.starts_with(r) && m != r))
            .filter(|m| !writable.iter().any(|w| m.starts_with(w)))
            .map(|m| Ok((c_path(&m)?, locked_flags(&m)?)))
            .collect::<io::Result<_>>()?;
        Ok(Self {
            keep_writable,
            read_only,
            read_only_beneath,
            shm: Path::new(SHARED_MEMORY).is_dir(),
            run_user: Path::new("/run/user").is_dir(),
        })
    }

    /// Enters the namespace in a forked child that then exits: whether it worked.
    fn try_once(&self) -> bool {
        // SAFETY: the child makes only system calls (`enter`, _exit) and allocates nothing.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let code = if self.enter().is_ok() { 0 } else { 1 };
            // SAFETY: leaves the forked child without running the parent's exit handlers.
            unsafe { libc::_exit(code) };
        }
        if pid < 0 {
            return false;
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut status = 0;
        loop {
            // SAFETY: waits for the child forked above, without blocking.
            let done = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if done == pid {
                return libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
            }
            if done < 0 || Instant::now() > deadline {
                // SAFETY: the child is ours; reaped after the kill.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, &mut status, 0);
                }
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// In the forked child: a new mount and IPC namespace, in a new user namespace,
    /// private, with the protected directories read-only, a fresh `/dev/shm` and an empty
    /// `/run/user`. Only system calls, no allocation.
    fn enter(&self) -> io::Result<()> {
        let check = |r: libc::c_int| {
            if r == 0 {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            }
        };
        // SAFETY: every pointer passed below is a valid C string or NULL where the call
        // allows it; these calls change only this (forked, single-threaded) process.
        unsafe {
            let uid = libc::getuid();
            let gid = libc::getgid();
            // A System V IPC namespace too: a shared-memory segment would outlive the run
            // (until the host reboots), which Landlock does not govern.
            // A user namespace even for root (0 mapped to 0): one path for every agent, and
            // a limit of the namespace's own below.
            check(libc::unshare(
                libc::CLONE_NEWUSER | libc::CLONE_NEWNS | libc::CLONE_NEWIPC,
            ))?;
            write_proc(c"/proc/self/setgroups", b"deny")?;
            write_id_map(c"/proc/self/uid_map", uid)?;
            write_id_map(c"/proc/self/gid_map", gid)?;
            // No user namespace below this one: in one the side's code would hold every
            // capability (the kernel surface Ubuntu's restriction keeps from unprivileged
            // code, which the agent's AppArmor profile lifts for what it starts). The limit
            // is this namespace's own; writing it needs the CAP_SYS_RESOURCE the child holds
            // in it until the capabilities go.
            write_proc(c"/proc/sys/user/max_user_namespaces", b"0")?;
            let none = std::ptr::null::<libc::c_char>();
            let bind = |from: &CStr, flags: libc::c_ulong| {
                check(libc::mount(
                    from.as_ptr(),
                    from.as_ptr(),
                    none,
                    flags,
                    std::ptr::null(),
                ))
            };
            // Nothing mounted here reaches the host's namespace.
            check(libc::mount(
                none,
                c"/".as_ptr(),
                none,
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ))?;
            for path in &self.keep_writable {
                bind(path, libc::MS_BIND | libc::MS_REC)?;
            }
            for (path, locked) in &self.read_only {
                bind(path, libc::MS_BIND | libc::MS_REC)?;
                bind(
                    path,
                    libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | locked,
                )?;
            }
            // Mounts the host has beneath a protected directory came along with the
            // recursive bind, writable: read-only too.
            for (path, locked) in &self.read_only_beneath {
                bind(
                    path,
                    libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | locked,
                )?;
            }
            let tmpfs = c"tmpfs".as_ptr();
            if self.shm {
                check(libc::mount(
                    tmpfs,
                    c"/dev/shm".as_ptr(),
                    tmpfs,
                    libc::MS_NOSUID | libc::MS_NODEV,
                    c"mode=1777".as_ptr().cast(),
                ))?;
            }
            if self.run_user {
                check(libc::mount(
                    tmpfs,
                    c"/run/user".as_ptr(),
                    tmpfs,
                    libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                    c"mode=755".as_ptr().cast(),
                ))?;
            }
            // The working directory was entered before the mounts (std changes into it
            // before this hook runs), so it still lies on the host's writable mount, and
            // `..` from it would walk that mount past the read-only copies (`chmod ..`).
            // Entering it again by its path enters it through them.
            let mut cwd = [0 as libc::c_char; libc::PATH_MAX as usize];
            if libc::getcwd(cwd.as_mut_ptr(), cwd.len()).is_null() {
                return Err(io::Error::last_os_error());
            }
            check(libc::chdir(cwd.as_ptr()))?;
        }
        Ok(())
    }
}

/// Where this process's mount namespace has mounts (/proc/self/mountinfo's fifth field,
/// with its octal escapes undone), in the order they were mounted.
fn mount_points() -> io::Result<Vec<PathBuf>> {
    let table = std::fs::read_to_string("/proc/self/mountinfo")?;
    Ok(table
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(std::ffi::OsString::from_vec(unescape(field))))
        .collect())
}

/// mountinfo's escapes: `\040` for a space, and so on (three octal digits).
fn unescape(field: &str) -> Vec<u8> {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (bytes[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// The flags of the mount `path` lies on that a remount in a user namespace must keep.
fn locked_flags(path: &Path) -> io::Result<libc::c_ulong> {
    let name = c_path(path)?;
    // SAFETY: name is a valid C string and stat a writable statvfs.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(name.as_ptr(), &mut stat) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let pairs = [
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        // Not in libc's musl constants; the kernel's value (linux/statfs.h).
        (0x1000, libc::MS_RELATIME),
    ];
    Ok(pairs
        .iter()
        .filter(|(st, _)| stat.f_flag & st != 0)
        .fold(0, |flags, (_, ms)| flags | ms))
}

/// `path` as a C string for a system call.
fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
}

/// Writes `bytes` to a file of /proc (system calls only).
fn write_proc(path: &CStr, bytes: &[u8]) -> io::Result<()> {
    // SAFETY: path is a valid C string; the descriptor is closed before returning.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let written = libc::write(fd, bytes.as_ptr().cast(), bytes.len());
        let error = io::Error::last_os_error();
        libc::close(fd);
        if written != bytes.len() as isize {
            return Err(error);
        }
    }
    Ok(())
}

/// Maps `id` in the new user namespace to itself outside: "id id 1", formatted without
/// allocating.
fn write_id_map(path: &CStr, id: u32) -> io::Result<()> {
    let mut digits = [0u8; 10];
    let mut n = 0;
    let mut rest = id;
    loop {
        digits[n] = b'0' + (rest % 10) as u8;
        n += 1;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    let mut line = [0u8; 24];
    let mut len = 0;
    for _ in 0..2 {
        for i in (0..n).rev() {
            line[len] = digits[i];
            len += 1;
        }
        line[len] = b' ';
        len += 1;
    }
    line[len] = b'1';
    len += 1;
    write_proc(path, &line[..len])
}

/// Adds a rule in the child: `access` beneath the directory `path` (system calls only).
fn allow_raw(ruleset: libc::c_int, path: &CStr, access: u64) -> io::Result<()> {
    // SAFETY: path is a valid C string; the descriptor is closed before returning.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_PATH | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let added = add_rule(ruleset, fd, access);
        libc::close(fd);
        added
    }
}

/// Adds a rule: `access` beneath `path` (a directory, or the file itself).
fn allow(ruleset: &OwnedFd, path: &Path, access: u64) -> io::Result<()> {
    let name = c_path(path)?;
    // SAFETY: name is a valid C string; O_PATH opens without reading.
    let raw = unsafe { libc::open(name.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
    if raw < 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!(
                "{} (a writable path of the confinement): {e}",
                path.display()
            ),
        ));
    }
    // SAFETY: a new descriptor owned here.
    let parent = unsafe { OwnedFd::from_raw_fd(raw) };
    // A file beneath a directory rule takes only the file accesses; a file rule takes no
    // directory access (the kernel refuses them with EINVAL).
    let access = if path.is_dir() {
        access
    } else {
        access & (WRITE_FILE | TRUNCATE)
    };
    add_rule(ruleset.as_raw_fd(), parent.as_raw_fd(), access)
}

/// landlock_add_rule: `access` beneath the open `parent` (system calls only: safe in the
/// forked child).
fn add_rule(ruleset: libc::c_int, parent: libc::c_int, access: u64) -> io::Result<()> {
    let rule = PathBeneathAttr {
        allowed_access: access,
        parent_fd: parent,
    };
    // SAFETY: the rule is a valid packed struct; the caller keeps both descriptors open.
    let added = unsafe {
        libc::syscall(
            libc::SYS_landlock_add_rule,
            ruleset,
            RULE_PATH_BENEATH,
            &rule as *const PathBeneathAttr,
            0u32,
        )
    };
    if added != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_kernel_offers_landlock() {
        // The tests of the confinement (agent/tests/it/confinement.rs) need it; a CI
        // kernel without it must fail here rather than pass them vacuously.
        assert!(abi().is_some_and(|v| v >= 1), "no Landlock on this kernel");
    }

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape(r"/mnt/a\040b\011c"), b"/mnt/a b\tc");
        assert_eq!(unescape(r"/x\\y\0"), br"/x\\y\0");
        assert!(mount_points().unwrap().contains(&PathBuf::from("/")));
    }

    #[test]
    fn a_missing_writable_path_is_named() {
        let err = Ruleset::new(&[PathBuf::from("/nonexistent/benchvm-confine")]).unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/benchvm-confine"),
            "{err}"
        );
    }
}
