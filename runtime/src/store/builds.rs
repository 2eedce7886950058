//! Build records: one small JSON file per build under `builds/` (what its steps' keys were
//! made of, `solve::record`), the last [`KEEP_BUILDS`] kept, each written by
//! temp-and-rename so a reader never sees half a record (not fsynced: losing one to a power
//! cut costs only history). The store keeps the bytes; their
//! shape belongs to the solver. Names start with the build's time, so the directory
//! listing is the history in order.

use std::fs;

use super::{io_err, Store, StoreError};

/// How many build records are kept; older ones are removed when a new one is written.
pub const KEEP_BUILDS: usize = 50;

impl Store {
    /// Writes the record of build `id` started at `time_ns`, then drops the oldest records
    /// beyond [`KEEP_BUILDS`].
    pub fn save_build_record(&self, time_ns: u128, id: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let dir = self.layout.builds_dir();
        fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        // Not fsynced (2 ms of a 0.06 s cached build of 5,000 lines): a record lost to a power
        // cut only leaves `cairn explain` one build shorter.
        self.write_replace(&dir.join(format!("{time_ns:024}-{id}.json")), bytes, false)?;
        let names = self.build_record_names()?;
        for old in names.iter().take(names.len().saturating_sub(KEEP_BUILDS)) {
            let _ = fs::remove_file(dir.join(old));
        }
        Ok(())
    }

    fn build_record_names(&self) -> Result<Vec<String>, StoreError> {
        let dir = self.layout.builds_dir();
        let mut names = Vec::new();
        match fs::read_dir(&dir) {
            Ok(rd) => {
                for e in rd {
                    let name = e.map_err(io_err("read", &dir))?.file_name().to_string_lossy().into_owned();
                    if name.ends_with(".json") {
                        names.push(name);
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("read", &dir)(e)),
        }
        names.sort();
        Ok(names)
    }

    /// The build records, newest first: (id, bytes). A record that cannot be read is left out.
    pub fn build_records(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        Ok(self.build_records_newest_first()?.collect())
    }

    /// [`Self::build_records`], each read only when the iterator gets to it.
    pub fn build_records_newest_first(&self) -> Result<impl Iterator<Item = (String, Vec<u8>)>, StoreError> {
        let dir = self.layout.builds_dir();
        Ok(self.build_record_names()?.into_iter().rev().filter_map(move |name| {
            let id = name.trim_end_matches(".json").split_once('-').map_or("", |x| x.1).to_string();
            fs::read(dir.join(&name)).ok().map(|bytes| (id, bytes))
        }))
    }

    /// The key of the keyed hash that hides secret-looking values in build records: 32
    /// random bytes made once per store.
    pub fn build_records_salt(&self) -> Result<[u8; 32], StoreError> {
        let p = self.layout.builds_salt();
        if let Ok(b) = fs::read(&p) {
            if let Ok(salt) = <[u8; 32]>::try_from(b.as_slice()) {
                return Ok(salt);
            }
        }
        let mut salt = [0u8; 32];
        let mut f = fs::File::open("/dev/urandom").map_err(io_err("open", std::path::Path::new("/dev/urandom")))?;
        std::io::Read::read_exact(&mut f, &mut salt).map_err(io_err("read", std::path::Path::new("/dev/urandom")))?;
        let dir = self.layout.builds_dir();
        fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        self.write_atomic(&p, &salt)?;
        // Two first builds at once: both read back the one that won the rename.
        Ok(fs::read(&p).ok().and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok()).unwrap_or(salt))
    }
}
