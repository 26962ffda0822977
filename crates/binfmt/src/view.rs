//! binfmt_misc's entries as one run sees them: read once, then kept up to
//! date with every change the run makes or, in a dry run, would make.
//!
//! Removals and registrations decide from this view, never from the mount
//! directly, so a dry run (which changes nothing) takes the same decisions
//! as the run it stands for, and ends with the entries that run would leave.

use std::ffi::{OsStr, OsString};

use crate::apply::EntryInfo;
use crate::line::Flags;
use crate::table::Target;

/// The entries, sorted by name bytes as [`crate::Binfmt::entries`] lists them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct View {
    entries: Vec<EntryInfo>,
}

impl View {
    /// A view of `entries` (any order).
    pub fn new(mut entries: Vec<EntryInfo>) -> View {
        entries.sort_by(|a, b| a.name_bytes().cmp(b.name_bytes()));
        View { entries }
    }

    /// Every entry, sorted.
    pub fn entries(&self) -> &[EntryInfo] {
        &self.entries
    }

    /// The entries, sorted.
    pub fn into_entries(self) -> Vec<EntryInfo> {
        self.entries
    }

    /// Every entry's name, sorted.
    pub fn names(&self) -> Vec<OsString> {
        self.entries.iter().map(|e| e.name.clone()).collect()
    }

    /// The entry of that name.
    pub fn get(&self, name: &str) -> Option<&EntryInfo> {
        self.entries
            .iter()
            .find(|e| e.name_bytes() == name.as_bytes())
    }

    /// Forgets the entry of that name (removed).
    pub fn remove(&mut self, name: &OsStr) {
        self.entries.retain(|e| e.name != name);
    }

    /// Adds `target`'s entry as registering it leaves it, replacing one of
    /// the same name.
    pub fn register(&mut self, target: &Target, interpreter: &str, flags: Flags) {
        self.put(registered_entry(target, interpreter, flags));
    }

    /// Adds an entry as read, replacing one of the same name.
    pub fn put(&mut self, e: EntryInfo) {
        self.remove(&e.name.clone());
        let at = self
            .entries
            .partition_point(|x| x.name_bytes() < e.name_bytes());
        self.entries.insert(at, e);
    }
}

/// The entry the kernel shows after registering `target` with this
/// interpreter and flags (its file, as binfmt_misc prints it).
pub fn registered_entry(target: &Target, interpreter: &str, flags: Flags) -> EntryInfo {
    let hex = |b: &[u8]| -> String { b.iter().map(|x| format!("{x:02x}")).collect() };
    let raw = format!(
        "enabled\ninterpreter {interpreter}\nflags: {}\noffset 0\nmagic {}\nmask {}\n",
        flags.letters(),
        hex(target.magic),
        hex(target.mask)
    );
    crate::apply::parse_entry(OsStr::new(&target.entry_name()), raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::find;

    #[test]
    fn registering_replaces_and_keeps_the_order() {
        let arm = find("arm").unwrap();
        let aarch64 = find("aarch64").unwrap();
        let mut v = View::new(vec![registered_entry(arm, "/a/qemu-arm", Flags::default())]);
        v.register(aarch64, "/a/qemu-aarch64", Flags::PERSISTENT);
        v.register(arm, "/b/qemu-arm", Flags::PERSISTENT);
        let names: Vec<_> = v.names();
        assert_eq!(names, [OsString::from("qemu-aarch64"), "qemu-arm".into()]);
        let e = v.get("qemu-arm").unwrap();
        assert!(e.enabled);
        assert_eq!(e.interpreter.as_deref(), Some("/b/qemu-arm"));
        assert_eq!(e.flags, "F");
        assert!(e.raw.contains("\nmagic 7f454c46"));
        v.remove(OsStr::new("qemu-arm"));
        assert!(v.get("qemu-arm").is_none());
    }
}
