//! The package's file tree as its entries stream past, and the rules that keep extraction
//! inside the work dir.
//!
//! Pure: paths in, verdicts out, no file system. qus never recreates the package's tree on
//! disk (it only writes chosen regular files, under names it makes up itself), so a link in
//! the archive can never be followed by the OS; the danger is in qus following it in its own
//! reasoning. Hence the rules: entry paths stay under the root, relative link targets never
//! climb above it, hard links name earlier entries inside it, no entry goes through a
//! symlink, no path appears twice, and links qus does follow (emulator aliases) must end on
//! a regular file of the package within a bounded number of hops.

use std::collections::{HashMap, HashSet};

/// What the rules found wrong, without the package name (the caller adds it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TreeError {
    PathEscape { entry: String, reason: &'static str },
    SymlinkEscape { entry: String, target: String },
    HardlinkEscape { entry: String, target: String },
    Duplicate { entry: String },
    ThroughSymlink { entry: String, link: String },
    Loop { entry: String },
    Dangling { entry: String, target: String },
}

/// Kind of an admitted entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Node {
    File,
    Dir,
    /// Raw target as stored.
    Symlink(String),
    /// Normalised path of the earlier entry it shares data with.
    Hardlink(String),
    Other,
}

/// How many links may be followed before calling it a loop (Linux's own MAXSYMLINKS).
const MAX_HOPS: usize = 40;

#[derive(Debug, Default)]
pub(crate) struct Tree {
    nodes: HashMap<String, Node>,
    symlinks: HashSet<String>,
}

impl Tree {
    /// Checks one entry and records it; returns its normalised path (no `./`, no trailing
    /// `/`, the root itself is `""`).
    pub(crate) fn admit(&mut self, raw_path: &str, node: RawNode<'_>) -> Result<String, TreeError> {
        let path = normalize(raw_path).map_err(|reason| TreeError::PathEscape {
            entry: raw_path.to_string(),
            reason,
        })?;
        if let Some(link) = self.symlink_ancestor(&path) {
            let link = link.to_string();
            return Err(TreeError::ThroughSymlink { entry: path, link });
        }
        if self.nodes.contains_key(&path) {
            return Err(TreeError::Duplicate { entry: path });
        }
        let node = match node {
            RawNode::File => Node::File,
            RawNode::Dir => Node::Dir,
            RawNode::Other => Node::Other,
            RawNode::Symlink(target) => {
                // Absolute targets stay inside the root as dpkg would install them; only a
                // relative climb above the root is an escape at this stage.
                if !target.starts_with('/') && lexical_target(&path, target).is_none() {
                    return Err(TreeError::SymlinkEscape {
                        entry: path,
                        target: target.to_string(),
                    });
                }
                self.symlinks.insert(path.clone());
                Node::Symlink(target.to_string())
            }
            RawNode::Hardlink(target) => {
                let escape = || TreeError::HardlinkEscape {
                    entry: path.clone(),
                    target: target.to_string(),
                };
                let t = normalize(target).map_err(|_| escape())?;
                if t.is_empty() {
                    return Err(escape());
                }
                // tar hard links refer to an entry earlier in the same archive.
                match self.nodes.get(&t) {
                    Some(Node::File) | Some(Node::Hardlink(_)) => {}
                    _ => {
                        return Err(TreeError::Dangling {
                            entry: path,
                            target: target.to_string(),
                        })
                    }
                }
                Node::Hardlink(t)
            }
        };
        self.nodes.insert(path.clone(), node);
        Ok(path)
    }

    /// Follows links from `path` to the regular file they end on. Links qus follows must
    /// stay in the package, so an absolute target is refused here.
    pub(crate) fn resolve(&self, path: &str) -> Result<String, TreeError> {
        let mut cur = path.to_string();
        for _ in 0..MAX_HOPS {
            match self.nodes.get(&cur) {
                Some(Node::File) => return Ok(cur),
                Some(Node::Hardlink(t)) => cur = t.clone(),
                Some(Node::Symlink(target)) => {
                    let escape = TreeError::SymlinkEscape {
                        entry: cur.clone(),
                        target: target.clone(),
                    };
                    if target.starts_with('/') {
                        return Err(escape);
                    }
                    cur = lexical_target(&cur, target).ok_or(escape)?;
                }
                _ => {
                    return Err(TreeError::Dangling {
                        entry: path.to_string(),
                        target: cur,
                    })
                }
            }
        }
        Err(TreeError::Loop {
            entry: path.to_string(),
        })
    }

    fn symlink_ancestor<'p>(&self, path: &'p str) -> Option<&'p str> {
        if self.symlinks.is_empty() {
            return None;
        }
        path.match_indices('/')
            .map(|(i, _)| &path[..i])
            .find(|anc| self.symlinks.contains(*anc))
    }
}

/// An entry as the archive describes it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum RawNode<'a> {
    File,
    Dir,
    Symlink(&'a str),
    Hardlink(&'a str),
    Other,
}

/// `./usr//bin/x/` → `usr/bin/x`; refuses absolute paths and `..`.
pub(crate) fn normalize(raw: &str) -> Result<String, &'static str> {
    if raw.starts_with('/') {
        return Err("absolute path");
    }
    let mut parts = Vec::new();
    for c in raw.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err("`..` component"),
            c => parts.push(c),
        }
    }
    Ok(parts.join("/"))
}

/// Where a relative symlink target lands, from the link's folder; `None` if it climbs above
/// the root. Lexical (no file system), as everything here.
fn lexical_target(link: &str, target: &str) -> Option<String> {
    let mut stack: Vec<&str> = if target.starts_with('/') {
        Vec::new()
    } else {
        let mut s: Vec<&str> = link.split('/').collect();
        s.pop();
        s
    };
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                stack.pop()?;
            }
            c => stack.push(c),
        }
    }
    Some(stack.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes() {
        assert_eq!(normalize("./usr//bin/x/").unwrap(), "usr/bin/x");
        assert_eq!(normalize("./").unwrap(), "");
        assert_eq!(normalize("/etc/passwd"), Err("absolute path"));
        assert_eq!(normalize("./usr/../../x"), Err("`..` component"));
    }

    #[test]
    fn lexical() {
        assert_eq!(lexical_target("usr/bin/a", "b").unwrap(), "usr/bin/b");
        assert_eq!(
            lexical_target("usr/libexec/q/a", "../../bin/b").unwrap(),
            "usr/bin/b"
        );
        assert_eq!(lexical_target("usr/bin/a", "../../../etc"), None);
    }

    #[test]
    fn real_alias_resolves() {
        let mut t = Tree::default();
        t.admit("./usr/bin/", RawNode::Dir).unwrap();
        t.admit("./usr/bin/qemu-aarch64", RawNode::File).unwrap();
        t.admit("./usr/bin/qemu-arm64", RawNode::Symlink("qemu-aarch64"))
            .unwrap();
        assert_eq!(
            t.resolve("usr/bin/qemu-arm64").unwrap(),
            "usr/bin/qemu-aarch64"
        );
    }

    #[test]
    fn refuses_escapes_loops_duplicates() {
        let mut t = Tree::default();
        assert!(matches!(
            t.admit("usr/bin/x", RawNode::Symlink("../../../etc/passwd")),
            Err(TreeError::SymlinkEscape { .. })
        ));
        t.admit("usr/bin/abs", RawNode::Symlink("/etc/passwd"))
            .unwrap();
        assert!(matches!(
            t.resolve("usr/bin/abs"),
            Err(TreeError::SymlinkEscape { .. })
        ));
        assert!(matches!(
            t.admit("usr/bin/h", RawNode::Hardlink("../etc/passwd")),
            Err(TreeError::HardlinkEscape { .. })
        ));
        t.admit("a", RawNode::Symlink("b")).unwrap();
        t.admit("b", RawNode::Symlink("a")).unwrap();
        assert_eq!(t.resolve("a"), Err(TreeError::Loop { entry: "a".into() }));
        t.admit("f", RawNode::File).unwrap();
        assert_eq!(
            t.admit("./f", RawNode::File),
            Err(TreeError::Duplicate { entry: "f".into() })
        );
        t.admit("d", RawNode::Symlink("/tmp")).unwrap();
        assert!(matches!(
            t.admit("d/x", RawNode::File),
            Err(TreeError::ThroughSymlink { .. })
        ));
        assert!(matches!(
            t.admit("g", RawNode::Hardlink("nothing")),
            Err(TreeError::Dangling { .. })
        ));
    }
}
