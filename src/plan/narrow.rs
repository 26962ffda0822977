//! The plan narrowed to what the packages at hand can make. Pure.
//!
//! When a package could not be used, every image of this run that has a file of it is left
//! out, and so is every list that names one of those images: a list is written complete or
//! not at all, so that no list in a registry or an OCI layout silently loses a platform (one
//! already there stays as it was). Images that are already where they go (not in `among`)
//! stay in the plan: they need no package this run.

use crate::plan::{needs, ImagePlan, PackagePlan, Plan};
use std::collections::BTreeSet;

/// An image left out, and the files it needs that could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ImageLeftOut {
    /// Its tag.
    pub tag: String,
    /// `repo:tag`.
    pub reference: String,
    /// The pool paths of the packages it needs that could not be used.
    pub packages: Vec<String>,
}

/// A list left out, and its entries that could not be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListLeftOut {
    /// `repo:tag`.
    pub reference: String,
    /// The tags of the entries left out.
    pub missing: Vec<String>,
}

/// A plan narrowed to what can be made.
#[derive(Debug, Clone)]
pub(crate) struct Narrowed {
    /// The plan without the images and lists left out (and without the failed packages).
    pub plan: Plan,
    /// The images left out, in plan order.
    pub images: Vec<ImageLeftOut>,
    /// The lists left out, in plan order.
    pub lists: Vec<ListLeftOut>,
}

/// `plan` without the images of `among` that need one of `failed`, and without the lists
/// that name one of those.
pub(crate) fn narrow(plan: &Plan, among: &[&ImagePlan], failed: &[&PackagePlan]) -> Narrowed {
    let images: Vec<ImageLeftOut> = plan
        .images
        .iter()
        .filter(|i| among.iter().any(|a| a.tag == i.tag))
        .filter_map(|i| {
            let packages: Vec<String> = failed
                .iter()
                .filter(|p| needs(i, p))
                .map(|p| p.file.clone())
                .collect();
            (!packages.is_empty()).then(|| ImageLeftOut {
                tag: i.tag.clone(),
                reference: i.reference.clone(),
                packages,
            })
        })
        .collect();
    let out: BTreeSet<&str> = images.iter().map(|i| i.tag.as_str()).collect();
    let mut kept = plan.clone();
    kept.images.retain(|i| !out.contains(i.tag.as_str()));
    kept.packages.retain(|p| !failed.contains(&p));
    let mut lists = Vec::new();
    kept.manifests.retain(|m| {
        let missing: Vec<String> = m
            .entries
            .iter()
            .filter(|e| out.contains(e.tag.as_str()))
            .map(|e| e.tag.clone())
            .collect();
        if missing.is_empty() {
            return true;
        }
        lists.push(ListLeftOut {
            reference: m.reference.clone(),
            missing,
        });
        false
    });
    Narrowed {
        plan: kept,
        images,
        lists,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::Host;
    use crate::config::Config;
    use crate::plan::{plan, Recipe, Role, Selection};

    fn whole() -> Plan {
        let recipe = Recipe {
            qus_version: "0.0.0-test".into(),
            template_sha256: "t".into(),
            entrypoint_sha256: "e".into(),
            epoch: 0,
        };
        plan(&Config::load(None).unwrap(), &Selection::default(), &recipe).unwrap()
    }

    fn package<'a>(p: &'a Plan, host: Host, role: &Role) -> &'a PackagePlan {
        p.packages
            .iter()
            .find(|x| x.host == host && &x.role == role)
            .unwrap()
    }

    fn qemu(source: &str) -> Role {
        Role::Qemu {
            source: source.into(),
        }
    }

    fn tags<T>(v: &[T], f: impl Fn(&T) -> &str) -> BTreeSet<String> {
        v.iter()
            .map(|x| f(x).rsplit(':').next().unwrap().to_string())
            .collect()
    }

    #[test]
    fn nothing_failed_leaves_the_plan_whole() {
        let p = whole();
        let all: Vec<&ImagePlan> = p.images.iter().collect();
        let n = narrow(&p, &all, &[]);
        assert!(n.images.is_empty() && n.lists.is_empty());
        assert_eq!(n.plan.images.len(), p.images.len());
        assert_eq!(n.plan.manifests.len(), p.manifests.len());
    }

    #[test]
    fn a_missing_qemu_package_leaves_out_its_emulator_images_and_every_list_over_them() {
        let p = whole();
        let all: Vec<&ImagePlan> = p.images.iter().collect();
        let failed = package(&p, Host::Ppc64le, &qemu("d11.1"));
        let n = narrow(&p, &all, &[failed]);
        let out = tags(&n.images, |i| &i.tag);
        // Every ppc64le d11.1 image but the register one, which has no emulator.
        assert!(out.contains("ppc64le-d11.1") && out.contains("ppc64le-d11.1-aarch64"));
        assert!(out.contains("ppc64le-d11.1-pkg"));
        assert!(!out.contains("ppc64le-d11.1-register"));
        assert!(
            out.iter().all(|t| t.starts_with("ppc64le-d11.1")),
            "{out:?}"
        );
        assert!(n.images.iter().all(|i| i.packages == [failed.file.clone()]));
        // The lists over them: d11.1's and the unversioned ones (ppc64le's newest is
        // d11.1); the register lists and the other sources' lists stay.
        let lists = tags(&n.lists, |l| &l.reference);
        for t in [
            "d11.1",
            "d11.1-pkg",
            "d11.1-aarch64",
            "latest",
            "pkg",
            "aarch64",
        ] {
            assert!(lists.contains(t), "{t}: {lists:?}");
        }
        for t in ["d11.1-register", "register", "d10.0", "d10.0-aarch64"] {
            assert!(n.plan.manifests.iter().any(|m| m.tag == t), "{t} kept");
        }
        let latest = n.lists.iter().find(|l| l.reference.ends_with(":latest"));
        assert_eq!(latest.unwrap().missing, ["ppc64le-d11.1"]);
        // What is kept is whole: no kept list names a left-out image.
        for m in &n.plan.manifests {
            for e in &m.entries {
                assert!(n.plan.image(&e.tag).is_some(), "{} names {}", m.tag, e.tag);
            }
        }
        assert!(!n.plan.packages.contains(failed));
        assert_eq!(n.plan.images.len() + n.images.len(), p.images.len());
    }

    #[test]
    fn a_missing_busybox_leaves_out_every_image_with_the_entrypoint_but_not_pkg() {
        let p = whole();
        let all: Vec<&ImagePlan> = p.images.iter().collect();
        let n = narrow(&p, &all, &[package(&p, Host::Loong64, &Role::Busybox)]);
        let out = tags(&n.images, |i| &i.tag);
        assert!(out.contains("loong64-d11.1-register") && out.contains("loong64-d11.1"));
        assert!(out.contains("loong64-d11.1-x86_64"));
        assert!(!out.contains("loong64-d11.1-pkg"));
        assert!(n.plan.manifests.iter().any(|m| m.tag == "pkg"));
        assert!(!n.plan.manifests.iter().any(|m| m.tag == "register"));
    }

    #[test]
    fn images_already_made_are_not_left_out() {
        let p = whole();
        let failed = package(&p, Host::S390x, &qemu("d11.1"));
        // Only amd64's images are made this run: s390x's are already where they go.
        let among: Vec<&ImagePlan> = p.images.iter().filter(|i| i.host == Host::Amd64).collect();
        let n = narrow(&p, &among, &[failed]);
        assert!(n.images.is_empty() && n.lists.is_empty());
        assert!(n.plan.image("s390x-d11.1").is_some());
    }
}
