//! A compose project under the real Docker engine, driven through the compose tool the
//! machine has (Debian's `docker-compose` 1.29, or Compose v2's `docker compose`) and the
//! `docker` CLI: what a user types, run by a test.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context, Result};

/// One compose project: a directory with `docker-compose.yml` and `.env`, and the project
/// name its containers, networks and volumes carry.
#[derive(Debug)]
pub struct ComposeProject {
    /// The project directory.
    pub dir: PathBuf,
    /// `COMPOSE_PROJECT_NAME`.
    pub name: String,
    tool: Vec<String>,
}

/// The compose tool on this machine: `docker-compose` if it runs, else `docker compose`.
pub fn compose_tool() -> Result<Vec<String>> {
    let works = |program: &str, args: &[&str]| {
        std::process::Command::new(program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if works("docker-compose", &["version"]) {
        Ok(vec!["docker-compose".to_owned()])
    } else if works("docker", &["compose", "version"]) {
        Ok(vec!["docker".to_owned(), "compose".to_owned()])
    } else {
        bail!("no compose tool: neither docker-compose nor docker compose runs here")
    }
}

/// Runs `program args` with a deadline; its stdout, or an error with its stderr.
pub async fn run(
    program: &str,
    args: &[&str],
    cwd: Option<&Path>,
    limit: Duration,
) -> Result<String> {
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(dir) = cwd {
        command.current_dir(dir);
    }
    let what = format!("{program} {}", args.join(" "));
    let output = tokio::time::timeout(limit, command.output())
        .await
        .with_context(|| format!("{what} took longer than {limit:?}"))?
        .with_context(|| format!("running {what}"))?;
    if !output.status.success() {
        bail!(
            "{what}: {}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// `docker ARGS`, its stdout.
pub async fn docker(args: &[&str]) -> Result<String> {
    run("docker", args, None, Duration::from_secs(120)).await
}

impl ComposeProject {
    /// The project in `dir`, named `name` (its `.env` should say the same).
    pub fn new(dir: &Path, name: &str) -> Result<Self> {
        Ok(ComposeProject {
            dir: dir.to_owned(),
            name: name.to_owned(),
            tool: compose_tool()?,
        })
    }

    /// The compose tool's command line, for messages and documentation.
    pub fn tool(&self) -> String {
        self.tool.join(" ")
    }

    /// `compose -p NAME ARGS` in the project directory, within `limit`; its stdout.
    pub async fn compose(&self, args: &[&str], limit: Duration) -> Result<String> {
        let mut all: Vec<&str> = self.tool[1..].iter().map(String::as_str).collect();
        all.extend(["-p", &self.name]);
        all.extend_from_slice(args);
        run(&self.tool[0], &all, Some(&self.dir), limit).await
    }

    /// The ids of `service`'s containers (running or not), oldest first.
    pub async fn containers(&self, service: &str) -> Result<Vec<String>> {
        let out = docker(&[
            "ps",
            "-a",
            "--filter",
            &format!("label=com.docker.compose.project={}", self.name),
            "--filter",
            &format!("label=com.docker.compose.service={service}"),
            "--format",
            "{{.ID}} {{.CreatedAt}}",
        ])
        .await?;
        let mut rows: Vec<(String, String)> = out
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(id, created)| (created.to_owned(), id.to_owned()))
            .collect();
        rows.sort();
        Ok(rows.into_iter().map(|(_, id)| id).collect())
    }

    /// The one container of `service`.
    pub async fn container(&self, service: &str) -> Result<String> {
        let ids = self.containers(service).await?;
        match ids.as_slice() {
            [id] => Ok(id.clone()),
            _ => bail!("{service} has {} containers, not one", ids.len()),
        }
    }

    /// Every container of the project: (id, service, state, health or "").
    pub async fn states(&self) -> Result<Vec<ContainerState>> {
        let out = docker(&[
            "ps",
            "-a",
            "--filter",
            &format!("label=com.docker.compose.project={}", self.name),
            "--format",
            "{{.ID}}",
        ])
        .await?;
        let ids: Vec<&str> = out.split_whitespace().collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(inspect(&ids)
            .await?
            .iter()
            .map(ContainerState::from_inspect)
            .collect())
    }

    /// Waits until every container of the project runs and every one with a healthcheck
    /// is healthy; how long that took.
    pub async fn wait_healthy(&self, limit: Duration) -> Result<Duration> {
        let started = tokio::time::Instant::now();
        loop {
            let states = self.states().await?;
            let waiting: Vec<String> = states
                .iter()
                .filter(|s| !s.ready())
                .map(|s| format!("{} {} {} {}", s.service, s.id, s.status, s.health))
                .collect();
            if !states.is_empty() && waiting.is_empty() {
                return Ok(started.elapsed());
            }
            if started.elapsed() > limit {
                bail!("not healthy after {limit:?}: {}", waiting.join(", "));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// `docker-compose down -v` for a test's project, whatever state it is in (on drop).
    pub fn remove_blocking(&self) {
        let mut command = std::process::Command::new(&self.tool[0]);
        command
            .args(&self.tool[1..])
            .args([
                "-p",
                &self.name,
                "--profile",
                "tools",
                "--profile",
                "s3",
                "down",
                "-v",
                "--remove-orphans",
                "-t",
                "5",
            ])
            .current_dir(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let _ = command.status();
    }
}

/// What `docker inspect` says of one container.
#[derive(Debug, Clone)]
pub struct ContainerState {
    /// The short id (also its host name).
    pub id: String,
    /// Its compose service.
    pub service: String,
    /// `running`, `exited`, `restarting`, ...
    pub status: String,
    /// `healthy`, `starting`, `unhealthy`, or empty without a healthcheck.
    pub health: String,
    /// How often Docker restarted it.
    pub restarts: u64,
}

impl ContainerState {
    /// From one object of `docker inspect`'s output.
    fn from_inspect(v: &serde_json::Value) -> Self {
        let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
        ContainerState {
            id: v["Id"]
                .as_str()
                .unwrap_or_default()
                .chars()
                .take(12)
                .collect(),
            service: text(&v["Config"]["Labels"]["com.docker.compose.service"]),
            status: text(&v["State"]["Status"]),
            health: text(&v["State"]["Health"]["Status"]),
            restarts: v["RestartCount"].as_u64().unwrap_or(0),
        }
    }

    /// Running, and healthy if it has a healthcheck.
    pub fn ready(&self) -> bool {
        self.status == "running" && (self.health.is_empty() || self.health == "healthy")
    }
}

/// A container's init process id on the host.
pub async fn main_pid(id: &str) -> Result<u32> {
    let pid = docker(&["inspect", "--format", "{{.State.Pid}}", id]).await?;
    pid.trim()
        .parse::<u32>()
        .ok()
        .filter(|p| *p > 0)
        .with_context(|| format!("{id} has no running process ({pid:?})"))
}

/// A crash: SIGKILL to the container's init from the host, as the kernel's OOM killer or a
/// fault would end it. Docker's restart policy applies (it does not after `docker kill`,
/// which Docker counts as stopping the container by hand).
/// Returns the moment the signal was sent (looking the process up can take a while on a
/// loaded machine, and is not part of the fault).
pub async fn crash(id: &str) -> Result<tokio::time::Instant> {
    let pid = main_pid(id).await?;
    run(
        "kill",
        &["-9", &pid.to_string()],
        None,
        Duration::from_secs(10),
    )
    .await?;
    Ok(tokio::time::Instant::now())
}

/// The IPv4 addresses inside the network namespace of the process `pid` (a container's
/// init), read from the host with `nsenter`: quicker than `docker exec`, and it needs
/// nothing in the container.
pub async fn addresses_of(pid: u32) -> Result<String> {
    run(
        "nsenter",
        &[
            "-t",
            &pid.to_string(),
            "-n",
            "ip",
            "-o",
            "-4",
            "addr",
            "show",
        ],
        None,
        Duration::from_secs(10),
    )
    .await
}

/// `docker inspect IDS`, one JSON object per container (Go templates cannot test for a
/// missing `Health` on every engine version).
pub async fn inspect(ids: &[&str]) -> Result<Vec<serde_json::Value>> {
    let mut args = vec!["inspect"];
    args.extend_from_slice(ids);
    let out = docker(&args).await?;
    serde_json::from_str(&out).context("docker inspect's JSON")
}

/// Waits until container `id` has been restarted by Docker and is ready again; how long
/// that took.
pub async fn wait_restarted(id: &str, restarts_before: u64, limit: Duration) -> Result<Duration> {
    let started = tokio::time::Instant::now();
    loop {
        let state = inspect(&[id])
            .await?
            .first()
            .map(ContainerState::from_inspect)
            .with_context(|| format!("no container {id}"))?;
        if state.restarts > restarts_before && state.ready() {
            return Ok(started.elapsed());
        }
        if started.elapsed() > limit {
            bail!("{id} was not restarted and ready within {limit:?}: {state:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// How often Docker restarted container `id`.
pub async fn restart_count(id: &str) -> Result<u64> {
    let out = docker(&["inspect", "--format", "{{.RestartCount}}", id]).await?;
    out.trim().parse().context("RestartCount")
}

/// Container `id`'s address on the network whose name ends with `network`.
pub async fn address(id: &str, network: &str) -> Result<String> {
    let out = docker(&[
        "inspect",
        "--format",
        "{{range $n, $c := .NetworkSettings.Networks}}{{$n}} {{$c.IPAddress}}\n{{end}}",
        id,
    ])
    .await?;
    out.lines()
        .filter_map(|l| l.split_once(' '))
        .find(|(n, ip)| n.ends_with(network) && !ip.is_empty())
        .map(|(_, ip)| ip.to_owned())
        .with_context(|| format!("{id} has no address on {network}: {out}"))
}

/// CPU (percent of one core) and memory (bytes) of each container, from `docker stats`.
pub async fn stats(ids: &[String]) -> Result<Vec<(String, f64, u64)>> {
    let mut args = vec![
        "stats",
        "--no-stream",
        "--format",
        "{{.ID}}|{{.CPUPerc}}|{{.MemUsage}}",
    ];
    args.extend(ids.iter().map(String::as_str));
    let out = docker(&args).await?;
    Ok(out
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('|').collect();
            let cpu = f.get(1)?.trim_end_matches('%').parse().ok()?;
            let mem = parse_size(f.get(2)?.split('/').next()?.trim())?;
            Some((f[0].to_owned(), cpu, mem))
        })
        .collect())
}

/// `12.5MiB`, `1.2GiB`, `512KiB`, `100B` as bytes.
pub fn parse_size(text: &str) -> Option<u64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.trim().parse().ok()?;
    let scale = match unit {
        "B" => 1.0,
        "kB" | "KB" => 1e3,
        "KiB" => 1024.0,
        "MB" => 1e6,
        "MiB" => 1024.0 * 1024.0,
        "GB" => 1e9,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some((number * scale) as u64)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_from_docker_stats() {
        assert_eq!(parse_size("100B"), Some(100));
        assert_eq!(parse_size("1.5KiB"), Some(1536));
        assert_eq!(parse_size("12MiB"), Some(12 * 1024 * 1024));
        assert_eq!(parse_size("2kB"), Some(2000));
        assert_eq!(parse_size("MiB"), None);
        assert_eq!(parse_size("12 parsecs"), None);
    }
}
