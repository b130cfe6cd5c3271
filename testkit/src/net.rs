//! Ports: nothing in the tests listens on a fixed one.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Result};

/// A free TCP port of 127.0.0.1 (bound to port 0, read, released), for programs that
/// cannot bind port 0 and say which port they got (PostgreSQL, Mosquitto). Nothing
/// listens there when this returns, so it also serves as a port that refuses connections.
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Polls until 127.0.0.1:`port` accepts a connection, `deadline` passes, or `gone` says
/// the server exited (and why).
pub fn wait_for_tcp(
    port: u16,
    deadline: Instant,
    mut gone: impl FnMut() -> Option<String>,
) -> Result<()> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if let Some(why) = gone() {
            bail!("{why} before accepting connections on {addr}");
        }
        ensure!(
            Instant::now() < deadline,
            "nothing accepted connections on {addr} in time"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
