//! The shape of the code, checked (go-containerregistry's depcheck_test.go, for a Rust tree):
//! the modules of each package import one another without circles, the pure modules never
//! reach the ones that do I/O, only the edge reads flags and the environment, and no
//! library crate depends on the application.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Modules that must stay pure: planning and configuration decide everything and do no I/O
/// beyond reading their own files.
const PURE: &[&str] = &[
    "plan", "config", "arch", "validate", "lockfile", "targets", "attest", "engine",
];
/// Modules that talk to the daemon, a registry, the network or the user.
const IO: &[&str] = &[
    "docker", "release", "build", "packages", "assets", "maint", "cli", "app", "register",
];
/// The edge: the only modules that may see clap's types or read the environment.
const EDGE: &[&str] = &["main", "app", "cli"];

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

/// The top-level module a file belongs to (`src/config/raw.rs` → `config`).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

/// The top-level modules `text` names through `crate::` (paths and `use crate::{a, b}`),
/// comments aside: a doc link is not an import.
fn crate_refs(text: &str) -> BTreeSet<String> {
    let code: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let text = code.as_str();
    let mut out = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut rest = text;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `use crate::{a::B, c}`: every top-level name at depth 0 of the group.
            let mut depth = 0;
            let mut item_start = true;
            for (k, ch) in group.char_indices() {
                match ch {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && !c.is_whitespace() => {
                        let name = ident(&group[k..]);
                        if !name.is_empty() {
                            out.insert(name);
                        }
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

/// Module → modules it imports, for the package whose sources are in `src`.
fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let files = sources(src);
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(src, f)).collect();
    for f in &files {
        let m = module_of(src, f);
        let text = std::fs::read_to_string(f).unwrap();
        let refs: Vec<String> = crate_refs(&text)
            .into_iter()
            .filter(|r| r != &m && modules.contains(r))
            .collect();
        g.entry(m).or_default().extend(refs);
    }
    g
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

fn packages() -> Vec<(String, PathBuf)> {
    let mut out = vec![("qus".to_string(), root().join("src"))];
    for e in std::fs::read_dir(root().join("crates")).unwrap() {
        let dir = e.unwrap().path();
        if dir.join("Cargo.toml").is_file() {
            let name = dir.file_name().unwrap().to_string_lossy().to_string();
            out.push((format!("crates/{name}"), dir.join("src")));
        }
    }
    out
}

#[test]
fn no_package_has_an_import_circle() {
    for (name, src) in packages() {
        let g = graph(&src);
        assert!(g.len() > 1, "{name}: no modules found in {}", src.display());
        if let Some(cycle) = find_cycle(&g) {
            panic!(
                "{name}: modules import each other in a circle: {}; move what they share \
                 into a leaf module",
                cycle.join(" → ")
            );
        }
    }
}

#[test]
fn pure_modules_never_reach_io_modules() {
    let g = graph(&root().join("src"));
    for pure in PURE {
        // Everything reachable, not just direct imports: a pure module that imports a helper
        // that does I/O is no longer pure.
        let mut seen = BTreeSet::new();
        let mut todo = vec![pure.to_string()];
        while let Some(m) = todo.pop() {
            for dep in g.get(&m).into_iter().flatten() {
                if seen.insert(dep.clone()) {
                    todo.push(dep.clone());
                }
            }
        }
        let bad: Vec<&String> = seen.iter().filter(|m| IO.contains(&m.as_str())).collect();
        assert!(
            bad.is_empty(),
            "the pure module `{pure}` reaches I/O modules {bad:?}"
        );
    }
}

#[test]
fn only_the_edge_sees_flags_and_the_environment() {
    let src = root().join("src");
    for f in sources(&src) {
        let m = module_of(&src, &f);
        if EDGE.contains(&m.as_str()) {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(
            !crate_refs(&text).contains("cli"),
            "{}: only {EDGE:?} may use the clap types; take a value from crate::options",
            f.display()
        );
        for needle in ["std::env::var", "env::var("] {
            assert!(
                !text.contains(needle),
                "{}: reads the environment; resolve it in app.rs into an option",
                f.display()
            );
        }
    }
}

#[test]
fn no_library_depends_on_the_application() {
    for (name, src) in packages().into_iter().filter(|(n, _)| n != "qus") {
        let manifest = std::fs::read_to_string(src.parent().unwrap().join("Cargo.toml")).unwrap();
        // A dependency on the package `qus`, in any table and any spelling.
        let deps: Vec<&str> = manifest
            .lines()
            .map(str::trim_start)
            .filter(|l| {
                l.strip_prefix("qus")
                    .is_some_and(|rest| rest.trim_start().starts_with(['=', '.']))
            })
            .collect();
        assert!(
            deps.is_empty(),
            "{name} depends on the qus application: {deps:?}"
        );
    }
}

#[test]
fn the_checks_see_what_they_check() {
    // A forbidden edge and a circle are found, so the tests above cannot pass vacuously.
    let refs = crate_refs("use crate::{docker::Daemon, plan};\nlet x = crate::cli::parse();");
    assert_eq!(
        refs.into_iter().collect::<Vec<_>>(),
        ["cli", "docker", "plan"]
    );
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    g.entry("a".into()).or_default().insert("b".into());
    g.entry("b".into()).or_default().insert("a".into());
    assert_eq!(find_cycle(&g).unwrap(), ["a", "b", "a"]);
}
