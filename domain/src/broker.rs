//! Where the MQTT broker is: `mqtt://[user[:password]@]host[:port]`, parsed once. The
//! password is a secret: it is never displayed or debug-printed.

use std::fmt;
use std::str::FromStr;

use crate::DomainError;

/// The default MQTT port.
pub const DEFAULT_PORT: u16 = 1883;

/// A broker address with optional credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct BrokerAddress {
    host: String,
    port: u16,
    username: Option<String>,
    password: Option<String>,
}

impl BrokerAddress {
    /// A broker at `host:port` without credentials.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        BrokerAddress {
            host: host.into(),
            port,
            username: None,
            password: None,
        }
    }

    /// The same broker with credentials.
    pub fn with_credentials(mut self, username: String, password: String) -> Self {
        self.username = Some(username);
        self.password = Some(password);
        self
    }

    /// Host name or IP address (IPv6 without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// TCP port.
    pub fn port(&self) -> u16 {
        self.port
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
        let mut address = BrokerAddress::new(host, port);
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
    /// `mqtt://user:***@host:port`: the password never appears.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("mqtt://")?;
        if let Some(user) = &self.username {
            write!(f, "{user}:***@")?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
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
    fn never_shows_the_password() {
        let a: BrokerAddress = "mqtt://edge:s3cret@mosquitto:1883".parse().expect("parses");
        assert!(!a.to_string().contains("s3cret"));
        assert!(!format!("{a:?}").contains("s3cret"));
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
        ] {
            assert!(bad.parse::<BrokerAddress>().is_err(), "{bad}");
        }
    }
}
