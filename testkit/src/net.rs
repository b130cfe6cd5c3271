//! Ports: nothing in the tests listens on a fixed one.

use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Result};

/// A free TCP port of 127.0.0.1 (bound to port 0, read, released), for programs that
/// cannot bind port 0 and say which port they got (PostgreSQL, Mosquitto). Nothing
/// listens there when this returns, so it also serves as a port that refuses connections.
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// A free UDP port on every address (bound to 0.0.0.0:0, read, released), for a container
/// port published on the host (SRT, WebRTC).
pub fn free_udp_port() -> Result<u16> {
    let socket = UdpSocket::bind("0.0.0.0:0")?;
    Ok(socket.local_addr()?.port())
}

/// A port number free on both UDP and TCP (for a service that takes both, as WHIP's media
/// port with ICE-TCP), as [`free_udp_port`] finds one.
pub fn free_udp_and_tcp_port() -> Result<u16> {
    for _ in 0..32 {
        let socket = UdpSocket::bind("0.0.0.0:0")?;
        let port = socket.local_addr()?.port();
        if TcpListener::bind(("0.0.0.0", port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no port free on both UDP and TCP in 32 tries")
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

/// A TCP relay from a loopback port to a server, which a test cuts, stalls and restores.
/// Point a client at [`Relay::addr`] instead of the server.
///
/// - [`Relay::cut`]: the connections through it are closed and new ones refused, as while
///   the server behind it restarts.
/// - [`Relay::stall`]: nothing passes either way and nobody is told: connections stay
///   open and new ones are accepted, but no byte moves until [`Relay::restore`], as when a
///   link goes down or a server hangs. A relay made with [`Relay::start_selective`] stalls
///   only the connections whose first bytes its selector picks (the pushes among HTTP
///   requests, say); the others flow on.
#[derive(Debug)]
pub struct Relay {
    addr: SocketAddr,
    to: SocketAddr,
    /// Which connections a stall holds, from the first bytes the client sent.
    selector: fn(&[u8]) -> bool,
    /// True while stalled.
    stalled: tokio::sync::watch::Sender<bool>,
    /// Set while it relays: closing the channel stops the accept loop and every connection.
    running: Option<(tokio::sync::watch::Sender<()>, tokio::task::JoinHandle<()>)>,
}

impl Relay {
    /// A relay to `to` on a free loopback port, relaying; a stall holds every connection.
    pub async fn start(to: SocketAddr) -> Result<Self> {
        Self::start_selective(to, |_| true).await
    }

    /// A relay whose stalls hold only the connections whose first bytes `selector` picks.
    pub async fn start_selective(to: SocketAddr, selector: fn(&[u8]) -> bool) -> Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let mut relay = Relay {
            addr: listener.local_addr()?,
            to,
            selector,
            stalled: tokio::sync::watch::Sender::new(false),
            running: None,
        };
        relay.run(listener);
        Ok(relay)
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Closes every connection through the relay and refuses new ones.
    pub async fn cut(&mut self) {
        if let Some((stop, task)) = self.running.take() {
            drop(stop);
            let _ = task.await;
        }
    }

    /// Holds every byte of the selected connections, old and new, until [`Relay::restore`].
    pub fn stall(&self) {
        self.stalled.send_replace(true);
    }

    /// Relays again, on the same port, after a cut or a stall (a stalled connection goes on
    /// where it stopped).
    pub async fn restore(&mut self) -> Result<()> {
        self.stalled.send_replace(false);
        if self.running.is_none() {
            let listener = tokio::net::TcpListener::bind(self.addr).await?;
            self.run(listener);
        }
        Ok(())
    }

    fn run(&mut self, listener: tokio::net::TcpListener) {
        let (stop, stopped) = tokio::sync::watch::channel(());
        let (to, selector) = (self.to, self.selector);
        let stalled = self.stalled.subscribe();
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            let mut accept_stopped = stopped.clone();
            loop {
                let inbound = tokio::select! {
                    _ = accept_stopped.changed() => break,
                    accepted = listener.accept() => match accepted {
                        Ok((inbound, _)) => inbound,
                        Err(_) => continue,
                    },
                };
                let mut stopped = stopped.clone();
                let stalled = stalled.clone();
                connections.spawn(async move {
                    tokio::select! {
                        _ = stopped.changed() => {}
                        _ = relay_one(inbound, to, selector, stalled) => {}
                    }
                });
            }
            drop(listener);
            // Dropping the set aborts what is left; the sockets close with their tasks.
            connections.abort_all();
            while connections.join_next().await.is_some() {}
        });
        self.running = Some((stop, task));
    }
}

/// Relays one connection: its first bytes decide (`selector`) whether stalls hold it;
/// then bytes are copied both ways, never while a stall holds it, until either side
/// closes.
async fn relay_one(
    mut inbound: tokio::net::TcpStream,
    to: SocketAddr,
    selector: fn(&[u8]) -> bool,
    mut stalled: tokio::sync::watch::Receiver<bool>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut from_client = vec![0u8; 16 * 1024];
    let mut from_server = vec![0u8; 16 * 1024];
    // The first bytes decide; reading them passes nothing on.
    let Ok(first @ 1..) = inbound.read(&mut from_client).await else {
        return;
    };
    let held = selector(&from_client[..first]);
    // A held connection does not even reach the server while stalled.
    if held && stalled.wait_for(|s| !s).await.is_err() {
        return;
    }
    let Ok(mut outbound) = tokio::net::TcpStream::connect(to).await else {
        return;
    };
    let mut pending = first;
    loop {
        if held && stalled.wait_for(|s| !s).await.is_err() {
            return;
        }
        if pending > 0 {
            if outbound.write_all(&from_client[..pending]).await.is_err() {
                return;
            }
            pending = 0;
        }
        tokio::select! {
            read = inbound.read(&mut from_client) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => pending = n,
            },
            read = outbound.read(&mut from_server) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if held && *stalled.borrow() {
                        // Held: it reaches the client when the stall ends.
                        if stalled.wait_for(|s| !s).await.is_err() {
                            return;
                        }
                    }
                    if inbound.write_all(&from_server[..n]).await.is_err() {
                        return;
                    }
                }
            },
            changed = stalled.changed(), if held => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some((_, task)) = self.running.take() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// An echo server on a free loopback port.
    async fn echo() -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("test I/O");
        let addr = listener.local_addr().expect("test I/O");
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = socket.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    async fn roundtrip(socket: &mut tokio::net::TcpStream, bytes: &[u8]) -> Vec<u8> {
        socket.write_all(bytes).await.expect("test I/O");
        let mut back = vec![0; bytes.len()];
        socket.read_exact(&mut back).await.expect("test I/O");
        back
    }

    /// How long a held connection is watched for bytes that must not come.
    const QUIET: Duration = Duration::from_millis(300);

    #[tokio::test]
    async fn a_stall_holds_the_selected_connections_and_restore_lets_them_go_on() {
        let mut relay = Relay::start_selective(echo().await, |first| first.starts_with(b"PUT"))
            .await
            .expect("test I/O");
        let mut push = tokio::net::TcpStream::connect(relay.addr())
            .await
            .expect("test I/O");
        let mut view = tokio::net::TcpStream::connect(relay.addr())
            .await
            .expect("test I/O");
        assert_eq!(roundtrip(&mut push, b"PUT 1").await, b"PUT 1");
        assert_eq!(roundtrip(&mut view, b"GET 1").await, b"GET 1");

        relay.stall();
        // The other kind flows on, on old and new connections.
        assert_eq!(roundtrip(&mut view, b"GET 2").await, b"GET 2");
        let mut new_view = tokio::net::TcpStream::connect(relay.addr())
            .await
            .expect("test I/O");
        assert_eq!(roundtrip(&mut new_view, b"GET 3").await, b"GET 3");
        // A held connection, old or new, gets nothing back and is not closed.
        push.write_all(b"PUT 2").await.expect("test I/O");
        let mut new_push = tokio::net::TcpStream::connect(relay.addr())
            .await
            .expect("test I/O");
        new_push.write_all(b"PUT 3").await.expect("test I/O");
        let mut buf = [0u8; 5];
        assert!(tokio::time::timeout(QUIET, push.read(&mut buf))
            .await
            .is_err());
        assert!(tokio::time::timeout(QUIET, new_push.read(&mut buf))
            .await
            .is_err());

        relay.restore().await.expect("test I/O");
        push.read_exact(&mut buf).await.expect("test I/O");
        assert_eq!(&buf, b"PUT 2");
        new_push.read_exact(&mut buf).await.expect("test I/O");
        assert_eq!(&buf, b"PUT 3");
    }

    #[tokio::test]
    async fn a_cut_closes_connections_and_refuses_new_ones_until_restored() {
        let mut relay = Relay::start(echo().await).await.expect("test I/O");
        let mut before = tokio::net::TcpStream::connect(relay.addr())
            .await
            .expect("test I/O");
        assert_eq!(roundtrip(&mut before, b"a").await, b"a");
        relay.cut().await;
        let mut buf = [0u8; 1];
        assert_eq!(before.read(&mut buf).await.unwrap_or(0), 0, "closed");
        assert!(tokio::net::TcpStream::connect(relay.addr()).await.is_err());
        relay.restore().await.expect("test I/O");
        let mut after = tokio::net::TcpStream::connect(relay.addr())
            .await
            .expect("test I/O");
        assert_eq!(roundtrip(&mut after, b"b").await, b"b");
    }
}
