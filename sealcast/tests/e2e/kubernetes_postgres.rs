//! The PostgreSQL image as `deploy/kubernetes/base/postgres.yaml` runs it (issue 50 item 8):
//! never root. The compose trial's image (made from Debian's packages, or the official one)
//! is started the way that manifest starts it, read from the manifest itself: its pod's
//! user and group, a read-only root filesystem, every capability dropped, no privilege
//! escalation, and its data volume and `emptyDir`s as `fsGroup` leaves them (root's,
//! writable by the pod's group only). It must make its cluster, the edge role with it,
//! and answer `pg_isready`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{ensure, Context};
use serde_yaml::Value;
use testkit::docker::docker;
use tokio::time::Instant;

/// How long initdb and the first start may take.
const READY_WITHIN: Duration = Duration::from_secs(90);

/// The pod's (user, group) and the container's `emptyDir` mount paths, from the manifest.
fn manifest() -> anyhow::Result<(i64, i64, Vec<String>)> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/kubernetes/base/postgres.yaml");
    let text = std::fs::read_to_string(&path)?;
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let doc = <Value as serde::Deserialize>::deserialize(doc)?;
        if doc["kind"].as_str() != Some("StatefulSet") {
            continue;
        }
        let pod = &doc["spec"]["template"]["spec"];
        let user = pod["securityContext"]["runAsUser"]
            .as_i64()
            .context("the postgres pod names no runAsUser")?;
        let group = pod["securityContext"]["fsGroup"]
            .as_i64()
            .context("the postgres pod names no fsGroup")?;
        let empty: Vec<&str> = pod["volumes"]
            .as_sequence()
            .into_iter()
            .flatten()
            .filter(|v| !v["emptyDir"].is_null())
            .filter_map(|v| v["name"].as_str())
            .collect();
        let container = &pod["containers"][0];
        let sc = &container["securityContext"];
        ensure!(
            sc["readOnlyRootFilesystem"].as_bool() == Some(true)
                && sc["allowPrivilegeEscalation"].as_bool() == Some(false),
            "the postgres container is not read-only without escalation: {sc:?}"
        );
        let empty_dirs = container["volumeMounts"]
            .as_sequence()
            .into_iter()
            .flatten()
            .filter(|m| m["name"].as_str().is_some_and(|n| empty.contains(&n)))
            .filter_map(|m| m["mountPath"].as_str().map(str::to_owned))
            .collect();
        return Ok((user, group, empty_dirs));
    }
    anyhow::bail!("{} has no StatefulSet", path.display())
}

/// Docker volumes as `fsGroup` leaves a pod's volumes (the data volume and every
/// `emptyDir`): root's, group `group`, writable by the group, set-group-id. (`--tmpfs`
/// cannot say so: Docker keeps the image directory's owner and mode.)
async fn fs_group_volume(image: &str, name: &str, group: i64) -> anyhow::Result<()> {
    docker(&["volume", "create", name]).await?;
    docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--user",
        "0",
        "-v",
        &format!("{name}:/d"),
        "--entrypoint",
        "sh",
        image,
        "-c",
        &format!("chown 0:{group} /d && chmod 2770 /d"),
    ])
    .await?;
    Ok(())
}

/// Starts `image` as the manifest does, waits for `pg_isready`, checks the edge role, and
/// removes the container and its volumes.
pub(crate) async fn runs_as_kubernetes_runs_it(image: &str) -> anyhow::Result<()> {
    let (user, group, empty_dirs) = manifest()?;
    ensure!(user != 0, "the manifest runs postgres as root");
    let name = format!("sealcast-k8s-postgres-{}", std::process::id());
    let mounts: Vec<(String, String)> = empty_dirs
        .iter()
        .chain(std::iter::once(&"/var/lib/postgresql/data".to_owned()))
        .enumerate()
        .map(|(i, path)| (format!("{name}-{i}"), path.clone()))
        .collect();
    let outcome = async {
        let mut args: Vec<String> = [
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            "none",
            "--read-only",
            "--cap-drop",
            "ALL",
            "--security-opt",
            "no-new-privileges",
            "--user",
            &format!("{user}:{group}"),
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        for (volume, path) in &mounts {
            fs_group_volume(image, volume, group).await?;
            args.extend(["-v".to_owned(), format!("{volume}:{path}")]);
        }
        for env in [
            "POSTGRES_USER=sealcast",
            "POSTGRES_DB=sealcast",
            "POSTGRES_PASSWORD=k8s-postgres-check-owner",
            "POSTGRES_EDGE_PASSWORD=k8s-postgres-check-edge",
            "PGDATA=/var/lib/postgresql/data/pgdata",
        ] {
            args.extend(["-e".to_owned(), env.to_owned()]);
        }
        args.extend([image.to_owned(), "postgres".to_owned()]);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        docker(&refs)
            .await
            .context("starting postgres as Kubernetes runs it")?;
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            let ready = docker(&[
                "exec",
                &name,
                "pg_isready",
                "-h",
                "127.0.0.1",
                "-U",
                "sealcast",
                "-d",
                "sealcast",
            ])
            .await;
            if ready.is_ok() {
                break;
            }
            ensure!(
                Instant::now() < deadline,
                "not ready within {READY_WITHIN:?}: {ready:?}; its log: {}",
                docker(&["logs", &name]).await.unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let whoami = docker(&["exec", &name, "id", "-u"]).await?;
        ensure!(
            whoami.trim() == user.to_string(),
            "runs as {whoami}, not {user}"
        );
        // The edge role's script is copied into scripts/images.sh's image; the official
        // one gets it from a mount (compose's, or the manifests' generated ConfigMap), which
        // is not here.
        if !image.starts_with("sealcast-postgres") {
            return Ok(());
        }
        let roles = docker(&[
            "exec",
            &name,
            "psql",
            "-h",
            "/var/run/postgresql",
            "-U",
            "sealcast",
            "-d",
            "sealcast",
            "-Atc",
            "SELECT rolname FROM pg_roles WHERE rolname = 'sealcast_edge'",
        ])
        .await?;
        ensure!(
            roles.trim() == "sealcast_edge",
            "the edge role was not made: {roles:?}"
        );
        Ok(())
    }
    .await;
    let _ = docker(&["rm", "-f", &name]).await;
    for (volume, _) in &mounts {
        let _ = docker(&["volume", "rm", "-f", volume]).await;
    }
    outcome
}
