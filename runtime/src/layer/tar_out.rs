//! The deterministic tar writer: one entry per filesystem path, with the header rules of
//! the module doc of [`super`].

use super::*;

/// A deterministic tar writer over filesystem entries (shared by layer tars and rootfs
/// tars).
pub(crate) struct TarOut<W: Write> {
    b: tar::Builder<W>,
    epoch: Option<u64>,
    /// (dev, inode) of multiply-linked files already written → their archive name.
    links: HashMap<(u64, u64), Vec<u8>>,
}

const USTAR_ID_MAX: u64 = 0o7777777;
const USTAR_SIZE_MAX: u64 = 0o77777777777;

impl<W: Write> TarOut<W> {
    pub fn new(w: W, source_date_epoch: Option<u64>) -> TarOut<W> {
        TarOut { b: tar::Builder::new(w), epoch: source_date_epoch, links: HashMap::new() }
    }

    fn mtime(&self, secs: i64) -> u64 {
        let m = secs.max(0) as u64;
        self.epoch.map_or(m, |e| m.min(e))
    }

    /// Writes one header (with a PAX header first when needed) and `size` bytes of data.
    #[allow(clippy::too_many_arguments)]
    fn put(
        &mut self,
        mut h: Header,
        name: &[u8],
        link: Option<&[u8]>,
        uid: u64,
        gid: u64,
        size: u64,
        xattrs: &[(Vec<u8>, Vec<u8>)],
        data: &mut dyn Read,
    ) -> io::Result<()> {
        let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
        {
            let u = h.as_ustar_mut().ok_or_else(|| io::Error::other("not a ustar header"))?;
            let n = name.len().min(100);
            u.name = [0; 100];
            u.name[..n].copy_from_slice(&name[..n]);
            if let Some(l) = link {
                let n = l.len().min(100);
                u.linkname = [0; 100];
                u.linkname[..n].copy_from_slice(&l[..n]);
            }
        }
        if name.len() > 100 {
            pax.push(("path".into(), name.to_vec()));
        }
        if let Some(l) = link.filter(|l| l.len() > 100) {
            pax.push(("linkpath".into(), l.to_vec()));
        }
        if size > USTAR_SIZE_MAX {
            pax.push(("size".into(), size.to_string().into_bytes()));
        }
        if uid > USTAR_ID_MAX {
            pax.push(("uid".into(), uid.to_string().into_bytes()));
        }
        if gid > USTAR_ID_MAX {
            pax.push(("gid".into(), gid.to_string().into_bytes()));
        }
        for (k, v) in xattrs {
            pax.push((format!("SCHILY.xattr.{}", String::from_utf8_lossy(k)), v.clone()));
        }
        h.set_uid(if uid > USTAR_ID_MAX { 0 } else { uid });
        h.set_gid(if gid > USTAR_ID_MAX { 0 } else { gid });
        h.set_size(size);
        if !pax.is_empty() {
            let mut records = Vec::new();
            for (k, v) in &pax {
                // "<len> <key>=<value>\n" where <len> counts itself.
                let rest = k.len() + v.len() + 3;
                let mut len = rest + 1;
                while len.to_string().len() + rest != len {
                    len = len.to_string().len() + rest;
                }
                records.extend_from_slice(format!("{len} {k}=").as_bytes());
                records.extend_from_slice(v);
                records.push(b'\n');
            }
            let base = name.rsplit(|&b| b == b'/').find(|c| !c.is_empty()).unwrap_or(b"entry");
            let mut pname = b"PaxHeaders/".to_vec();
            pname.extend_from_slice(base);
            pname.truncate(100);
            let mut ph = Header::new_ustar();
            if let Some(u) = ph.as_ustar_mut() {
                u.name[..pname.len()].copy_from_slice(&pname);
            }
            ph.set_mode(0o644);
            ph.set_mtime(h.mtime().unwrap_or(0));
            ph.set_size(records.len() as u64);
            ph.set_entry_type(EntryType::XHeader);
            ph.set_cksum();
            self.b.append(&ph, records.as_slice())?;
        }
        h.set_cksum();
        let mut counted = CountingReader { inner: data.take(size), n: 0 };
        self.b.append(&h, &mut counted)?;
        if counted.n != size {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the file shrank while it was being archived"));
        }
        Ok(())
    }

    /// Appends the filesystem entry at `path` under the archive name `name` (relative,
    /// no trailing slash). Sockets are skipped (a tar cannot hold them).
    pub fn append_path(&mut self, name: &[u8], path: &Path, md: &Metadata) -> io::Result<()> {
        let ft = md.file_type();
        if ft.is_socket() {
            return Ok(());
        }
        let mut h = Header::new_ustar();
        h.set_mode(md.mode() & 0o7777);
        h.set_mtime(self.mtime(md.mtime()));
        let mut name = name.to_vec();
        let mut link: Option<Vec<u8>> = None;
        let mut size = 0;
        let mut xattrs = Vec::new();
        let mut file: Option<File> = None;
        if ft.is_dir() {
            h.set_entry_type(EntryType::Directory);
            name.push(b'/');
            xattrs = file_xattrs(path).map_err(|e| ctx(path, e))?;
        } else if let Some(first) =
            (md.nlink() > 1 && !is_whiteout(md)).then(|| self.links.get(&(md.dev(), md.ino())).cloned()).flatten()
        {
            h.set_entry_type(EntryType::Link);
            link = Some(first);
        } else {
            if md.nlink() > 1 && !is_whiteout(md) {
                self.links.insert((md.dev(), md.ino()), name.clone());
            }
            xattrs = file_xattrs(path).map_err(|e| ctx(path, e))?;
            if ft.is_file() {
                h.set_entry_type(EntryType::Regular);
                size = md.len();
                file = Some(File::open(path).map_err(|e| ctx(path, e))?);
            } else if ft.is_symlink() {
                h.set_entry_type(EntryType::Symlink);
                link = Some(fs::read_link(path).map_err(|e| ctx(path, e))?.into_os_string().into_vec());
            } else if ft.is_char_device() || ft.is_block_device() {
                h.set_entry_type(if ft.is_char_device() { EntryType::Char } else { EntryType::Block });
                let (maj, min) = sys::dev_numbers(md.rdev());
                h.set_device_major(maj)?;
                h.set_device_minor(min)?;
            } else if ft.is_fifo() {
                h.set_entry_type(EntryType::Fifo);
            }
        }
        let mut data: Box<dyn Read> = match file {
            Some(f) => Box::new(io::BufReader::with_capacity(256 * 1024, f)),
            None => Box::new(io::empty()),
        };
        self.put(h, &name, link.as_deref(), md.uid() as u64, md.gid() as u64, size, &xattrs, &mut data)
            .map_err(|e| ctx(path, e))
    }

    /// Appends an empty regular file (a whiteout or opaque marker) with the owner and
    /// mtime of `md` and the given mode.
    pub fn append_marker(&mut self, name: &[u8], md: &Metadata, mode: u32) -> io::Result<()> {
        let mut h = Header::new_ustar();
        h.set_entry_type(EntryType::Regular);
        h.set_mode(mode);
        h.set_mtime(self.mtime(md.mtime()));
        self.put(h, name, None, md.uid() as u64, md.gid() as u64, 0, &[], &mut io::empty())
    }

    /// Writes the end-of-archive blocks and returns the writer.
    pub fn finish(self) -> io::Result<W> {
        self.b.into_inner()
    }
}

struct CountingReader<R> {
    inner: R,
    n: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        Ok(n)
    }
}
