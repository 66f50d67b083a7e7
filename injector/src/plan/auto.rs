//! `istio-proxy: auto`: the injector picks the proxy's wait from the pod
//! itself, so one line (`deployment: {"*": {istio-proxy: auto}}`) covers a
//! whole render.
//!
//! 1. The ports the app's probes name — from the proxy's
//!    `ISTIO_KUBE_APP_PROBERS` (where Istio keeps the probes it rewrote to go
//!    through the proxy's agent), and from the other containers' own
//!    readiness, liveness and startup probes (named ports resolved through
//!    the container's `ports`), except another proxy's ([`super::mesh`]). Probes Istio rewrote to its agent (`/app-health/…`,
//!    the proxy's 15000–15099) and its lifecycle hooks (`/app-lifecycle/…`)
//!    are not the app's.
//! 2. One port with one HTTP path: an `http` wait on `localhost:PORT/PATH`.
//!    Several ports (or a TCP or HTTPS probe): a `tcp` wait on all of them,
//!    which ends when none listens.
//! 3. No probe: `listeners`, which needs no port and no uid (the proxy
//!    container's own sockets do not count, whatever the proxy) — except on the
//!    node's network (`hostNetwork: true`), where it would count the node's
//!    own sockets: there the container is skipped with a message
//!    ([`choose`] says why).
//!
//! The summary says what was chosen and from where.

use crate::{
    config::WaitFor,
    yaml::{Documents, Node},
};
use std::collections::BTreeSet;

/// One endpoint a probe names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Probed {
    port: u16,
    /// The path of a plain-HTTP probe on localhost; None for TCP, HTTPS or
    /// another host.
    path: Option<String>,
}

/// The wait for `proxy` in pod spec `spec`, and why; or why `auto` writes
/// none: a pod on the node's network (`hostNetwork: true`) with no probed
/// port, where `listeners` would see the node's own sockets and hold every
/// termination until its timeout.
pub fn choose(spec: &Node, proxy: &str) -> Result<(WaitFor, String), String> {
    let mut found = BTreeSet::new();
    let mut sources = Vec::new();
    for (_, c) in super::containers(spec) {
        let name = c.get("name").and_then(Node::as_str).unwrap_or_default();
        if name == proxy {
            let before = found.len();
            from_istio_probers(c, spec, &mut found);
            if found.len() > before {
                sources.push("ISTIO_KUBE_APP_PROBERS".to_string());
            }
        } else if super::mesh::recognise(c).is_none() {
            // Another proxy's probes (a daprd's 3501 beside istio-proxy)
            // are not the app's.
            let before = found.len();
            for probe in ["readinessProbe", "livenessProbe", "startupProbe"] {
                if let Some(p) = c.get(probe) {
                    if let Some(e) = endpoint(p, c) {
                        found.insert(e);
                    }
                }
            }
            if found.len() > before {
                sources.push(format!("{name}'s probes"));
            }
        }
    }
    let ports: BTreeSet<u16> = found.iter().map(|e| e.port).collect();
    let from = sources.join(" and ");
    let host_network = spec.get("hostNetwork").and_then(Node::as_str) == Some("true");
    Ok(match (ports.len(), found.iter().next()) {
        (0, _) if host_network => return Err(format!(
            "{proxy}: auto found no probed port, and the pod uses the node's network (hostNetwork: true), where a listeners wait would see the node's own sockets and hold every termination until its timeout; left alone — give the app's port ({{tcp: PORT}}) in the config"
        )),
        (0, _) => (
            WaitFor::Listeners(Vec::new()),
            "no probe names a port: every listener but the proxy container's own".into(),
        ),
        (
            1,
            Some(Probed {
                port,
                path: Some(path),
            }),
        ) if found.len() == 1 => (
            WaitFor::Http {
                url: format!("localhost:{port}{path}"),
                down_status: None,
            },
            format!("the HTTP probe from {from}"),
        ),
        _ => (
            WaitFor::Tcp(ports.into_iter().collect()),
            format!("the ports probed in {from}"),
        ),
    })
}

/// The endpoints in the proxy's ISTIO_KUBE_APP_PROBERS (JSON: path → probe).
fn from_istio_probers(proxy: &Node, spec: &Node, found: &mut BTreeSet<Probed>) {
    let Some(json) = proxy
        .item_named("env", "ISTIO_KUBE_APP_PROBERS")
        .and_then(|e| e.get("value"))
        .and_then(Node::as_str)
    else {
        return;
    };
    // JSON is YAML: the same reader, no second parser.
    let Some(Ok(doc)) = Documents::new(json).next() else {
        return;
    };
    let Some(probers) = doc.root.as_ref().and_then(Node::as_map) else {
        return;
    };
    for (key, probe) in probers {
        // Lifecycle hooks Istio moved to its agent are not probes.
        if key
            .as_str()
            .is_some_and(|k| k.starts_with("/app-lifecycle/"))
        {
            continue;
        }
        // Istio resolves named ports before it writes this; a name left is
        // looked up in every container.
        let owner = spec
            .get("containers")
            .and_then(Node::as_seq)
            .unwrap_or_default()
            .iter()
            .find(|c| port_of(probe, c).is_some());
        if let Some(e) = owner.and_then(|c| endpoint(probe, c)) {
            found.insert(e);
        }
    }
}

/// What one probe (`httpGet` or `tcpSocket`) of `container` names; None for
/// an exec or gRPC probe, or one Istio rewrote to its own agent.
fn endpoint(probe: &Node, container: &Node) -> Option<Probed> {
    let port = port_of(probe, container)?;
    if (15000..15100).contains(&port) {
        return None;
    }
    let Some(http) = probe.get("httpGet") else {
        return Some(Probed { port, path: None });
    };
    let path = http.get("path").and_then(Node::as_str).unwrap_or("/");
    if path.starts_with("/app-health/") {
        return None;
    }
    let plain = http
        .get("scheme")
        .and_then(Node::as_str)
        .is_none_or(|s| s.eq_ignore_ascii_case("HTTP"));
    let local = http
        .get("host")
        .and_then(Node::as_str)
        .is_none_or(|h| h == "localhost" || h == "127.0.0.1");
    // A path the URL can carry as it is.
    let simple = path.starts_with('/') && !path.contains(|c: char| c.is_whitespace() || c == '#');
    Some(Probed {
        port,
        path: (plain && local && simple).then(|| path.to_string()),
    })
}

/// The probe's port as a number: given, or a name of `container`'s ports.
fn port_of(probe: &Node, container: &Node) -> Option<u16> {
    let action = probe.get("httpGet").or_else(|| probe.get("tcpSocket"))?;
    let port = action.get("port")?.as_str()?;
    if let Ok(n) = port.parse::<u16>() {
        return (n > 0).then_some(n);
    }
    container
        .item_named("ports", port)
        .and_then(|p| p.get("containerPort"))
        .and_then(Node::as_str)
        .and_then(|n| n.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chosen(spec: &str) -> (WaitFor, String) {
        let doc = Documents::new(spec).next().unwrap().unwrap();
        choose(doc.root.as_ref().unwrap(), "istio-proxy").unwrap()
    }

    #[test]
    fn https_another_host_and_tcp_probes_become_a_tcp_wait() {
        let (w, why) = chosen(
            "containers:\n- name: a\n  readinessProbe: {httpGet: {port: 8443, scheme: HTTPS, path: /r}}\n- name: b\n  livenessProbe: {tcpSocket: {port: 9000}}\n- name: istio-proxy\n",
        );
        assert_eq!(w, WaitFor::Tcp(vec![8443, 9000]), "{why}");
        let (w, _) = chosen(
            "containers:\n- name: a\n  readinessProbe: {httpGet: {port: 80, host: 10.0.0.1}}\n",
        );
        assert_eq!(w, WaitFor::Tcp(vec![80]));
    }

    /// Another mesh's proxy in the pod (Dapr's daprd, a Cloud SQL proxy)
    /// probes its own ports: they are not the app's.
    #[test]
    fn other_proxies_probes_are_not_the_apps() {
        let (w, why) = chosen(
            "containers:\n- name: web\n  readinessProbe: {httpGet: {port: 8080, path: /ready}}\n- name: daprd\n  image: ghcr.io/dapr/daprd:1.18.0\n  readinessProbe: {httpGet: {port: 3501, path: /v1.0/healthz}}\n- name: db\n  image: gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.14.2\n  livenessProbe: {httpGet: {port: 9090, path: /liveness}}\n- name: istio-proxy\n",
        );
        assert_eq!(
            w,
            WaitFor::Http {
                url: "localhost:8080/ready".into(),
                down_status: None
            },
            "{why}"
        );
    }

    #[test]
    fn one_port_two_paths_is_a_tcp_wait_one_path_an_http_wait() {
        let (w, _) = chosen(
            "containers:\n- name: a\n  readinessProbe: {httpGet: {port: 80, path: /ready}}\n  livenessProbe: {httpGet: {port: 80, path: /live}}\n",
        );
        assert_eq!(w, WaitFor::Tcp(vec![80]));
        let (w, _) = chosen(
            "containers:\n- name: a\n  readinessProbe: {httpGet: {port: 80, path: /ready}}\n  livenessProbe: {httpGet: {port: 80, path: /ready}}\n",
        );
        assert_eq!(
            w,
            WaitFor::Http {
                url: "localhost:80/ready".into(),
                down_status: None
            }
        );
    }

    #[test]
    fn what_is_not_the_app_s_probe_is_left_out() {
        // Rewritten to Istio's agent, an exec probe, a name no port has, a
        // lifecycle hook in the probers, the proxy's own ports.
        let (w, why) = chosen(
            "containers:\n- name: a\n  readinessProbe: {httpGet: {port: 15020, path: /app-health/a/readyz}}\n  livenessProbe: {exec: {command: [true]}}\n  startupProbe: {tcpSocket: {port: nosuch}}\n- name: istio-proxy\n  readinessProbe: {httpGet: {port: 15021, path: /healthz/ready}}\n  env:\n  - {name: ISTIO_KUBE_APP_PROBERS, value: '{\"/app-lifecycle/a/prestopz\":{\"httpGet\":{\"port\":91}}}'}\n",
        );
        assert_eq!(w, WaitFor::Listeners(Vec::new()), "{why}");
    }

    #[test]
    fn broken_probers_json_is_no_probe() {
        let (w, _) = chosen(
            "containers:\n- name: istio-proxy\n  env:\n  - {name: ISTIO_KUBE_APP_PROBERS, value: '{\"/app-health/a/readyz\": [unclosed'}\n",
        );
        assert_eq!(w, WaitFor::Listeners(Vec::new()));
    }
}
