//! What the Kubernetes manifests write and where from (issue 50 items 1 and 2), checked
//! as kustomize renders them:
//!
//! - No pod fills its node's disk: every volume any container writes is a volume claim or an
//!   `emptyDir` with a `sizeLimit`; and the archive's spool (`SEALCAST_ARCHIVE_SPOOL`) is
//!   below the limit of the volume the edges' data directory is on, so the spool drops what
//!   it cannot hold (counted, alerted on) before the kubelet evicts the pod.
//! - The archive is wired as docs/deployment.md says: its URL from the optional ConfigMap
//!   `sealcast-archive` (key `url`), the bucket's key as a file from the optional Secret
//!   `sealcast-s3` (key `credentials`), never through the environment or an argument; and
//!   this build's `sealcast broadcast --check-config` takes the file `secrets.sh
//!   --s3-credentials` puts in that Secret, and names the file when the Secret is missing.
//! - The Secret references the secrets.sh check reads: a required one must be made by
//!   default, an optional one by some option, and each mistake is caught.
//! - PostgreSQL runs the edges' role script from a ConfigMap mounted at
//!   `/docker-entrypoint-initdb.d` whose files are byte for byte compose's
//!   `deploy/docker/postgres/initdb.d/`; `components/offline-images` swaps the upstream
//!   broker and database images for `scripts/images.sh`'s stand-ins.
//! - The broker's init container, which rewrites the password files with
//!   `mosquitto_passwd -U` (a `tmpfile()` under `/tmp`), has a writable `/tmp`.
//! - Each check fails on rendered manifests with one thing broken.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use serde_yaml::Value;

use crate::kubernetes::{
    assert_catches, container_mut, documents, items, kind_of, name_of, render, run, secret_keys,
    secrets_sh, workload_mut, Mutation, Workload, OVERLAYS, S3_CREDENTIALS,
};
use crate::{bin, repo, Findings};

/// The ConfigMap and key the edges' archive URL comes from.
const ARCHIVE_CONFIG: (&str, &str) = ("sealcast-archive", "url");
/// The Secret and key the bucket's credentials file comes from.
const S3_SECRET: (&str, &str) = ("sealcast-s3", "credentials");
/// Variables that would carry the bucket's key itself (the file is the way here).
const KEY_VARIABLES: [&str; 2] = ["SEALCAST_S3_ACCESS_KEY_ID", "SEALCAST_S3_SECRET_ACCESS_KEY"];
/// The sealcast image's data directory (the `Dockerfile`'s `SEALCAST_DATA_DIR`), where
/// the recordings directory (the spool) and a directory archive are by default.
const DATA_DIR: &str = "/var/lib/sealcast";
/// Compose's copy of PostgreSQL's init scripts.
const INITDB: &str = "deploy/docker/postgres/initdb.d";

/// A Kubernetes quantity in bytes: `5Gi`, `64Mi`, `500M`, `1024`. The spool's size is read
/// this way too: sealcast reads `4Gi` as Kubernetes does (powers of 1024), and
/// [`the_edges_read_the_bucket_key_secrets_sh_makes`] has the binary accept the manifest's.
fn quantity_bytes(text: &str) -> Option<u64> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    let factor: u64 = match unit {
        "" => 1,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(factor)
}

/// The broadcast pods' storage and archive wiring.
fn check_edge_storage(docs: &[Value]) -> Findings {
    let mut f = Findings::default();
    let edge = match Workload::find(docs, "broadcast") {
        Ok(w) => w,
        Err(e) => {
            f.fail(format!("{e:#}"));
            return f;
        }
    };
    let volume =
        |name: &str| items(&edge.pod["volumes"]).find(|v| v["name"].as_str() == Some(name));
    // The limit of the volume the data directory is on (check_bounded_volumes: every
    // written volume has one).
    let data_limit = items(&edge.container["volumeMounts"])
        .filter(|m| m["readOnly"].as_bool() != Some(true))
        .filter(|m| Path::new(DATA_DIR).starts_with(m["mountPath"].as_str().unwrap_or("-")))
        .filter_map(|m| volume(m["name"].as_str().unwrap_or_default()))
        .find_map(|v| v["emptyDir"]["sizeLimit"].as_str().and_then(quantity_bytes));
    let env = edge.container["env"].clone();
    let var = |name: &str| {
        items(&env)
            .find(|v| v["name"].as_str() == Some(name))
            .cloned()
    };
    match (
        var("SEALCAST_ARCHIVE_SPOOL").and_then(|v| v["value"].as_str().and_then(quantity_bytes)),
        data_limit,
    ) {
        (Some(spool), Some(limit)) => f.check(spool < limit, || {
            format!("broadcast: SEALCAST_ARCHIVE_SPOOL ({spool} bytes) is not below the sizeLimit of the data directory's volume ({limit} bytes): the pod would be evicted before its spool drops anything")
        }),
        (None, _) => f.fail("broadcast: no SEALCAST_ARCHIVE_SPOOL (a literal size in Ki, Mi, Gi or Ti) bounds the spool below its volume"),
        (_, None) => f.fail(format!("broadcast: no writable volume with a sizeLimit holds the data directory {DATA_DIR}")),
    }
    // The archive's URL: from the optional ConfigMap, never a literal of the base.
    match var("SEALCAST_ARCHIVE") {
        Some(v) => {
            let r = &v["valueFrom"]["configMapKeyRef"];
            f.check(
                (r["name"].as_str(), r["key"].as_str())
                    == (Some(ARCHIVE_CONFIG.0), Some(ARCHIVE_CONFIG.1))
                    && r["optional"].as_bool() == Some(true),
                || {
                    format!(
                        "broadcast: SEALCAST_ARCHIVE is not the optional ConfigMap {}'s {}: {v:?}",
                        ARCHIVE_CONFIG.0, ARCHIVE_CONFIG.1
                    )
                },
            );
        }
        None => f.fail("broadcast: no SEALCAST_ARCHIVE (from the ConfigMap sealcast-archive)"),
    }
    // The bucket's key: a file from the optional Secret, never a variable or an argument.
    for name in KEY_VARIABLES {
        f.check(var(name).is_none(), || {
            format!(
                "broadcast: {name} is in the environment; the key goes in the file from Secret {}",
                S3_SECRET.0
            )
        });
    }
    let args: Vec<&str> = items(&edge.container["args"])
        .chain(items(&edge.container["command"]))
        .filter_map(Value::as_str)
        .collect();
    f.check(
        !args
            .iter()
            .any(|a| a.contains("archive") || a.contains("s3")),
        || format!("broadcast: the archive is named on the command line: {args:?}"),
    );
    let Some(file) =
        var("SEALCAST_S3_CREDENTIALS_FILE").and_then(|v| v["value"].as_str().map(str::to_owned))
    else {
        f.fail("broadcast: no SEALCAST_S3_CREDENTIALS_FILE (the file from Secret sealcast-s3)");
        return f;
    };
    let from_secret = items(&edge.container["volumeMounts"]).any(|m| {
        let at = m["mountPath"]
            .as_str()
            .unwrap_or_default()
            .trim_end_matches('/');
        let Some(v) = volume(m["name"].as_str().unwrap_or_default()) else {
            return false;
        };
        let secret = &v["secret"];
        secret["secretName"].as_str() == Some(S3_SECRET.0)
            && secret["optional"].as_bool() == Some(true)
            && m["readOnly"].as_bool() == Some(true)
            && items(&secret["items"]).any(|i| {
                i["key"].as_str() == Some(S3_SECRET.1)
                    && i["path"].as_str().map(|p| format!("{at}/{p}")) == Some(file.clone())
            })
    });
    f.check(from_secret, || {
        format!("broadcast: SEALCAST_S3_CREDENTIALS_FILE ({file}) is not key {} of the optional Secret {} mounted read-only", S3_SECRET.1, S3_SECRET.0)
    });
    f
}

/// Every volume any container writes (not `readOnly`) is bounded: a volume claim (its
/// size) or an `emptyDir` with a `sizeLimit`, so that no pod fills its node's disk and gets
/// the node's other pods evicted.
fn check_bounded_volumes(docs: &[Value]) -> Findings {
    let mut f = Findings::default();
    for doc in docs
        .iter()
        .filter(|d| matches!(kind_of(d), "Deployment" | "StatefulSet"))
    {
        let workload = name_of(doc);
        let pod = &doc["spec"]["template"]["spec"];
        let claims: BTreeSet<&str> = items(&doc["spec"]["volumeClaimTemplates"])
            .filter_map(|c| c["metadata"]["name"].as_str())
            .collect();
        for container in items(&pod["containers"]).chain(items(&pod["initContainers"])) {
            let who = container["name"].as_str().unwrap_or_default();
            for mount in items(&container["volumeMounts"]) {
                if mount["readOnly"].as_bool() == Some(true) {
                    continue;
                }
                let name = mount["name"].as_str().unwrap_or_default();
                let path = mount["mountPath"].as_str().unwrap_or_default();
                if claims.contains(name) {
                    continue;
                }
                let limit = items(&pod["volumes"])
                    .find(|v| v["name"].as_str() == Some(name))
                    .and_then(|v| v["emptyDir"]["sizeLimit"].as_str())
                    .and_then(quantity_bytes);
                f.check(limit.is_some(), || {
                    format!("{workload}: {who} writes {path} on volume {name}, which is neither a volume claim nor an emptyDir with a sizeLimit: it can fill the node's disk")
                });
            }
        }
    }
    f
}

/// PostgreSQL's `/docker-entrypoint-initdb.d`: a ConfigMap whose files are `initdb`'s,
/// byte for byte.
fn check_initdb(docs: &[Value], initdb: &Path) -> Findings {
    let mut f = Findings::default();
    let postgres = match Workload::find(docs, "postgres") {
        Ok(w) => w,
        Err(e) => {
            f.fail(format!("{e:#}"));
            return f;
        }
    };
    let mounted = items(&postgres.container["volumeMounts"]).find(|m| {
        m["mountPath"].as_str().map(|p| p.trim_end_matches('/'))
            == Some("/docker-entrypoint-initdb.d")
    });
    let Some(mount) = mounted else {
        f.fail("postgres: nothing is mounted at /docker-entrypoint-initdb.d: no edge role is made");
        return f;
    };
    let config_map = items(&postgres.pod["volumes"])
        .find(|v| v["name"] == mount["name"])
        .and_then(|v| v["configMap"]["name"].as_str());
    let Some(config_map) = config_map else {
        f.fail("postgres: /docker-entrypoint-initdb.d is not a ConfigMap's volume");
        return f;
    };
    let Some(doc) = docs
        .iter()
        .find(|d| kind_of(d) == "ConfigMap" && name_of(d) == config_map)
    else {
        f.fail(format!("postgres: ConfigMap {config_map} is not rendered"));
        return f;
    };
    let rendered: BTreeMap<String, String> = doc["data"]
        .as_mapping()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), v.as_str()?.to_owned())))
        .collect();
    let mut compose = BTreeSet::new();
    for entry in std::fs::read_dir(initdb).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(&path).unwrap();
        match rendered.get(&name) {
            None => f.fail(format!("postgres: {name} of {INITDB} is missing from ConfigMap {config_map}")),
            Some(text) => f.check(text.as_bytes() == bytes, || {
                format!("postgres: {name} in ConfigMap {config_map} differs from {INITDB}/{name} (deploy/kubernetes/base/postgres/initdb.d/ is its copy)")
            }),
        }
        compose.insert(name);
    }
    for name in rendered.keys().filter(|n| !compose.contains(*n)) {
        f.fail(format!(
            "postgres: ConfigMap {config_map} has {name}, which {INITDB} does not"
        ));
    }
    f
}

/// The broker's init container can write `/tmp` (mosquitto_passwd -U).
fn check_broker_tmp(docs: &[Value]) -> Findings {
    let mut f = Findings::default();
    let broker = match Workload::find(docs, "mosquitto") {
        Ok(w) => w,
        Err(e) => {
            f.fail(format!("{e:#}"));
            return f;
        }
    };
    for init in items(&broker.pod["initContainers"]) {
        let script = items(&init["command"])
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" ");
        if !script.contains("mosquitto_passwd") {
            continue;
        }
        let read_only_root =
            init["securityContext"]["readOnlyRootFilesystem"].as_bool() == Some(true);
        let tmp = items(&init["volumeMounts"]).any(|m| {
            m["mountPath"].as_str().map(|p| p.trim_end_matches('/')) == Some("/tmp")
                && m["readOnly"].as_bool() != Some(true)
        });
        f.check(!read_only_root || tmp, || {
            format!(
                "mosquitto: init container {} runs mosquitto_passwd on a read-only root without a writable /tmp (its tmpfile() fails: \"Unable to open temporary file\")",
                init["name"].as_str().unwrap_or_default()
            )
        });
    }
    f
}

fn check_storage(docs: &[Value]) -> Vec<String> {
    let mut found = check_bounded_volumes(docs).0;
    found.extend(check_edge_storage(docs).0);
    found.extend(check_initdb(docs, &repo().join(INITDB)).0);
    found.extend(check_broker_tmp(docs).0);
    found
}

#[test]
fn kubernetes_edges_are_bounded_and_archive_where_the_operator_says() {
    let mut f = Findings::default();
    for (dir, _) in OVERLAYS {
        let (_, docs) = render(dir).unwrap();
        for finding in check_storage(&docs) {
            f.fail(format!("{dir}: {finding}"));
        }
    }
    f.assert_none("the edges' volumes and archive, PostgreSQL's init script, the broker's /tmp");
}

fn edge_env_mut<'a>(docs: &'a mut [Value], name: &str) -> &'a mut Value {
    container_mut(docs, "broadcast")["env"]
        .as_sequence_mut()
        .unwrap()
        .iter_mut()
        .find(|v| v["name"].as_str() == Some(name))
        .unwrap()
}

fn volume_mut<'a>(docs: &'a mut [Value], role: &str, name: &str) -> &'a mut Value {
    workload_mut(docs, role)["spec"]["template"]["spec"]["volumes"]
        .as_sequence_mut()
        .unwrap()
        .iter_mut()
        .find(|v| v["name"].as_str() == Some(name))
        .unwrap()
}

const BREAKAGES: [Mutation; 11] = [
    (
        "the edges' data volume unbounded",
        |docs| {
            volume_mut(docs, "broadcast", "data")["emptyDir"] = serde_yaml::from_str("{}").unwrap()
        },
        "broadcast: broadcast writes /var/lib/sealcast on volume data, which is neither",
    ),
    (
        "the edges' /tmp unbounded",
        |docs| {
            volume_mut(docs, "broadcast", "tmp")["emptyDir"] = serde_yaml::from_str("{}").unwrap()
        },
        "broadcast: broadcast writes /tmp on volume tmp, which is neither",
    ),
    (
        "an ingest's data volume unbounded",
        |docs| volume_mut(docs, "ingest", "data")["emptyDir"] = serde_yaml::from_str("{}").unwrap(),
        "ingest: ingest writes /var/lib/sealcast on volume data, which is neither",
    ),
    (
        "the broker's password files on an unbounded volume",
        |docs| {
            volume_mut(docs, "mosquitto", "broker-files")["emptyDir"] =
                serde_yaml::from_str("{medium: Memory}").unwrap()
        },
        "mosquitto: broker-files writes /mosquitto/secrets on volume broker-files",
    ),
    (
        "a spool larger than its volume",
        |docs| edge_env_mut(docs, "SEALCAST_ARCHIVE_SPOOL")["value"] = Value::String("6G".into()),
        "is not below the sizeLimit of the data directory's volume",
    ),
    (
        "the archive URL required",
        |docs| {
            edge_env_mut(docs, "SEALCAST_ARCHIVE")["valueFrom"]["configMapKeyRef"]["optional"] =
                Value::Bool(false)
        },
        "SEALCAST_ARCHIVE is not the optional ConfigMap sealcast-archive's url",
    ),
    (
        "the secret key in the environment",
        |docs| {
            container_mut(docs, "broadcast")["env"].as_sequence_mut().unwrap().push(
                serde_yaml::from_str(
                    "{name: SEALCAST_S3_SECRET_ACCESS_KEY, valueFrom: {secretKeyRef: {name: sealcast-s3, key: secret, optional: true}}}",
                )
                .unwrap(),
            )
        },
        "SEALCAST_S3_SECRET_ACCESS_KEY is in the environment",
    ),
    (
        "the credentials file where no Secret is mounted",
        |docs| {
            edge_env_mut(docs, "SEALCAST_S3_CREDENTIALS_FILE")["value"] =
                Value::String("/var/lib/sealcast/s3".into())
        },
        "is not key credentials of the optional Secret sealcast-s3",
    ),
    (
        "PostgreSQL's init script edited in its Kubernetes copy",
        |docs| {
            let map = docs
                .iter_mut()
                .find(|d| kind_of(d) == "ConfigMap" && name_of(d).starts_with("postgres-initdb"))
                .unwrap();
            let data = map["data"].as_mapping_mut().unwrap();
            let (_, text) = data.iter_mut().next().unwrap();
            *text = Value::String(format!("{}\n", text.as_str().unwrap()));
        },
        "differs from deploy/docker/postgres/initdb.d/",
    ),
    (
        "PostgreSQL without its init script",
        |docs| {
            container_mut(docs, "postgres")["volumeMounts"]
                .as_sequence_mut()
                .unwrap()
                .retain(|m| m["mountPath"].as_str() != Some("/docker-entrypoint-initdb.d"))
        },
        "nothing is mounted at /docker-entrypoint-initdb.d",
    ),
    (
        "the broker's init container without /tmp",
        |docs| {
            workload_mut(docs, "mosquitto")["spec"]["template"]["spec"]["initContainers"][0]
                ["volumeMounts"]
                .as_sequence_mut()
                .unwrap()
                .retain(|m| m["mountPath"].as_str() != Some("/tmp"))
        },
        "without a writable /tmp",
    ),
];

#[test]
fn kubernetes_storage_checks_catch_drift() {
    let (_, docs) = render(OVERLAYS[1].0).unwrap();
    assert_catches(&docs, &BREAKAGES, check_storage);
    // A script compose has and the copy lacks.
    let initdb = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(repo().join(INITDB)).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, initdb.path().join(path.file_name().unwrap())).unwrap();
    }
    std::fs::write(initdb.path().join("zz-later.sh"), "#!/bin/bash\n").unwrap();
    let found = check_initdb(&docs, initdb.path()).0;
    assert!(
        found
            .iter()
            .any(|f| f.contains("zz-later.sh of deploy/docker/postgres/initdb.d is missing")),
        "{found:?}"
    );
}

/// The secrets.sh check's reading of references: each kind of mistake is a finding.
#[test]
fn kubernetes_secret_references_are_judged_by_whether_they_are_optional() {
    let (_, docs) = render(OVERLAYS[1].0).unwrap();
    let state = tempfile::tempdir().unwrap();
    let given = tempfile::tempdir().unwrap();
    let s3 = given.path().join("s3");
    std::fs::write(&s3, S3_CREDENTIALS).unwrap();
    let plain = secret_keys(
        &run(secrets_sh(state.path()), "secrets.sh").unwrap(),
        "sealcast",
    );
    let mut command = secrets_sh(state.path());
    command.arg("--s3-credentials").arg(&s3);
    let every = secret_keys(
        &run(command, "secrets.sh --s3-credentials").unwrap(),
        "sealcast",
    );
    let check = |docs: &[Value]| crate::kubernetes::check_secret_references(docs, &plain, &every).0;
    let breakages: [Mutation; 3] = [
        (
            "the S3 Secret required",
            |docs| volume_mut(docs, "broadcast", "s3")["secret"]["optional"] = Value::Bool(false),
            "broadcast names Secret sealcast-s3, which secrets.sh (without options) does not make",
        ),
        (
            "an optional Secret nothing makes",
            |docs| {
                volume_mut(docs, "broadcast", "s3")["secret"]["secretName"] =
                    Value::String("sealcast-s4".into())
            },
            "broadcast names Secret sealcast-s4, which secrets.sh with every option does not make",
        ),
        (
            "an optional key the Secret lacks",
            |docs| {
                volume_mut(docs, "broadcast", "s3")["secret"]["items"][0]["key"] =
                    Value::String("key".into())
            },
            "broadcast names sealcast-s3/key, which secrets.sh with every option does not make",
        ),
    ];
    assert_catches(&docs, &breakages, check);
}

/// `--s3-credentials` refuses a file the edges could not read, without echoing it; the
/// file it puts in `sealcast-s3` is one this build's `sealcast broadcast` takes (with the
/// manifest's spool size), and without it an S3 archive is refused naming the file.
#[test]
fn the_edges_read_the_bucket_key_secrets_sh_makes() {
    let state = tempfile::tempdir().unwrap();
    let given = tempfile::tempdir().unwrap();
    let bad = given.path().join("bad");
    std::fs::write(
        &bad,
        "access_key_id=GKonly\nsecretaccesskey=not-a-name-s3cr3t\n",
    )
    .unwrap();
    let mut command = secrets_sh(state.path());
    command.arg("--s3-credentials").arg(&bad);
    let out =
        testkit::process::run_with_deadline(command, std::time::Duration::from_secs(120)).unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "secrets.sh took a file without secret_access_key"
    );
    assert!(said.contains("no secret_access_key=... line"), "{said}");
    assert!(!said.contains("s3cr3t") && out.stdout.is_empty(), "{said}");

    let good = given.path().join("good");
    std::fs::write(&good, S3_CREDENTIALS).unwrap();
    let mut command = secrets_sh(state.path());
    command.arg("--s3-credentials").arg(&good);
    let text = run(command, "secrets.sh --s3-credentials").unwrap();
    let secret = documents(&text)
        .unwrap()
        .into_iter()
        .find(|d| name_of(d) == S3_SECRET.0)
        .expect("secrets.sh --s3-credentials prints sealcast-s3");
    let file = base64::engine::general_purpose::STANDARD
        .decode(secret["data"][S3_SECRET.1].as_str().unwrap())
        .unwrap();
    assert_eq!(file, S3_CREDENTIALS.as_bytes());
    // Mounted where the manifest says, and read by the real binary.
    let (_, docs) = render(OVERLAYS[1].0).unwrap();
    let edge = Workload::find(&docs, "broadcast").unwrap();
    let env = edge.container["env"].clone();
    let literal = |name: &str| {
        items(&env)
            .find(|v| v["name"].as_str() == Some(name))
            .and_then(|v| v["value"].as_str())
            .unwrap()
            .to_owned()
    };
    let path = literal("SEALCAST_S3_CREDENTIALS_FILE");
    let spool = literal("SEALCAST_ARCHIVE_SPOOL");
    let root = tempfile::tempdir().unwrap();
    let mounted = root.path().join(path.trim_start_matches('/'));
    let check = |credentials: &Path| {
        let mut command = Command::new(bin());
        command
            .env_clear()
            .args(["broadcast", "--check-config"])
            .env("SEALCAST_DATA_DIR", root.path())
            .env(
                "SEALCAST_ARCHIVE",
                "s3://recordings?endpoint=https://minio.example.net:9000&region=us-east-1",
            )
            .env("SEALCAST_S3_CREDENTIALS_FILE", credentials)
            .env("SEALCAST_ARCHIVE_SPOOL", &spool);
        let out = testkit::process::run_with_deadline(command, std::time::Duration::from_secs(60))
            .unwrap();
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    let missing = check(&mounted);
    assert!(
        missing.contains("SEALCAST_S3_CREDENTIALS_FILE"),
        "an S3 archive without the Secret's file is not refused by name: {missing}"
    );
    std::fs::create_dir_all(mounted.parent().unwrap()).unwrap();
    std::fs::write(&mounted, &file).unwrap();
    let read = check(&mounted);
    assert!(
        !read.contains("SEALCAST_S3_CREDENTIALS_FILE") && !read.contains("SEALCAST_ARCHIVE"),
        "the file secrets.sh made, the URL or the manifest's spool ({spool}) is refused: {read}"
    );
    assert!(
        !read.contains("s3-key-only-in-the-secret")
            && !missing.contains("s3-key-only-in-the-secret")
    );
}

/// `components/offline-images` runs `scripts/images.sh`'s stand-ins for the broker and
/// the database, and leaves sealcast's image alone.
#[test]
fn kubernetes_offline_images_swap_the_upstream_broker_and_database() {
    let docs = crate::kubernetes_policy::render_with("overlays/dev", "offline-images");
    let images = |role: &str| -> BTreeSet<String> {
        let w = Workload::find(&docs, role).unwrap();
        items(&w.pod["containers"])
            .chain(items(&w.pod["initContainers"]))
            .filter_map(|c| c["image"].as_str().map(str::to_owned))
            .collect()
    };
    assert_eq!(
        images("mosquitto"),
        BTreeSet::from(["sealcast-mosquitto:local".to_owned()])
    );
    assert_eq!(
        images("postgres"),
        BTreeSet::from(["sealcast-postgres:local".to_owned()])
    );
    assert_eq!(
        images("broadcast"),
        BTreeSet::from(["sealcast-runtime:local".to_owned()])
    );
    // The names scripts/images.sh gives them.
    let script = std::fs::read_to_string(repo().join("scripts/images.sh")).unwrap();
    for name in ["sealcast-mosquitto", "sealcast-postgres"] {
        assert!(
            script.contains(&format!("build {name} ")),
            "scripts/images.sh makes no {name}"
        );
    }
}
