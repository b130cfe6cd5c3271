//! `sealcast-bench run compose`: bench/compose.sh (issue 30), the compose cluster in
//! containers.
//!
//! How long `docker-compose up -d` takes to healthy containers and to a playable master
//! playlist (cached images; and cold, with `--cold`: the images made again first), from
//! `--scale broadcast=6` to the first viewer on a new edge, the floating address's
//! failover (the holder's process SIGKILLed: the address moved, the first answer through
//! it), and CPU and memory per container (`docker stats`) idle and with one stream, next
//! to the same roles as one `sealcast up` process (its `/proc` figures). The report:
//! [`crate::reports::compose`].
//!
//! The cluster runs from a copy of the repository's compose files in the run's directory,
//! under a project name, subnet and host ports of its own (`.env`, mode 600), and is taken
//! down (`down -v`) however the run ends. Every wait is bounded.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};

use crate::harness::up::UpArgs;
use crate::harness::{cpu_ticks, say, wait_for, Work};
use crate::live::free_port;
use crate::reports::calc::Calc;

/// What the script passes, and the environment variables it reads (`--help` names them).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Rounds of up, scale and failover.
    #[arg(default_value_t = 3)]
    pub runs: u64,
    /// The `sealcast` binary (the images are made from it; `sealcast up` is it).
    #[arg(long)]
    pub bin: PathBuf,
    /// Make the images again first and time that too (1: yes).
    #[arg(long, env = "BENCH_COLD", default_value = "0")]
    pub cold: String,
    /// Print the section only; the doc (the driver's `--docs`) is left as it is.
    #[arg(long)]
    pub no_doc: bool,
}

/// What the report is told of the run.
pub type Measured = crate::reports::compose::Run;

/// How long a wait may last before the run fails (the bash waited without end).
const PATIENCE: Duration = Duration::from_secs(600);

/// Runs the benchmark; `report` is given the run while its directory is still there.
pub fn run(args: &Args, report: impl FnOnce(Measured) -> anyhow::Result<()>) -> anyhow::Result<()> {
    ensure!(args.runs >= 1, "usage: bench/compose.sh [RUNS]");
    let tool: Vec<String> = if succeeds(Command::new("docker-compose").arg("version")) {
        vec!["docker-compose".into()]
    } else {
        vec!["docker".into(), "compose".into()]
    };
    let mut work = Work::temp("compose")?;
    let dir = work.dir().to_path_buf();
    let status = Command::new("cp")
        .arg("-a")
        .args([
            "docker-compose.yml",
            "Dockerfile",
            ".dockerignore",
            "scripts",
            "deploy",
            "hosts.example",
        ])
        .arg(&dir)
        .status()
        .context("running cp")?;
    ensure!(status.success(), "could not copy the compose files");
    let _ = std::fs::remove_dir_all(dir.join("deploy/state"));
    let me = std::process::id();
    let project = format!("sealcast-bench-{me}");
    let third = 150 + me % 100;
    let https_port = free_port()?;
    let env = [
        format!("COMPOSE_PROJECT_NAME={project}"),
        format!("FRONTEND_SUBNET=10.237.{third}.0/24"),
        format!("FRONTEND_RANGE=10.237.{third}.128/25"),
        format!("LB1_ADDRESS=10.237.{third}.11"),
        format!("LB2_ADDRESS=10.237.{third}.12"),
        format!("LB_VIP=10.237.{third}.100"),
        format!("LB_HTTPS_PORT={https_port}"),
        format!("LB_HTTP_PORT={}", free_port()?),
        format!("INGEST1_RTMP_PORT={}", free_port()?),
        format!("INGEST2_RTMP_PORT={}", free_port()?),
        format!("PROMETHEUS_PORT={}", free_port()?),
        format!("GRAFANA_PORT={}", free_port()?),
    ];
    let env_file = dir.join(".env");
    std::fs::write(&env_file, env.join("\n") + "\n")?;
    std::fs::set_permissions(
        &env_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )?;
    let vip = format!("10.237.{third}.100");
    // Taken down however the run ends: declared after `work`, so dropped before it.
    let cluster = Project {
        tool: tool.clone(),
        dir: dir.clone(),
        name: project.clone(),
    };

    let init = || -> anyhow::Result<String> {
        let began = now();
        let mut command = Command::new(dir.join("scripts/init-cluster.sh"));
        crate::harness::clean_env(&mut command);
        let status = command
            .current_dir(&dir)
            .env("SEALCAST_BIN", &args.bin)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .context("running scripts/init-cluster.sh")?;
        ensure!(status.success(), "scripts/init-cluster.sh failed");
        since(began)
    };
    let mut cold = "null".to_owned();
    if args.cold == "1" {
        let images = output(Command::new("docker").args([
            "images",
            "--format",
            "{{.Repository}}:{{.Tag}}",
        ]))?;
        let ours: Vec<&str> = images
            .lines()
            .filter(|i| i.starts_with("sealcast-"))
            .collect();
        if !ours.is_empty() {
            let _ = Command::new("docker")
                .args(["rmi", "-f"])
                .args(&ours)
                .stdout(Stdio::null())
                .status();
        }
        cold = init()?;
    }
    let warm: f64 = init()?.parse().context("init-cluster's seconds")?;
    let ca = dir.join("certs/generated/ca.pem");
    let master = format!("https://127.0.0.1:{https_port}/live/demo1/master.m3u8");

    let mut rounds = Vec::new();
    for run in 1..=args.runs {
        cluster.down();
        let began = now();
        cluster.compose(&["up", "-d"])?;
        cluster.healthy()?;
        let to_healthy = since(began)?;
        playable(&master, &ca)?;
        let to_master = since(began)?;
        let before = cluster.broadcast_ids()?;
        let began = now();
        cluster.compose(&["up", "-d", "--no-recreate", "--scale", "broadcast=6"])?;
        let after = cluster.broadcast_ids()?;
        let new: Vec<String> = after
            .iter()
            .filter(|id| !before.contains(id))
            .map(|id| format!("broadcast-{id}"))
            .collect();
        ensure!(
            wait_for(PATIENCE, || node_of(&master, &ca)
                .is_some_and(|n| new.contains(&n))),
            "no viewer reached a new edge in {PATIENCE:?}"
        );
        let to_new_edge = since(began)?;
        // Both processes looked up before the clock starts; the address read from the host
        // with nsenter (docker exec takes tenths of a second itself).
        let pid_of = |service: &str| -> anyhow::Result<String> {
            let id = cluster.output(&["ps", "-q", service])?;
            output(Command::new("docker").args([
                "inspect",
                "--format",
                "{{.State.Pid}}",
                id.trim(),
            ]))
            .map(|p| p.trim().to_owned())
        };
        let holds = |pid: &str| -> bool {
            output(
                Command::new("nsenter").args(["-t", pid, "-n", "ip", "-o", "-4", "addr", "show"]),
            )
            .is_ok_and(|a| a.contains(&format!(" {vip}/")))
        };
        let (lb1, lb2) = (pid_of("lb1")?, pid_of("lb2")?);
        let (holder, other) = if holds(&lb2) { (lb2, lb1) } else { (lb1, lb2) };
        let began = now();
        let killed = Command::new("kill").args(["-9", &holder]).status()?;
        ensure!(killed.success(), "could not kill the address's holder");
        ensure!(
            wait_for_every(Duration::from_millis(20), PATIENCE, || holds(&other)),
            "the floating address did not move in {PATIENCE:?}"
        );
        let moved = since(began)?;
        playable(&format!("https://{vip}/live/demo1/master.m3u8"), &ca)?;
        let answered = since(began)?;
        rounds.push(format!(
            "{{\"up_to_healthy_s\":{to_healthy},\"up_to_master_s\":{to_master},\"scale_to_new_edge_s\":{to_new_edge},\"failover_moved_s\":{moved},\"failover_answered_s\":{answered}}}"
        ));
        say(&format!(
            "compose run {run}: healthy {to_healthy} s, master {to_master} s, new edge {to_new_edge} s, failover {moved} / {answered} s"
        ));
    }

    // Resources: no stream (sources stopped), then one (source1, 1280x720).
    let scale = |sources: &str| {
        let source1 = format!("source1={sources}");
        cluster.compose(&[
            "up",
            "-d",
            "--no-recreate",
            "--scale",
            "broadcast=3",
            "--scale",
            &source1,
            "--scale",
            "source2=0",
        ])
    };
    scale("0")?;
    cluster.healthy()?;
    // Settle: docker stats averages over its own sampling.
    std::thread::sleep(Duration::from_secs(20));
    let idle = cluster.stats("idle")?;
    scale("1")?;
    playable(&master, &ca)?;
    std::thread::sleep(Duration::from_secs(20));
    let streaming = cluster.stats("one-stream")?;
    cluster.down();

    // The same roles as one process: `sealcast up` (3 edges, embedded broker, SQLite), idle
    // and with one 1280x720 stream from `sealcast source`.
    let up_dir = dir.join("up");
    std::fs::create_dir_all(&up_dir)?;
    // Started here, not by `harness::up::up`: ready once it printed the stream's key.
    let up_args = UpArgs::defaults(&up_dir, 3).loopback();
    let up = work.start_unpinned("up", &args.bin, up_args.command(), &[])?;
    let mut key_line = None;
    if !wait_for(Duration::from_secs(30), || {
        key_line = read_line(&work.path("up.out"), "stream-key main ");
        key_line.is_some()
    }) {
        work.alive(up, "sealcast up")?;
        bail!("compose: sealcast up did not start{}", work.logs());
    }
    let rtmp = read_line(&work.path("up.out"), "obs-server ")
        .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
        .context("sealcast up printed no obs-server line")?;
    let key = key_line
        .and_then(|l| l.split_whitespace().nth(2).map(str::to_owned))
        .context("sealcast up printed no stream key")?;
    std::thread::sleep(Duration::from_secs(20));
    let proc_stat = |label: &str| -> anyhow::Result<String> {
        let rss = crate::harness::rss_kib(&[up])?;
        let t1 = cpu_ticks(&[up])?;
        std::thread::sleep(Duration::from_secs(10));
        let t2 = cpu_ticks(&[up])?;
        let percent = Calc::CpuPercent {
            before: t1 as i64,
            after: t2 as i64,
            hz: crate::procstat::clock_ticks() as i64,
            seconds: 10.0,
        }
        .run()?;
        Ok(format!(
            "{{\"when\":\"{label}\",\"rss_kib\":{rss},\"cpu_percent\":{percent}}}"
        ))
    };
    let process_idle = proc_stat("idle")?;
    let url = format!("{rtmp}/{key}");
    work.start(
        "source",
        "",
        &args.bin,
        ["source"],
        &[("SEALCAST_SOURCE_URL", &url)],
    )?;
    std::thread::sleep(Duration::from_secs(30));
    let process_stream = proc_stat("one-stream")?;

    let measured = Measured {
        runs: args.runs,
        cold,
        warm,
        rounds: rounds.join("\n"),
        idle,
        streaming,
        process_idle,
        process_stream,
        tool: tool.join(" "),
    };
    let result = report(measured);
    drop(cluster);
    drop(work);
    result
}

/// The compose project of the run.
struct Project {
    tool: Vec<String>,
    dir: PathBuf,
    name: String,
}

impl Project {
    /// The compose command in the run's directory, for this project.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.tool[0]);
        command
            .args(&self.tool[1..])
            .args(["-p", &self.name])
            .args(args)
            .current_dir(&self.dir);
        command
    }

    /// Runs the compose command, its output discarded; fails when it does.
    fn compose(&self, args: &[&str]) -> anyhow::Result<()> {
        let status = self
            .command(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .context("running compose")?;
        ensure!(status.success(), "compose {} failed", args.join(" "));
        Ok(())
    }

    /// The compose command's standard output.
    fn output(&self, args: &[&str]) -> anyhow::Result<String> {
        output(&mut self.command(args))
    }

    /// Everything of the project down, volumes too; quietly.
    fn down(&self) {
        let _ = self
            .command(&["--profile", "tools", "down", "-v", "-t", "5"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// The ids of the project's containers, with more `docker ps` filters.
    fn ids(&self, filters: &[&str]) -> anyhow::Result<Vec<String>> {
        let label = format!("label=com.docker.compose.project={}", self.name);
        let mut command = Command::new("docker");
        command.args(["ps", "-q", "--filter", &label]);
        for filter in filters {
            command.args(["--filter", filter]);
        }
        Ok(output(&mut command)?
            .split_whitespace()
            .map(str::to_owned)
            .collect())
    }

    /// The broadcast containers' ids, sorted.
    fn broadcast_ids(&self) -> anyhow::Result<Vec<String>> {
        let mut ids = self.ids(&["label=com.docker.compose.service=broadcast"])?;
        ids.sort();
        Ok(ids)
    }

    /// Waits until every container of the project (stopped ones too) runs, healthy where it
    /// has a health check.
    fn healthy(&self) -> anyhow::Result<()> {
        let label = format!("label=com.docker.compose.project={}", self.name);
        let all_up = || -> bool {
            let Ok(ids) =
                output(Command::new("docker").args(["ps", "-a", "-q", "--filter", &label]))
            else {
                return false;
            };
            let ids: Vec<&str> = ids.split_whitespace().collect();
            let format = "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}";
            output(
                Command::new("docker")
                    .args(["inspect", "--format", format])
                    .args(&ids),
            )
            .is_ok_and(|states| {
                states
                    .lines()
                    .all(|s| s == "running " || s == "running healthy")
            })
        };
        ensure!(
            wait_for_every(Duration::from_millis(200), PATIENCE, all_up),
            "the containers were not healthy in {PATIENCE:?}"
        );
        Ok(())
    }

    /// One JSON object per running container: `docker stats` once, labelled `when`.
    fn stats(&self, when: &str) -> anyhow::Result<String> {
        let ids = self.ids(&[])?;
        let out = output(
            Command::new("docker")
                .args([
                    "stats",
                    "--no-stream",
                    "--format",
                    "{{.ID}} {{.CPUPerc}} {{.MemUsage}}",
                ])
                .args(&ids),
        )?;
        let mut lines = Vec::new();
        for line in out.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [id, cpu, mem, ..] = fields[..] else {
                continue;
            };
            let format = "{{index .Config.Labels \"com.docker.compose.service\"}}";
            let service = output(Command::new("docker").args(["inspect", "--format", format, id]))?;
            lines.push(format!(
                "{{\"when\":\"{when}\",\"service\":\"{}\",\"cpu\":\"{cpu}\",\"mem\":\"{mem}\"}}",
                service.trim()
            ));
        }
        Ok(lines.join("\n"))
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        self.down();
    }
}

/// Waits until `url` answers 200 over HTTPS trusting `ca`.
fn playable(url: &str, ca: &Path) -> anyhow::Result<()> {
    let answers = || {
        output(
            Command::new("curl")
                .args([
                    "-s",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code}",
                    "-m",
                    "2",
                    "--cacert",
                ])
                .arg(ca)
                .arg(url),
        )
        .is_ok_and(|code| code == "200")
    };
    ensure!(
        wait_for(PATIENCE, answers),
        "{url} did not answer 200 in {PATIENCE:?}"
    );
    Ok(())
}

/// The node that answered `url` (its `x-sealcast-node` header).
fn node_of(url: &str, ca: &Path) -> Option<String> {
    let head = output(
        Command::new("curl")
            .args(["-s", "-D", "-", "-o", "/dev/null", "--cacert"])
            .arg(ca)
            .arg(url),
    )
    .ok()?;
    head.lines().find_map(|l| {
        l.trim_end_matches('\r')
            .strip_prefix("x-sealcast-node: ")
            .map(str::to_owned)
    })
}

/// Polls `ready` every `every` until it holds; false after `within`.
fn wait_for_every(every: Duration, within: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if ready() {
            return true;
        }
        std::thread::sleep(every);
    }
    false
}

/// The first line of `file` that starts with `prefix`.
fn read_line(file: &Path, prefix: &str) -> Option<String> {
    std::fs::read_to_string(file)
        .ok()?
        .lines()
        .find(|l| l.starts_with(prefix))
        .map(str::to_owned)
}

/// Whether `command` runs and exits 0 (its output discarded).
fn succeeds(command: &mut Command) -> bool {
    command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `command`'s standard output; fails when it does.
fn output(command: &mut Command) -> anyhow::Result<String> {
    let out = command
        .stderr(Stdio::null())
        .output()
        .context("running a command")?;
    ensure!(out.status.success(), "{:?} failed", command.get_program());
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Seconds since the epoch, as `date +%s.%N` reads them.
fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The seconds since `began`, to two decimals, as `calc elapsed` prints them.
fn since(began: f64) -> anyhow::Result<String> {
    Calc::Elapsed {
        start: began,
        end: now(),
    }
    .run()
}
