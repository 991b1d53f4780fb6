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
//! The ruleset is built in the agent before the fork (it opens files and allocates); the
//! forked child makes only the two system calls that apply it, which are safe there. The
//! `landlock` crate is not used for that reason: it builds and applies in one call. The
//! kernel interface is small and documented in landlock(7).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

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
}

impl Ruleset {
    /// The ruleset that lets a process write only beneath `writable` (each must exist).
    /// On a kernel without Landlock the ruleset applies only `no_new_privs`.
    pub fn new(writable: &[PathBuf]) -> io::Result<Self> {
        let Some(abi) = abi() else {
            return Ok(Self { fd: None });
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
        if Path::new(SHARED_MEMORY).is_dir() {
            allow(&ruleset, Path::new(SHARED_MEMORY), handled)?;
        }
        for device in DEVICES.iter().map(Path::new).filter(|d| d.exists()) {
            allow(&ruleset, device, handled)?;
        }
        Ok(Self { fd: Some(ruleset) })
    }

    /// Applies the ruleset to `command`'s process when it starts. The ruleset must live
    /// until the command has been spawned.
    pub fn apply_to(&self, command: &mut Command) {
        let fd = self.fd.as_ref().map(|f| f.as_raw_fd());
        // SAFETY: the hook runs in the forked child before exec and makes only prctl and
        // landlock_restrict_self, both async-signal-safe system calls; `fd` is open until
        // the spawn returns (the ruleset outlives it).
        unsafe {
            command.pre_exec(move || {
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

/// Adds a rule: `access` beneath `path` (a directory, or the file itself).
fn allow(ruleset: &OwnedFd, path: &Path, access: u64) -> io::Result<()> {
    let name = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
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
    let rule = PathBeneathAttr {
        allowed_access: access,
        parent_fd: parent.as_raw_fd(),
    };
    // SAFETY: the rule is a valid packed struct; both descriptors are open.
    let added = unsafe {
        libc::syscall(
            libc::SYS_landlock_add_rule,
            ruleset.as_raw_fd(),
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
    fn a_missing_writable_path_is_named() {
        let err = Ruleset::new(&[PathBuf::from("/nonexistent/benchvm-confine")]).unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/benchvm-confine"),
            "{err}"
        );
    }
}
