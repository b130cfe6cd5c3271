//! What the proxy reads off a request besides its path: the client's address, its
//! cookies, whether its Host is plausible.

use std::net::IpAddr;

use pingora::proxy::Session;

/// The `Cookie:` header(s), joined as one value (HTTP/2 may split them, RFC 9113 §8.2.3).
pub(crate) fn cookie_header(session: &Session) -> Option<String> {
    let mut values = session
        .req_header()
        .headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok());
    let first = values.next()?;
    let mut joined = first.to_owned();
    for value in values {
        joined.push_str("; ");
        joined.push_str(value);
    }
    Some(joined)
}

/// The client's address (0.0.0.0 when the connection has none, as over a Unix socket).
pub(crate) fn client_ip(session: &Session) -> IpAddr {
    session
        .client_addr()
        .and_then(|a| a.as_inet())
        .map_or(IpAddr::from([0, 0, 0, 0]), |a| a.ip())
}

/// The request's Host (HTTP/1) or `:authority` (HTTP/2) is absent or a plausible
/// `host[:port]`.
pub(crate) fn host_is_sane(session: &Session) -> bool {
    let request = session.req_header();
    let host = match request.headers.get(http::header::HOST) {
        Some(value) => match value.to_str() {
            Ok(host) => host,
            Err(_) => return false,
        },
        None => match request.uri.authority() {
            Some(authority) => authority.as_str(),
            None => return true,
        },
    };
    crate::redirect::is_sane_host(host)
}
