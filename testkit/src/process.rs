//! Processes a test starts: one-shot commands with a deadline ([`run_with_deadline`]),
//! roles whose stdout a test reads line by line ([`Spawned`]), and services that live as
//! long as the test binary ([`Supervised`]).

use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::ChildStdout;

/// Runs `command` to completion (stdout and stderr captured), killing it at `timeout`.
pub fn run_with_deadline(mut command: Command, timeout: Duration) -> Result<Output> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {:?}", command.get_program()))?;
    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut buf);
            }
            buf
        })
    };
    let stdout = reader(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = reader(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "{:?} did not finish within {timeout:?}",
                command.get_program()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Ok(Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

/// `text` with each of `secrets` replaced by `***`: for process output a test prints when
/// it fails.
pub fn redact(text: &str, secrets: &[&str]) -> String {
    secrets
        .iter()
        .filter(|s| !s.is_empty())
        .fold(text.to_owned(), |t, s| t.replace(s, "***"))
}

/// Sends SIGTERM to process `pid` (through `kill(1)`: no FFI in tests either).
pub fn terminate(pid: u32) {
    let _ = signal(pid, "TERM");
}

/// Sends signal `name` (`TERM`, `STOP`, `CONT`…) to process `pid` through `kill(1)`.
pub fn signal(pid: u32, name: &str) -> Result<()> {
    let status = Command::new("kill")
        .args([format!("-{name}"), pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    ensure!(status.success(), "kill -{name} {pid} failed ({status})");
    Ok(())
}

/// The stacks of every thread of process `pid`, from gdb if the machine has it: what a
/// process that does not exit is waiting for (a lock, a blocking call, or nothing but its
/// event loop), or why there are none (no gdb); bounded in time.
fn thread_stacks(pid: u32) -> String {
    let mut command = Command::new("gdb");
    command.args([
        "-p",
        &pid.to_string(),
        "-batch",
        "-nx",
        "-ex",
        "set pagination off",
        "-ex",
        "thread apply all bt 40",
    ]);
    match run_with_deadline(command, Duration::from_secs(60)) {
        Ok(out) => format!(
            "\n--- thread stacks (gdb) ---\n{}",
            String::from_utf8_lossy(&out.stdout)
        ),
        Err(e) => format!("\n--- no thread stacks: {e:#} ---\n"),
    }
}

/// A process a test started (a sealcast role, most often): stdout read line by line —
/// roles print their URLs there once they listen —, stderr into a log file, killed when
/// dropped.
#[derive(Debug)]
pub struct Spawned {
    name: String,
    child: tokio::process::Child,
    /// Stdout, until [`Spawned::drain`] hands it to a task that discards it.
    lines: Option<Lines<BufReader<ChildStdout>>>,
    log: PathBuf,
    /// Replaced by `***` in [`Spawned::log`].
    secrets: Vec<String>,
}

impl Spawned {
    /// Starts `command` as `name` (for messages): stdin empty, stdout piped, stderr
    /// written to `log`.
    pub fn start(name: &str, mut command: tokio::process::Command, log: &Path) -> Result<Self> {
        let stderr =
            std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        let stdout = child.stdout.take().context("stdout not piped")?;
        Ok(Spawned {
            name: name.to_owned(),
            child,
            lines: Some(BufReader::new(stdout).lines()),
            log: log.to_path_buf(),
            secrets: Vec::new(),
        })
    }

    /// Values [`Spawned::log`] replaces by `***`.
    pub fn redacting(mut self, secrets: &[&str]) -> Self {
        self.secrets = secrets.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    /// The name it was started as.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its process id while it runs.
    pub fn id(&self) -> Option<u32> {
        self.child.id()
    }

    /// The next line of stdout; `None` once stdout is closed. An error at `deadline`.
    pub async fn next_line(&mut self, deadline: tokio::time::Instant) -> Result<Option<String>> {
        let lines = self.lines.as_mut().context("stdout is drained")?;
        match tokio::time::timeout_at(deadline, lines.next_line()).await {
            Ok(line) => Ok(line?),
            Err(_) => bail!(
                "{} printed nothing more in time; its log:\n{}",
                self.name,
                self.log()
            ),
        }
    }

    /// The rest of the first stdout line starting with `prefix` (without a trailing `/`),
    /// within `timeout`. The error says why: exited, silent, and what it logged.
    pub async fn line(&mut self, prefix: &str, timeout: Duration) -> Result<String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match self.next_line(deadline).await {
                Ok(Some(line)) => {
                    if let Some(rest) = line.strip_prefix(prefix) {
                        return Ok(rest.trim_end_matches('/').to_owned());
                    }
                }
                Ok(None) => {
                    let status = tokio::time::timeout(Duration::from_secs(5), self.child.wait())
                        .await
                        .ok()
                        .and_then(Result::ok);
                    bail!(
                        "{} closed stdout ({status:?}) before a line starting with {prefix:?}; its log:\n{}",
                        self.name,
                        self.log()
                    )
                }
                Err(e) => return Err(e.context(format!("no line starting with {prefix:?}"))),
            }
        }
    }

    /// Discards the rest of stdout in the background, so the process never blocks on a
    /// full pipe.
    pub fn drain(&mut self) {
        if let Some(mut lines) = self.lines.take() {
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        }
    }

    /// What it logged so far, secrets redacted.
    pub fn log(&self) -> String {
        let secrets: Vec<&str> = self.secrets.iter().map(String::as_str).collect();
        redact(
            &std::fs::read_to_string(&self.log).unwrap_or_default(),
            &secrets,
        )
    }

    /// Where its log is.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Its exit status if it has exited.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        Ok(self.child.try_wait()?)
    }

    /// SIGKILL: gone without a clean shutdown.
    pub async fn kill(mut self) -> Result<()> {
        self.child.kill().await?;
        Ok(())
    }

    /// Waits (at most `timeout`) for it to exit by itself; its status.
    pub async fn wait(&mut self, timeout: Duration) -> Result<ExitStatus> {
        tokio::time::timeout(timeout, self.child.wait())
            .await
            .with_context(|| format!("{} did not exit within {timeout:?}", self.name))?
            .map_err(Into::into)
    }

    /// SIGTERM, then its exit within `timeout`: an error if it does not exit, exits with
    /// a failure, or logged a panic. Returns its log.
    pub async fn stop(mut self, timeout: Duration) -> Result<String> {
        if let Some(pid) = self.child.id() {
            terminate(pid);
        }
        let status = self.wait(timeout).await;
        let mut log = self.log();
        if status.is_err() {
            if let Some(pid) = self.child.id() {
                let stacks = tokio::task::spawn_blocking(move || thread_stacks(pid)).await;
                log.push_str(&stacks.unwrap_or_default());
            }
        }
        let status = status.with_context(|| format!("after SIGTERM; its log:\n{log}"))?;
        ensure!(
            status.success(),
            "{} exited with {status}:\n{log}",
            self.name
        );
        ensure!(!log.contains("panicked"), "{} panicked:\n{log}", self.name);
        Ok(log)
    }
}

/// The shell supervisor of a [`Supervised`] service: runs the service, waits for its own
/// stdin to close (the test binary exited) or for the service to exit, stops the service
/// with the given signal and removes its directory.
const SUPERVISOR: &str = r#"
dir=$1 signal=$2
shift 2
# A background job's stdin is /dev/null: keep ours (the pipe) as fd 3 for the watcher.
exec 3<&0
"$@" </dev/null 3<&- &
service=$!
{ cat <&3 >/dev/null; kill -"$signal" "$service" 2>/dev/null; } &
exec 3<&-
wait "$service"
status=$?
rm -rf -- "$dir"
exit "$status"
"#;

/// A service (a database, a broker) shared by the tests of one binary and stopped when
/// that binary exits, however it exits.
///
/// libtest never drops statics, so a server kept in one would outlive the run. Instead the
/// service runs under a small shell supervisor whose stdin is a pipe only this process
/// holds the writing end of: when the test binary exits — passed, failed or killed — the
/// kernel closes it, and the supervisor stops the service and removes its directory.
/// Dropping a `Supervised` does the same at once.
#[derive(Debug)]
pub struct Supervised {
    name: String,
    supervisor: std::process::Child,
    /// Held, never written: closing it stops the service.
    stdin: Option<std::process::ChildStdin>,
    log: PathBuf,
}

impl Supervised {
    /// Starts `program args` as `name` under a supervisor that removes `dir` when the
    /// service ends, and stops it with `signal` (`TERM`, `INT`, ...). `run_as`: a user to
    /// run it as (through `runuser`, for servers that refuse to run as root). Output goes
    /// to `log`.
    pub fn start(
        name: &str,
        dir: &Path,
        run_as: Option<&str>,
        signal: &str,
        program: &Path,
        args: &[&OsStr],
        log: &Path,
    ) -> Result<Self> {
        let out =
            std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let mut command = match run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--", "sh"]);
                c
            }
            None => Command::new("sh"),
        };
        let mut supervisor = command
            .args(["-c", SUPERVISOR, "supervisor"])
            .arg(dir)
            .arg(signal)
            .arg(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        let stdin = supervisor.stdin.take();
        Ok(Supervised {
            name: name.to_owned(),
            supervisor,
            stdin,
            log: log.to_path_buf(),
        })
    }

    /// Why the service is gone, if it is (its status and its log).
    pub fn exited(&mut self) -> Option<String> {
        match self.supervisor.try_wait() {
            Ok(Some(status)) => Some(format!(
                "{} exited with {status}; its output:\n{}",
                self.name,
                self.log()
            )),
            Ok(None) => None,
            Err(e) => Some(format!("{}: {e}", self.name)),
        }
    }

    /// What the service printed so far (the supervisor may have removed it on exit).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.supervisor.wait();
    }
}

/// Polls `ready` until it is true, the service exits, or `timeout` passes.
pub fn wait_until_ready(
    service: &mut Supervised,
    timeout: Duration,
    mut ready: impl FnMut() -> bool,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if ready() {
            return Ok(());
        }
        if let Some(why) = service.exited() {
            bail!("{why}");
        }
        ensure!(
            Instant::now() < deadline,
            "{} was not ready within {timeout:?}; its output:\n{}",
            service.name,
            service.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A server binary `scripts/setup.sh test` builds once into `~/.cache/sealcast/{name}`
/// (moq-relay, garage): `bin_var` names another binary, `root_var` another install root.
pub fn setup_installed_bin(
    name: &str,
    version: &str,
    bin_var: &str,
    root_var: &str,
) -> anyhow::Result<std::path::PathBuf> {
    use anyhow::Context as _;
    use std::path::PathBuf;
    if let Some(bin) = std::env::var_os(bin_var) {
        return Ok(PathBuf::from(bin));
    }
    let root = match std::env::var_os(root_var) {
        Some(root) => PathBuf::from(root),
        None => PathBuf::from(std::env::var_os("HOME").context("HOME is not set")?)
            .join(".cache/sealcast")
            .join(name),
    };
    let bin = root.join("bin").join(name);
    anyhow::ensure!(
        bin.is_file(),
        "no {name} at {}: run `scripts/setup.sh test` (it installs {name} {version}), \
         or name one in {bin_var}",
        bin.display()
    );
    Ok(bin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_supervised_service_is_stopped_and_its_directory_removed_when_dropped() {
        let dir = tempfile::tempdir().expect("tempdir").keep();
        let log = dir.join("sleep.log");
        let pidfile = dir.join("pid");
        let script = format!("echo $$ > {}; exec sleep 600", pidfile.display());
        let mut service = Supervised::start(
            "sleep",
            &dir,
            None,
            "TERM",
            Path::new("/bin/sh"),
            &[OsStr::new("-c"), OsStr::new(&script)],
            &log,
        )
        .expect("starts");
        wait_until_ready(&mut service, Duration::from_secs(10), || pidfile.exists()).expect("runs");
        let pid = std::fs::read_to_string(&pidfile).expect("pid");
        drop(service);
        assert!(!dir.exists(), "{} is left behind", dir.display());
        let alive = Command::new("kill")
            .args(["-0", pid.trim()])
            .stderr(Stdio::null())
            .status()
            .expect("kill -0");
        assert!(!alive.success(), "the service outlived its supervisor");
    }

    #[test]
    fn a_service_that_exits_by_itself_is_reported_with_its_output() {
        let dir = tempfile::tempdir().expect("tempdir").keep();
        let log = std::env::temp_dir().join(format!("testkit-exit-{}.log", std::process::id()));
        let mut service = Supervised::start(
            "false",
            &dir,
            None,
            "TERM",
            Path::new("/bin/sh"),
            &[OsStr::new("-c"), OsStr::new("echo cannot bind >&2; exit 3")],
            &log,
        )
        .expect("starts");
        let err = wait_until_ready(&mut service, Duration::from_secs(10), || false)
            .expect_err("never ready");
        let _ = std::fs::remove_file(&log);
        let text = format!("{err:#}");
        assert!(text.contains("cannot bind") && text.contains('3'), "{text}");
        assert!(!dir.exists());
    }

    #[tokio::test]
    async fn a_spawned_role_is_read_line_by_line_and_stopped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut command = tokio::process::Command::new("sh");
        command.args([
            "-c",
            // The trap first: SIGTERM may come as soon as the url line is out.
            "trap 'exit 0' TERM; echo starting; echo secret-value >&2; echo 'url http://x/'; while :; do sleep 0.1; done",
        ]);
        let mut role = Spawned::start("role", command, &dir.path().join("role.log"))
            .expect("starts")
            .redacting(&["secret-value"]);
        let url = role
            .line("url ", Duration::from_secs(10))
            .await
            .expect("line");
        assert_eq!(url, "http://x");
        role.drain();
        let log = role.stop(Duration::from_secs(10)).await.expect("stops");
        assert_eq!(log.trim(), "***");
    }
}
