//! Outbound HTTP grants of tool plugins (`plugins.NAME.allowed_hosts`,
//! `secrets`, `http`): their syntax, checks and matching. Denied by
//! default: a plugin without `allowed_hosts` sends nothing. The plugin
//! runtime enforces them on every request (`plugin/http.rs`).

use super::error::key;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Default wall-clock limit of one request, in milliseconds.
pub const DEFAULT_HTTP_TIMEOUT_MS: u64 = 10_000;
/// Longest per-request timeout a spec may set, in milliseconds.
const MAX_HTTP_TIMEOUT_MS: u64 = 120_000;
/// Default cap on one response body, in KiB.
pub const DEFAULT_HTTP_RESPONSE_KIB: u64 = 1024;
/// Largest response-body cap a spec may set, in KiB (64 MiB).
const MAX_HTTP_RESPONSE_KIB: u64 = 64 << 10;
/// Default cap on one request body, in KiB.
pub const DEFAULT_HTTP_REQUEST_KIB: u64 = 1024;
/// Largest request-body cap a spec may set, in KiB (64 MiB).
const MAX_HTTP_REQUEST_KIB: u64 = 64 << 10;
/// Default number of requests one tool call may send.
pub const DEFAULT_HTTP_REQUESTS: u32 = 16;
/// Most requests per call a spec may allow.
const MAX_HTTP_REQUESTS: u32 = 1_000;

/// Caps on a plugin's outbound requests; absent values keep the defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpCaps {
    /// Wall-clock limit of one request (connect to the last body byte), in
    /// milliseconds. Default 10 000, at most 120 000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Cap on one response body, in KiB. Default 1024.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_response_kib: Option<u64>,
    /// Cap on one request body, in KiB. Default 1024.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_request_kib: Option<u64>,
    /// Requests one tool call may send. Default 16.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_requests: Option<u32>,
}

/// One `allowed_hosts` entry: `api.example.com`, `api.example.com:8443`,
/// `*.example.com`, or an origin `http://127.0.0.1:8080` (the only way to
/// allow plain http). Without a port, the scheme's default port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    https: bool,
    /// Lower-case host; for a wildcard, the suffix after `*.`.
    host: String,
    wildcard: bool,
    port: u16,
}

impl HostPattern {
    /// Parses an entry; the error says what is wrong with it.
    pub fn parse(entry: &str) -> Result<HostPattern, String> {
        let entry = entry.trim();
        let (https, rest) = if let Some(rest) = entry.strip_prefix("http://") {
            (false, rest)
        } else if let Some(rest) = entry.strip_prefix("https://") {
            (true, rest)
        } else if entry.contains("://") {
            return Err(format!(
                "`{entry}`: only http:// and https:// origins can be allowed"
            ));
        } else {
            (true, entry)
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#', '@']) {
            return Err(format!(
                "`{entry}` is not a host: give a host, host:port or an origin, without a path or user"
            ));
        }
        let (host, port) = split_port(rest).map_err(|e| format!("`{entry}`: {e}"))?;
        let port = port.unwrap_or(if https { 443 } else { 80 });
        let host = host.to_ascii_lowercase();
        let (wildcard, host) = match host.strip_prefix("*.") {
            Some(suffix) => (true, suffix.to_owned()),
            None => (false, host),
        };
        let bracketed = host.starts_with('[') && host.ends_with(']');
        let valid = !host.is_empty()
            && (bracketed
                || host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'));
        if !valid || host.starts_with('.') || host.ends_with('.') {
            return Err(format!("`{entry}` is not a host name or address"));
        }
        if wildcard && !host.contains('.') {
            return Err(format!(
                "`{entry}`: a wildcard needs a domain with at least two labels (`*.example.com`)"
            ));
        }
        Ok(HostPattern {
            https,
            host,
            wildcard,
            port,
        })
    }

    /// `scheme://host:port`, or `None` for a wildcard (which names no one
    /// origin).
    pub fn origin(&self) -> Option<String> {
        (!self.wildcard).then(|| self.to_string())
    }

    /// Whether a request to `scheme://host:port` matches. `host` is
    /// compared case-insensitively; a wildcard matches subdomains only.
    pub fn matches(&self, https: bool, host: &str, port: u16) -> bool {
        if https != self.https || port != self.port {
            return false;
        }
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if self.wildcard {
            host.strip_suffix(self.host.as_str())
                .is_some_and(|head| head.len() > 1 && head.ends_with('.'))
        } else {
            host == self.host
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        let star = if self.wildcard { "*." } else { "" };
        write!(f, "{scheme}://{star}{}:{}", self.host, self.port)
    }
}

fn split_port(s: &str) -> Result<(&str, Option<u16>), String> {
    // `[v6]:port`, `[v6]`, `host:port`, `host`.
    let (host, port) = if s.starts_with('[') {
        match s.find(']') {
            Some(end) => {
                let (h, rest) = s.split_at(end + 1);
                (h, rest.strip_prefix(':'))
            }
            None => return Err("unclosed `[`".into()),
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let port = match port {
        None => None,
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("`{p}` is not a port"))?,
        ),
    };
    Ok((host, port))
}

/// A secret header value: text with `${VAR}` references to the host's
/// environment, e.g. `Bearer ${WEATHER_TOKEN}`. At least one reference is
/// required, so a secret never sits in the spec itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretTemplate {
    parts: Vec<TemplatePart>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum TemplatePart {
    Text(String),
    Var(String),
}

impl SecretTemplate {
    pub fn parse(text: &str) -> Result<SecretTemplate, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            if start > 0 {
                parts.push(TemplatePart::Text(rest[..start].to_owned()));
            }
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| "an unclosed `${` (write `${NAME}`)".to_owned())?;
            let name = &after[..end];
            let valid = !name.is_empty()
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(format!("`${{{name}}}` is not an environment variable name"));
            }
            parts.push(TemplatePart::Var(name.to_owned()));
            rest = &after[end + 1..];
        }
        if !rest.is_empty() {
            parts.push(TemplatePart::Text(rest.to_owned()));
        }
        if !parts.iter().any(|p| matches!(p, TemplatePart::Var(_))) {
            return Err(
                "a secret must come from the host's environment: write `${NAME}` (e.g. `Bearer ${API_TOKEN}`), not the value"
                    .into(),
            );
        }
        Ok(SecretTemplate { parts })
    }

    /// The environment variables it reads.
    pub fn vars(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            TemplatePart::Var(v) => Some(v.as_str()),
            TemplatePart::Text(_) => None,
        })
    }

    /// The value, reading variables with `lookup`; `Err(var)` names the
    /// first one that is unset or blank.
    pub fn render(&self, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                TemplatePart::Text(t) => out.push_str(t),
                TemplatePart::Var(v) => match lookup(v).filter(|s| !s.trim().is_empty()) {
                    Some(value) => out.push_str(&value),
                    None => return Err(v.clone()),
                },
            }
        }
        Ok(out)
    }
}

/// Problems with one plugin's grant, each with its JSON path under
/// `path` (`$.plugins.NAME`).
pub(super) fn problems(
    path: &str,
    allowed_hosts: &[String],
    secrets: &BTreeMap<String, BTreeMap<String, String>>,
    http: Option<&HttpCaps>,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let hosts_path = key(path, "allowed_hosts");
    for (i, entry) in allowed_hosts.iter().enumerate() {
        if let Err(message) = HostPattern::parse(entry) {
            out.push((format!("{hosts_path}[{i}]"), message));
        }
    }
    let secrets_path = key(path, "secrets");
    for (host, headers) in secrets {
        let host_path = key(&secrets_path, host);
        if !allowed_hosts.iter().any(|h| h.trim() == host.trim()) {
            out.push((
                host_path.clone(),
                format!("secrets for `{host}`, which is not one of `allowed_hosts` (write it exactly as listed there)"),
            ));
        }
        for (name, value) in headers {
            let header_path = key(&host_path, name);
            if let Some(message) = header_problem(name) {
                out.push((header_path.clone(), message));
            }
            if let Err(message) = SecretTemplate::parse(value) {
                out.push((header_path, message));
            }
        }
    }
    if let Some(caps) = http {
        let caps_path = key(path, "http");
        let mut bound = |field: &str, value: Option<u64>, max: u64| match value {
            Some(0) => out.push((
                key(&caps_path, field),
                format!("`{field}` must be at least 1"),
            )),
            Some(v) if v > max => out.push((
                key(&caps_path, field),
                format!("`{field}` is {v}; at most {max} is allowed"),
            )),
            _ => {}
        };
        bound("timeout_ms", caps.timeout_ms, MAX_HTTP_TIMEOUT_MS);
        bound(
            "max_response_kib",
            caps.max_response_kib,
            MAX_HTTP_RESPONSE_KIB,
        );
        bound(
            "max_request_kib",
            caps.max_request_kib,
            MAX_HTTP_REQUEST_KIB,
        );
        bound(
            "max_requests",
            caps.max_requests.map(u64::from),
            u64::from(MAX_HTTP_REQUESTS),
        );
    }
    out
}

/// Headers the host owns on a plugin's request: framing and routing ones.
const RESERVED: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
];

fn header_problem(name: &str) -> Option<String> {
    if RESERVED.iter().any(|r| r.eq_ignore_ascii_case(name.trim())) {
        Some(format!("header `{name}` is set by the host, not a secret"))
    } else if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
        Some(format!("`{name}` is not a header name"))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_scheme_host_and_port() {
        let p = HostPattern::parse("api.example.com").unwrap();
        assert!(p.matches(true, "API.example.com", 443));
        assert!(!p.matches(false, "api.example.com", 80), "https only");
        assert!(!p.matches(true, "api.example.com", 8443), "other port");
        assert!(!p.matches(true, "evil-api.example.com", 443));
        let w = HostPattern::parse("*.example.com").unwrap();
        assert!(w.matches(true, "a.b.example.com", 443));
        assert!(!w.matches(true, "example.com", 443), "not the apex");
        assert!(!w.matches(true, "badexample.com", 443));
        let o = HostPattern::parse("http://127.0.0.1:8080").unwrap();
        assert!(o.matches(false, "127.0.0.1", 8080));
        assert!(!o.matches(true, "127.0.0.1", 8080));
        assert!(!o.matches(false, "127.0.0.1", 8081));
        let v6 = HostPattern::parse("https://[::1]:9000").unwrap();
        assert!(v6.matches(true, "[::1]", 9000));
        for bad in [
            "ftp://x.example",
            "x.example/path",
            "user@x.example",
            "*.com",
            "x.example:0",
            "x.example:http",
            "",
            "exa mple.com",
        ] {
            assert!(HostPattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn secret_templates_need_a_variable() {
        let t = SecretTemplate::parse("Bearer ${TOKEN}").unwrap();
        assert_eq!(t.vars().collect::<Vec<_>>(), ["TOKEN"]);
        assert_eq!(
            t.render(|v| (v == "TOKEN").then(|| "s3cret".to_owned())),
            Ok("Bearer s3cret".to_owned())
        );
        assert_eq!(t.render(|_| None), Err("TOKEN".to_owned()));
        assert!(SecretTemplate::parse("Bearer sk-literal").is_err());
        assert!(SecretTemplate::parse("${1X}").is_err());
        assert!(SecretTemplate::parse("${OPEN").is_err());
    }

    #[test]
    fn problems_name_their_paths() {
        let hosts = vec!["api.example.com".to_owned(), "bad/path".to_owned()];
        let mut secrets = BTreeMap::new();
        secrets.insert(
            "other.example.com".to_owned(),
            BTreeMap::from([("Authorization".to_owned(), "Bearer x".to_owned())]),
        );
        let caps = HttpCaps {
            timeout_ms: Some(0),
            max_requests: Some(5000),
            ..HttpCaps::default()
        };
        let found = problems("$.plugins.w", &hosts, &secrets, Some(&caps));
        let paths: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "$.plugins.w.allowed_hosts[1]",
                "$.plugins.w.secrets['other.example.com']",
                "$.plugins.w.secrets['other.example.com'].Authorization",
                "$.plugins.w.http.timeout_ms",
                "$.plugins.w.http.max_requests",
            ],
            "{found:?}"
        );
    }
}
