//! Header work for the proxy: which host a request is for, hop-by-hop headers that must not
//! be forwarded, and the `X-Forwarded-*` / `X-Request-Id` headers added on the way in.

use std::borrow::Cow;
use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// Lower-cases a host, strips a port (also from `[v6]:port`) and a trailing dot.
pub fn normalize_host(host: &str) -> String {
    let host = host.trim();
    let without_port = if let Some(rest) = host.strip_prefix('[') {
        // IPv6 literal: keep the brackets, drop what follows `]`.
        match rest.find(']') {
            Some(i) => &host[..i + 2],
            None => host,
        }
    } else {
        match host.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => host,
        }
    };
    without_port.trim_end_matches('.').to_ascii_lowercase()
}

/// [`normalize_host`] without allocating when the host is already normal (lower case, no
/// port, no trailing dot, no spaces): the usual case on the request path.
pub fn normalize_host_cow(host: &str) -> Cow<'_, str> {
    let normal = host
        .bytes()
        .all(|b| !b.is_ascii_uppercase() && b != b':' && b != b'[' && b != b' ' && b != b'\t')
        && !host.ends_with('.');
    if normal {
        Cow::Borrowed(host)
    } else {
        Cow::Owned(normalize_host(host))
    }
}

/// The host a request is for, as sent (with port), as a header value: the `Host` header
/// (no copy), else the URI's authority (HTTP/2 sends `:authority` instead of `Host`).
pub fn request_host_value<B>(req: &http::Request<B>) -> Option<HeaderValue> {
    match req.headers().get(header::HOST) {
        Some(v) => Some(v.clone()),
        None => req
            .uri()
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok()),
    }
    .filter(|h| !h.is_empty())
}

/// Headers that describe one connection and never pass through a proxy (RFC 9110 §7.6.1).
/// `expect` is answered by our own server (hyper sends `100 Continue` when the body is
/// first read), so it is not passed on either.
/// (Pre-built names: removing by `&str` would parse each name on every request.)
const HOP_BY_HOP: [HeaderName; 10] = [
    header::EXPECT,
    header::CONNECTION,
    HeaderName::from_static("proxy-connection"),
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// True if the request asks to switch protocols (`Connection: upgrade` + `Upgrade`).
pub fn wants_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE) && connection_tokens(headers).any(|t| t == "upgrade")
}

fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = String> + '_ {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
}

/// Removes hop-by-hop headers, including those the `Connection` header names. With
/// `keep_upgrade`, `Connection: upgrade` and `Upgrade` are put back so the next hop sees
/// the protocol switch.
pub fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    // Most messages carry none: one pass over the few names present (comparing standard
    // names is an enum compare) instead of a hashed removal per hop-by-hop name.
    if !headers.keys().any(|name| HOP_BY_HOP.contains(name)) {
        return;
    }
    let upgrade = headers.get(header::UPGRADE).cloned();
    if headers.contains_key(header::CONNECTION) {
        let named: Vec<String> = connection_tokens(headers).collect();
        for name in named {
            if let Ok(n) = HeaderName::from_bytes(name.as_bytes()) {
                headers.remove(n);
            }
        }
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
    if keep_upgrade {
        if let Some(u) = upgrade {
            headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            headers.insert(header::UPGRADE, u);
        }
    }
}

// Pre-built names: a `&str` name is parsed on every use.
pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The client address as an `X-Forwarded-For` value (made once per connection).
pub fn client_ip_value(client: IpAddr) -> HeaderValue {
    HeaderValue::from_str(&client.to_canonical().to_string()).expect("an IP is a header value")
}

/// Adds the forwarding headers; returns the request id used (kept or new).
#[cfg(test)]
fn add_forwarded(headers: &mut HeaderMap, client: IpAddr, host: &str, https: bool) -> HeaderValue {
    let host = HeaderValue::from_str(host).unwrap_or(HeaderValue::from_static(""));
    add_forwarded_value(headers, &client_ip_value(client), host, https)
}

/// [`add_forwarded`] with the client IP and host already as header values (no copies when
/// there is no incoming `X-Forwarded-For`).
pub fn add_forwarded_value(
    headers: &mut HeaderMap,
    client_ip: &HeaderValue,
    host: HeaderValue,
    https: bool,
) -> HeaderValue {
    if headers.contains_key(X_FORWARDED_FOR) {
        let chain: Vec<&str> = headers
            .get_all(X_FORWARDED_FOR)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let xff = format!(
            "{}, {}",
            chain.join(", "),
            client_ip.to_str().unwrap_or_default()
        );
        if let Ok(v) = HeaderValue::from_str(&xff) {
            headers.insert(X_FORWARDED_FOR, v);
        }
    } else {
        headers.insert(X_FORWARDED_FOR, client_ip.clone());
    }
    headers.insert(
        X_FORWARDED_PROTO,
        HeaderValue::from_static(if https { "https" } else { "http" }),
    );
    if !host.is_empty() {
        headers.insert(X_FORWARDED_HOST, host);
    }
    let id = headers
        .get(X_REQUEST_ID)
        .filter(|v| {
            let b = v.as_bytes();
            !b.is_empty() && b.len() <= 200 && b.iter().all(|c| c.is_ascii_graphic())
        })
        .cloned()
        .unwrap_or_else(|| {
            let bytes: [u8; 16] = rand::random();
            let mut text = [0u8; 32];
            hex::encode_to_slice(bytes, &mut text).expect("32 hex digits for 16 bytes");
            HeaderValue::from_bytes(&text).expect("hex is a valid header value")
        });
    headers.insert(X_REQUEST_ID, id.clone());
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        assert_eq!(normalize_host("Hello.LocalHost:8000"), "hello.localhost");
        assert_eq!(normalize_host("hello.localhost."), "hello.localhost");
        assert_eq!(normalize_host("[::1]:8000"), "[::1]");
        assert_eq!(normalize_host("[::1]"), "[::1]");
        assert_eq!(normalize_host("a.b"), "a.b");
    }

    #[test]
    fn hop_by_hop() {
        let mut h = HeaderMap::new();
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("2"));
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h.len(), 2, "nothing hop-by-hop, nothing removed: {h:?}");

        let mut h = HeaderMap::new();
        h.insert(
            "connection",
            HeaderValue::from_static("keep-alive, x-secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h.len(), 1, "{h:?}");
        assert!(h.contains_key("x-kept"));

        let mut h = HeaderMap::new();
        h.insert("connection", HeaderValue::from_static("Upgrade"));
        h.insert("upgrade", HeaderValue::from_static("websocket"));
        assert!(wants_upgrade(&h));
        strip_hop_by_hop(&mut h, true);
        assert_eq!(h.get("upgrade").unwrap(), "websocket");
        assert_eq!(h.get("connection").unwrap(), "upgrade");
    }

    #[test]
    fn forwarded() {
        let mut h = HeaderMap::new();
        h.insert(X_FORWARDED_FOR, HeaderValue::from_static("1.2.3.4"));
        h.insert(X_REQUEST_ID, HeaderValue::from_static("abc"));
        let id = add_forwarded(
            &mut h,
            "127.0.0.1".parse().unwrap(),
            "a.localhost:8000",
            false,
        );
        assert_eq!(id, "abc");
        assert_eq!(h.get(X_FORWARDED_FOR).unwrap(), "1.2.3.4, 127.0.0.1");
        assert_eq!(h.get(X_FORWARDED_HOST).unwrap(), "a.localhost:8000");
        assert_eq!(h.get(X_FORWARDED_PROTO).unwrap(), "http");
        let mut h = HeaderMap::new();
        let id = add_forwarded(&mut h, "::ffff:10.0.0.1".parse().unwrap(), "x", true);
        assert_eq!(id.len(), 32);
        assert_eq!(h.get(X_FORWARDED_FOR).unwrap(), "10.0.0.1");
        assert_eq!(h.get(X_FORWARDED_PROTO).unwrap(), "https");
    }
}
