//! What a benchmark starts and stops (issue 46 item 4: the driver owns the cluster start
//! and the CPU sampling; the scripts were bench/lib.sh's bash functions).
//!
//! A [`Work`] is a run's directory (on tmpfs when there is one) and every process started
//! into it, each pinned to the cores it is given (`taskset`, as the scripts pinned; or on
//! every core, [`Work::start_unpinned`], where a script did not pin), its standard output
//! and error in `NAME.out` and `NAME.err` there. Dropping the `Work`, or
//! an interrupt (Ctrl-C, SIGTERM), stops them all (SIGTERM, then SIGKILL after 5 s) and
//! removes the directory. [`cluster`] starts the live stream's parts (broker, keys,
//! ingest, source, nodes, load balancer, relay); [`up`] the whole cluster in one `sealcast
//! up` (the latency benchmarks'); [`peers`] the peers' servers (nginx on a mirror of the
//! node, HAProxy) from the configuration files in `bench/peers/`.
//!
//! Every wait is a condition polled every 0.1 s up to a deadline ([`wait_for`]); nothing
//! sleeps for a fixed time to let a process get ready.

pub mod cluster;
pub mod peers;
pub mod up;

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// The processes every live [`Work`] started, and their directories: what an interrupt
/// stops and removes.
static STARTED: Mutex<Vec<(u32, PathBuf)>> = Mutex::new(Vec::new());

/// A run's directory and the processes started into it.
#[derive(Debug)]
pub struct Work {
    dir: PathBuf,
    procs: Vec<(String, Child)>,
}

impl Work {
    /// A new directory `sealcast-NAME.*` on tmpfs (`/dev/shm`) when there is one, else in
    /// the system's temporary directory; readable by servers that drop privileges
    /// (nginx's worker).
    pub fn tmpfs(name: &str) -> anyhow::Result<Work> {
        let shm = Path::new("/dev/shm");
        let parent = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        Work::in_dir(&parent, name)
    }

    /// A new directory `sealcast-NAME.*` in the system's temporary directory (`mktemp -d`,
    /// as bench/lib.sh's `bench_workdir` made it).
    pub fn temp(name: &str) -> anyhow::Result<Work> {
        Work::in_dir(&std::env::temp_dir(), name)
    }

    /// A new directory `sealcast-NAME.*` in `parent`.
    fn in_dir(parent: &Path, name: &str) -> anyhow::Result<Work> {
        let stamp = format!(
            "{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos())
        );
        let dir = parent.join(format!("sealcast-{name}.{stamp}"));
        std::fs::create_dir(&dir).with_context(|| dir.display().to_string())?;
        let mode = std::os::unix::fs::PermissionsExt::from_mode(0o755);
        std::fs::set_permissions(&dir, mode).with_context(|| dir.display().to_string())?;
        on_interrupt_stop_all();
        Ok(Work {
            dir,
            procs: Vec::new(),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A path in the directory.
    pub fn path(&self, name: impl AsRef<Path>) -> PathBuf {
        self.dir.join(name)
    }

    /// Starts `program` with `args` (and `envs` added to its environment) pinned to `cores`
    /// (`taskset -c`: "0", "1", "0,1"), its output in `NAME.out` and `NAME.err`; stopped
    /// with the `Work`. Returns its pid.
    pub fn start<I, S>(
        &mut self,
        name: &str,
        cores: &str,
        program: &Path,
        args: I,
        envs: &[(&str, &str)],
    ) -> anyhow::Result<u32>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.spawn(name, Some(cores), program, args, envs)
    }

    /// [`Work::start`] without pinning: the process may run on every core (as the scripts
    /// that did not pin started it).
    pub fn start_unpinned<I, S>(
        &mut self,
        name: &str,
        program: &Path,
        args: I,
        envs: &[(&str, &str)],
    ) -> anyhow::Result<u32>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.spawn(name, None, program, args, envs)
    }

    /// Starts `program`, under `taskset -c CORES` when given cores.
    fn spawn<I, S>(
        &mut self,
        name: &str,
        cores: Option<&str>,
        program: &Path,
        args: I,
        envs: &[(&str, &str)],
    ) -> anyhow::Result<u32>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let out = File::create(self.path(format!("{name}.out")))?;
        let err = File::create(self.path(format!("{name}.err")))?;
        let mut command = match cores {
            Some(cores) => {
                let mut taskset = Command::new("taskset");
                taskset.arg("-c").arg(cores).arg(program);
                taskset
            }
            None => Command::new(program),
        };
        clean_env(&mut command);
        command
            .args(args)
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let child = command
            .spawn()
            .with_context(|| format!("starting {name} ({})", program.display()))?;
        let pid = child.id();
        if let Ok(mut started) = STARTED.lock() {
            started.push((pid, self.dir.clone()));
        }
        self.procs.push((name.to_owned(), child));
        Ok(pid)
    }

    /// Fails with "NAME exited" (and the logs' last lines) when the process `pid` has
    /// exited: one started here, or another (a server's worker) that `/proc` no longer
    /// shows alive (`kill -0` as the scripts asked).
    pub fn alive(&mut self, pid: u32, name: &str) -> anyhow::Result<()> {
        let gone = match self.procs.iter_mut().find(|(_, child)| child.id() == pid) {
            Some((_, child)) => !matches!(child.try_wait(), Ok(None)),
            None => std::fs::read_to_string(format!("/proc/{pid}/status"))
                .map_or(true, |status| status.contains("State:\tZ")),
        };
        if gone {
            bail!("{name} exited{}", self.logs());
        }
        Ok(())
    }

    /// Waits for the process `pid` started here to exit; whether it succeeded.
    pub fn wait(&mut self, pid: u32) -> anyhow::Result<bool> {
        let Some(index) = self.procs.iter().position(|(_, c)| c.id() == pid) else {
            bail!("no process {pid} was started here");
        };
        let (_, mut child) = self.procs.remove(index);
        let status = child.wait()?;
        forget(pid);
        Ok(status.success())
    }

    /// Stops the process `pid` started here (SIGTERM, as the scripts' `kill`) and waits for
    /// it to exit.
    pub fn stop(&mut self, pid: u32) -> anyhow::Result<()> {
        testkit::process::terminate(pid);
        self.wait(pid)?;
        Ok(())
    }

    /// Whether a line of `NAME.out` starts with `prefix`.
    pub fn out_has_line(&self, name: &str, prefix: &str) -> bool {
        std::fs::read_to_string(self.path(format!("{name}.out")))
            .is_ok_and(|text| text.lines().any(|l| l.starts_with(prefix)))
    }

    /// The last 5 lines of every non-empty `*.err` here, each under its file's name: what a
    /// failure prints (the directory goes with the run).
    pub fn logs(&self) -> String {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.sort();
        let mut text = String::new();
        for file in files {
            if file.extension() != Some(OsStr::new("err")) {
                continue;
            }
            let Ok(log) = std::fs::read_to_string(&file) else {
                continue;
            };
            if log.trim().is_empty() {
                continue;
            }
            let lines: Vec<&str> = log.lines().collect();
            let name = file.file_name().unwrap_or_default().to_string_lossy();
            text.push_str(&format!("\n--- {name} (last lines)\n"));
            text.push_str(&lines[lines.len().saturating_sub(5)..].join("\n"));
        }
        text
    }
}

impl Drop for Work {
    fn drop(&mut self) {
        let pids: Vec<u32> = self.procs.iter().map(|(_, c)| c.id()).collect();
        for pid in &pids {
            testkit::process::terminate(*pid);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for (_, child) in &mut self.procs {
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        for pid in pids {
            forget(pid);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Takes every `SEALCAST_*` setting of this process's environment out of `command`'s:
/// our binaries read them (another broker, keys, listen addresses…), and none of a user's
/// applies to a benchmark (bench/lib.sh's `bench_clear_env`).
pub fn clean_env(command: &mut Command) {
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("SEALCAST_") {
            command.env_remove(key);
        }
    }
}

/// `pid` is no longer the interrupt's to stop.
fn forget(pid: u32) {
    if let Ok(mut started) = STARTED.lock() {
        started.retain(|(p, _)| *p != pid);
    }
}

/// Once per process: on SIGINT or SIGTERM, every process a `Work` started is stopped,
/// their directories removed, and this process exits 130 (as the scripts' `trap` did).
fn on_interrupt_stop_all() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::thread::spawn(|| {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                use tokio::signal::unix::{signal, SignalKind};
                let (Ok(mut int), Ok(mut term)) = (
                    signal(SignalKind::interrupt()),
                    signal(SignalKind::terminate()),
                ) else {
                    return;
                };
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
                let started = STARTED.lock().map(|s| s.clone()).unwrap_or_default();
                for (pid, _) in &started {
                    testkit::process::terminate(*pid);
                }
                let dirs: HashSet<PathBuf> = started.into_iter().map(|(_, d)| d).collect();
                for dir in dirs {
                    let _ = std::fs::remove_dir_all(dir);
                }
                std::process::exit(130);
            });
        });
    });
}

/// A command line's arguments as `OsStr`s (strings and paths side by side).
pub fn os_args<'a>(args: &[&'a OsStr]) -> Vec<&'a OsStr> {
    args.to_vec()
}

/// Polls `ready` every 0.1 s until it holds; false when it has not after `within`.
pub fn wait_for(within: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if ready() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Moves every thread of each process onto `core` (`taskset -a -p`), as a script pinned a
/// process started on both cores (tokio sizes its runtime from the cores it may use).
pub fn pin(core: &str, pids: &[u32]) -> anyhow::Result<()> {
    for pid in pids {
        let status = Command::new("taskset")
            .args(["-a", "-pc", core, &pid.to_string()])
            .stdout(Stdio::null())
            .status()
            .context("running taskset")?;
        if !status.success() {
            bail!("taskset could not pin {pid} to core {core}");
        }
    }
    Ok(())
}

/// utime + stime of the processes summed, in seconds (bench/lib.sh's `cpu_ticks` over
/// `getconf CLK_TCK`); fails when one has gone.
pub fn cpu_seconds(pids: &[u32]) -> anyhow::Result<f64> {
    let sample = crate::procstat::sample(pids);
    let ticks = sample
        .watched
        .with_context(|| format!("no CPU time of {pids:?} in /proc"))?;
    Ok(ticks as f64 / crate::procstat::clock_ticks() as f64)
}

/// The processes' resident memory summed (`VmRSS`), in KiB.
pub fn rss_kib(pids: &[u32]) -> anyhow::Result<u64> {
    let mut total = 0;
    for pid in pids {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .with_context(|| format!("process {pid} has gone"))?;
        total += vm_rss_kib(&status).with_context(|| format!("no VmRSS for {pid}"))?;
    }
    Ok(total)
}

/// `VmRSS` of a `/proc/PID/status` text, in KiB.
pub fn vm_rss_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A peer's configuration template, `bench/peers/NAME`: from the repository's root (the
/// working directory the scripts give the driver), else from the checkout this driver was
/// built in (its tests run in `bench/viewers`).
pub fn peer_file(name: &str) -> PathBuf {
    let here = Path::new("bench/peers").join(name);
    if here.is_file() {
        return here;
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../peers")
        .join(name)
}

/// `bench/peers/TEMPLATE` with every `@NAME@` replaced by its value (taken as it is);
/// fails, writing nothing, when a placeholder is left that no value fills
/// (bench/lib.sh's `bench_render`).
pub fn render(template: &Path, out: &Path, values: &[(&str, &str)]) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(template).with_context(|| template.display().to_string())?;
    let text = fill(&text, values).with_context(|| format!("rendering {}", template.display()))?;
    std::fs::write(out, text + "\n").with_context(|| out.display().to_string())
}

/// `text` with every `@NAME@` replaced; an error naming the first placeholder left.
pub fn fill(text: &str, values: &[(&str, &str)]) -> anyhow::Result<String> {
    let mut text = text.to_owned();
    for (name, value) in values {
        text = text.replace(&format!("@{name}@"), value);
    }
    if let Some(left) = placeholder(&text) {
        bail!("{left} is not given");
    }
    Ok(text)
}

/// The first `@NAME@` (`NAME` of `A-Z0-9_`, at least one) in `text`.
fn placeholder(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    let mut start = 0;
    while let Some(at) = text[start..].find('@').map(|i| i + start) {
        let name_len = bytes[at + 1..]
            .iter()
            .take_while(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || **b == b'_')
            .count();
        let end = at + 1 + name_len;
        if name_len > 0 && bytes.get(end) == Some(&b'@') {
            return Some(&text[at..=end]);
        }
        start = at + 1;
    }
    None
}

/// The body of `url` (`curl -sf`, at most `max_secs`), trusting `ca` for HTTPS when given;
/// `None` on any failure or a status of 400 and up.
pub fn get(url: &str, ca: Option<&Path>, max_secs: u32) -> Option<Vec<u8>> {
    let mut command = Command::new("curl");
    command.args(["-sf", "--max-time", &max_secs.to_string()]);
    if let Some(ca) = ca {
        command.arg("--cacert").arg(ca);
    }
    let out = command.arg(url).stderr(Stdio::null()).output().ok()?;
    out.status.success().then_some(out.stdout)
}

/// The URI of the last part a media playlist lists (the last `URI="…"` of its
/// `#EXT-X-PART:` lines, as the scripts' `grep | tail -1` found it).
pub fn last_part_uri(playlist: &str) -> Option<&str> {
    playlist
        .lines()
        .filter(|line| line.starts_with("#EXT-X-PART:"))
        .flat_map(|line| line.split("URI=\"").skip(1))
        .filter_map(|rest| rest.split_once('"').map(|(uri, _)| uri))
        .last()
}

/// The program `name` on the PATH, else `/usr/sbin/NAME` (Debian's servers live there).
pub fn program(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
        .unwrap_or_else(|| Path::new("/usr/sbin").join(name))
}

/// This process's limit of open files (`ulimit -n`; the script raised it to the hard
/// limit); an unlimited one as 1048576.
pub fn open_files_limit() -> anyhow::Result<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").context("/proc/self/limits")?;
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .context("no open files limit")?;
    let soft = line
        .split_whitespace()
        .nth(3)
        .context("no open files limit")?;
    Ok(soft.parse().unwrap_or(1_048_576))
}

/// Today, as `date +%F` prints it (`utc`: `date -u +%F`).
pub fn today(utc: bool) -> anyhow::Result<String> {
    let mut date = Command::new("date");
    if utc {
        date.arg("-u");
    }
    let out = date.arg("+%F").output().context("running date")?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// A progress line on standard error.
pub fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_replaces_every_placeholder_and_names_one_left() {
        let text = "listen @PORT@\nroot @ROOT@; # mail@example.com @ x@";
        let filled = fill(text, &[("PORT", "8080"), ("ROOT", "/srv/a&b")]).expect("filled");
        assert_eq!(
            filled,
            "listen 8080\nroot /srv/a&b; # mail@example.com @ x@"
        );
        let err = fill(text, &[("PORT", "8080")]).expect_err("@ROOT@ is left");
        assert!(err.to_string().contains("@ROOT@"), "{err}");
    }

    #[test]
    fn the_last_part_is_the_last_uri_of_the_part_lines() {
        let playlist = "#EXTM3U\n#EXT-X-PART:DURATION=0.333,URI=\"7.0.m4s\",INDEPENDENT=YES\n\
                        #EXT-X-PART:DURATION=0.333,URI=\"7.1.m4s\"\n\
                        #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"7.2.m4s\"\n";
        assert_eq!(last_part_uri(playlist), Some("7.1.m4s"));
        assert_eq!(last_part_uri("#EXTM3U\n#EXTINF:2,\n1.m4s\n"), None);
    }

    #[test]
    fn vm_rss_is_read_in_kib() {
        let status = "Name:\tnginx\nVmPeak:\t  9000 kB\nVmRSS:\t    4242 kB\nThreads:\t1\n";
        assert_eq!(vm_rss_kib(status), Some(4242));
        assert_eq!(vm_rss_kib("Name:\tx\n"), None);
    }

    #[test]
    fn a_work_stops_what_it_started_and_goes() {
        let mut work = Work::tmpfs("harness-test").expect("a work directory");
        let dir = work.dir().to_path_buf();
        let pid = work
            .start("sleeper", "0", Path::new("/bin/sleep"), ["60"], &[])
            .expect("sleep started");
        work.alive(pid, "sleeper").expect("sleep is alive");
        drop(work);
        assert!(!dir.exists());
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists() || {
                // A zombie's status says so; a live process's does not.
                std::fs::read_to_string(format!("/proc/{pid}/status"))
                    .is_ok_and(|s| s.contains("State:\tZ"))
            }
        );
    }
}
