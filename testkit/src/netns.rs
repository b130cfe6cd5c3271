//! Network faults for real: a network namespace the test creates, joined to this one by
//! veth pairs on addresses the test chooses, whose links the test takes down and up
//! again. A process started with [`Netns::exec_prefix`] in front of its command line
//! reaches the rest of the machine only through those links. Everything is removed when
//! the [`Netns`] is dropped. Needs root (CAP_NET_ADMIN), as CI has.

use std::process::Command;

use anyhow::{ensure, Context, Result};

/// Debian's `ip` (iproute2).
pub const IP_BIN: &str = "/usr/sbin/ip";

/// A network namespace and the veth pairs into it.
#[derive(Debug)]
pub struct Netns {
    name: String,
    /// The host-side names of the veth pairs (deleting one deletes its peer).
    links: Vec<String>,
}

/// Runs `ip args...`; an error with ip's own words if it fails.
fn ip(args: &[&str]) -> Result<()> {
    let output = Command::new(IP_BIN)
        .args(args)
        .output()
        .with_context(|| format!("running {IP_BIN}"))?;
    ensure!(
        output.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(())
}

impl Netns {
    /// Creates namespace `name` (removing a leftover of that name first) with its loopback
    /// up.
    pub fn create(name: &str) -> Result<Self> {
        let _ = ip(&["netns", "del", name]);
        ip(&["netns", "add", name])?;
        let ns = Netns {
            name: name.to_owned(),
            links: Vec::new(),
        };
        ip(&["-n", name, "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// Adds a veth pair: `host` here with `host_addr` (CIDR, `10.231.0.1/30`), its peer
    /// inside the namespace with `inside_addr`; both up. Interface names are at most 15
    /// bytes.
    pub fn veth(&mut self, host: &str, host_addr: &str, inside_addr: &str) -> Result<()> {
        let inside = format!("{host}n");
        let _ = ip(&["link", "del", host]);
        ip(&["link", "add", host, "type", "veth", "peer", "name", &inside])?;
        self.links.push(host.to_owned());
        ip(&["link", "set", &inside, "netns", &self.name])?;
        ip(&["addr", "add", host_addr, "dev", host])?;
        ip(&["link", "set", host, "up"])?;
        ip(&["-n", &self.name, "addr", "add", inside_addr, "dev", &inside])?;
        ip(&["-n", &self.name, "link", "set", &inside, "up"])?;
        Ok(())
    }

    /// Takes the host side of link `host` down (the cut: nothing passes either way, and
    /// nothing tells either end) or up again.
    pub fn set_link(&self, host: &str, up: bool) -> Result<()> {
        ip(&["link", "set", host, if up { "up" } else { "down" }])
    }

    /// What to put before a command line to run it inside the namespace:
    /// `ip netns exec NAME` (ip execs the command: its pid is the command's).
    pub fn exec_prefix(&self) -> [&str; 4] {
        [IP_BIN, "netns", "exec", &self.name]
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for link in &self.links {
            let _ = ip(&["link", "del", link]);
        }
        let _ = ip(&["netns", "del", &self.name]);
    }
}

/// Forwards every TCP connection accepted on `listener` to `to`, both ways, until the
/// task is aborted: a broker address that a process inside a namespace can reach.
pub async fn forward(listener: tokio::net::TcpListener, to: std::net::SocketAddr) {
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            continue;
        };
        tokio::spawn(async move {
            if let Ok(mut outbound) = tokio::net::TcpStream::connect(to).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}
