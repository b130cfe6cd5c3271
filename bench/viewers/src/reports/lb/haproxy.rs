//! HAProxy's health checks, switched on and off through its stats socket (the runtime
//! API) while `bench/lb.sh` measures: each check opens a new backend connection, so they
//! are paused while our load balancer is measured and would otherwise count against its
//! backend connection reuse. `sealcast-bench haproxy-health SOCKET enable|disable`; it was
//! `bench/lib/reports/lb.py haproxy-health`, in git history before this module.
//!
//! One connection per command, as the Python made: HAProxy's socket, not in interactive
//! mode, answers one command and closes. std's Unix socket, blocking: two short exchanges
//! with a local process need no runtime.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};

/// The servers of the backend `nodes` (`bench/peers/haproxy/lb.cfg`).
const SERVERS: [&str; 2] = ["nodes/b1", "nodes/b2"];

/// How long HAProxy may take to answer a command (the Python waited for ever).
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// What to do with the health checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Health {
    /// Check the servers again.
    Enable,
    /// Stop checking them.
    Disable,
}

/// `enable health` or `disable health` for each server, in turn; fails on the first that
/// HAProxy answers with anything but a blank line (its answer said).
pub fn health(socket: &Path, health: Health) -> anyhow::Result<()> {
    let verb = match health {
        Health::Enable => "enable",
        Health::Disable => "disable",
    };
    for server in SERVERS {
        let answer = command(socket, &format!("{verb} health {server}\n"))?;
        let answer = answer.trim();
        if !answer.is_empty() {
            bail!("HAProxy: {answer}");
        }
    }
    Ok(())
}

/// HAProxy's whole answer to one command line.
fn command(socket: &Path, line: &str) -> anyhow::Result<String> {
    let at = || format!("HAProxy's socket {}", socket.display());
    let mut stream = UnixStream::connect(socket).with_context(at)?;
    stream
        .set_read_timeout(Some(ANSWER_WITHIN))
        .with_context(at)?;
    stream.write_all(line.as_bytes()).with_context(at)?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).with_context(at)?;
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::os::unix::net::UnixListener;

    /// A stand-in for HAProxy's socket in a directory of its own: it answers each command
    /// as `answer` says, once per connection, and gives back the commands it got.
    fn stand_in(
        answer: fn(&str) -> &'static str,
        commands: usize,
    ) -> (std::path::PathBuf, std::thread::JoinHandle<Vec<String>>) {
        let dir = std::env::temp_dir().join(format!(
            "sealcast-haproxy-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a directory");
        let socket = dir.join("haproxy.sock");
        let listener = UnixListener::bind(&socket).expect("a socket");
        let served = std::thread::spawn(move || {
            let mut got = Vec::new();
            for _ in 0..commands {
                let (stream, _) = listener.accept().expect("a connection");
                let mut line = String::new();
                BufReader::new(&stream)
                    .read_line(&mut line)
                    .expect("a line");
                (&stream)
                    .write_all(answer(&line).as_bytes())
                    .expect("an answer");
                got.push(line);
            }
            got
        });
        (socket, served)
    }

    /// HAProxy 2.6's answers, as a real one gave them: a blank line when done, `No such
    /// server.` and a blank line when the backend lacks the server.
    #[test]
    fn switches_both_servers_and_fails_on_an_answer() {
        let (socket, served) = stand_in(|_| "\n", 2);
        health(&socket, Health::Disable).expect("switched");
        let got = served.join().expect("served");
        assert_eq!(
            got,
            ["disable health nodes/b1\n", "disable health nodes/b2\n"]
        );

        let (socket, served) = stand_in(
            |line| {
                if line.ends_with("b2\n") {
                    "No such server.\n\n"
                } else {
                    "\n"
                }
            },
            2,
        );
        let error = health(&socket, Health::Enable).expect_err("refused");
        assert_eq!(error.to_string(), "HAProxy: No such server.");
        let got = served.join().expect("served");
        assert_eq!(
            got,
            ["enable health nodes/b1\n", "enable health nodes/b2\n"]
        );
        let _ = std::fs::remove_dir_all(socket.parent().expect("its directory"));
    }
}
