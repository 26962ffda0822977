//! The shape of the code, checked (go-containerregistry's depcheck_test.go, for a Rust tree):
//! in every folder of every package the modules import one another without circles, every
//! module of the application is classified pure or I/O and the pure ones never reach the
//! ones that do I/O, only the edge reads flags and the environment, and the crates depend
//! on one another only as declared.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Modules that decide: no I/O beyond reading (and, for the lock, writing) their own files,
/// and nothing they reach does any. `a::*` is the folder `a` and everything in it.
const PURE: &[&str] = &[
    "arch",
    "attest",
    "attest::provenance",
    "attest::sbom",
    "attest::sign",
    "cli",
    "cli::docs",
    "cli::register",
    "config::*",
    "engine",
    "exit",
    "image::config",
    "image::files",
    "image::gzip",
    "image::media",
    "maint",
    "maint::check",
    "maint::choose",
    "maint::lock",
    "maint::report",
    "names",
    "options",
    "packages::shortfall",
    "plan::*",
    "targets",
    "ui::table",
];
/// Modules that talk to the daemon, a registry, the network, the disk, processes or the
/// user, or hand on values of modules that do.
const IO: &[&str] = &[
    "app",
    "attest::attach",
    "attest::verify",
    "classic",
    "cmd::*",
    "emutest::*",
    "engine::build_context",
    "engine::docker",
    "image",
    "image::entrypoint",
    "image::layer",
    "image::lists",
    "image::store",
    "image::tar",
    "main",
    "maint::index",
    "outcome",
    "packages",
    "packages::mirror",
    "sink::*",
    "ui",
    "ui::output",
    "ui::progress",
];
/// The edge: the only modules that may see clap's types or read the environment.
const EDGE: &[&str] = &["main", "app", "cli"];

/// Each package of the workspace, the workspace packages it depends on, and those its tests
/// add (a crate's own testkit feature aside). Anything else is a new edge to judge here
/// first: the libraries stay independent of one another and of the application.
const CRATES: &[(&str, &[&str], &[&str])] = &[
    (
        "qus",
        &["qus-binfmt", "qus-registry", "qus-source"],
        &["qus-registry", "qus-source"],
    ),
    ("qus-binfmt", &[], &["qus-source"]),
    ("qus-registry", &[], &[]),
    ("qus-source", &[], &[]),
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `dir`, recursively.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The module a file is (`src/config/raw.rs` → `config::raw`, `src/config/mod.rs` →
/// `config`); the crate root keeps its file's name (`main`, `lib`).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.len() > 1 && parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts.join("::")
}

/// The code of a file without comments and without its unit tests (`#[cfg(test)] mod tests
/// { … }`, up to the `}` that rustfmt puts at the start of a line): a doc link is not an
/// import, and a test may use what the module itself must not.
fn code(text: &str) -> String {
    let mut out = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line == "#[cfg(test)]" && lines.peek().is_some_and(|l| l.starts_with("mod tests {")) {
            lines.by_ref().find(|l| *l == "}");
        } else if !line.trim_start().starts_with("//") {
            out.push(line);
        }
    }
    out.join("\n")
}

fn ident(s: &str) -> &str {
    let n = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..n]
}

/// The paths `code` names from the module `me`, as segment lists from the crate root:
/// `crate::a::b`, `super::a`, `self::a` and `use … {a::B, c}` groups at any depth. A child
/// module named bare (`child::f`) is added by [`refs`], which knows the modules.
fn paths(code: &str, me: &str) -> Vec<Vec<String>> {
    let here: Vec<String> = if is_root(me) {
        Vec::new()
    } else {
        me.split("::").map(str::to_string).collect()
    };
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    let mut i = 0;
    while i < code.len() {
        let word = ident(&code[i..]);
        let boundary = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        let after = i + word.len();
        if boundary && matches!(word, "crate" | "super" | "self") && code[after..].starts_with("::")
        {
            let mut base = match word {
                "crate" => Vec::new(),
                "self" => here.clone(),
                _ => here[..here.len().saturating_sub(1)].to_vec(),
            };
            let mut j = after + 2;
            while code[j..].starts_with("super::") {
                base.pop();
                j += "super::".len();
            }
            i = tree(code, j, base, &mut out);
        } else {
            i = if word.is_empty() {
                next(code, i)
            } else {
                after
            };
        }
    }
    out
}

/// Reads one use-tree at `code[i..]` under `prefix`; returns where it ends.
fn tree(code: &str, mut i: usize, mut prefix: Vec<String>, out: &mut Vec<Vec<String>>) -> usize {
    loop {
        let rest = &code[i..];
        let ws = rest.len() - rest.trim_start().len();
        i += ws;
        if code[i..].starts_with('{') {
            i += 1;
            loop {
                let rest = &code[i..];
                i += rest.len() - rest.trim_start_matches([' ', '\n', '\t', ',']).len();
                if i >= code.len() || code[i..].starts_with('}') {
                    return i + 1;
                }
                // `*` and anything else that is no name: step over it.
                i = tree(code, i, prefix.clone(), out).max(next(code, i));
            }
        }
        let word = ident(&code[i..]);
        if word.is_empty() {
            out.push(prefix);
            return i;
        }
        if word != "self" {
            prefix.push(word.to_string());
        }
        i += word.len();
        if code[i..].starts_with("::") {
            i += 2;
        } else {
            out.push(prefix);
            return i;
        }
    }
}

/// Where the character after the one at `i` starts.
fn next(code: &str, i: usize) -> usize {
    i + code[i..].chars().next().map_or(1, char::len_utf8)
}

fn is_root(module: &str) -> bool {
    module == "main" || module == "lib"
}

/// The modules `code` (of the module `me`) imports, among `modules`: each path taken to the
/// longest module it names. An item of the crate root (`crate::VERSION`) is no import.
fn refs(code: &str, me: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let resolve = |segs: &Vec<String>| -> Option<String> {
        (1..=segs.len())
            .rev()
            .map(|k| segs[..k].join("::"))
            .find(|m| modules.contains(m) && !is_root(m))
    };
    let mut out: BTreeSet<String> = paths(code, me).iter().filter_map(resolve).collect();
    // A child module named bare: `layer::prepare` in `image`.
    let bytes = code.as_bytes();
    for (i, _) in code.match_indices("::") {
        let start = code[..i]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(0, |s| s + 1);
        if start > 1 && &bytes[start - 2..start] == b"::" {
            continue;
        }
        let child = if is_root(me) {
            code[start..i].to_string()
        } else {
            format!("{me}::{}", &code[start..i])
        };
        if modules.contains(&child) {
            out.insert(child);
        }
    }
    out.remove(me);
    out
}

/// Module → modules it imports, for the package whose sources are in `src`. Test modules
/// (`…::tests`) are left out.
fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let files: Vec<(String, PathBuf)> = sources(src)
        .into_iter()
        .map(|f| (module_of(src, &f), f))
        .filter(|(m, _)| m != "tests" && !m.ends_with("::tests"))
        .collect();
    let modules: BTreeSet<String> = files.iter().map(|(m, _)| m.clone()).collect();
    files
        .iter()
        .map(|(m, f)| {
            let text = std::fs::read_to_string(f).unwrap();
            (m.clone(), refs(&code(&text), m, &modules))
        })
        .collect()
}

/// The child of `folder` that holds `module` (`config` holds `config::raw`; the crate root
/// is in no folder, and a folder is not its own child).
fn child_of(folder: &str, module: &str) -> Option<String> {
    if is_root(module) {
        return None;
    }
    let rest = if folder.is_empty() {
        module
    } else {
        module.strip_prefix(folder)?.strip_prefix("::")?
    };
    let first = rest.split("::").next().filter(|s| !s.is_empty())?;
    Some(if folder.is_empty() {
        first.to_string()
    } else {
        format!("{folder}::{first}")
    })
}

/// For each folder (the source root `""` too), the graph between the modules directly in it,
/// each standing for everything under it: one folder is one package of Go's.
fn folder_graphs(
    g: &BTreeMap<String, BTreeSet<String>>,
) -> BTreeMap<String, BTreeMap<String, BTreeSet<String>>> {
    let mut folders: BTreeSet<String> = BTreeSet::from([String::new()]);
    for m in g.keys() {
        let parts: Vec<&str> = m.split("::").collect();
        for k in 1..parts.len() {
            folders.insert(parts[..k].join("::"));
        }
    }
    let mut out = BTreeMap::new();
    for f in folders {
        let mut fg: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (m, deps) in g {
            let Some(from) = child_of(&f, m) else {
                continue;
            };
            for d in deps {
                match child_of(&f, d) {
                    Some(to) if to != from => {
                        fg.entry(from.clone()).or_default().insert(to);
                    }
                    _ => {}
                }
            }
        }
        out.insert(f, fg);
    }
    out
}

/// A cycle in `g`, as the list of modules around it, if there is one.
fn find_cycle(g: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match state.get(n) {
            Some(2) => return None,
            Some(1) => {
                let start = path.iter().position(|p| p == n).unwrap();
                let mut cycle = path[start..].to_vec();
                cycle.push(n.to_string());
                return Some(cycle);
            }
            _ => {}
        }
        state.insert(n.to_string(), 1);
        path.push(n.to_string());
        for m in g.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, g, state, path) {
                return Some(c);
            }
        }
        path.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in g.keys() {
        if let Some(c) = visit(n, g, &mut state, &mut Vec::new()) {
            return Some(c);
        }
    }
    None
}

/// Each package's name and the folder of its sources.
fn packages() -> Vec<(String, PathBuf)> {
    let mut out = vec![("qus".to_string(), root())];
    for e in std::fs::read_dir(root().join("crates")).unwrap() {
        let dir = e.unwrap().path();
        if dir.join("Cargo.toml").is_file() {
            let name = dir.file_name().unwrap().to_string_lossy().to_string();
            out.push((format!("qus-{name}"), dir));
        }
    }
    out
}

/// `PURE` or `IO`, whichever entry names `module` (a `folder::*` entry names everything in
/// the folder; an exact entry wins).
fn class(module: &str) -> Option<&'static str> {
    let named = |list: &[&str]| {
        list.iter().any(|e| match e.strip_suffix("::*") {
            Some(folder) => module == folder || module.starts_with(&format!("{folder}::")),
            None => *e == module,
        })
    };
    let exact = |list: &[&str]| list.contains(&module);
    match (exact(PURE), exact(IO)) {
        (true, false) => return Some("pure"),
        (false, true) => return Some("io"),
        _ => {}
    }
    match (named(PURE), named(IO)) {
        (true, false) => Some("pure"),
        (false, true) => Some("io"),
        _ => None,
    }
}

#[test]
fn no_folder_has_an_import_circle() {
    for (name, dir) in packages() {
        let g = graph(&dir.join("src"));
        assert!(g.len() > 1, "{name}: no modules found in {}", dir.display());
        for (folder, fg) in folder_graphs(&g) {
            if let Some(cycle) = find_cycle(&fg) {
                let src = dir.join("src").join(folder.replace("::", "/"));
                panic!(
                    "{name}: the modules of {}/ import each other in a circle: {}; move what \
                     they share into a leaf module",
                    src.strip_prefix(root()).unwrap().display(),
                    cycle.join(" → ")
                );
            }
        }
    }
}

#[test]
fn every_module_is_classified_pure_or_io() {
    let g = graph(&root().join("src"));
    let unclassified: Vec<&String> = g.keys().filter(|m| class(m).is_none()).collect();
    assert!(
        unclassified.is_empty(),
        "modules neither PURE nor IO (or both) in tests/depcheck.rs: {unclassified:?}; add each \
         to the list it belongs to, so that its imports are judged"
    );
    // Every entry names a module: a list that outlives a rename checks nothing.
    for e in PURE.iter().chain(IO) {
        let folder = e.strip_suffix("::*");
        assert!(
            g.keys().any(|m| match folder {
                Some(f) => m == f || m.starts_with(&format!("{f}::")),
                None => m == e,
            }),
            "tests/depcheck.rs names `{e}`, which is no module of src/"
        );
    }
}

#[test]
fn pure_modules_never_reach_io_modules() {
    let g = graph(&root().join("src"));
    for pure in g.keys().filter(|m| class(m) == Some("pure")) {
        // Everything reachable, not just direct imports: a pure module that imports a helper
        // that does I/O is no longer pure.
        let mut via: BTreeMap<String, String> = BTreeMap::new();
        let mut todo = vec![pure.clone()];
        while let Some(m) = todo.pop() {
            for dep in g.get(&m).into_iter().flatten() {
                if dep != pure && !via.contains_key(dep) {
                    via.insert(dep.clone(), m.clone());
                    todo.push(dep.clone());
                }
            }
        }
        if let Some(bad) = via.keys().find(|m| class(m) == Some("io")) {
            let mut path = vec![bad.clone()];
            while let Some(prev) = via.get(path.last().unwrap()) {
                path.push(prev.clone());
                if prev == pure {
                    break;
                }
            }
            path.reverse();
            panic!(
                "the pure module `{pure}` reaches the I/O module `{bad}`: {}",
                path.join(" → ")
            );
        }
    }
}

#[test]
fn only_the_edge_sees_flags_and_the_environment() {
    let src = root().join("src");
    let g = graph(&src);
    for f in sources(&src) {
        let m = module_of(&src, &f);
        let top = m.split("::").next().unwrap();
        if EDGE.contains(&top) {
            continue;
        }
        assert!(
            !g.get(&m).is_some_and(|deps| deps.contains("cli")),
            "{}: only {EDGE:?} may use the clap types; take a value from crate::options",
            f.display()
        );
        let text = std::fs::read_to_string(&f).unwrap();
        for needle in ["std::env::var", "env::var("] {
            assert!(
                !text.contains(needle),
                "{}: reads the environment; resolve it in app.rs into an option",
                f.display()
            );
        }
    }
}

/// The workspace packages a manifest depends on, as (dependencies, dev-dependencies), the
/// package itself aside. Build dependencies count as dependencies.
fn workspace_deps(manifest: &str, own: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let (mut deps, mut dev) = (BTreeSet::new(), BTreeSet::new());
    let mut section: Option<(bool, Option<String>)> = None;
    for line in manifest.lines().map(str::trim) {
        if let Some(h) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            // `[dependencies]`, `[dev-dependencies.NAME]`, `[target.'cfg(…)'.dependencies]`.
            let h = h.trim_matches(['[', ']']);
            let h = match h.strip_prefix("target.") {
                Some(t) => t.split_once("dependencies").map_or("", |(_, r)| r),
                None => h,
            };
            let h = h
                .strip_prefix("dev-dependencies")
                .map(|r| (true, r))
                .or_else(|| h.strip_prefix("dependencies").map(|r| (false, r)))
                .or_else(|| h.strip_prefix("build-dependencies").map(|r| (false, r)));
            section = h.map(|(is_dev, rest)| {
                let name = rest
                    .strip_prefix('.')
                    .map(|n| n.trim_matches('"').to_string());
                (is_dev, name)
            });
            if let Some((is_dev, Some(name))) = &section {
                if name.starts_with("qus") && name != own {
                    if *is_dev { &mut dev } else { &mut deps }.insert(name.clone());
                }
            }
            continue;
        }
        let Some((is_dev, None)) = &section else {
            continue;
        };
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim().split('.').next().unwrap().trim_matches('"');
        // `alias = { package = "qus-x", … }` depends on qus-x.
        let name = value
            .split_once("package")
            .and_then(|(_, r)| r.split('"').nth(1))
            .unwrap_or(key);
        if name.starts_with("qus") && name != own {
            if *is_dev { &mut dev } else { &mut deps }.insert(name.to_string());
        }
    }
    (deps, dev)
}

#[test]
fn the_crates_depend_on_one_another_only_as_declared() {
    let found = packages();
    for (name, dir) in &found {
        let Some((_, want_deps, want_dev)) = CRATES.iter().find(|(n, ..)| n == name) else {
            panic!("{name} is not in CRATES (tests/depcheck.rs): declare what it may depend on");
        };
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        let (deps, dev) = workspace_deps(&manifest, name);
        let set = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        assert_eq!(
            deps,
            set(want_deps),
            "{name}'s dependencies on the workspace's packages; CRATES declares others"
        );
        assert_eq!(
            dev,
            set(want_dev),
            "{name}'s dev-dependencies on the workspace's packages; CRATES declares others"
        );
    }
    for (name, ..) in CRATES {
        assert!(
            found.iter().any(|(n, _)| n == name),
            "CRATES names {name}, which is no package of the workspace"
        );
    }
}

#[test]
fn the_checks_see_what_they_check() {
    // A forbidden edge, a circle and an undeclared dependency are found, so the tests above
    // cannot pass vacuously.
    let modules: BTreeSet<String> = [
        "main", "a", "a::b", "a::b::d", "a::b::e", "a::c", "cli", "docker", "plan", "x",
    ]
    .map(String::from)
    .into();
    let text = "use crate::{docker::Daemon, plan::{self, Plan}};\nuse super::c::X;\n\
                use self::d;\n// crate::x in a comment\nlet x = crate::cli::parse(); e::f(); \
                crate::VERSION;\n#[cfg(test)]\nmod tests {\n    use crate::x;\n}\nuse crate::cli;";
    let refs = refs(&code(text), "a::b", &modules);
    assert_eq!(
        refs.into_iter().collect::<Vec<_>>(),
        ["a::b::d", "a::b::e", "a::c", "cli", "docker", "plan"]
    );
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    g.entry("a::b".into()).or_default().insert("a::c".into());
    g.entry("a::c".into()).or_default().insert("plan".into());
    g.entry("plan".into()).or_default().insert("a".into());
    let folders = folder_graphs(&g);
    assert_eq!(find_cycle(&folders[""]).unwrap(), ["a", "plan", "a"]);
    assert_eq!(find_cycle(&folders["a"]), None);
    assert_eq!(class("cmd::build"), Some("io"));
    assert_eq!(class("image::media"), Some("pure"));
    assert_eq!(class("image::new_module"), None);
    let manifest = "[dependencies]\nqus-source.workspace = true\nx = { package = \"qus-app\" }\n\
                    [dev-dependencies.qus-binfmt]\npath = \"../binfmt\"\n\
                    [workspace.dependencies]\nqus-registry = { path = \"r\" }";
    let (deps, dev) = workspace_deps(manifest, "qus-x");
    assert_eq!(
        deps.into_iter().collect::<Vec<_>>(),
        ["qus-app", "qus-source"]
    );
    assert_eq!(dev.into_iter().collect::<Vec<_>>(), ["qus-binfmt"]);
}
