//! The one gzip every layer blob and release asset is written with: miniz_oxide's deflate at a fixed level,
//! in the gzip framing flate2 writes (no name, mtime 0, OS 255), called directly rather than
//! through flate2, whose backend is whatever some crate in the tree asks for (a dependency
//! switching it to zlib-rs, whose output may depend on the CPU's features, would change
//! every digest qus publishes). miniz_oxide is plain scalar Rust: the same tar gives the
//! same bytes on every machine.

use miniz_oxide::deflate::core::CompressorOxide;
use miniz_oxide::deflate::stream::deflate;
use miniz_oxide::{DataFormat, MZFlush, MZStatus};
use std::io::{self, Write};

/// The deflate level of layer blobs. Changing it changes every layer digest. Level 2:
/// measured on a 16 MB qemu-aarch64, miniz_oxide's level 6 gives 3.71 MB at 36 MB/s and
/// level 2 3.86 MB (4 % more) at 121 MB/s, so a cold release compresses 3x faster.
pub(crate) const LAYER_LEVEL: u8 = 2;

/// The deflate level of release assets: downloaded one by one, so the smaller the better.
pub(crate) const ASSET_LEVEL: u8 = 6;

/// A writer that gzips what it is given into `inner`; [`Gzip::finish`] ends the stream.
pub(crate) struct Gzip<W: Write> {
    inner: W,
    deflate: Box<CompressorOxide>,
    crc: crc32fast::Hasher,
    size: u32,
    out: Vec<u8>,
}

impl<W: Write> Gzip<W> {
    /// Starts a gzip stream at deflate `level` (1 to 9): writes the header.
    pub(crate) fn new(mut inner: W, level: u8) -> io::Result<Gzip<W>> {
        // ID1 ID2 CM=deflate FLG=0, MTIME=0, XFL=0 (neither fastest nor best), OS=255.
        inner.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255])?;
        let mut deflate: Box<CompressorOxide> = Box::default();
        deflate.set_format_and_level(DataFormat::Raw, level);
        Ok(Gzip {
            inner,
            deflate,
            crc: crc32fast::Hasher::new(),
            size: 0,
            out: vec![0; 1 << 16],
        })
    }

    fn pump(&mut self, mut input: &[u8], flush: MZFlush) -> io::Result<()> {
        loop {
            let r = deflate(&mut self.deflate, input, &mut self.out, flush);
            input = &input[r.bytes_consumed..];
            self.inner.write_all(&self.out[..r.bytes_written])?;
            match r.status {
                Ok(MZStatus::StreamEnd) => return Ok(()),
                Ok(_) if flush == MZFlush::None && input.is_empty() => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(io::Error::other(format!("deflate: {e:?}"))),
            }
        }
    }

    /// Ends the stream (the rest of the deflate data, CRC-32, size) and returns the writer.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        self.pump(&[], MZFlush::Finish)?;
        let crc = self.crc.clone().finalize();
        self.inner.write_all(&crc.to_le_bytes())?;
        self.inner.write_all(&self.size.to_le_bytes())?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for Gzip<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.crc.update(buf);
        self.size = self.size.wrapping_add(buf.len() as u32);
        self.pump(buf, MZFlush::None)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn any_gzip_reader_reads_it_whatever_the_chunks() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let whole = {
            let mut g = Gzip::new(Vec::new(), LAYER_LEVEL).unwrap();
            g.write_all(&data).unwrap();
            g.finish().unwrap()
        };
        let chunked = {
            let mut g = Gzip::new(Vec::new(), LAYER_LEVEL).unwrap();
            for c in data.chunks(777) {
                g.write_all(c).unwrap();
            }
            g.finish().unwrap()
        };
        assert_eq!(
            whole, chunked,
            "the bytes do not depend on how they were written"
        );
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&whole[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
        let empty = Gzip::new(Vec::new(), LAYER_LEVEL)
            .unwrap()
            .finish()
            .unwrap();
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&empty[..])
            .read_to_end(&mut back)
            .unwrap();
        assert!(back.is_empty());
    }
}
