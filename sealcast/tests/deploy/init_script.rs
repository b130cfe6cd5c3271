//! `scripts/init-cluster.sh`: what it writes, with which modes; a second run changes no
//! secret; under sudo the files go to the invoking user; with `SEALCAST_IMAGES=upstream`
//! (how every test here runs it) it touches no image.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::project::Project;
use crate::{bin, init, repo, Findings};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .with_context(|| path.display().to_string())
        .unwrap()
        .permissions()
        .mode()
        & 0o777
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                out.insert(path.strip_prefix(dir).unwrap().to_path_buf(), bytes);
            }
        }
    }
    out
}

#[test]
fn init_script_writes_secrets_keys_and_broker_files_and_keeps_them() {
    let mut init = init();
    let dir = init.dir().to_path_buf();
    let mut f = Findings::default();

    // .env: every secret compose needs, private, each its own.
    f.check(mode(&dir.join(".env")) == 0o600, || {
        format!(".env has mode {:o}, not 600", mode(&dir.join(".env")))
    });
    let secrets = [
        "MQTT_PASSWORD_INGEST1",
        "MQTT_PASSWORD_INGEST2",
        "MQTT_PASSWORD_BROADCAST",
        "MQTT_PASSWORD_LB",
        "MQTT_PASSWORD_ADMIN",
        "POSTGRES_PASSWORD",
        "GRAFANA_ADMIN_PASSWORD",
        "SEALCAST_PUSH_TOKEN",
    ];
    let mut seen = BTreeSet::new();
    for name in secrets {
        match init.env.get(name) {
            None => f.fail(format!(".env lacks {name}")),
            Some(v) => {
                f.check(v.len() >= 32, || {
                    format!("{name} is shorter than 32 characters")
                });
                f.check(seen.insert(v.clone()), || {
                    format!("{name} repeats another secret")
                });
            }
        }
    }
    for name in ["RUN_UID", "RUN_GID", "INGEST_NODES"] {
        f.check(init.env.contains_key(name), || format!(".env lacks {name}"));
    }
    for (name, value) in [
        ("INGEST_NODES", "ingest1 ingest2"),
        // The project name docker-compose 1.29 takes from .env (the file has no `name:`).
        ("COMPOSE_PROJECT_NAME", "sealcast"),
        // Upstream images: Grafana's can be had, so its profile is on.
        ("COMPOSE_PROFILES", "grafana"),
    ] {
        f.check(
            init.env.get(name).map(String::as_str) == Some(value),
            || format!("{name} is {:?}, not {value:?}", init.env.get(name)),
        );
    }
    // In upstream mode it names no image of its own.
    for name in init.env.keys().filter(|k| k.ends_with("_IMAGE")) {
        f.fail(format!(".env names {name} in upstream mode"));
    }
    f.check(
        std::fs::read(dir.join("dist/sealcast")).ok() == std::fs::read(bin()).ok(),
        || "dist/sealcast is not the sealcast it was given".into(),
    );
    f.check(!init.leaks(&init.stderr), || {
        "init-cluster.sh printed a secret".into()
    });

    // Keys: private files 0600, root.pub readable by the broadcast nodes' user.
    let keys = dir.join("deploy/state/keys");
    for (file, expected) in [
        ("root.key", 0o600),
        ("root.pub", 0o644),
        ("push-token", 0o600),
        ("cookie-key", 0o600),
        ("ingest/ingest1.key", 0o600),
        ("ingest/ingest1.cert", 0o644),
        ("ingest/ingest2.key", 0o600),
        ("ingest/ingest2.cert", 0o644),
        ("ingest/ingest1.c2pa.key", 0o600),
        ("ingest/ingest1.c2pa.pem", 0o644),
        ("provenance/ca.key", 0o600),
        ("provenance/ca.pem", 0o644),
        ("edge/broadcast.key", 0o600),
        ("edge/broadcast.cert", 0o644),
    ] {
        let path = keys.join(file);
        if !path.is_file() {
            f.fail(format!("deploy/state/keys/{file} is missing"));
            continue;
        }
        // A certificate is public; only check that it is not writable by others.
        let m = mode(&path);
        let ok = if file.ends_with(".cert") {
            m & 0o022 == 0
        } else {
            m == expected
        };
        f.check(ok, || {
            format!("deploy/state/keys/{file} has mode {m:o}, want {expected:o}")
        });
    }
    let token = std::fs::read_to_string(keys.join("push-token")).unwrap_or_default();
    f.check(
        Some(token.trim()) == init.env.get("SEALCAST_PUSH_TOKEN").map(String::as_str),
        || "deploy/state/keys/push-token differs from SEALCAST_PUSH_TOKEN in .env".into(),
    );
    f.check(mode(&dir.join("deploy/state")) == 0o700, || {
        "deploy/state is not 0700".into()
    });

    // The broker's files: hashed passwords per listener, installed ACLs, all 0600.
    let broker = dir.join("deploy/state/mosquitto");
    for (file, users) in [
        ("passwd-nodes", &["ingest1", "ingest2", "broadcast"][..]),
        ("passwd-control", &["lb", "admin"][..]),
    ] {
        let path = broker.join(file);
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let listed: Vec<&str> = text.lines().filter_map(|l| l.split(':').next()).collect();
        f.check(listed == users, || {
            format!("{file} lists {listed:?}, not {users:?}")
        });
        f.check(
            text.lines()
                .all(|l| l.split_once(':').is_some_and(|(_, h)| h.starts_with("$7$"))),
            || format!("{file} holds something other than PBKDF2 hashes"),
        );
        f.check(!init.leaks(&text), || {
            format!("{file} holds a plain password")
        });
        f.check(path.exists() && mode(&path) == 0o600, || {
            format!("{file} is not 0600")
        });
    }
    for acl in ["acl-nodes", "acl-control"] {
        let installed = std::fs::read(broker.join(acl)).unwrap_or_default();
        let source = std::fs::read(repo().join("deploy/mosquitto").join(acl)).unwrap();
        f.check(installed == source, || {
            format!("deploy/state/mosquitto/{acl} is not deploy/mosquitto/{acl}")
        });
        f.check(mode(&broker.join(acl)) == 0o600, || {
            format!("{acl} is not 0600")
        });
    }
    for data in ["mosquitto-data", "mosquitto2-data"] {
        f.check(dir.join("deploy/state").join(data).is_dir(), || {
            format!("deploy/state/{data} is missing")
        });
    }

    // The load balancer's certificate and the local CA.
    for file in ["ca.pem", "ca.key", "server.pem", "server.key"] {
        f.check(dir.join("certs/generated").join(file).is_file(), || {
            format!("certs/generated/{file} is missing")
        });
    }

    // Again: nothing secret changes.
    let env_before = init.env.clone();
    let keys_before = snapshot(&keys);
    let certs_before = snapshot(&dir.join("certs/generated"));
    let passwd_before = std::fs::read(broker.join("passwd-nodes")).unwrap_or_default();
    init.rerun(&[]).unwrap();
    for (name, value) in &env_before {
        f.check(init.env.get(name) == Some(value), || {
            format!("the second run changed {name} in .env")
        });
    }
    f.check(init.env.len() == env_before.len(), || {
        "the second run added variables to .env".into()
    });
    f.check(snapshot(&keys) == keys_before, || {
        "the second run changed deploy/state/keys/".into()
    });
    f.check(
        snapshot(&dir.join("certs/generated")) == certs_before,
        || "the second run changed certs/generated/".into(),
    );
    f.check(!init.stderr.contains("new in .env"), || {
        format!(
            "the second run reports new secrets:\n{}",
            init.redact(&init.stderr)
        )
    });
    // The password files are written anew (new salts) from the same passwords.
    f.check(
        std::fs::read(broker.join("passwd-nodes")).unwrap_or_default() != passwd_before,
        || "the second run did not rewrite passwd-nodes (expected: new salts)".into(),
    );
    f.check(!init.leaks(&init.stderr), || {
        "the second init-cluster.sh run printed a secret".into()
    });
    f.assert_none("scripts/init-cluster.sh");
}

// ----------------------------------------------------------------------------------------

/// Every file and directory under `dir` with its owner's uid and gid.
fn owners(dir: &Path) -> BTreeMap<PathBuf, (u32, u32)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            out.insert(path.clone(), (meta.uid(), meta.gid()));
            if meta.is_dir() {
                stack.push(path);
            }
        }
    }
    out
}

/// Run with sudo (as root, SUDO_UID/SUDO_GID set), everything the script writes belongs to
/// the user who ran sudo, who is also who the containers run as. Run by anyone else, the
/// files are theirs (and SUDO_UID, which only sudo's root shell may trust, is ignored).
#[test]
fn init_script_under_sudo_leaves_the_files_to_the_invoking_user() {
    use std::os::unix::fs::MetadataExt;
    let probe = tempfile::tempdir().unwrap();
    let root = testkit::running_as_root(probe.path()).unwrap();
    let me = std::fs::metadata(probe.path()).unwrap();
    let (uid, gid) = if root {
        (4242, 4343)
    } else {
        (me.uid(), me.gid())
    };
    let init = Project::init_with_env(&[("SUDO_UID", "4242"), ("SUDO_GID", "4343")]).unwrap();
    let dir = init.dir();
    let mut f = Findings::default();
    f.check(
        init.env.get("RUN_UID") == Some(&uid.to_string())
            && init.env.get("RUN_GID") == Some(&gid.to_string()),
        || {
            format!(
                "RUN_UID/RUN_GID are {:?}/{:?}, not {uid}/{gid}",
                init.env.get("RUN_UID"),
                init.env.get("RUN_GID")
            )
        },
    );
    let mut written = owners(&dir.join("deploy/state"));
    written.extend(owners(&dir.join("certs/generated")));
    let env = std::fs::metadata(dir.join(".env")).unwrap();
    written.insert(dir.join(".env"), (env.uid(), env.gid()));
    f.check(written.len() > 10, || {
        format!("only {} files written", written.len())
    });
    for (path, owner) in &written {
        f.check(*owner == (uid, gid), || {
            format!("{} belongs to {owner:?}, not {uid}:{gid}", path.display())
        });
    }
    f.assert_none("init-cluster.sh's files under sudo");
}

/// A `docker` that records its arguments and fails, first on `PATH`.
fn recording_docker(dir: &Path) -> (String, PathBuf) {
    let log = dir.join("docker.log");
    let docker = dir.join("docker");
    std::fs::write(
        &docker,
        format!("#!/bin/sh\necho \"$*\" >>'{}'\nexit 1\n", log.display()),
    )
    .unwrap();
    std::fs::set_permissions(&docker, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    (path, log)
}

/// With `SEALCAST_IMAGES=upstream` the script builds, pulls, runs and names no image: the
/// premise of every other test here, which must stay fast and leave the engine alone.
#[test]
fn init_script_in_upstream_mode_touches_no_image() {
    let fakes = tempfile::tempdir().unwrap();
    let (path, log) = recording_docker(fakes.path());
    let init = Project::init_with_env(&[("PATH", &path)]).unwrap();
    let calls = std::fs::read_to_string(&log).unwrap_or_default();
    let touching: Vec<&str> = calls
        .lines()
        .filter(|l| !l.starts_with("compose version"))
        .collect();
    assert!(
        touching.is_empty(),
        "init-cluster.sh ran docker with {touching:?} in upstream mode:\n{}",
        init.redact(&init.stderr)
    );
    assert!(
        !init.stderr.contains("images.sh") && !init.stderr.contains("making local images"),
        "init-cluster.sh made images in upstream mode:\n{}",
        init.redact(&init.stderr)
    );
    // The recording docker would have seen a call: the test can see one.
    let (_, probe_log) = recording_docker(fakes.path());
    let probe = std::process::Command::new(fakes.path().join("docker"))
        .args(["pull", "x"])
        .status()
        .unwrap();
    assert!(!probe.success());
    assert!(std::fs::read_to_string(probe_log)
        .unwrap()
        .contains("pull x"));
}
