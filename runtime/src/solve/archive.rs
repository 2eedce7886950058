//! Local archives given to `ADD`: detection by content (tar, gzip, bzip2, xz, zstd) and
//! extraction into a directory.

use std::fs;
use std::io::{self, BufReader, Read};
use std::path::Path;

/// A recognized archive compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveKind {
    Tar,
    Gzip,
    Bzip2,
    Xz,
    Zstd,
}

/// Detects a (possibly compressed) tar archive by its first bytes; `None` for other files.
pub fn detect(path: &Path) -> io::Result<Option<ArchiveKind>> {
    let mut head = [0u8; 512];
    let mut f = fs::File::open(path)?;
    let mut n = 0;
    while n < head.len() {
        let r = f.read(&mut head[n..])?;
        if r == 0 {
            break;
        }
        n += r;
    }
    let h = &head[..n];
    let kind = if h.starts_with(&[0x1f, 0x8b]) {
        ArchiveKind::Gzip
    } else if h.starts_with(b"BZh") {
        ArchiveKind::Bzip2
    } else if h.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        ArchiveKind::Xz
    } else if h.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        ArchiveKind::Zstd
    } else if n >= 262 && &h[257..262] == b"ustar" {
        ArchiveKind::Tar
    } else {
        return Ok(None);
    };
    if kind == ArchiveKind::Tar {
        return Ok(Some(kind));
    }
    // A compressed file is an archive only if it decompresses to a tar.
    let mut r = open(path, kind)?;
    let mut inner = [0u8; 512];
    let mut m = 0;
    while m < inner.len() {
        match r.read(&mut inner[m..]) {
            Ok(0) => break,
            Ok(k) => m += k,
            Err(_) => return Ok(None),
        }
    }
    Ok((m >= 262 && &inner[257..262] == b"ustar").then_some(kind))
}

fn open(path: &Path, kind: ArchiveKind) -> io::Result<Box<dyn Read>> {
    let f = BufReader::new(fs::File::open(path)?);
    Ok(match kind {
        ArchiveKind::Tar => Box::new(f),
        ArchiveKind::Gzip => Box::new(flate2::read::MultiGzDecoder::new(f)),
        ArchiveKind::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(f)),
        ArchiveKind::Xz => {
            let mut out = Vec::new();
            let mut input = f;
            lzma_rs::xz_decompress(&mut input, &mut out)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{e:?}")))?;
            Box::new(io::Cursor::new(out))
        }
        ArchiveKind::Zstd => Box::new(
            ruzstd::decoding::StreamingDecoder::new(f)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?,
        ),
    })
}

/// Extracts the archive into `dest` (created beforehand), keeping ownership unless `owner`
/// overrides it.
pub fn unpack(path: &Path, kind: ArchiveKind, dest: &Path, owner: Option<(u32, u32)>) -> io::Result<()> {
    let mut ar = tar::Archive::new(open(path, kind)?);
    ar.set_preserve_permissions(true);
    ar.set_preserve_ownerships(owner.is_none());
    ar.set_overwrite(true);
    ar.set_preserve_mtime(true);
    for entry in ar.entries()? {
        let mut entry = entry?;
        let unpacked = entry.unpack_in(dest)?;
        if let (Some((u, g)), true) = (owner, unpacked) {
            let p = dest.join(entry.path()?);
            std::os::unix::fs::lchown(&p, Some(u), Some(g))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn tar_bytes() -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_cksum();
        b.append_data(&mut h, "dir/file.txt", &b"abc"[..]).unwrap();
        b.into_inner().unwrap()
    }

    #[test]
    fn detects_and_unpacks_plain_and_gzip() {
        let d = std::env::temp_dir().join(format!("cairn-archive-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("a.tar"), tar_bytes()).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar_bytes()).unwrap();
        fs::write(d.join("a.tgz"), gz.finish().unwrap()).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"not a tar").unwrap();
        fs::write(d.join("x.gz"), gz.finish().unwrap()).unwrap();
        fs::write(d.join("plain"), b"hello").unwrap();
        assert_eq!(detect(&d.join("a.tar")).unwrap(), Some(ArchiveKind::Tar));
        assert_eq!(detect(&d.join("a.tgz")).unwrap(), Some(ArchiveKind::Gzip));
        assert_eq!(detect(&d.join("x.gz")).unwrap(), None);
        assert_eq!(detect(&d.join("plain")).unwrap(), None);
        for (name, kind) in [("a.tar", ArchiveKind::Tar), ("a.tgz", ArchiveKind::Gzip)] {
            let out = d.join(format!("out-{name}"));
            fs::create_dir_all(&out).unwrap();
            unpack(&d.join(name), kind, &out, Some((0, 0))).unwrap();
            assert_eq!(fs::read(out.join("dir/file.txt")).unwrap(), b"abc");
        }
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn detects_and_unpacks_bzip2_xz_and_zstd() {
        let d = std::env::temp_dir().join(format!("cairn-archive3-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        let tar = tar_bytes();
        let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        bz.write_all(&tar).unwrap();
        fs::write(d.join("a.tbz"), bz.finish().unwrap()).unwrap();
        let mut xz = Vec::new();
        lzma_rs::xz_compress(&mut io::Cursor::new(&tar), &mut xz).unwrap();
        fs::write(d.join("a.txz"), xz).unwrap();
        let zst = ruzstd::encoding::compress_to_vec(&tar[..], ruzstd::encoding::CompressionLevel::Fastest);
        fs::write(d.join("a.tzst"), zst).unwrap();
        for (name, kind) in [("a.tbz", ArchiveKind::Bzip2), ("a.txz", ArchiveKind::Xz), ("a.tzst", ArchiveKind::Zstd)] {
            assert_eq!(detect(&d.join(name)).unwrap(), Some(kind), "{name}");
            let out = d.join(format!("out-{name}"));
            fs::create_dir_all(&out).unwrap();
            unpack(&d.join(name), kind, &out, None).unwrap();
            assert_eq!(fs::read(out.join("dir/file.txt")).unwrap(), b"abc", "{name}");
        }
        fs::remove_dir_all(&d).unwrap();
    }
}
