//! A layer's files as a tar stream, byte for byte what the Docker Engine writes for the same
//! files (Go's `archive/tar` in USTAR form, as moby's layer diff emits it), so that an image
//! qus writes and the same image built by the classic builder have the same layer diffIDs.
//!
//! What Docker writes, read off `docker save` of a `COPY dir/ /` layer on this daemon: no
//! entry for `/`; directories end in `/`; entries in a depth-first walk with each folder's
//! children sorted by name (not a sort of whole paths: `a/x` comes before `a-b`); mode with
//! the file-type bits (`0040755`); uid/gid 0 with user and group names `root`; numbers as
//! zero-padded octal ending in NUL; the checksum as six digits, NUL, space; two zero blocks
//! at the end and no padding to a record size.

use crate::image::files::{Content, Entry};
use std::collections::BTreeMap;
use std::io::{self, Read, Write};

const BLOCK: u64 = 512;

/// A layer that cannot be written as given.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TarError {
    /// A path that is not plain and relative, or two entries with one path.
    #[error("path '{0}' is not a plain relative path, or is given twice")]
    BadPath(String),
    /// A path longer than USTAR can hold.
    #[error("path '{0}' is too long for a tar header")]
    TooLong(String),
    /// Reading a file (or writing the stream) failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// One node of the layer's tree.
#[derive(Debug, Clone)]
enum Node<'a> {
    Dir,
    File { mode: u32, content: &'a Content },
    Symlink { target: &'a str },
}

/// The layer's entries with every parent folder, keyed by path (no trailing `/`).
#[derive(Debug)]
pub(crate) struct Tree<'a> {
    nodes: BTreeMap<String, Node<'a>>,
}

impl<'a> Tree<'a> {
    /// Checks the paths and adds the parent folders every entry needs.
    pub(crate) fn new(entries: &'a [Entry]) -> Result<Tree<'a>, TarError> {
        let mut nodes = BTreeMap::new();
        for e in entries {
            let path = e.path();
            if !crate::config::validate::is_plain_relative(path) {
                return Err(TarError::BadPath(path.to_string()));
            }
            let mut parent = String::new();
            let comps: Vec<&str> = path.split('/').collect();
            for c in &comps[..comps.len() - 1] {
                if !parent.is_empty() {
                    parent.push('/');
                }
                parent.push_str(c);
                match nodes.get(&parent) {
                    None => {
                        nodes.insert(parent.clone(), Node::Dir);
                    }
                    Some(Node::Dir) => {}
                    Some(_) => return Err(TarError::BadPath(parent)),
                }
            }
            let node = match e {
                Entry::File { mode, content, .. } => Node::File {
                    mode: *mode,
                    content,
                },
                Entry::Symlink { target, .. } => Node::Symlink { target },
            };
            if nodes.insert(path.to_string(), node).is_some() {
                return Err(TarError::BadPath(path.to_string()));
            }
        }
        Ok(Tree { nodes })
    }

    /// Paths in Go's `filepath.Walk` order: depth first, each folder's children by name.
    fn walk(&self) -> Vec<(&str, &Node<'a>)> {
        let mut children: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for path in self.nodes.keys() {
            let parent = path.rsplit_once('/').map_or("", |(p, _)| p);
            children.entry(parent).or_default().push(path);
        }
        for v in children.values_mut() {
            v.sort_by_key(|p| p.rsplit('/').next().unwrap_or(p));
        }
        let mut out = Vec::with_capacity(self.nodes.len());
        let mut stack: Vec<&str> = children.get("").cloned().unwrap_or_default();
        stack.reverse();
        while let Some(p) = stack.pop() {
            out.push((p, &self.nodes[p]));
            if let Some(kids) = children.get(p) {
                stack.extend(kids.iter().rev());
            }
        }
        out
    }

    #[cfg(test)]
    /// The size of the stream [`Tree::write`] produces, without reading any file.
    pub(crate) fn size(&self) -> io::Result<u64> {
        let mut total = 2 * BLOCK;
        for (_, node) in self.walk() {
            total += BLOCK;
            if let Node::File { content, .. } = node {
                total += content.len()?.div_ceil(BLOCK) * BLOCK;
            }
        }
        Ok(total)
    }

    /// Writes the tar stream; every entry has mtime `mtime`.
    pub(crate) fn write<W: Write + ?Sized>(&self, w: &mut W, mtime: u64) -> Result<(), TarError> {
        for (path, node) in self.walk() {
            match node {
                Node::Dir => {
                    let h = header(&format!("{path}/"), 0o040755, 0, mtime, b'5', "")?;
                    w.write_all(&h)?;
                }
                Node::Symlink { target } => {
                    let h = header(path, 0o120777, 0, mtime, b'2', target)?;
                    w.write_all(&h)?;
                }
                Node::File { mode, content } => {
                    let len = content.len()?;
                    let h = header(path, 0o100000 | (mode & 0o7777), len, mtime, b'0', "")?;
                    w.write_all(&h)?;
                    let copied = match content {
                        Content::Bytes(b) => {
                            w.write_all(b)?;
                            b.len() as u64
                        }
                        Content::File { path: p, .. } => {
                            let f = std::fs::File::open(p).map_err(|e| {
                                io::Error::new(e.kind(), format!("{}: {e}", p.display()))
                            })?;
                            // `take`: a file that grew since its size was read cannot make
                            // the entry longer than its header says.
                            io::copy(&mut f.take(len), w)?
                        }
                    };
                    if copied != len {
                        return Err(TarError::Io(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!("{path}: {copied} bytes read, {len} expected"),
                        )));
                    }
                    let pad = (BLOCK - len % BLOCK) % BLOCK;
                    w.write_all(&[0u8; BLOCK as usize][..pad as usize])?;
                }
            }
        }
        w.write_all(&[0u8; 2 * BLOCK as usize])?;
        Ok(())
    }
}

/// One USTAR header block as Go's `archive/tar` writes it for these fields.
fn header(
    path: &str,
    mode: u32,
    size: u64,
    mtime: u64,
    kind: u8,
    link: &str,
) -> Result<[u8; 512], TarError> {
    let mut h = [0u8; 512];
    let (prefix, name) = split_path(path).ok_or_else(|| TarError::TooLong(path.to_string()))?;
    if link.len() > 100 {
        return Err(TarError::TooLong(link.to_string()));
    }
    h[..name.len()].copy_from_slice(name.as_bytes());
    octal(&mut h[100..108], mode as u64);
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], mtime);
    h[156] = kind;
    h[157..157 + link.len()].copy_from_slice(link.as_bytes());
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[265..269].copy_from_slice(b"root");
    h[297..301].copy_from_slice(b"root");
    octal(&mut h[329..337], 0);
    octal(&mut h[337..345], 0);
    h[345..345 + prefix.len()].copy_from_slice(prefix.as_bytes());
    h[148..156].copy_from_slice(b"        ");
    let sum: u64 = h.iter().map(|&b| b as u64).sum();
    let digits = format!("{sum:06o}");
    h[148..154].copy_from_slice(digits.as_bytes());
    h[154] = 0;
    h[155] = b' ';
    Ok(h)
}

/// `%0{n-1}o` and a NUL, as Go writes numeric fields.
fn octal(field: &mut [u8], value: u64) {
    let n = field.len() - 1;
    let digits = format!("{value:0n$o}");
    // Values here (sizes, modes, an epoch) always fit; the last `n` digits are kept.
    field[..n].copy_from_slice(&digits.as_bytes()[digits.len() - n..]);
    field[n] = 0;
}

/// USTAR's name (100 bytes) and prefix (155 bytes), split at a `/` as Go does.
fn split_path(path: &str) -> Option<(&str, &str)> {
    if path.len() <= 100 {
        return Some(("", path));
    }
    let bytes = path.as_bytes();
    let limit = path.len().min(156);
    let i = (1..limit).rev().find(|&i| bytes[i] == b'/')?;
    let (prefix, name) = (&path[..i], &path[i + 1..]);
    (prefix.len() <= 155 && !name.is_empty() && name.len() <= 100).then_some((prefix, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(path: &str, data: &[u8]) -> Entry {
        Entry::File {
            path: path.into(),
            mode: 0o755,
            content: Content::Bytes(data.to_vec()),
        }
    }

    #[test]
    fn header_matches_the_one_docker_wrote() {
        // The first block of a `COPY qemu-aarch64/ /` layer read off `docker save` here.
        let h = header("usr/", 0o040755, 0, 0, b'5', "").unwrap();
        assert_eq!(&h[100..108], b"0040755\0");
        assert_eq!(&h[124..136], b"00000000000\0");
        assert_eq!(&h[148..156], b"011632\0 ");
        assert_eq!(&h[257..265], b"ustar\x0000");
        assert_eq!(&h[265..269], b"root");
        assert_eq!(&h[329..345], b"0000000\x000000000\0");
    }

    #[test]
    fn walk_is_per_folder_not_per_path() {
        let entries = vec![
            bytes("a-b", b"1"),
            bytes("a/x", b"2"),
            Entry::Symlink {
                path: "a/l".into(),
                target: "x".into(),
            },
        ];
        let t = Tree::new(&entries).unwrap();
        let order: Vec<&str> = t.walk().into_iter().map(|(p, _)| p).collect();
        assert_eq!(order, ["a", "a/l", "a/x", "a-b"]);
    }

    #[test]
    fn size_is_what_is_written() {
        let entries = vec![bytes("usr/bin/x", &[7u8; 1000]), bytes("qus/y", b"")];
        let t = Tree::new(&entries).unwrap();
        let mut out = Vec::new();
        t.write(&mut out, 0).unwrap();
        assert_eq!(out.len() as u64, t.size().unwrap());
        // Readable by an independent reader, with the right metadata.
        let mut ar = tar::Archive::new(&out[..]);
        let names: Vec<String> = ar
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["qus/", "qus/y", "usr/", "usr/bin/", "usr/bin/x"]);
    }

    #[test]
    fn bad_paths_are_refused() {
        for p in ["", "/abs", "a/../b", "a//b", "./a"] {
            assert!(Tree::new(&[bytes(p, b"")]).is_err(), "{p}");
        }
        assert!(Tree::new(&[bytes("a", b""), bytes("a", b"")]).is_err());
        assert!(Tree::new(&[bytes("a", b""), bytes("a/b", b"")]).is_err());
    }

    #[test]
    fn long_paths_split_at_a_slash() {
        let long = format!("{}/{}", "d".repeat(120), "f".repeat(50));
        assert_eq!(split_path(&long), Some((&long[..120], &long[121..])));
        assert_eq!(split_path(&"x".repeat(101)), None);
    }
}
