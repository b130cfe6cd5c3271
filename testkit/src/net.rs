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

/// A TCP relay from a loopback port to a server, which a test cuts and restores: while
/// cut, the connections through it are closed and new ones refused, as while the server
/// behind it restarts. Point a client at [`Relay::addr`] instead of the server.
#[derive(Debug)]
pub struct Relay {
    addr: SocketAddr,
    to: SocketAddr,
    /// Set while it relays: closing the channel stops the accept loop and every connection.
    running: Option<(tokio::sync::watch::Sender<()>, tokio::task::JoinHandle<()>)>,
}

impl Relay {
    /// A relay to `to` on a free loopback port, relaying.
    pub async fn start(to: SocketAddr) -> Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let mut relay = Relay {
            addr: listener.local_addr()?,
            to,
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

    /// Relays again, on the same port.
    pub async fn restore(&mut self) -> Result<()> {
        if self.running.is_none() {
            let listener = tokio::net::TcpListener::bind(self.addr).await?;
            self.run(listener);
        }
        Ok(())
    }

    fn run(&mut self, listener: tokio::net::TcpListener) {
        let (stop, stopped) = tokio::sync::watch::channel(());
        let to = self.to;
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            let mut accept_stopped = stopped.clone();
            loop {
                let mut inbound = tokio::select! {
                    _ = accept_stopped.changed() => break,
                    accepted = listener.accept() => match accepted {
                        Ok((inbound, _)) => inbound,
                        Err(_) => continue,
                    },
                };
                let mut stopped = stopped.clone();
                connections.spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(to).await else {
                        return;
                    };
                    tokio::select! {
                        _ = stopped.changed() => {}
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
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

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some((_, task)) = self.running.take() {
            task.abort();
        }
    }
}
