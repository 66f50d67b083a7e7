//! URLs as people write them in flags. Where an HTTP wait points: `localhost:3000/health` means
//! `http://localhost:3000/health`, and `localhost` or an IP literal becomes
//! socket addresses without /etc/hosts or libc NSS — the binary runs in images
//! that have neither (a distroless proxy, a scratch image).

use http::Uri;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// A pod-local URL (the http wait's `--url`): the request URI and the
/// addresses to try.
#[derive(Clone, Debug)]
pub struct LocalUrl {
    pub uri: Uri,
    /// Every address the host stands for; the endpoint is down only when it
    /// answers on none of them.
    pub addrs: Vec<SocketAddr>,
}

/// A URL as people write them in flags: no scheme means `http://`.
pub fn with_default_scheme(text: &str) -> Result<Uri, http::uri::InvalidUri> {
    if text.contains("://") {
        text.parse()
    } else {
        format!("http://{text}").parse()
    }
}

/// Parses a URL (scheme optional, `http` only) and resolves its host.
pub fn parse_local(text: &str) -> Result<LocalUrl, String> {
    let shown = redact(text);
    no_control_characters(text)?;
    no_credentials(text)?;
    let uri = with_default_scheme(text)
        .map_err(|e| format!("'{shown}' is not a URL ({e}); write e.g. localhost:3000/health"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some(other) => {
            return Err(format!(
                "'{shown}': scheme '{other}' is not supported by the http wait; use http://"
            ))
        }
        // "://" later in the text kept a scheme from being added, and there
        // is none at its start: not a URL the wait can use.
        None => {
            return Err(format!(
                "'{shown}' is not a URL; write e.g. localhost:3000/health"
            ))
        }
    }
    let host = uri
        .host()
        .ok_or_else(|| format!("'{shown}' has no host; write e.g. localhost:3000/health"))?;
    // `http` reads an out-of-range port as no port at all; that must not
    // silently become port 80.
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
    let after_host = authority
        .rsplit_once(']')
        .map_or(authority, |(_, rest)| rest);
    let port = match after_host.rsplit_once(':') {
        None => 80,
        Some((_, p)) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => return Err(format!("'{shown}': '{p}' is not a port (1-65535)")),
        },
    };
    let addrs = resolve_local(host, port).ok_or_else(|| {
        format!(
            "'{host}' in '{shown}' is neither localhost nor an IP address; \
             the in-pod wait only talks to the pod itself, so use localhost, 127.0.0.1, [::1] or the pod IP"
        )
    })?;
    Ok(LocalUrl { uri, addrs })
}

/// A URL as it may be logged: credentials (`user:pw@`) and query values
/// replaced by `…`, so a token in either never reaches a log line. Give it
/// the URL as written (before `$VARIABLES` are expanded): an expanded part
/// may be a secret too.
pub fn redact(text: &str) -> String {
    let (scheme, rest) = match text.split_once("://") {
        Some((s, r)) => (format!("{s}://"), r),
        None => (String::new(), text),
    };
    let (authority_end, _) = rest
        .char_indices()
        .find(|(_, c)| matches!(c, '/' | '?' | '#'))
        .unwrap_or((rest.len(), ' '));
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((_, host)) => format!("…@{host}"),
        None => authority.to_string(),
    };
    let (path, query) = match tail.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (tail, None),
    };
    let mut out = format!("{scheme}{authority}{path}");
    if let Some(q) = query {
        let (q, fragment) = q.split_once('#').map_or((q, None), |(q, f)| (q, Some(f)));
        let redacted: Vec<String> = q
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) => format!("{k}=…"),
                None => "…".to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&redacted.join("&"));
        if fragment.is_some() {
            out.push_str("#…");
        }
    }
    out
}

/// Credentials in a URL would travel in the clear and reach logs: refused,
/// with where to put them instead (the message does not repeat them).
pub fn no_credentials(text: &str) -> Result<(), String> {
    let rest = text.split_once("://").map_or(text, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return Err(format!(
            "'{}' carries credentials (user:password@); put them in a header instead, e.g. --header 'Authorization: Bearer $TOKEN'",
            redact(text)
        ));
    }
    Ok(())
}

/// White space and control characters have no place in a URL (and a NUL
/// none in a command line).
fn no_control_characters(text: &str) -> Result<(), String> {
    match text.chars().find(|c| c.is_control() || c.is_whitespace()) {
        Some(c) => Err(format!(
            "{:?} holds {c:?}, which a URL cannot; percent-encode it",
            redact(text)
        )),
        None => Ok(()),
    }
}

/// A URL a callback (or `exec --wait-ready`, `--quit-proxy`) may be sent
/// to, as far as it can be told before `$VARIABLES` are expanded: `http` or
/// `https` (or no scheme), and, when it holds no variable, a URL with a host.
pub fn check_request_url(text: &str) -> Result<(), String> {
    let shown = redact(text);
    no_control_characters(text)?;
    no_credentials(text)?;
    let scheme = text.split_once("://").map(|(s, _)| s);
    if let Some(s) = scheme.filter(|s| !matches!(*s, "http" | "https")) {
        return Err(format!(
            "'{shown}': scheme '{s}' is not supported; use http:// or https://"
        ));
    }
    if text.contains('$') {
        return Ok(());
    }
    let uri = with_default_scheme(text).map_err(|e| format!("'{shown}' is not a URL ({e})"))?;
    match uri.host() {
        Some(h) if !h.is_empty() => Ok(()),
        _ => Err(format!("'{shown}' has no host")),
    }
}

/// An HTTP method as a callback sends it (a token: letters, digits, `-`, `_`).
pub fn check_method(text: &str) -> Result<(), String> {
    if !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_!#$%&'*+.^`|~".contains(c))
    {
        Ok(())
    } else {
        Err(format!("'{text}' is not an HTTP method"))
    }
}

/// `localhost` (and `*.localhost`, RFC 6761) and IP literals; anything else
/// would need DNS, which a pod-local wait has no reason to depend on.
pub fn resolve_local(host: &str, port: u16) -> Option<Vec<SocketAddr>> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let lower = host.to_ascii_lowercase();
    let lower = lower.trim_end_matches('.');
    if lower == "localhost" || lower.ends_with(".localhost") {
        return Some(vec![
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), port),
        ]);
    }
    host.parse::<IpAddr>()
        .ok()
        .map(|ip| vec![SocketAddr::new(ip, port)])
}

#[cfg(test)]
mod tests {
    use super::parse_local as parse;

    #[test]
    fn scheme_defaults_to_http_and_localhost_needs_no_resolver() {
        let t = parse("localhost:3000/health").unwrap();
        assert_eq!(t.uri.to_string(), "http://localhost:3000/health");
        let addrs: Vec<String> = t.addrs.iter().map(|a| a.to_string()).collect();
        assert_eq!(addrs, ["127.0.0.1:3000", "[::1]:3000"]);
    }

    #[test]
    fn ip_literals_and_default_port() {
        assert_eq!(
            parse("10.1.2.3/x").unwrap().addrs[0].to_string(),
            "10.1.2.3:80"
        );
        assert_eq!(
            parse("http://[::1]:8080/").unwrap().addrs[0].to_string(),
            "[::1]:8080"
        );
        assert_eq!(parse("LOCALHOST:1").unwrap().addrs.len(), 2);
    }

    #[test]
    fn logs_see_no_credentials_or_query_values() {
        use super::redact;
        assert_eq!(
            redact("https://user:s3cret@hooks.example:8443/done?token=s3cret&x=1#frag"),
            "https://…@hooks.example:8443/done?token=…&x=…#…"
        );
        assert_eq!(redact("localhost:3000/health"), "localhost:3000/health");
        assert_eq!(redact("h/p?s3cret"), "h/p?…");
        assert!(!super::no_credentials("https://u:s3cret@h/")
            .unwrap_err()
            .contains("s3cret"));
        assert!(
            super::no_credentials("https://h/a@b").is_ok(),
            "an @ in the path is no credential"
        );
    }

    #[test]
    fn rejects_other_hosts_schemes_and_garbage() {
        assert!(parse("example.com/health")
            .unwrap_err()
            .contains("neither localhost"));
        assert!(parse("https://localhost/")
            .unwrap_err()
            .contains("scheme 'https'"));
        assert!(parse("localhost:99999/").is_err());
        assert!(parse("localhost/a\0b").is_err());
        assert!(parse("/a://b").is_err(), "found by fuzzing: once a panic");
        assert!(parse("localhost/a b").is_err());
        assert!(parse("").is_err());
    }
}
