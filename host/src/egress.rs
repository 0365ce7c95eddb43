//! The egress policy: which network destinations the host's own HTTP
//! clients (model providers, event callbacks) may connect to.
//!
//! A spec may come from someone other than the operator, and its URLs
//! (`base_url`, `run.callback.url`) must not turn the host into a proxy into
//! the operator's network. So:
//!
//! - **Always refused**: link-local and cloud-metadata addresses
//!   (`169.254.0.0/16`, `fe80::/10`, `fd00:ec2::254`, `100.100.100.200`,
//!   the metadata host names), unspecified, multicast and broadcast
//!   addresses. No allowance opens them.
//! - **Refused unless the operator allows them**: loopback, private
//!   (RFC 1918, ULA `fc00::/7`), shared (`100.64.0.0/10`) and other
//!   non-global addresses. [`Egress::allow_private`] opens them all;
//!   [`Egress::allow`] opens single addresses, ranges or address:port pairs.
//! - Everything else (public addresses) is allowed.
//!
//! The check runs where the connection is made: [`Egress::client`] builds a
//! `reqwest` client whose DNS resolver drops refused addresses (so a name
//! that resolves to a private address, or re-resolves to one later, is
//! refused too), that never follows a redirect, and that ignores proxy
//! settings. A URL whose host is an address literal bypasses DNS, so
//! [`Egress::check_url`] checks it before each request.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use serde::Deserialize;

/// Host names of cloud metadata services, refused whatever they resolve to.
const METADATA_NAMES: &[&str] = &[
    "metadata",
    "metadata.google.internal",
    "metadata.goog",
    "instance-data",
    "instance-data.ec2.internal",
    "metadata.azure.internal",
    "metadata.tencentyun.com",
];

/// Request headers a spec may not set on a callback: the host's own (signature, idempotency key),
/// the ones that frame or route the request, and hop-by-hop ones.
pub const RESERVED_HEADERS: &[&str] = &[
    "x-host-signature",
    "idempotency-key",
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-authorization",
    "proxy-authenticate",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
    "expect",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-real-ip",
];

/// Whether `name` is one of [`RESERVED_HEADERS`] (any case).
pub fn is_reserved_header(name: &str) -> bool {
    RESERVED_HEADERS
        .iter()
        .any(|r| r.eq_ignore_ascii_case(name.trim()))
}

/// The operator's egress allowances (host config section `[egress]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Egress {
    /// Allow every loopback and private destination.
    pub allow_private: bool,
    /// Private or loopback destinations allowed one by one: `127.0.0.1`,
    /// `10.0.0.0/8`, `127.0.0.1:8080`, `[::1]:8080`.
    pub allow: Vec<Allowed>,
}

/// One entry of [`Egress::allow`]: an address or range, and optionally a
/// port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Allowed {
    net: IpAddr,
    prefix: u8,
    port: Option<u16>,
}

/// Why a destination is refused. The messages name the address (never the
/// URL, which may carry credentials).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EgressError {
    #[error("{dest} is a {what}, which is always refused")]
    Forbidden { dest: String, what: &'static str },
    #[error(
        "{dest} is a {what}; the operator must allow it: `allow_private = true` or \
         `allow = [\"{ip}\"]` in the [egress] section of the host config, or --allow-egress {ip}"
    )]
    Private {
        dest: String,
        ip: IpAddr,
        what: &'static str,
    },
    #[error("only http and https URLs are allowed, not `{0}`")]
    Scheme(String),
    #[error("the URL has no host")]
    NoHost,
    #[error("{name} resolves to no address")]
    Unresolved { name: String },
}

impl Egress {
    /// A policy that allows every private and loopback destination (the
    /// metadata and link-local ones stay refused).
    pub fn allowing_private() -> Self {
        Egress {
            allow_private: true,
            allow: Vec::new(),
        }
    }

    /// Adds the allowances of `other` (say, the command line's) to these.
    pub fn merge(&mut self, other: Egress) {
        self.allow_private |= other.allow_private;
        self.allow.extend(other.allow);
    }

    /// Whether a connection to `ip`:`port` may be made.
    pub fn check_addr(&self, ip: IpAddr, port: u16) -> Result<(), EgressError> {
        let ip = canonical(ip);
        let dest = SocketAddr::new(ip, port).to_string();
        match classify(ip) {
            Class::Global => Ok(()),
            Class::Forbidden(what) => Err(EgressError::Forbidden { dest, what }),
            Class::Private(what) => {
                if self.allow_private || self.allow.iter().any(|a| a.matches(ip, port)) {
                    Ok(())
                } else {
                    Err(EgressError::Private { dest, ip, what })
                }
            }
        }
    }

    /// Checks a URL before a request: its scheme, a metadata host name, and
    /// an address literal (which no resolver sees). A host name is checked
    /// again, address by address, when it is resolved.
    pub fn check_url(&self, url: &reqwest::Url) -> Result<(), EgressError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(EgressError::Scheme(url.scheme().to_owned()));
        }
        let port = url.port_or_known_default().unwrap_or(80);
        let host = url.host_str().ok_or(EgressError::NoHost)?;
        if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            let ip = Ipv6Addr::from_str(v6).map_err(|_| EgressError::NoHost)?;
            return self.check_addr(IpAddr::V6(ip), port);
        }
        if let Ok(ip) = Ipv4Addr::from_str(host) {
            return self.check_addr(IpAddr::V4(ip), port);
        }
        let name = host.trim_end_matches('.').to_ascii_lowercase();
        if METADATA_NAMES.contains(&name.as_str()) {
            return Err(EgressError::Forbidden {
                dest: name,
                what: "cloud metadata host name",
            });
        }
        Ok(())
    }

    /// A client for requests to `url`'s host and port only: its resolver
    /// keeps the addresses this policy allows for that port, it follows no
    /// redirect and uses no proxy. `url` is checked first.
    pub fn client(&self, url: &reqwest::Url) -> Result<reqwest::ClientBuilder, EgressError> {
        self.check_url(url)?;
        let port = url.port_or_known_default().unwrap_or(80);
        let resolver = PolicyResolver {
            policy: Arc::new(self.clone()),
            port,
        };
        Ok(reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(resolver))
    }
}

/// Resolves names with the system resolver, keeping only the addresses the
/// policy allows (for the one port its client talks to).
struct PolicyResolver {
    policy: Arc<Egress>,
    port: u16,
}

impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        let port = self.port;
        let name = name.as_str().to_owned();
        Box::pin(async move {
            let lower = name.trim_end_matches('.').to_ascii_lowercase();
            if METADATA_NAMES.contains(&lower.as_str()) {
                return Err(EgressError::Forbidden {
                    dest: lower,
                    what: "cloud metadata host name",
                }
                .into());
            }
            let found: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), port))
                .await?
                .collect();
            let mut refused = None;
            let mut allowed = Vec::with_capacity(found.len());
            for addr in found {
                match policy.check_addr(addr.ip(), port) {
                    Ok(()) => allowed.push(SocketAddr::new(canonical(addr.ip()), port)),
                    Err(e) => refused = refused.or(Some(e)),
                }
            }
            if allowed.is_empty() {
                let error = refused.unwrap_or(EgressError::Unresolved { name: name.clone() });
                tracing::debug!(name, %error, "egress refused");
                return Err(Box::new(error) as Box<dyn std::error::Error + Send + Sync>);
            }
            let addrs: reqwest::dns::Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// Finds an [`EgressError`] among an error's sources (a refused
/// resolution surfaces as a connect error of the HTTP client).
pub fn refusal<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a EgressError> {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(refused) = e.downcast_ref::<EgressError>() {
            return Some(refused);
        }
        next = e.source();
    }
    None
}

/// A URL for messages and logs: scheme, host and port only (no user, no
/// password, no path or query, which may be secrets, as webhook URLs often
/// are).
pub fn display_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(parsed) => match (parsed.host_str(), parsed.port()) {
            (Some(host), Some(port)) => format!("{}://{host}:{port}", parsed.scheme()),
            (Some(host), None) => format!("{}://{host}", parsed.scheme()),
            (None, _) => format!("{}:", parsed.scheme()),
        },
        Err(_) => "<not a URL>".to_owned(),
    }
}

enum Class {
    Global,
    Forbidden(&'static str),
    Private(&'static str),
}

/// An IPv4 address carried in IPv6 (mapped or compatible) as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                // NAT64 (64:ff9b::/96) embeds the IPv4 address it reaches.
                if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                    let [a, b] = s[6].to_be_bytes();
                    let [c, d] = s[7].to_be_bytes();
                    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
                } else {
                    ip
                }
            }
        },
        v4 => v4,
    }
}

fn classify(ip: IpAddr) -> Class {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Class {
    let [a, b, ..] = ip.octets();
    if ip.is_link_local() {
        Class::Forbidden("link-local address (cloud metadata range)")
    } else if ip == Ipv4Addr::new(100, 100, 100, 200) {
        Class::Forbidden("cloud metadata address")
    } else if ip.is_unspecified() || a == 0 {
        Class::Forbidden("unspecified address")
    } else if ip.is_broadcast() || ip.is_multicast() {
        Class::Forbidden("broadcast or multicast address")
    } else if ip.is_loopback() {
        Class::Private("loopback address")
    } else if ip.is_private() {
        Class::Private("private address")
    } else if a == 100 && (64..128).contains(&b) {
        Class::Private("shared (carrier-grade NAT) address")
    } else if a >= 240 || (a == 198 && (b == 18 || b == 19)) || (a == 192 && b == 0) {
        Class::Private("reserved address")
    } else {
        Class::Global
    }
}

fn classify_v6(ip: Ipv6Addr) -> Class {
    let first = ip.segments()[0];
    if ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
        Class::Forbidden("cloud metadata address")
    } else if first & 0xffc0 == 0xfe80 {
        Class::Forbidden("link-local address")
    } else if ip.is_unspecified() {
        Class::Forbidden("unspecified address")
    } else if ip.is_multicast() {
        Class::Forbidden("multicast address")
    } else if ip.is_loopback() {
        Class::Private("loopback address")
    } else if first & 0xfe00 == 0xfc00 {
        Class::Private("private (unique local) address")
    } else if first & 0xffc0 == 0xfec0 || first & 0xe000 != 0x2000 {
        Class::Private("reserved address")
    } else {
        Class::Global
    }
}

impl Allowed {
    fn matches(&self, ip: IpAddr, port: u16) -> bool {
        if self.port.is_some_and(|p| p != port) {
            return false;
        }
        match (self.net, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Allowed {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "`{text}` is not an address, a range or an address:port \
                 (e.g. 127.0.0.1, 10.0.0.0/8, 127.0.0.1:8080, [::1]:8080)"
            )
        };
        let text = text.trim();
        let (addr, port) = if let Some(rest) = text.strip_prefix('[') {
            let (addr, port) = rest.split_once("]:").ok_or_else(bad)?;
            (addr, Some(port))
        } else if text.matches(':').count() == 1 {
            let (addr, port) = text.split_once(':').ok_or_else(bad)?;
            (addr, Some(port))
        } else {
            (text, None)
        };
        let port = match port {
            Some(p) => Some(p.parse::<u16>().map_err(|_| bad())?),
            None => None,
        };
        let (ip, prefix) = match addr.split_once('/') {
            Some((ip, prefix)) => (ip, Some(prefix.parse::<u8>().map_err(|_| bad())?)),
            None => (addr, None),
        };
        let net = canonical(IpAddr::from_str(ip).map_err(|_| bad())?);
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return Err(bad());
        }
        Ok(Allowed { net, prefix, port })
    }
}

impl TryFrom<String> for Allowed {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        text.parse()
    }
}

impl fmt::Display for Allowed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let max = if self.net.is_ipv4() { 32 } else { 128 };
        let net = if self.prefix == max {
            self.net.to_string()
        } else {
            format!("{}/{}", self.net, self.prefix)
        };
        match (self.port, self.net) {
            (Some(port), IpAddr::V6(_)) => write!(f, "[{net}]:{port}"),
            (Some(port), IpAddr::V4(_)) => write!(f, "{net}:{port}"),
            (None, _) => f.write_str(&net),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    #[test]
    fn metadata_and_link_local_are_refused_even_when_private_is_allowed() {
        let open = Egress::allowing_private();
        for bad in [
            "169.254.169.254",
            "169.254.0.1",
            "100.100.100.200",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "0.0.0.0",
            "::",
            "224.0.0.1",
        ] {
            let e = open.check_addr(ip(bad), 80).unwrap_err();
            assert!(matches!(e, EgressError::Forbidden { .. }), "{bad}: {e}");
        }
        let url = reqwest::Url::parse("http://metadata.google.internal/x").unwrap();
        assert!(matches!(
            open.check_url(&url),
            Err(EgressError::Forbidden { .. })
        ));
    }

    #[test]
    fn private_needs_an_allowance() {
        let closed = Egress::default();
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "100.64.0.1",
            "::1",
            "fd12::1",
            "::ffff:127.0.0.1",
        ] {
            let e = closed.check_addr(ip(private), 8080).unwrap_err();
            assert!(matches!(e, EgressError::Private { .. }), "{private}: {e}");
            assert!(e.to_string().contains("allow_private"), "{e}");
        }
        assert!(closed.check_addr(ip("8.8.8.8"), 443).is_ok());
        assert!(closed.check_addr(ip("2606:4700::1111"), 443).is_ok());
        assert!(
            Egress::allowing_private()
                .check_addr(ip("127.0.0.1"), 1)
                .is_ok()
        );
    }

    #[test]
    fn allow_entries_match_address_range_and_port() {
        let policy = Egress {
            allow_private: false,
            allow: vec![
                "127.0.0.1:8080".parse().unwrap(),
                "10.0.0.0/8".parse().unwrap(),
                "[::1]:9000".parse().unwrap(),
            ],
        };
        assert!(policy.check_addr(ip("127.0.0.1"), 8080).is_ok());
        assert!(policy.check_addr(ip("127.0.0.1"), 8081).is_err());
        assert!(policy.check_addr(ip("10.200.0.1"), 1).is_ok());
        assert!(policy.check_addr(ip("11.0.0.1"), 1).is_ok()); // public
        assert!(policy.check_addr(ip("192.168.0.1"), 1).is_err());
        assert!(policy.check_addr(ip("::1"), 9000).is_ok());
        assert!(policy.check_addr(ip("::1"), 9001).is_err());
        for text in ["127.0.0.1:8080", "10.0.0.0/8", "[::1]:9000", "::1"] {
            assert_eq!(text.parse::<Allowed>().unwrap().to_string(), text);
        }
        for bad in ["localhost", "10.0.0.0/33", "1.2.3.4:x", "[::1]"] {
            assert!(bad.parse::<Allowed>().is_err(), "{bad}");
        }
    }

    #[test]
    fn urls_are_shown_without_credentials_path_or_query() {
        assert_eq!(
            display_url("https://user:pw@hooks.example.com:8443/T0/B1/secret?token=x"),
            "https://hooks.example.com:8443"
        );
        assert_eq!(display_url("http://10.0.0.1/a"), "http://10.0.0.1");
        assert_eq!(display_url("not a url"), "<not a URL>");
    }

    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_refused_at_connect_time() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let url = reqwest::Url::parse(&format!("http://localhost:{port}/")).unwrap();
        let client = Egress::default().client(&url).unwrap().build().unwrap();
        let error = client.get(url).send().await.unwrap_err();
        let refused = refusal(&error).expect("an egress refusal among the sources");
        assert!(matches!(refused, EgressError::Private { .. }), "{refused}");
    }
}
