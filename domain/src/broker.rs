//! Where the MQTT brokers are: `mqtt://[user[:password]@]host[:port][,host[:port]...]`,
//! parsed once. Several hosts name independent brokers of one cluster that share users and
//! ACLs: a client keeps a connection to each (`plumbing::bus`), so losing one costs
//! nothing. The password is a secret: it is never displayed or debug-printed.

use std::fmt;
use std::str::FromStr;

use crate::DomainError;

/// The default MQTT port.
pub const DEFAULT_PORT: u16 = 1883;

/// The most brokers one address may name: each is a connection of every client.
pub const MAX_BROKERS: usize = 8;

/// One or more brokers with optional credentials (the same for each).
#[derive(Clone, PartialEq, Eq)]
pub struct BrokerAddress {
    /// `(host, port)` of each broker, in the order given; never empty, no repeats.
    servers: Vec<(String, u16)>,
    username: Option<String>,
    password: Option<String>,
}

impl BrokerAddress {
    /// A broker at `host:port` without credentials.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        BrokerAddress {
            servers: vec![(host.into(), port)],
            username: None,
            password: None,
        }
    }

    /// The same brokers and `host:port` besides (a repeat changes nothing).
    pub fn with_server(mut self, host: impl Into<String>, port: u16) -> Self {
        let server = (host.into(), port);
        if !self.servers.contains(&server) {
            self.servers.push(server);
        }
        self
    }

    /// One address per broker, each with the credentials: what one connection uses.
    pub fn split(&self) -> Vec<BrokerAddress> {
        self.servers
            .iter()
            .map(|server| BrokerAddress {
                servers: vec![server.clone()],
                username: self.username.clone(),
                password: self.password.clone(),
            })
            .collect()
    }

    /// How many brokers the address names (one or more).
    pub fn len(&self) -> usize {
        self.servers.len()
    }

    /// Always false: an address names at least one broker (for clippy's `len` rule).
    pub fn is_empty(&self) -> bool {
        self.servers.is_empty()
    }

    /// The same broker with credentials.
    pub fn with_credentials(mut self, username: String, password: String) -> Self {
        self.username = Some(username);
        self.password = Some(password);
        self
    }

    /// Host name or IP address of the first broker (IPv6 without brackets).
    pub fn host(&self) -> &str {
        self.servers.first().map_or("", |(host, _)| host.as_str())
    }

    /// TCP port of the first broker.
    pub fn port(&self) -> u16 {
        self.servers.first().map_or(DEFAULT_PORT, |(_, port)| *port)
    }

    /// User name and password, if any.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        Some((
            self.username.as_deref()?,
            self.password.as_deref().unwrap_or(""),
        ))
    }
}

fn invalid(reason: &'static str) -> DomainError {
    DomainError::InvalidBrokerAddress { reason }
}

/// One `host[:port]` of the list.
fn server(hostport: &str) -> Result<(String, u16), DomainError> {
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or(invalid("unclosed [ in the host"))?;
        (host, after.strip_prefix(':'))
    } else {
        match hostport.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if host.is_empty()
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:_".contains(&b))
    {
        return Err(invalid(
            "the host is empty or has characters a host name cannot",
        ));
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or(invalid("the port is not a number from 1 to 65535"))?,
    };
    Ok((host.to_owned(), port))
}

impl FromStr for BrokerAddress {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, DomainError> {
        let rest = s
            .strip_prefix("mqtt://")
            .ok_or(invalid("it must start with mqtt://"))?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let (userinfo, hostport) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        let mut servers: Vec<(String, u16)> = Vec::new();
        for hostport in hostport.split(',') {
            let server = server(hostport)?;
            if servers.contains(&server) {
                return Err(invalid("a broker is named twice"));
            }
            servers.push(server);
        }
        if servers.len() > MAX_BROKERS {
            return Err(invalid("more than 8 brokers"));
        }
        let mut address = BrokerAddress {
            servers,
            username: None,
            password: None,
        };
        if let Some(userinfo) = userinfo {
            let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
            if user.is_empty() || userinfo.contains('/') {
                return Err(invalid("the user name is empty"));
            }
            address = address.with_credentials(user.to_owned(), password.to_owned());
        }
        Ok(address)
    }
}

impl fmt::Display for BrokerAddress {
    /// `mqtt://user:***@host:port[,host:port...]`: the password never appears.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("mqtt://")?;
        if let Some(user) = &self.username {
            write!(f, "{user}:***@")?;
        }
        for (i, (host, port)) in self.servers.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if host.contains(':') {
                write!(f, "[{host}]:{port}")?;
            } else {
                write!(f, "{host}:{port}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for BrokerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BrokerAddress({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_usual_shapes() {
        let a: BrokerAddress = "mqtt://127.0.0.1:1884".parse().expect("parses");
        assert_eq!(
            (a.host(), a.port(), a.credentials()),
            ("127.0.0.1", 1884, None)
        );
        let a: BrokerAddress = "mqtt://mosquitto".parse().expect("parses");
        assert_eq!(a.port(), DEFAULT_PORT);
        let a: BrokerAddress = "mqtt://edge:s3cret@mosquitto:1883".parse().expect("parses");
        assert_eq!(a.credentials(), Some(("edge", "s3cret")));
        let a: BrokerAddress = "mqtt://[::1]:1883".parse().expect("parses");
        assert_eq!(a.host(), "::1");
        assert_eq!(a.to_string(), "mqtt://[::1]:1883");
    }

    #[test]
    fn parses_several_brokers_with_one_login() {
        let a: BrokerAddress = "mqtt://edge:s3,cr@t@mosquitto:1883,mosquitto2,[::1]:1999"
            .parse()
            .expect("parses");
        assert_eq!(a.len(), 3);
        assert_eq!((a.host(), a.port()), ("mosquitto", 1883));
        assert_eq!(a.credentials(), Some(("edge", "s3,cr@t")));
        let each: Vec<String> = a.split().iter().map(ToString::to_string).collect();
        assert_eq!(
            each,
            [
                "mqtt://edge:***@mosquitto:1883",
                "mqtt://edge:***@mosquitto2:1883",
                "mqtt://edge:***@[::1]:1999"
            ]
        );
        assert!(a.split().iter().all(|b| b.credentials() == a.credentials()));
        assert_eq!(
            a.to_string(),
            "mqtt://edge:***@mosquitto:1883,mosquitto2:1883,[::1]:1999"
        );
        assert_eq!(
            a.to_string().parse::<BrokerAddress>().map(|b| b.len()),
            Ok(3)
        );
        let built = BrokerAddress::new("a", 1)
            .with_server("b", 2)
            .with_server("a", 1);
        assert_eq!(built.to_string(), "mqtt://a:1,b:2");
    }

    #[test]
    fn never_shows_the_password() {
        let a: BrokerAddress = "mqtt://edge:s3cret@mosquitto:1883,m2"
            .parse()
            .expect("parses");
        assert!(!a.to_string().contains("s3cret"));
        assert!(!format!("{a:?}").contains("s3cret"));
        assert!(a
            .split()
            .iter()
            .all(|b| !format!("{b} {b:?}").contains("s3cret")));
    }

    #[test]
    fn refuses_junk() {
        for bad in [
            "127.0.0.1:1883",
            "http://h",
            "mqtt://",
            "mqtt://h:0",
            "mqtt://h:99999",
            "mqtt://h:x",
            "mqtt://h o",
            "mqtt://:pw@h",
            "mqtt://[::1",
            "mqtt://a,",
            "mqtt://,a",
            "mqtt://a:1883,a",
            "mqtt://a,b,c,d,e,f,g,h,i",
            "mqtt://u:p@a,b o",
        ] {
            assert!(bad.parse::<BrokerAddress>().is_err(), "{bad}");
        }
    }
}
