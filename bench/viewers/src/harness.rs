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
//! up` (every benchmark that runs it); [`peers`] the peers' servers (nginx
//! on a mirror of the node, HAProxy) from the configuration files in `bench/peers/`;
//! [`backends`] the static backends a load balancer under test is set in front of.
//!
//! Every wait is a condition polled every 0.1 s up to a deadline ([`wait_for`]); nothing
//! sleeps for a fixed time to let a process get ready.

pub mod backends;
pub mod cluster;
pub mod peers;
mod procfs;
pub mod relay;
pub mod up;

pub use procfs::{
    all_cores, cpu_seconds, cpu_seconds_between, cpu_ticks, rss_kib, settled, settled_rss_kib,
    vm_rss_kib,
};

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// How long [`Work::stop`] waits after SIGTERM before SIGKILL, where a script's
/// `kill; wait` waited without end.
pub const STOP_GRACE: Duration = Duration::from_secs(30);

/// The `cores` of [`Work::start`] that starts a process without `taskset`.
pub const UNPINNED: &str = "";

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
        if shm.is_dir() {
            Work::in_dir(shm, name)
        } else {
            Work::temp(name)
        }
    }

    /// A new directory `sealcast-NAME.*` in the system's temporary directory (`mktemp -d`,
    /// as bench/lib.sh's `bench_workdir` made it: on disk where `/tmp` is).
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
    /// (`taskset -c`: "0", "1", "0,1"; [`UNPINNED`]: not pinned, as
    /// [`Work::start_unpinned`]), its output in `NAME.out` and `NAME.err`; stopped with the
    /// `Work`. Returns its pid.
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
        let cores = (cores != UNPINNED).then_some(cores);
        self.spawn(name, cores, program, args, envs)
    }

    /// [`Work::start`] without pinning: the process may run on every core (a script's
    /// process started without `taskset`).
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

    /// Starts `program` (through `taskset -c CORES` when given cores).
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
        // Each start's logs are its own: a process started again under the same name (a
        // round's `up`) must not find its predecessor's ready lines.
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
        Ok(self.wait_status(pid)?.success())
    }

    /// Waits for the process `pid` started here to exit; how it exited.
    pub fn wait_status(&mut self, pid: u32) -> anyhow::Result<ExitStatus> {
        let Some(index) = self.procs.iter().position(|(_, c)| c.id() == pid) else {
            bail!("no process {pid} was started here");
        };
        let (_, mut child) = self.procs.remove(index);
        let status = child.wait()?;
        forget(pid);
        Ok(status)
    }

    /// Stops the processes `pids` started here (SIGTERM to each, then waits for each,
    /// SIGKILL to any still running after `grace`), as a script's `kill A B; wait A B`.
    pub fn stop(&mut self, pids: &[u32], grace: Duration) {
        for pid in pids {
            testkit::process::terminate(*pid);
        }
        let deadline = Instant::now() + grace;
        for pid in pids {
            let Some(index) = self.procs.iter().position(|(_, c)| c.id() == *pid) else {
                continue;
            };
            let (_, mut child) = self.procs.remove(index);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
            forget(*pid);
        }
    }

    /// The text of `NAME.out` (empty when there is none).
    pub fn out(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(format!("{name}.out"))).unwrap_or_default()
    }

    /// The second field of the first line of `NAME.out` that starts with `prefix` (a
    /// role's `NAME URL` line, as the scripts' `awk '/^NAME /{print $2}'` read it).
    pub fn out_field(&self, name: &str, prefix: &str) -> Option<String> {
        let text = std::fs::read_to_string(self.path(format!("{name}.out"))).ok()?;
        let line = text.lines().find(|l| l.starts_with(prefix))?;
        line.split_whitespace().nth(1).map(str::to_owned)
    }

    /// The pid of the process running here that was started as `name` (the last one).
    pub fn pid(&self, name: &str) -> Option<u32> {
        self.procs
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, child)| child.id())
    }

    /// Whether a line of `NAME.out` starts with `prefix`.
    pub fn out_has_line(&self, name: &str, prefix: &str) -> bool {
        std::fs::read_to_string(self.path(format!("{name}.out")))
            .is_ok_and(|text| text.lines().any(|l| l.starts_with(prefix)))
    }

    /// The last 5 lines of every non-empty `*.err` here or in a directory here (a start
    /// named `DIR/NAME`), each under its path in the directory: what a failure prints (the
    /// directory goes with the run).
    pub fn logs(&self) -> String {
        let list = |dir: &Path| -> Vec<PathBuf> {
            std::fs::read_dir(dir)
                .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
                .unwrap_or_default()
        };
        let mut files = list(&self.dir);
        let dirs: Vec<PathBuf> = files.iter().filter(|f| f.is_dir()).cloned().collect();
        for dir in dirs {
            files.extend(list(&dir));
        }
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
            let name = file
                .strip_prefix(&self.dir)
                .unwrap_or(&file)
                .to_string_lossy();
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
        // SEALCAST_BENCH_KEEP=1 keeps the run's directory (logs, configurations) to look
        // into a run that went wrong.
        if std::env::var_os("SEALCAST_BENCH_KEEP").is_some_and(|v| !v.is_empty()) {
            say(&format!("kept the run's directory: {}", self.dir.display()));
            return;
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

/// Runs this program (the driver) with `args`, its standard output into `out` (its errors
/// on ours), as a script ran `"$DRIVER" sample … > OUT`; whether it succeeded.
pub fn driver_to(args: &[&OsStr], out: &Path) -> anyhow::Result<bool> {
    let me = std::env::current_exe().context("this program's path")?;
    let file = File::create(out).with_context(|| out.display().to_string())?;
    let mut command = Command::new(me);
    clean_env(&mut command);
    let status = command
        .args(args)
        .stdin(Stdio::null())
        .stdout(file)
        .status()
        .context("running the driver")?;
    Ok(status.success())
}

/// The systems in the order run `run` (from 1) measures them: rotated by one each run, so
/// each leads once in every `systems.len()` runs (the scripts' interleaving).
pub fn rotation<T>(systems: &[T], run: u64) -> impl Iterator<Item = &T> {
    let shift = usize::try_from(run.saturating_sub(1)).unwrap_or(0) % systems.len().max(1);
    systems[shift..].iter().chain(&systems[..shift])
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

/// A directory or file of the repository, `PATH` from its root, as an absolute path: from
/// the working directory (the repository's root, as the scripts give the driver), else
/// from the checkout this driver was built in.
pub fn repo_path(path: &str) -> anyhow::Result<PathBuf> {
    let here = std::env::current_dir()
        .context("the working directory")?
        .join(path);
    if here.exists() {
        return Ok(here);
    }
    let built = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path);
    built
        .canonicalize()
        .with_context(|| format!("no {path} here or at {}", built.display()))
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

/// What `program FLAG` printed, standard output then standard error, without the trailing
/// newlines (`"$(nginx -v 2>&1 || true)"`); empty when it could not run.
pub fn version(program: &Path, flag: &str) -> String {
    Command::new(program)
        .arg(flag)
        .output()
        .map(|o| {
            let mut text = String::from_utf8_lossy(&o.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&o.stderr));
            text.trim_end_matches('\n').to_owned()
        })
        .unwrap_or_default()
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
    fn each_system_leads_in_turn() {
        let systems = ["a", "b", "c"];
        let order = |run| rotation(&systems, run).copied().collect::<Vec<_>>();
        assert_eq!(order(1), ["a", "b", "c"]);
        assert_eq!(order(2), ["b", "c", "a"]);
        assert_eq!(order(3), ["c", "a", "b"]);
        assert_eq!(order(4), ["a", "b", "c"]);
        assert_eq!(rotation::<&str>(&[], 2).count(), 0);
    }

    #[test]
    fn vm_rss_is_read_in_kib() {
        let status = "Name:\tnginx\nVmPeak:\t  9000 kB\nVmRSS:\t    4242 kB\nThreads:\t1\n";
        assert_eq!(vm_rss_kib(status), Some(4242));
        assert_eq!(vm_rss_kib("Name:\tx\n"), None);
    }

    #[test]
    fn memory_settles_when_the_last_samples_lie_within_one_percent() {
        assert!(!settled(&[1000, 1000], 3));
        assert!(settled(&[500, 1000, 995, 990], 3));
        assert!(!settled(&[1000, 989, 1000], 3));
        // The bound is hi / 100 in whole KiB, as the script's shell arithmetic had it.
        assert!(settled(&[199, 198], 2));
        assert!(!settled(&[199, 197], 2));
        assert!(settled(&[7], 0));
    }

    #[test]
    fn the_logs_are_every_start_s_here_and_in_a_directory_here() {
        let mut work = Work::tmpfs("harness-logs").expect("a work directory");
        std::fs::create_dir_all(work.path("sub/deeper")).expect("sub");
        for (name, line) in [("top", "top failed"), ("sub/up", "up failed")] {
            let pid = work
                .start_unpinned(
                    name,
                    Path::new("/bin/sh"),
                    ["-c", &format!("echo {line} >&2")],
                    &[],
                )
                .expect("sh started");
            assert!(work.wait(pid).expect("sh ended"));
        }
        std::fs::write(work.path("sub/deeper/x.err"), "too deep\n").expect("x.err");
        let logs = work.logs();
        assert!(
            logs.contains("--- top.err (last lines)\ntop failed"),
            "{logs}"
        );
        assert!(
            logs.contains("--- sub/up.err (last lines)\nup failed"),
            "{logs}"
        );
        assert!(
            !logs.contains("too deep") && !logs.contains("top.out"),
            "{logs}"
        );
    }

    #[test]
    fn a_work_stops_what_it_started_and_goes() {
        let mut work = Work::tmpfs("harness-test").expect("a work directory");
        let dir = work.dir().to_path_buf();
        let pid = work
            .start("sleeper", "0", Path::new("/bin/sleep"), ["60"], &[])
            .expect("sleep started");
        work.alive(pid, "sleeper").expect("sleep is alive");
        let unpinned = work
            .start("unpinned", UNPINNED, Path::new("/bin/sleep"), ["60"], &[])
            .expect("sleep started without taskset");
        assert_eq!(work.pid("unpinned"), Some(unpinned));
        // Not under taskset: the process is sleep itself (its name set once exec is done,
        // a moment after spawn returns).
        let comm = || std::fs::read_to_string(format!("/proc/{unpinned}/comm")).unwrap_or_default();
        assert!(
            wait_for(Duration::from_secs(5), || comm().trim() == "sleep"),
            "{:?}",
            comm()
        );
        work.stop(&[unpinned], Duration::from_secs(30));
        assert_eq!(work.pid("unpinned"), None);
        assert!(work.alive(unpinned, "unpinned").is_err());
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
