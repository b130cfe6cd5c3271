//! The source tree's own rules, read off `Cargo.toml`, `Cargo.lock` and `cargo metadata`:
//! forks are in place and say when they go, unsafe code has one audited home, and the
//! crates are layered as `docs/architecture.md` draws them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace's root (this crate is `sealcast/`).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `[patch.crates-io]` entries of a manifest: crate name → path.
fn patches(manifest: &Path) -> BTreeMap<String, String> {
    let toml: toml::Table = read(manifest).parse().expect("a TOML manifest");
    let Some(patch) = toml
        .get("patch")
        .and_then(|p| p.get("crates-io"))
        .and_then(|p| p.as_table())
    else {
        return BTreeMap::new();
    };
    patch
        .iter()
        .map(|(name, spec)| {
            let path = spec
                .get("path")
                .and_then(|p| p.as_str())
                .unwrap_or_else(|| panic!("[patch] {name} is not a path"));
            (name.clone(), path.to_owned())
        })
        .collect()
}

/// A `[patch]` that no longer matches what the lock file resolves is only a warning from
/// cargo ("patch was not used"), and the build quietly uses the published crate with the
/// hole the fork closed. Every fork must be what the lock file resolves (a path package,
/// no `source`), no patch may be listed as unused, and each fork says why it exists and
/// what retires it.
#[test]
fn every_fork_is_in_use_and_says_what_retires_it() {
    let root = root();
    for (manifest, lock) in [
        (root.join("Cargo.toml"), root.join("Cargo.lock")),
        (root.join("fuzz/Cargo.toml"), root.join("fuzz/Cargo.lock")),
    ] {
        let patches = patches(&manifest);
        let lock_text = read(&lock);
        assert!(
            !lock_text.contains("[[patch.unused]]"),
            "{}: a [patch] is not used (cargo only warns): {}",
            lock.display(),
            lock_text
                .split("[[patch.unused]]")
                .skip(1)
                .map(|s| s.lines().take(3).collect::<Vec<_>>().join(" "))
                .collect::<Vec<_>>()
                .join("; ")
        );
        let lock_toml: toml::Table = lock_text.parse().expect("a TOML lock file");
        let packages = lock_toml
            .get("package")
            .and_then(|p| p.as_array())
            .expect("[[package]] entries");
        for (name, path) in &patches {
            let entries: Vec<_> = packages
                .iter()
                .filter(|p| p.get("name").and_then(|n| n.as_str()) == Some(name))
                .collect();
            assert!(
                !entries.is_empty(),
                "{}: {name} is patched but not in the lock file",
                lock.display()
            );
            for entry in entries {
                assert!(
                    entry.get("source").is_none(),
                    "{}: {name} resolves to {:?}, not the fork at {path}",
                    lock.display(),
                    entry.get("source")
                );
            }
            let dir = manifest.parent().expect("a manifest's folder").join(path);
            let fork = read(&dir.join("FORK.md"));
            assert!(
                fork.contains("## Exit condition"),
                "{}/FORK.md must say which upstream change retires the fork \
                 (a section '## Exit condition')",
                dir.display()
            );
        }
    }
    // The fuzz package patches the same forks the workspace does, no more, no fewer of those
    // its targets link.
    let ours = patches(&root.join("Cargo.toml"));
    for (name, path) in patches(&root.join("fuzz/Cargo.toml")) {
        assert_eq!(
            ours.get(&name).map(|p| format!("../{p}")),
            Some(path.clone()),
            "fuzz/Cargo.toml patches {name} with {path}, the workspace does not"
        );
    }
    // Nothing lies in vendor/ that no [patch] puts in place.
    for entry in std::fs::read_dir(root.join("vendor")).expect("vendor/") {
        let entry = entry.expect("a vendor/ entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        assert!(
            ours.get(&name) == Some(&format!("vendor/{name}")),
            "vendor/{name} is not put in place by the workspace's [patch.crates-io]"
        );
    }
}

/// Every `.rs` file of the workspace's own crates (not vendor/, not target/).
fn own_sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("a folder") {
        let path = entry.expect("an entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_dir() {
            if !matches!(name, "target" | "vendor" | ".git" | "node_modules") {
                own_sources(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

/// `unsafe_code` is forbidden in the workspace; the binary denies it (it cannot forbid it
/// and still allow one function) and allows it in exactly one place, the allocator call of
/// `sealcast/src/trim.rs`, whose `// SAFETY:` note says why it holds.
#[test]
fn unsafe_code_has_one_audited_home() {
    let root = root();
    let mut files = Vec::new();
    own_sources(&root, &mut files);
    // Spelt in two halves, so that this file does not count itself.
    let needle = concat!("allow(", "unsafe_code)");
    let allowed: Vec<_> = files
        .iter()
        .flat_map(|f| {
            read(f)
                .lines()
                .enumerate()
                .filter(|(_, l)| {
                    let l = l.trim_start();
                    !l.starts_with("//") && l.contains(needle)
                })
                .map(|(n, _)| format!("{}:{}", f.strip_prefix(&root).unwrap().display(), n + 1))
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(
        allowed.len(),
        1,
        "unsafe code is allowed only in sealcast/src/trim.rs: {allowed:?}"
    );
    assert!(
        allowed[0].starts_with("sealcast/src/trim.rs:"),
        "{allowed:?}"
    );
    assert!(
        read(&root.join("sealcast/src/trim.rs")).contains("// SAFETY:"),
        "the unsafe block says why it is sound"
    );

    let workspace: toml::Table = read(&root.join("Cargo.toml")).parse().unwrap();
    let lints = &workspace["workspace"]["lints"];
    assert_eq!(lints["rust"]["unsafe_code"].as_str(), Some("forbid"));
    let binary: toml::Table = read(&root.join("sealcast/Cargo.toml")).parse().unwrap();
    let mut expected = lints.clone();
    expected["rust"]["unsafe_code"] = toml::Value::String("deny".into());
    assert_eq!(
        binary["lints"], expected,
        "sealcast/Cargo.toml's [lints] are the workspace's, with unsafe_code denied"
    );
}

/// The crate layering of `docs/architecture.md`: `domain` at the bottom, shared libraries
/// above it, roles above those and never one another, the binary on top; `testkit` only
/// for tests (and the benchmarks' tools). A role never imports another role: same layer.
#[test]
fn crates_are_layered() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .current_dir(root())
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let packages = meta["packages"].as_array().unwrap();
    let ours: Vec<&str> = packages
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();

    let layer = |name: &str| match name {
        "domain" => 0,
        "container" | "certs" | "catalog" | "plumbing" | "archive" => 1,
        "api" | "intake" => 2,
        "ingest" | "broadcast" | "loadbalancer" | "source" => 3,
        "sealcast" => 4,
        // Tools beside the product: may use anything.
        "fuzzing" | "viewers" => 5,
        "testkit" => 6,
        other => panic!("{other}: a crate the layering does not know; place it here"),
    };
    for p in packages {
        let name = p["name"].as_str().unwrap();
        for d in p["dependencies"].as_array().unwrap() {
            let dep = d["name"].as_str().unwrap();
            if !ours.contains(&dep) {
                continue;
            }
            let dev = d["kind"].as_str() == Some("dev");
            if dep == "testkit" {
                assert!(
                    dev || name == "viewers",
                    "{name} depends on testkit outside its tests"
                );
                continue;
            }
            if dev {
                continue;
            }
            assert!(
                layer(dep) < layer(name) || (layer(name) == 5 && layer(dep) < 5),
                "{name} (layer {}) may not depend on {dep} (layer {})",
                layer(name),
                layer(dep)
            );
        }
    }
}
