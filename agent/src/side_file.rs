//! Reading a file that a side's code wrote or could have replaced: its stdout and stderr (the
//! agent opens them, the side holds them and may truncate them to a terabyte), its quality
//! and survey reports, and anything beneath its checkout (where it may plant a FIFO, a link
//! to `/dev/zero` or a sparse file). The head is untrusted, so each read here is bounded:
//! it opens without blocking, takes regular files only, and reads at most a cap. A refusal
//! is an ordinary I/O error that names the reason, so a caller reports it like a missing
//! file and the run goes on.
//!
//! Links are followed only where the file is the repository's own (git writes links it
//! holds, such as a `bench.yml` kept elsewhere in the tree); what a side's code writes is
//! opened with `O_NOFOLLOW`.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// For what should be a line or a small document (a reported value, a quality file, a
/// config, a lock file's hash input).
pub const SMALL: u64 = 4 << 20;
/// For what grows with the suite (an asv listing, a coverage report, a covered source
/// file, `-X importtime`'s output).
pub const LARGE: u64 = 256 << 20;
/// How much of a log's end is read for its last line.
const TAIL: u64 = 64 << 10;

/// Whether the last component of the path may be a symbolic link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Links {
    Follow,
    Refuse,
}

fn open(path: &Path, links: Links) -> io::Result<(File, u64)> {
    let mut flags = libc::O_NONBLOCK | libc::O_CLOEXEC;
    if links == Links::Refuse {
        flags |= libc::O_NOFOLLOW;
    }
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) if links == Links::Refuse => {
                io::Error::new(io::ErrorKind::InvalidInput, "is a symbolic link")
            }
            _ => e,
        })?;
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "is not a regular file",
        ));
    }
    Ok((file, meta.len()))
}

fn too_large(cap: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("is larger than {} MiB", cap >> 20),
    )
}

/// The whole file, if it is a regular file of at most `cap` bytes.
pub fn read(path: &Path, cap: u64, links: Links) -> io::Result<Vec<u8>> {
    let (file, len) = open(path, links)?;
    if len > cap {
        return Err(too_large(cap));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    // Bounded again: the side may still be appending (a left-over child).
    file.take(cap + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(too_large(cap));
    }
    Ok(bytes)
}

/// [`read`] as UTF-8 text.
pub fn read_text(path: &Path, cap: u64, links: Links) -> io::Result<String> {
    String::from_utf8(read(path, cap, links)?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "is not UTF-8 text"))
}

/// The last 64 KiB of a log (lossy text; empty if it cannot be read), never following a link.
pub fn tail(path: &Path) -> String {
    let Ok((mut file, len)) = open(path, Links::Refuse) else {
        return String::new();
    };
    let start = len.saturating_sub(TAIL);
    let mut bytes = Vec::new();
    if file.seek(SeekFrom::Start(start)).is_err()
        || file.take(TAIL).read_to_end(&mut bytes).is_err()
    {
        return String::new();
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The last line of a log with something printable on it (a sparse file's zeros are not),
/// trimmed, cut at 300 bytes with an ellipsis.
pub fn last_line(path: &Path) -> Option<String> {
    let text = tail(path);
    let printable = |c: char| !c.is_whitespace() && !c.is_control();
    let line = text
        .lines()
        .rev()
        .find(|l| l.chars().any(printable))?
        .trim();
    Some(if line.len() > 300 {
        format!("{}…", &line[..line.floor_char_boundary(300)])
    } else {
        line.to_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_would_hang_or_exhaust_the_agent() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        // Without O_NONBLOCK the open itself would wait for a writer forever.
        let e = read(&fifo, SMALL, Links::Follow).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        assert_eq!(tail(&fifo), "");

        let sparse = dir.path().join("sparse");
        File::create(&sparse).unwrap().set_len(1 << 40).unwrap();
        let e = read(&sparse, LARGE, Links::Refuse).unwrap_err();
        assert!(e.to_string().contains("larger than 256 MiB"), "{e}");
        // A tail reads the end only: 64 KiB of zeros, nothing printable.
        assert_eq!(tail(&sparse).len(), 64 << 10);
        assert_eq!(last_line(&sparse), None);

        let zero = dir.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        let e = read(&zero, SMALL, Links::Follow).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");

        let real = dir.path().join("real");
        std::fs::write(&real, "first\nsecond line \n\n").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let e = read(&link, SMALL, Links::Refuse).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert_eq!(
            read_text(&link, SMALL, Links::Follow).unwrap(),
            "first\nsecond line \n\n"
        );
        assert_eq!(last_line(&real).as_deref(), Some("second line"));
        assert_eq!(last_line(&link), None);
        let e = read(&real, 5, Links::Refuse).unwrap_err();
        assert!(e.to_string().contains("larger than"), "{e}");
    }
}
