//! Which decompressor a `*.tar.<ext>` member needs, and building it.
//!
//! dpkg writes xz (the default), zstd (Ubuntu, since 21.10), gzip (old packages) or a plain
//! tar; those four are all a package can use. Anything else is refused by name rather
//! than guessed from content, which is what dpkg does too.

use std::io::{self, Read};

/// The compression of a tar member, from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compression {
    None,
    Xz,
    Zstd,
    Gzip,
}

impl Compression {
    /// `prefix` is `control.tar` or `data.tar`; `None` when the name has another suffix.
    pub(crate) fn from_member_name(name: &str, prefix: &str) -> Option<Compression> {
        match name.strip_prefix(prefix)? {
            "" => Some(Compression::None),
            ".xz" => Some(Compression::Xz),
            ".zst" => Some(Compression::Zstd),
            ".gz" => Some(Compression::Gzip),
            _ => None,
        }
    }

    /// Wraps `input` in the decoder. `parallel` lets xz decode blocks on every core, which
    /// halves the time for the big data members dpkg compresses in multiple blocks.
    pub(crate) fn decoder<'a, R: Read + 'a>(
        self,
        input: R,
        parallel: bool,
    ) -> io::Result<Box<dyn Read + 'a>> {
        Ok(match self {
            Compression::None => Box::new(input),
            Compression::Xz => {
                // The memlimit bounds what a hostile header can make liblzma allocate;
                // dpkg's presets need at most 64 MiB per thread. Threading stops at 64 MiB
                // too: qus already extracts one package per CPU, and more buffers per
                // decoder only cost memory (peak RSS 466 MB → 200 MB, same wall time).
                let stream = if parallel {
                    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
                    liblzma::stream::MtStreamBuilder::new()
                        .threads(threads.min(8) as u32)
                        .memlimit_threading(64 << 20)
                        .memlimit_stop(1 << 30)
                        .decoder()
                } else {
                    liblzma::stream::Stream::new_stream_decoder(1 << 30, 0)
                }
                .map_err(io::Error::other)?;
                Box::new(liblzma::read::XzDecoder::new_stream(input, stream))
            }
            Compression::Zstd => Box::new(
                ruzstd::decoding::StreamingDecoder::new(input)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?,
            ),
            Compression::Gzip => Box::new(flate2::read::GzDecoder::new(input)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        use Compression::*;
        let c = |n| Compression::from_member_name(n, "data.tar");
        assert_eq!(c("data.tar"), Some(None));
        assert_eq!(c("data.tar.xz"), Some(Xz));
        assert_eq!(c("data.tar.zst"), Some(Zstd));
        assert_eq!(c("data.tar.gz"), Some(Gzip));
        assert_eq!(c("data.tar.bz2"), Option::None);
        assert_eq!(c("control.tar.xz"), Option::None);
    }

    #[test]
    fn round_trips() {
        let data = b"hello hello hello".repeat(100);
        let xz = liblzma::encode_all(&data[..], 6).unwrap();
        let gz = {
            let mut e = flate2::read::GzEncoder::new(&data[..], flate2::Compression::fast());
            let mut v = Vec::new();
            e.read_to_end(&mut v).unwrap();
            v
        };
        let zst = ruzstd::encoding::compress_to_vec(
            &data[..],
            ruzstd::encoding::CompressionLevel::Fastest,
        );
        for (c, input, par) in [
            (Compression::Xz, &xz, true),
            (Compression::Xz, &xz, false),
            (Compression::Gzip, &gz, false),
            (Compression::Zstd, &zst, false),
            (Compression::None, &data, false),
        ] {
            let mut out = Vec::new();
            c.decoder(&input[..], par)
                .unwrap()
                .read_to_end(&mut out)
                .unwrap();
            assert_eq!(out, data, "{c:?}");
        }
    }
}
