//! Streaming helpers for writing blobs: sha256-hashing readers and writers, and a file
//! writer that starts the kernel's writeback early.

use std::fs::File;
use std::io::{self, Read, Write};

use cairn_ir::Digest;
use sha2::{Digest as _, Sha256};

use super::sys;

/// A writer to a file that starts the kernel's writeback of every [`WRITEBACK_STEP`] bytes
/// as soon as they are written, so that the `fsync` before a large blob is renamed into
/// place waits for the last few MiB only, and writing to disk overlaps the work that
/// produces the bytes.
pub(crate) struct EagerWriteback<'a> {
    file: &'a File,
    written: u64,
    started: u64,
}

/// Bytes between two writeback hints.
const WRITEBACK_STEP: u64 = 8 << 20;

impl<'a> EagerWriteback<'a> {
    pub fn new(file: &'a File) -> EagerWriteback<'a> {
        EagerWriteback { file, written: 0, started: 0 }
    }
}

impl Write for EagerWriteback<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = (&*self.file).write(buf)?;
        self.written += n as u64;
        if self.written - self.started >= WRITEBACK_STEP {
            // Only a hint: the final fsync is what counts, so a failure here is ignored.
            let _ = sys::start_writeback(self.file, self.started, self.written - self.started);
            self.started = self.written;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        (&*self.file).flush()
    }
}

/// A writer that sha256-hashes and counts what passes through.
pub(crate) struct HashWriter<W> {
    pub inner: W,
    hasher: Sha256,
    pub count: u64,
}

impl<W: Write> HashWriter<W> {
    pub fn new(inner: W) -> HashWriter<W> {
        HashWriter { inner, hasher: Sha256::new(), count: 0 }
    }
    pub fn digest(&self) -> Digest {
        Digest(self.hasher.clone().finalize().into())
    }
    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that sha256-hashes and counts what passes through.
pub(crate) struct HashReader<R> {
    pub inner: R,
    hasher: Sha256,
    pub count: u64,
}

impl<R: Read> HashReader<R> {
    pub fn new(inner: R) -> HashReader<R> {
        HashReader { inner, hasher: Sha256::new(), count: 0 }
    }
    pub fn digest(&self) -> Digest {
        Digest(self.hasher.clone().finalize().into())
    }
}

impl<R: Read> Read for HashReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}
