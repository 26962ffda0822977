//! Which source gives each host its unversioned tags: the newest QEMU the config pins for it.

use crate::arch::Host;
use crate::config::{Config, Source};
use qus_source::debian_index::compare as compare_versions;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

/// The `source` of an unversioned list: each host's newest source.
pub const NEWEST: &str = "newest";

/// For each host, the source of its unversioned tags: the newest QEMU the config pins for
/// it; on a tie the default source, then the first in the config.
pub fn newest_sources(config: &Config) -> BTreeMap<Host, String> {
    newest_among(config, None)
}

/// [`newest_sources`] among the sources named in `among` (`--sources`; `None`: all): for
/// each host one of them pins, the newest that does. What `qus assets` packs per host.
pub fn newest_among(config: &Config, among: Option<&[String]>) -> BTreeMap<Host, String> {
    let candidates: Vec<(usize, &Source)> = config
        .sources
        .iter()
        .enumerate()
        .filter(|(_, s)| among.is_none_or(|names| names.contains(&s.name)))
        .collect();
    let hosts: BTreeSet<Host> = candidates
        .iter()
        .flat_map(|(_, s)| s.files.keys().copied())
        .collect();
    let mut out = BTreeMap::new();
    for host in hosts {
        let best = candidates
            .iter()
            .filter(|(_, s)| s.files.contains_key(&host))
            .max_by(|(ia, a), (ib, b)| {
                qemu_order(a, b, host)
                    .then((a.name == config.default).cmp(&(b.name == config.default)))
                    .then(ib.cmp(ia))
            });
        if let Some((_, s)) = best {
            out.insert(host, s.name.clone());
        }
    }
    out
}

/// Orders two sources by the QEMU release they pin for `host`, by Debian's version rules
/// over the upstream part (Debian's epoch and revision, and Fedora's release, say nothing
/// about which QEMU is newer).
fn qemu_order(a: &Source, b: &Source, host: Host) -> Ordering {
    let qemu = |s: &Source| s.files.get(&host).map(|f| upstream(&f.version).to_string());
    match (qemu(a), qemu(b)) {
        (Some(va), Some(vb)) => compare_versions(&va, &vb),
        (va, vb) => va.is_some().cmp(&vb.is_some()),
    }
}

/// The QEMU major release a package version gives (`1:11.1.3+ds-2~bpo13+1` → 11).
pub(super) fn qemu_major(version: &str) -> Option<u64> {
    upstream(version).split('.').next()?.parse().ok()
}

/// `1:11.1.3+ds-2~bpo13+1` → `11.1.3+ds`; `10.1.0-3.fc43` → `10.1.0`.
fn upstream(version: &str) -> &str {
    let no_epoch = version.split_once(':').map_or(version, |(_, rest)| rest);
    no_epoch.rsplit_once('-').map_or(no_epoch, |(up, _)| up)
}

#[cfg(test)]
mod tests {
    use super::upstream;

    #[test]
    fn upstream_drops_epoch_and_revision() {
        assert_eq!(upstream("1:11.1.3+ds-2~bpo13+1"), "11.1.3+ds");
        assert_eq!(upstream("1:7.2+dfsg-7+deb12u16"), "7.2+dfsg");
        assert_eq!(upstream("10.1.0-3.fc43"), "10.1.0");
        assert_eq!(upstream("1.37.0"), "1.37.0");
        assert_eq!(super::qemu_major("1:11.1.3+ds-2~bpo13+1"), Some(11));
        assert_eq!(super::qemu_major("1:7.2+dfsg-7+deb12u18+b3"), Some(7));
    }
}
