//! The embedded broker of `sealcast up`: rumqttd on a loopback address, in-memory, with
//! retained messages, last wills and persistent sessions. With a login, it takes only
//! clients that present it (user name and password, compared in constant time): a local
//! process without the cluster's credentials cannot announce a node or read a statement.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use domain::broker::BrokerAddress;
use rumqttd::{Config, ConnectionSettings, RouterConfig, ServerSettings};

use crate::PlumbingError;

/// A running embedded broker. It runs on its own threads until the process exits (rumqttd
/// has no stop).
#[derive(Debug)]
pub struct EmbeddedBroker {
    addr: SocketAddr,
    login: Option<(String, String)>,
}

/// The user name of the embedded broker's one login.
pub const EMBEDDED_BROKER_USER: &str = "sealcast";

impl EmbeddedBroker {
    /// Starts a broker on `listen` (port 0: a free port) that takes anyone, and returns once
    /// it accepts connections. For tests; `sealcast up` runs [`EmbeddedBroker::start_with_login`].
    pub fn start(listen: SocketAddr) -> Result<Self, PlumbingError> {
        Self::start_inner(listen, None)
    }

    /// Starts a broker on `listen` that takes only clients logging in as `user` with
    /// `password`.
    pub fn start_with_login(
        listen: SocketAddr,
        user: &str,
        password: &str,
    ) -> Result<Self, PlumbingError> {
        Self::start_inner(listen, Some((user.to_owned(), password.to_owned())))
    }

    fn start_inner(
        listen: SocketAddr,
        login: Option<(String, String)>,
    ) -> Result<Self, PlumbingError> {
        let addr = if listen.port() == 0 {
            // rumqttd cannot report the port it bound, so pick one first.
            let probe = TcpListener::bind(listen).map_err(PlumbingError::Port)?;
            probe.local_addr().map_err(PlumbingError::Port)?
        } else {
            listen
        };
        let connections = ConnectionSettings {
            connection_timeout_ms: 5000,
            max_payload_size: 1024 * 1024,
            max_inflight_count: 500,
            auth: login.clone().map(|(u, p)| HashMap::from([(u, p)])),
            external_auth: None,
            dynamic_filters: true,
        };
        let server = ServerSettings {
            name: "v4-loopback".into(),
            listen: addr,
            tls: None,
            next_connection_delay_ms: 1,
            connections,
        };
        let config = Config {
            id: 0,
            router: RouterConfig {
                max_connections: 10_000,
                max_outgoing_packet_count: 2000,
                max_segment_size: 64 * 1024 * 1024,
                max_segment_count: 4,
                custom_segment: None,
                initialized_filters: None,
                shared_subscriptions_strategy: Default::default(),
            },
            v4: Some(HashMap::from([("1".to_owned(), server)])),
            v5: None,
            ws: None,
            cluster: None,
            console: None,
            bridge: None,
            prometheus: None,
            metrics: None,
        };
        let mut broker = rumqttd::Broker::new(config);
        std::thread::Builder::new()
            .name("mqtt-broker".into())
            .spawn(move || {
                if let Err(e) = broker.start() {
                    tracing::error!(error = %e, "the embedded MQTT broker stopped");
                }
            })
            .map_err(|e| PlumbingError::Broker(e.to_string()))?;
        // Ready once it completes an MQTT handshake.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if handshake(addr, login.as_ref()).is_ok() {
                return Ok(EmbeddedBroker { addr, login });
            }
            if Instant::now() > deadline {
                return Err(PlumbingError::Broker(format!("nothing listens on {addr}")));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Where it listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address clients connect to, with the login if there is one.
    pub fn address(&self) -> BrokerAddress {
        let address = BrokerAddress::new(self.addr.ip().to_string(), self.addr.port());
        match &self.login {
            Some((user, password)) => address.with_credentials(user.clone(), password.clone()),
            None => address,
        }
    }
}

/// CONNECT (MQTT 3.1.1, clean session, client id `probe`, with `login` if given), CONNACK,
/// DISCONNECT: proves the broker serves MQTT, and leaves it nothing to complain about in
/// its log.
fn handshake(addr: SocketAddr, login: Option<&(String, String)>) -> std::io::Result<()> {
    use std::io::{Read, Write};
    fn field(body: &mut Vec<u8>, value: &[u8]) -> std::io::Result<()> {
        let len = u16::try_from(value.len()).map_err(std::io::Error::other)?;
        body.extend_from_slice(&len.to_be_bytes());
        body.extend_from_slice(value);
        Ok(())
    }
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 10];
    field(&mut body, b"probe")?;
    if let Some((user, password)) = login {
        body[7] |= 0xC0; // user name and password present
        field(&mut body, user.as_bytes())?;
        field(&mut body, password.as_bytes())?;
    }
    // Remaining length as MQTT's variable-length integer.
    let mut connect = vec![0x10];
    let mut len = body.len();
    loop {
        let byte = (len % 128) as u8;
        len /= 128;
        connect.push(if len > 0 { byte | 0x80 } else { byte });
        if len == 0 {
            break;
        }
    }
    connect.extend_from_slice(&body);
    let mut socket = TcpStream::connect_timeout(&addr, Duration::from_millis(200))?;
    socket.set_read_timeout(Some(Duration::from_millis(500)))?;
    socket.write_all(&connect)?;
    let mut connack = [0u8; 4];
    socket.read_exact(&mut connack)?;
    if connack[0] != 0x20 || connack[3] != 0 {
        return Err(std::io::Error::other("not accepted"));
    }
    socket.write_all(&[0xE0, 0])
}
