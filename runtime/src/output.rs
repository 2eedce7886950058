//! Output paths the user names: `-o`/`--output` of `build`, `compile` and `save`,
//! `--metadata-file`, `--iidfile`.
//!
//! **All or nothing for files and directories.** A regular file (or a path that does not
//! exist yet) is written at a temporary path beside it and renamed into place by
//! [`OutputFile::commit`], so an error or a kill leaves the old file as it was. A directory
//! output into an existing non-empty directory replaces the entries of the same names
//! ([`install_dir`]; an OCI layout merges its blobs), as `docker buildx build -o DIR` does.
//!
//! **Streams are written into, never replaced.** A character device, a FIFO, or a symlink
//! to one (`-o /dev/null`, `-o /dev/stdout`, a named pipe) is opened and written to: a
//! rename over it would replace the device node with a regular file (this once turned a
//! machine's `/dev/null` into a file). A symlink to a regular file is followed, so the link
//! stays and its target gets the new content. A block device is refused.
//!
//! **`-` is stdout** (`-o -`, `dest=-`, as buildx): written into like a FIFO, and refused
//! when stdout is a terminal (a tar there helps nobody).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::store::{io_err, remove_all, StoreError};

static OUT_SEQ: AtomicU64 = AtomicU64::new(0);

/// A path beside `dest` for building it; removed on drop unless `keep` is set.
pub(crate) struct SiblingTemp {
    pub(crate) path: PathBuf,
    keep: bool,
}

impl SiblingTemp {
    pub(crate) fn new(dest: &Path, what: &str) -> Result<SiblingTemp, StoreError> {
        let name = dest
            .file_name()
            .ok_or_else(|| StoreError::Invalid(format!("The output path `{}` has no file name", dest.display())))?;
        let parent = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&parent).map_err(io_err("create directory", &parent))?;
        let n = OUT_SEQ.fetch_add(1, Ordering::Relaxed);
        let path = parent.join(format!(".{}.cairn-{what}-{}-{n}", name.to_string_lossy(), std::process::id()));
        Ok(SiblingTemp { path, keep: false })
    }
}

impl Drop for SiblingTemp {
    fn drop(&mut self) {
        if !self.keep {
            let _ = remove_all(&self.path);
        }
    }
}

/// Follows `dest` while it is a symlink (relative targets against the link's directory), so
/// the path returned is the file the link names, existing or not.
fn follow_links(dest: &Path) -> Result<PathBuf, StoreError> {
    let mut p = dest.to_path_buf();
    for _ in 0..40 {
        match p.symlink_metadata() {
            Ok(m) if m.file_type().is_symlink() => {
                let target = fs::read_link(&p).map_err(io_err("read the link", &p))?;
                p = match p.parent() {
                    Some(dir) if target.is_relative() => dir.join(target),
                    _ => target,
                };
            }
            _ => return Ok(p),
        }
    }
    Err(StoreError::Invalid(format!("The output `{}` is a symlink loop", dest.display())))
}

enum Sink {
    /// A regular file: written beside `target` and renamed onto it at commit.
    Replace { tmp: SiblingTemp, target: PathBuf },
    /// A device or FIFO: written into.
    Stream,
}

/// A file output being written; see the module doc for what happens to each kind of path.
/// Nothing changes at the destination of a [`Sink::Replace`] output until [`commit`].
///
/// [`commit`]: OutputFile::commit
pub(crate) struct OutputFile {
    out: BufWriter<File>,
    sink: Sink,
    dest: PathBuf,
}

impl OutputFile {
    /// Opens the output `dest` (see the module doc).
    pub fn create(dest: &Path) -> Result<OutputFile, StoreError> {
        if dest == Path::new("-") {
            return OutputFile::stdout();
        }
        let target = follow_links(dest)?;
        let existing = match target.metadata() {
            Ok(m) => Some(m),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err("inspect", dest)(e)),
        };
        let ft = existing.as_ref().map(|m| m.file_type());
        if ft.is_some_and(|t| t.is_dir()) {
            return Err(StoreError::Invalid(format!(
                "The output `{}` is a directory; expected a file path",
                dest.display()
            )));
        }
        if ft.is_some_and(|t| t.is_block_device()) {
            return Err(StoreError::Invalid(format!(
                "The output `{}` is a block device; refusing to write an output onto it",
                dest.display()
            )));
        }
        if ft.is_some_and(|t| t.is_char_device() || t.is_fifo() || t.is_socket()) {
            let f = OpenOptions::new().write(true).open(&target).map_err(io_err("open for writing", dest))?;
            return Ok(OutputFile {
                out: BufWriter::with_capacity(256 * 1024, f),
                sink: Sink::Stream,
                dest: dest.into(),
            });
        }
        let tmp = SiblingTemp::new(&target, "out")?;
        let f = File::create(&tmp.path).map_err(io_err("create", &tmp.path))?;
        if let Some(m) = &existing {
            // Keep the mode of the file being replaced, as writing into it would.
            let _ = f.set_permissions(fs::Permissions::from_mode(m.permissions().mode() & 0o7777));
        }
        Ok(OutputFile {
            out: BufWriter::with_capacity(256 * 1024, f),
            sink: Sink::Replace { tmp, target },
            dest: dest.into(),
        })
    }

    /// An output into an open stream (a pipe to a child process): written into.
    pub fn stream(f: File, name: &str) -> OutputFile {
        OutputFile { out: BufWriter::with_capacity(256 * 1024, f), sink: Sink::Stream, dest: name.into() }
    }

    /// Standard output, unless it is a terminal.
    fn stdout() -> Result<OutputFile, StoreError> {
        use std::io::IsTerminal;
        use std::os::fd::AsFd;
        if io::stdout().is_terminal() {
            return Err(StoreError::Invalid(
                "Refusing to write an archive to a terminal: redirect stdout, or give `dest=FILE`".to_string(),
            ));
        }
        let fd = io::stdout().as_fd().try_clone_to_owned().map_err(io_err("duplicate", Path::new("stdout")))?;
        Ok(OutputFile::stream(File::from(fd), "stdout"))
    }

    /// Finishes the output: flushes, and for a regular file syncs it and renames it into
    /// place. Dropping an `OutputFile` without committing leaves the destination as it was
    /// (for a stream, whatever was already written stays written).
    pub fn commit(self) -> Result<(), StoreError> {
        let OutputFile { out, sink, dest } = self;
        let f = out.into_inner().map_err(|e| io_err("write", &dest)(e.into_error()))?;
        match sink {
            Sink::Stream => Ok(()),
            Sink::Replace { mut tmp, target } => {
                f.sync_all().map_err(io_err("sync", &tmp.path))?;
                drop(f);
                fs::rename(&tmp.path, &target).map_err(io_err("rename into", &dest))?;
                tmp.keep = true;
                Ok(())
            }
        }
    }
}

impl Write for OutputFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.out.write_all(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Writes `bytes` to the output `dest` (see the module doc).
pub fn write_file(dest: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let mut out = OutputFile::create(dest)?;
    out.write_all(bytes).map_err(io_err("write", dest))?;
    out.commit()
}

/// How a finished directory goes into an existing non-empty one.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Install {
    /// Each top-level entry replaces the same name (a root filesystem).
    ReplaceTop,
    /// Directories merge recursively (an OCI layout: blobs accumulate, `index.json` last).
    Merge,
}

/// Moves the finished directory `tmp` to `dest` (a symlink to a directory is followed): a
/// rename when `dest` is missing or empty, else [`merge_into`] as `how` says.
pub(crate) fn install_dir(mut tmp: SiblingTemp, dest: &Path, how: Install) -> Result<(), StoreError> {
    let dest = &follow_links(dest)?;
    match dest.symlink_metadata() {
        Err(_) => {
            fs::rename(&tmp.path, dest).map_err(io_err("rename into", dest))?;
            tmp.keep = true;
            return Ok(());
        }
        Ok(m) if !m.is_dir() => {
            return Err(StoreError::Invalid(format!("The output `{}` exists and is not a directory", dest.display())))
        }
        Ok(_) => {}
    }
    if fs::remove_dir(dest).is_ok() {
        fs::rename(&tmp.path, dest).map_err(io_err("rename into", dest))?;
        tmp.keep = true;
        return Ok(());
    }
    merge_into(&tmp.path, dest, how)
}

/// Moves the entries of `from` into the directory `to`: with [`Install::Merge`] directories
/// merge (recursively), otherwise an entry replaces the one of the same name. Directories
/// go before files, so an OCI layout's `index.json` lands only after every blob it names:
/// at any instant the layout there is a consistent one, old or new.
fn merge_into(from: &Path, to: &Path, how: Install) -> Result<(), StoreError> {
    let mut entries: Vec<(bool, fs::DirEntry)> = Vec::new();
    for e in fs::read_dir(from).map_err(io_err("read directory", from))? {
        let e = e.map_err(io_err("read directory", from))?;
        let is_dir = e.file_type().map_err(io_err("inspect", &e.path()))?.is_dir();
        entries.push((is_dir, e));
    }
    entries.sort_by_key(|(is_dir, e)| (!is_dir, e.file_name()));
    for (is_dir, e) in entries {
        let target = to.join(e.file_name());
        let existing = target.symlink_metadata().ok().map(|m| m.is_dir());
        match (is_dir, existing) {
            (true, Some(true)) if how == Install::Merge => merge_into(&e.path(), &target, how)?,
            (_, None) => fs::rename(e.path(), &target).map_err(io_err("rename into", &target))?,
            (false, Some(false)) => fs::rename(e.path(), &target).map_err(io_err("rename into", &target))?,
            // A directory where a file was, or the reverse: the old one goes first.
            (_, Some(_)) => {
                let old = SiblingTemp::new(&target, "old")?;
                fs::rename(&target, &old.path).map_err(io_err("move aside", &target))?;
                fs::rename(e.path(), &target).map_err(io_err("rename into", &target))?;
            }
        }
    }
    Ok(())
}

/// A directory output must not be a file, device or FIFO; checked before any work.
pub(crate) fn check_dir_output(dest: &Path) -> Result<(), StoreError> {
    match follow_links(dest)?.metadata() {
        Ok(m) if !m.is_dir() => {
            Err(StoreError::Invalid(format!("The output `{}` exists and is not a directory", dest.display())))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("cairn-output-{name}-{}", std::process::id()));
        let _ = remove_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn regular_file_is_replaced_whole_and_keeps_its_mode() {
        let d = tmp("reg");
        let p = d.join("out");
        fs::write(&p, "old").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
        let mut o = OutputFile::create(&p).unwrap();
        o.write_all(b"new").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"old", "nothing changes before commit");
        o.commit().unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"new");
        assert_eq!(fs::metadata(&p).unwrap().permissions().mode() & 0o7777, 0o640);
        let o = OutputFile::create(&p).unwrap();
        drop(o);
        assert_eq!(fs::read(&p).unwrap(), b"new", "an output dropped uncommitted changes nothing");
        assert_eq!(fs::read_dir(&d).unwrap().count(), 1, "no temporary file is left");
    }

    #[test]
    fn symlink_to_a_file_keeps_the_link() {
        let d = tmp("link");
        fs::write(d.join("real"), "old").unwrap();
        std::os::unix::fs::symlink("real", d.join("link")).unwrap();
        write_file(&d.join("link"), b"new").unwrap();
        assert!(d.join("link").symlink_metadata().unwrap().file_type().is_symlink());
        assert_eq!(fs::read(d.join("real")).unwrap(), b"new");
        std::os::unix::fs::symlink("missing", d.join("dangling")).unwrap();
        write_file(&d.join("dangling"), b"x").unwrap();
        assert_eq!(fs::read(d.join("missing")).unwrap(), b"x");
        std::os::unix::fs::symlink("loop", d.join("loop")).unwrap();
        assert!(write_file(&d.join("loop"), b"x").unwrap_err().to_string().contains("symlink loop"));
    }

    #[test]
    fn fifo_is_written_into() {
        let d = tmp("fifo");
        let p = d.join("pipe");
        let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let reader = {
            let p = p.clone();
            std::thread::spawn(move || {
                let mut s = String::new();
                File::open(&p).unwrap().read_to_string(&mut s).unwrap();
                s
            })
        };
        write_file(&p, b"through the pipe").unwrap();
        assert_eq!(reader.join().unwrap(), "through the pipe");
        assert!(fs::symlink_metadata(&p).unwrap().file_type().is_fifo(), "the FIFO is still a FIFO");
    }

    #[test]
    fn directories_are_refused_as_file_outputs() {
        let d = tmp("dir");
        let e = write_file(&d, b"x").unwrap_err().to_string();
        assert!(e.contains("is a directory"), "{e}");
        fs::write(d.join("f"), "x").unwrap();
        let e = check_dir_output(&d.join("f")).unwrap_err().to_string();
        assert!(e.contains("is not a directory"), "{e}");
    }
}
