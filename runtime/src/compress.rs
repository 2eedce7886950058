//! Layer blob encodings: one writer ([`Encoder`]) and one reader ([`decoder`]) over the
//! three compressions an image layer may have ([`Compression`]: gzip, zstd, none).
//!
//! gzip is [`crate::gzip::ChunkedGzWriter`] (parallel, deterministic). zstd is libzstd
//! through the `zstd` crate, one frame at the given level on one thread: its output
//! depends only on the input and the level, so a zstd layer keeps its digest from build
//! to build. Reading takes any of the three, told apart by their magic bytes, and reads
//! concatenated gzip members and zstd frames as one stream.

use std::io::{self, BufRead, Read, Write};

pub use crate::oci::Compression;

/// A writer that compresses into `W`; [`Encoder::finish`] ends the stream.
pub enum Encoder<W: Write> {
    Gzip(crate::gzip::ChunkedGzWriter<W>),
    Zstd(Box<zstd::stream::write::Encoder<'static, W>>),
    Plain(W),
}

impl<W: Write> Encoder<W> {
    /// An encoder for `compression` at `level` (clamped to its range).
    pub fn new(inner: W, compression: Compression, level: u32) -> io::Result<Encoder<W>> {
        let level = compression.clamp_level(level);
        Ok(match compression {
            Compression::Gzip => Encoder::Gzip(crate::gzip::ChunkedGzWriter::new(inner, level)),
            Compression::Zstd => {
                let mut e = zstd::stream::write::Encoder::new(inner, level as i32)?;
                // The frame records the content checksum, as Go's and BuildKit's zstd do.
                e.include_checksum(true)?;
                Encoder::Zstd(Box::new(e))
            }
            Compression::Uncompressed => Encoder::Plain(inner),
        })
    }

    /// Ends the compressed stream and returns the inner writer (flushed).
    pub fn finish(self) -> io::Result<W> {
        match self {
            Encoder::Gzip(g) => g.finish(),
            Encoder::Zstd(z) => {
                let mut w = z.finish()?;
                w.flush()?;
                Ok(w)
            }
            Encoder::Plain(mut w) => {
                w.flush()?;
                Ok(w)
            }
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Gzip(g) => g.write(buf),
            Encoder::Zstd(z) => z.write(buf),
            Encoder::Plain(w) => w.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Gzip(g) => g.flush(),
            Encoder::Zstd(z) => z.flush(),
            Encoder::Plain(w) => w.flush(),
        }
    }
}

/// A reader of the tar inside a layer blob read from `r`, whatever its compression (told
/// by the magic bytes), and that compression.
pub fn decoder<R: BufRead + Send + 'static>(mut r: R) -> io::Result<(Box<dyn Read + Send>, Compression)> {
    let c = Compression::sniff(r.fill_buf()?);
    let reader: Box<dyn Read + Send> = match c {
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(r)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(r)?),
        Compression::Uncompressed => Box::new(r),
    };
    Ok((reader, c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_compression_round_trips_and_is_deterministic() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8 ^ (i >> 13) as u8).collect();
        for c in [Compression::Gzip, Compression::Zstd, Compression::Uncompressed] {
            let pack = || {
                let mut e = Encoder::new(Vec::new(), c, c.default_level()).unwrap();
                for part in data.chunks(70_001) {
                    e.write_all(part).unwrap();
                }
                e.finish().unwrap()
            };
            let packed = pack();
            assert_eq!(packed, pack(), "{c:?} is not deterministic");
            assert_eq!(Compression::sniff(&packed), c);
            let (mut r, got) = decoder(io::BufReader::new(io::Cursor::new(packed))).unwrap();
            assert_eq!(got, c);
            let mut out = Vec::new();
            r.read_to_end(&mut out).unwrap();
            assert!(out == data, "{c:?} does not round-trip");
        }
    }

    #[test]
    fn concatenated_zstd_frames_read_as_one_stream() {
        let mut two = zstd::encode_all(&b"first "[..], 3).unwrap();
        two.extend(zstd::encode_all(&b"second"[..], 3).unwrap());
        let (mut r, _) = decoder(io::BufReader::new(io::Cursor::new(two))).unwrap();
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        assert_eq!(s, "first second");
    }
}
