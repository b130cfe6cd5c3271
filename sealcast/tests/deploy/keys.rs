//! Each container of the rendered compose file mounts only its own keys: an ingest its
//! signing key and certificate and its C2PA claim signer, the edges the edge key and certificate, the load
//! balancers the cookie key and their TLS pair, the edges and the load balancers the
//! playback key (private streams), the edges the archive's S3 key, all of them the root's
//! public key; the edges and the MoQ relays the relay tier's key, the relays the load
//! balancers' TLS pair and the CA's certificate (the edges that certificate too); only
//! `tools` the whole key directory (and the CA). The broker alone gets its password files. Private
//! files are read-only in the container and belong to the user it runs as.

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;

use crate::project::{files_under, Config, Project, Service};
use crate::{config, init, role, Findings, LB_ENTRYPOINT, PLAYBACK_KEY_ROLES};

/// Where the init script keeps what is secret or per node.
const STATE: [&str; 2] = ["deploy/state", "certs/generated"];

/// What `service` gets of [`STATE`] through its bind mounts, as project-relative paths:
/// each file, and each mounted directory with a trailing `/` (an empty one counts too).
fn state_mounted(config: &Config, service: &Service<'_>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (source, _, _) in service.binds().unwrap() {
        let Some(relative) = config.relative(&source) else {
            continue;
        };
        if !STATE.iter().any(|s| relative.starts_with(s)) {
            continue;
        }
        if source.is_dir() {
            out.insert(format!("{}/", relative.display()));
        }
        for file in files_under(&source) {
            if let Some(r) = config.relative(&file) {
                out.insert(r.display().to_string());
            }
        }
    }
    out
}

/// Everything of [`STATE`] under `dir` (project-relative), as [`state_mounted`] lists a
/// mount of it.
fn all_of(project: &Project, dir: &str) -> BTreeSet<String> {
    let root = project.dir().join(dir);
    let mut out: BTreeSet<String> = files_under(&root)
        .iter()
        .filter_map(|f| f.strip_prefix(project.dir()).ok())
        .map(|f| f.display().to_string())
        .collect();
    out.insert(format!("{dir}/"));
    out
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn each_container_mounts_only_its_own_keys() {
    let project = init();
    check_own_keys(&project).assert_none("keys each container mounts");
}

/// The findings of [`each_container_mounts_only_its_own_keys`] for `project`.
pub(crate) fn check_own_keys(project: &Project) -> Findings {
    let config = config(project);
    let mut f = Findings::default();
    let keys = "deploy/state/keys";

    let mut expected = std::collections::BTreeMap::new();
    for node in ["ingest1", "ingest2"] {
        expected.insert(
            node,
            set(&[
                &format!("{keys}/ingest/{node}.key"),
                &format!("{keys}/ingest/{node}.cert"),
                &format!("{keys}/ingest/{node}.c2pa.pem"),
                &format!("{keys}/ingest/{node}.c2pa.key"),
                &format!("{keys}/root.pub"),
            ]),
        );
    }
    let mut broadcast = set(&[
        "deploy/state/keys/root.pub",
        "deploy/state/keys/edge/broadcast.key",
        "deploy/state/keys/edge/broadcast.cert",
        "deploy/state/keys/playback-key",
    ]);
    // Revocations are public: every edge applies them at start.
    broadcast.extend(all_of(project, "deploy/state/keys/revocations"));
    // The archive's S3 key (read for an s3:// archive only).
    broadcast.extend(all_of(project, "deploy/state/s3"));
    // The relay tier's key, and the public CA the relays' certificate chains to.
    broadcast.extend(set(&["deploy/state/moq/key", "certs/generated/ca.pem"]));
    expected.insert("broadcast", broadcast);
    // The MoQ relays: the load balancers' TLS pair, the CA the other relays' chain to, and
    // the tier's key their gates check credentials with.
    for relay in ["relay-root1", "relay-root2", "relay"] {
        let mut files = all_of(project, "deploy/state/lb-tls");
        files.extend(set(&["certs/generated/ca.pem", "deploy/state/moq/key"]));
        expected.insert(relay, files);
    }
    for lb in ["lb1", "lb2"] {
        let mut files = set(&[
            "deploy/state/keys/cookie-key",
            "deploy/state/keys/playback-key",
            "deploy/state/keys/root.pub",
        ]);
        files.extend(all_of(project, "deploy/state/lb-tls"));
        expected.insert(lb, files);
    }
    let mut tools = all_of(project, keys);
    tools.extend(all_of(project, "certs/generated"));
    expected.insert("tools", tools);
    // Both brokers: the same users and ACLs, each its own persistence.
    for (broker, data) in [
        ("mosquitto", "deploy/state/mosquitto-data"),
        ("mosquitto2", "deploy/state/mosquitto2-data"),
    ] {
        let mut files = all_of(project, "deploy/state/mosquitto");
        files.extend(all_of(project, data));
        expected.insert(broker, files);
    }

    // The expectations name real files (a renamed key would otherwise pass unnoticed).
    for (name, files) in &expected {
        for file in files {
            f.check(project.dir().join(file).exists(), || {
                format!("{name}: expected {file}, which the init script did not make")
            });
        }
    }
    let lb_tls = all_of(project, "deploy/state/lb-tls");
    f.check(
        lb_tls
            == set(&[
                "deploy/state/lb-tls/",
                "deploy/state/lb-tls/server.key",
                "deploy/state/lb-tls/server.pem",
            ]),
        || format!("deploy/state/lb-tls holds {lb_tls:?}"),
    );

    for service in config.services() {
        let mounted = state_mounted(&config, &service);
        let want = expected
            .get(service.name.as_str())
            .cloned()
            .unwrap_or_default();
        f.check(mounted == want, || {
            format!(
                "{} mounts {:?} too many and {:?} too few",
                service.name,
                mounted.difference(&want).collect::<Vec<_>>(),
                want.difference(&mounted).collect::<Vec<_>>()
            )
        });
        // Read-only, but for the operator's tools (keys revoke, certs) and the broker's
        // data.
        for (source, target, read_only) in service.binds().unwrap() {
            let Some(relative) = config.relative(&source) else {
                continue;
            };
            let writable = service.name == "tools"
                || relative.starts_with("deploy/state/mosquitto-data")
                || relative.starts_with("deploy/state/mosquitto2-data");
            if STATE.iter().any(|s| relative.starts_with(s)) && !writable {
                f.check(read_only, || {
                    format!("{} mounts {target} writable", service.name)
                });
            }
        }
        // The private files it gets belong to the user it runs as (RUN_UID), so that it
        // can read them at mode 0600.
        let private: Vec<String> = mounted
            .iter()
            .filter(|p| !p.ends_with('/'))
            .filter(|p| {
                std::fs::metadata(project.dir().join(p)).is_ok_and(|m| m.mode() & 0o077 == 0)
            })
            .cloned()
            .collect();
        if private.is_empty() {
            continue;
        }
        let run = format!(
            "{}:{}",
            project.var("RUN_UID").unwrap(),
            project.var("RUN_GID").unwrap()
        );
        let env = service.environment();
        let runs_as =
            if service.words("entrypoint").as_deref() == Some(&[LB_ENTRYPOINT.to_owned()][..]) {
                // Root for keepalived; deploy/docker/lb.sh drops to RUN_UID:RUN_GID for
                // `sealcast lb`.
                format!(
                    "{}:{}",
                    env.get("RUN_UID").cloned().unwrap_or_default(),
                    env.get("RUN_GID").cloned().unwrap_or_default()
                )
            } else {
                service.text("user").unwrap_or_default()
            };
        f.check(runs_as == run, || {
            format!(
                "{} runs as {runs_as:?}, but its private files are RUN_UID:RUN_GID's ({run})",
                service.name
            )
        });
        let uid: u32 = project.var("RUN_UID").unwrap().parse().unwrap();
        for file in &private {
            let owner = std::fs::metadata(project.dir().join(file)).unwrap().uid();
            f.check(owner == uid, || {
                format!("{file} belongs to uid {owner}, not RUN_UID {uid}")
            });
        }
    }
    let lb_script = std::fs::read_to_string(project.dir().join("deploy/docker/lb.sh")).unwrap();
    f.check(
        lb_script.contains("setpriv --reuid=\"$run_uid\" --regid=\"$run_gid\"")
            && lb_script.contains("run_uid=${RUN_UID"),
        || "deploy/docker/lb.sh does not run `sealcast lb` as RUN_UID:RUN_GID".into(),
    );

    // The load balancers' TLS pair is the server's that `sealcast certs` made, never the
    // CA's key.
    let generated =
        |name: &str| std::fs::read(project.dir().join("certs/generated").join(name)).ok();
    let copy =
        |name: &str| std::fs::read(project.dir().join("deploy/state/lb-tls").join(name)).ok();
    f.check(generated("ca.key").is_some(), || {
        "certs/generated/ca.key is missing: the check below would mean nothing".into()
    });
    f.check(copy("server.key") != generated("ca.key"), || {
        "the load balancers' key is the CA's".into()
    });
    for name in ["server.pem", "server.key"] {
        f.check(
            copy(name).is_some() && copy(name) == generated(name),
            || format!("deploy/state/lb-tls/{name} is not certs/generated/{name}"),
        );
    }
    let lb = config.service("lb1").unwrap().environment();
    f.check(
        lb.get("SEALCAST_TLS_CERT").map(String::as_str) == Some("/etc/sealcast/tls/server.pem")
            && lb.get("SEALCAST_TLS_KEY").map(String::as_str)
                == Some("/etc/sealcast/tls/server.key")
            && !lb.contains_key("SEALCAST_CERTS_DIR"),
        || "lb1 does not take its TLS pair from /etc/sealcast/tls".into(),
    );
    f
}

/// Issue 45 item 16: every service whose role checks playback tokens has the playback key
/// the init script made, read-only, where its key directory (`SEALCAST_KEYS_DIR`) names
/// it; without it private streams were refused to everyone in the compose cluster.
#[test]
fn every_role_that_checks_playback_tokens_mounts_the_playback_key() {
    let project = init();
    check_playback_key(&project).assert_none("the playback key in compose");
}

/// The findings of [`every_role_that_checks_playback_tokens_mounts_the_playback_key`].
pub(crate) fn check_playback_key(project: &Project) -> Findings {
    let config = config(project);
    let image = crate::dockerfile::instructions(project.dir()).unwrap();
    let mut f = Findings::default();
    let key = project.dir().join("deploy/state/keys/playback-key");
    let text = std::fs::read_to_string(&key).unwrap_or_default();
    f.check(
        text.trim().len() == 64 && text.trim().chars().all(|c| c.is_ascii_hexdigit()),
        || "the init script made no playback key (64 hex digits) in deploy/state/keys".into(),
    );
    f.check(
        std::fs::metadata(&key).is_ok_and(|m| m.mode() & 0o077 == 0),
        || "deploy/state/keys/playback-key is readable by others than its owner".into(),
    );
    let mut seen = BTreeSet::new();
    for service in config.services() {
        let Some(role) = role(&service, &image) else {
            continue;
        };
        if !PLAYBACK_KEY_ROLES.iter().any(|(r, _)| *r == role) {
            continue;
        }
        seen.insert(role.clone());
        let Some(dir) = service.environment().get("SEALCAST_KEYS_DIR").cloned() else {
            f.fail(format!("{}: no SEALCAST_KEYS_DIR", service.name));
            continue;
        };
        let target = format!("{}/playback-key", dir.trim_end_matches('/'));
        let bind = service
            .binds()
            .unwrap()
            .into_iter()
            .find(|(_, t, _)| t.trim_end_matches('/') == target);
        match bind {
            None => f.fail(format!(
                "{} ({role}) has nothing at {target}: it refuses every private stream",
                service.name
            )),
            Some((source, _, read_only)) => {
                f.check(
                    config.relative(&source)
                        == Some(std::path::Path::new("deploy/state/keys/playback-key")),
                    || {
                        format!(
                            "{}: {target} is {}, not the init script's playback key",
                            service.name,
                            source.display()
                        )
                    },
                );
                f.check(read_only, || {
                    format!("{}: {target} is writable", service.name)
                });
            }
        }
    }
    for (role, why) in PLAYBACK_KEY_ROLES {
        f.check(seen.contains(role), || {
            format!("no compose service runs {role}, which needs the playback key ({why})")
        });
    }
    f
}

/// The check above sees a key mounted where it does not belong.
#[test]
fn a_foreign_key_in_a_mount_is_caught() {
    let project = init();
    let config = config(&project);
    let ingest1 = config.service("ingest1").unwrap();
    let before = state_mounted(&config, &ingest1);
    assert!(
        before.contains("deploy/state/keys/ingest/ingest1.key"),
        "{before:?}"
    );
    assert!(!before.iter().any(|p| p.contains("ingest2")), "{before:?}");
    // The same rendering, with ingest1's key directory mounted whole.
    let mut text = serde_yaml::to_string(&config.doc).unwrap();
    for dir in [&config.dir, &config.real_dir] {
        text = text.replace(
            &format!("{}/deploy/state/keys/ingest/ingest1.key", dir.display()),
            &format!("{}/deploy/state/keys/ingest", dir.display()),
        );
    }
    let widened = Config {
        doc: serde_yaml::from_str(&text).unwrap(),
        dir: config.dir.clone(),
        real_dir: config.real_dir.clone(),
    };
    let after = state_mounted(&widened, &widened.service("ingest1").unwrap());
    assert!(
        after.contains("deploy/state/keys/ingest/ingest2.key"),
        "ingest2's key through a widened mount was not seen: {after:?}"
    );
}
