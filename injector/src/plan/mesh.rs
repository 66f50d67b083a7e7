//! The sidecar proxies graceful-inject knows, one row a mesh: how its
//! container is recognised, the uid its injector runs it as and the ports it
//! listens on in the pod. `auto` uses it to leave the pod's other proxies'
//! probes out of the app's (a `daprd` beside `istio-proxy` probes its own
//! 3501, which is not the app's), and the summary names the mesh.
//!
//! The wait itself needs none of it: `listeners` with no options tells the
//! proxy's sockets by its container, whatever uid it runs as (Istio's is 0
//! under TPROXY and a namespace's on OpenShift). Facts, with sources:
//! docs/meshes.md.

use crate::config::{NativeChoice, NativeSidecars};
use crate::yaml::Node;

/// One mesh's proxy.
#[derive(Debug, PartialEq, Eq)]
pub struct Proxy {
    pub mesh: &'static str,
    /// Its name in the config (`native-sidecars: {istio: wait}`).
    pub key: &'static str,
    /// The container names its injector gives it.
    pub names: &'static [&'static str],
    /// A prefix of its container's name where the injector adds the
    /// workload's (`consul-dataplane-<service>`, the Cloud SQL operator's
    /// `csql-<namespace>-<name>`).
    pub name_prefix: Option<&'static str>,
    /// Words of its image's name, where the container's name is the user's
    /// choice (a proxy added by hand).
    pub images: &'static [&'static str],
    /// The uid its injector runs it as (None: the image's, or the user's).
    pub uid: Option<u32>,
    /// The ports it listens on in the pod's network namespace.
    pub ports: &'static [u16],
    /// The drain its injector writes as a native sidecar's preStop, where
    /// that drain is of inbound traffic only on a current proxy: the words
    /// its command holds, and the image version from which its Envoy (1.34
    /// or later) leaves outbound listeners alone.
    pub inbound_drain: Option<InboundDrain>,
}

/// A mesh's native-sidecar drain hook, and from which version it drains
/// inbound traffic only.
#[derive(Debug, PartialEq, Eq)]
pub struct InboundDrain {
    /// Every one of these is an item of the hook's exec command.
    pub words: &'static [&'static str],
    /// What the hook is, for the summary.
    pub called: &'static str,
    /// The first image version (major, minor) whose Envoy is 1.34 or later.
    pub since: (u32, u32),
}

/// Every proxy known, by mesh. The order matters only where two could
/// match one container: the first wins.
pub const PROXIES: &[Proxy] = &[
    Proxy {
        mesh: "Istio",
        key: "istio",
        names: &["istio-proxy"],
        name_prefix: None,
        images: &["istio/proxyv2", "istio/proxy"],
        uid: Some(1337),
        ports: &[
            15000, 15001, 15004, 15006, 15008, 15020, 15021, 15053, 15090,
        ],
        inbound_drain: Some(InboundDrain {
            words: &["pilot-agent", "request", "POST", "drain"],
            called: "pilot-agent request POST drain",
            since: (1, 26),
        }),
    },
    Proxy {
        mesh: "Linkerd",
        key: "linkerd",
        names: &["linkerd-proxy"],
        name_prefix: None,
        images: &["linkerd/proxy"],
        uid: Some(2102),
        ports: &[4140, 4143, 4190, 4191],
        inbound_drain: None,
    },
    Proxy {
        mesh: "Consul",
        key: "consul",
        names: &["consul-dataplane"],
        name_prefix: Some("consul-dataplane-"),
        images: &["consul-dataplane"],
        uid: Some(5995),
        ports: &[19000, 20000, 20100, 20200, 20600, 21000, 15001],
        inbound_drain: None,
    },
    Proxy {
        mesh: "Kuma",
        key: "kuma",
        names: &["kuma-sidecar"],
        name_prefix: None,
        images: &["kuma-dp", "kong-mesh-dp"],
        uid: Some(5678),
        ports: &[15001, 15006, 15053, 9901, 9902, 9001, 5670],
        inbound_drain: Some(InboundDrain {
            words: &["killall", "-USR2", "kuma-dp"],
            called: "killall -USR2 kuma-dp",
            since: (2, 11),
        }),
    },
    Proxy {
        mesh: "App Mesh",
        key: "app-mesh",
        names: &[],
        name_prefix: None,
        images: &["aws-appmesh-envoy"],
        uid: Some(1337),
        ports: &[9901, 15000, 15001],
        inbound_drain: None,
    },
    Proxy {
        mesh: "Open Service Mesh",
        key: "osm",
        names: &[],
        name_prefix: None,
        images: &["openservicemesh/", "envoy-distroless"],
        uid: Some(1500),
        ports: &[15000, 15001, 15003, 15010, 15901, 15902, 15903, 15904],
        inbound_drain: None,
    },
    Proxy {
        mesh: "Dapr",
        key: "dapr",
        names: &["daprd"],
        name_prefix: None,
        images: &["dapr/daprd"],
        uid: None,
        ports: &[3500, 3501, 9090, 50001, 50002],
        inbound_drain: None,
    },
    Proxy {
        mesh: "Cloud SQL Auth Proxy",
        key: "cloud-sql-proxy",
        names: &["cloud-sql-proxy"],
        name_prefix: Some("csql-"),
        images: &["cloud-sql-proxy"],
        uid: None,
        ports: &[5432, 3306, 1433, 9090, 9091, 9801],
        inbound_drain: None,
    },
    Proxy {
        mesh: "AlloyDB Auth Proxy",
        key: "alloydb-auth-proxy",
        names: &["alloydb-auth-proxy"],
        name_prefix: None,
        images: &["alloydb-auth-proxy"],
        uid: None,
        ports: &[5432, 9090, 9091],
        inbound_drain: None,
    },
];

/// The proxy `container` is, by its name, or by its image where its name is
/// no mesh's (App Mesh's and OSM's are plain `envoy`, as anyone's may be).
pub fn recognise(container: &Node) -> Option<&'static Proxy> {
    let name = container.get("name").and_then(Node::as_str)?;
    let image = container.get("image").and_then(Node::as_str);
    recognise_by(name, image.unwrap_or_default())
}

/// The same, from a container's name and image.
pub fn recognise_by(name: &str, image: &str) -> Option<&'static Proxy> {
    PROXIES
        .iter()
        .find(|p| p.names.contains(&name) || p.name_prefix.is_some_and(|pre| name.starts_with(pre)))
        .or_else(|| {
            PROXIES
                .iter()
                .find(|p| p.images.iter().any(|i| image.contains(i)))
        })
}

/// What a native sidecar's own preStop gets.
#[derive(Debug, PartialEq, Eq)]
pub enum Native {
    /// The wait goes in front of the hook; why, for the summary.
    Wait(String),
    /// The hook is left where it is; why, for the summary.
    Leave(String),
}

/// The decision for `container`, a native sidecar (Kubernetes runs its
/// preStop when termination starts, at the same moment as the app's, and
/// sends its SIGTERM only after the app's containers have exited):
///
/// - no preStop: nothing runs early, so nothing needs holding — left alone;
/// - its mesh's own drain where that drain is of inbound traffic only (the
///   image's version says its Envoy is 1.34 or later): the drain belongs at
///   termination start, so clients go elsewhere — left there;
/// - anything else — the same drain on an older or unreadable version
///   (Envoy before 1.34 drained outbound listeners too, istio#51855), the
///   Cloud SQL operator's `/quitquitquit`, a sleep, a command of the user's
///   — may stop the proxy's outbound side while the app still calls out:
///   the wait goes in front, and the hook runs after it.
///
/// `native-sidecars` overrides this per mesh or for every container.
pub fn native_sidecar(container: &Node, setting: &NativeSidecars) -> Native {
    let proxy = recognise(container);
    let key = proxy.map(|p| p.key);
    let again = |choice: &str| match key {
        Some(k) => format!("native-sidecars: {{{k}: {choice}}}"),
        None => format!("native-sidecars: {{other: {choice}}}"),
    };
    match setting.choice(key) {
        NativeChoice::Wait => {
            return Native::Wait("native sidecar: waited on, as native-sidecars says".into())
        }
        NativeChoice::Skip => {
            return Native::Leave(format!(
                "native sidecar: left alone, as native-sidecars says ({} to wait)",
                again("wait")
            ))
        }
        NativeChoice::Auto => {}
    }
    let pre_stop = container
        .get("lifecycle")
        .and_then(|l| l.get("preStop"))
        .filter(|p| !p.is_null());
    let Some(pre_stop) = pre_stop else {
        return Native::Leave(format!(
            "native sidecar with no preStop: Kubernetes sends it SIGTERM only after the app's containers have exited, so nothing needs holding ({} to wait anyway)",
            again("wait")
        ));
    };
    let command: Vec<&str> = pre_stop
        .get("exec")
        .and_then(|e| e.get("command"))
        .and_then(Node::as_seq)
        .unwrap_or_default()
        .iter()
        .filter_map(Node::as_str)
        .collect();
    let drain = proxy.and_then(|p| Some((p, p.inbound_drain.as_ref()?)));
    if let Some((p, drain)) = drain.filter(|(_, d)| d.words.iter().all(|w| command.contains(w))) {
        let image = container
            .get("image")
            .and_then(Node::as_str)
            .unwrap_or_default();
        return match image_version(image) {
            Some(v) if v >= drain.since => Native::Leave(format!(
                "native sidecar: {}'s drain ({}) on {image} (Envoy 1.34 or later) drains inbound traffic only, which belongs at termination start: left there; Kubernetes stops the proxy after the app ({} to wait anyway)",
                p.mesh,
                drain.called,
                again("wait")
            )),
            _ => Native::Wait(format!(
                "native sidecar: {}'s drain ({}) stops the app's outbound calls too before {} {}.{} (Envoy 1.34), and {} is not known to be newer, so the wait goes first ({} if yours is)",
                p.mesh,
                drain.called,
                p.mesh,
                drain.since.0,
                drain.since.1,
                if image.is_empty() { "no image" } else { image },
                again("skip")
            )),
        };
    }
    Native::Wait(format!(
        "native sidecar: its preStop runs at termination start, beside the app's shutdown, and may stop the proxy's outbound side, so the wait goes first and the hook after it ({} to leave it)",
        again("skip")
    ))
}

/// The (major, minor) of an image's tag: `docker.io/istio/proxyv2:1.27.1`
/// → (1, 27); `kumahq/kuma-dp:v2.14.0` → (2, 14). None for no tag, a
/// digest alone, or a tag that does not start with a version (`latest`).
fn image_version(image: &str) -> Option<(u32, u32)> {
    let name = image.split('@').next()?;
    let last = name.rsplit('/').next()?;
    let tag = last.split_once(':')?.1;
    let tag = tag.strip_prefix('v').unwrap_or(tag);
    let mut parts = tag.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::Documents;

    fn container(yaml: &str) -> Option<&'static str> {
        let doc = Documents::new(yaml).next().unwrap().unwrap();
        recognise(doc.root.as_ref().unwrap()).map(|p| p.mesh)
    }

    #[test]
    fn each_mesh_by_its_name_or_image() {
        let cases = [
            ("{name: istio-proxy, image: docker.io/istio/proxyv2:1.24.0}", Some("Istio")),
            ("{name: linkerd-proxy, image: cr.l5d.io/linkerd/proxy:edge-26.8.1}", Some("Linkerd")),
            ("{name: consul-dataplane-web, image: hashicorp/consul-dataplane:1.6}", Some("Consul")),
            ("{name: kuma-sidecar, image: kumahq/kuma-dp:2.14.0}", Some("Kuma")),
            ("{name: envoy, image: 840364872350.dkr.ecr.us-west-2.amazonaws.com/aws-appmesh-envoy:v1.29.12.1-prod}", Some("App Mesh")),
            ("{name: envoy, image: envoyproxy/envoy-distroless:v1.25.1}", Some("Open Service Mesh")),
            ("{name: daprd, image: ghcr.io/dapr/daprd:1.18.0}", Some("Dapr")),
            ("{name: csql-shop-orders, image: gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.14.2}", Some("Cloud SQL Auth Proxy")),
            ("{name: db-proxy, image: gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.14.2}", Some("Cloud SQL Auth Proxy")),
            ("{name: alloydb-auth-proxy, image: gcr.io/alloydb-connectors/alloydb-auth-proxy:1.13}", Some("AlloyDB Auth Proxy")),
            ("{name: envoy, image: envoyproxy/envoy:v1.34.1}", None),
            ("{name: web, image: example.com/web:1}", None),
        ];
        for (c, want) in cases {
            assert_eq!(container(c), want, "{c}");
        }
    }

    #[test]
    fn the_config_names_every_mesh_of_the_table() {
        let keys: Vec<&str> = PROXIES.iter().map(|p| p.key).collect();
        assert_eq!(keys, crate::config::MESHES);
    }

    #[test]
    fn image_versions() {
        let cases = [
            ("docker.io/istio/proxyv2:1.27.1", Some((1, 27))),
            ("istio/proxyv2:1.26.0-distroless", Some((1, 26))),
            ("kumahq/kuma-dp:v2.14.0", Some((2, 14))),
            (
                "registry:5000/istio/proxyv2:1.24.3@sha256:ab",
                Some((1, 24)),
            ),
            ("registry:5000/istio/proxyv2", None),
            ("istio/proxyv2@sha256:ab", None),
            ("istio/proxyv2:latest", None),
            ("istio/proxyv2:1", None),
        ];
        for (image, want) in cases {
            assert_eq!(image_version(image), want, "{image}");
        }
    }

    fn decide(yaml: &str, setting: &str) -> Native {
        let config =
            crate::config::parse(&format!("graceful-wait:\n  native-sidecars: {setting}\n"))
                .unwrap();
        let doc = Documents::new(yaml).next().unwrap().unwrap();
        native_sidecar(doc.root.as_ref().unwrap(), &config.settings.native_sidecars)
    }

    #[test]
    fn native_sidecars_by_what_their_hook_does() {
        let drain = "lifecycle: {preStop: {exec: {command: [pilot-agent, request, --debug-port=15020, POST, drain]}}}";
        let wait = |y: &str, s: &str| matches!(decide(y, s), Native::Wait(_));
        // Istio's drain: inbound only from 1.26 (Envoy 1.34).
        assert!(!wait(
            &format!("{{name: istio-proxy, image: istio/proxyv2:1.27.1, {drain}}}"),
            "auto"
        ));
        assert!(!wait(
            &format!("{{name: istio-proxy, image: istio/proxyv2:1.26.0, {drain}}}"),
            "auto"
        ));
        assert!(wait(
            &format!("{{name: istio-proxy, image: istio/proxyv2:1.25.3, {drain}}}"),
            "auto"
        ));
        assert!(wait(
            &format!("{{name: istio-proxy, image: istio/proxyv2:latest, {drain}}}"),
            "auto"
        ));
        assert!(wait(&format!("{{name: istio-proxy, {drain}}}"), "auto"));
        // A hook of the user's on Istio's proxy is not its drain.
        assert!(wait("{name: istio-proxy, image: istio/proxyv2:1.27.1, lifecycle: {preStop: {exec: {command: [sh, -c, 'kill 1']}}}}", "auto"));
        // Kuma's: inbound only from 2.11.
        let kuma = "lifecycle: {preStop: {exec: {command: [killall, -USR2, kuma-dp]}}}";
        assert!(!wait(
            &format!("{{name: kuma-sidecar, image: kumahq/kuma-dp:2.14.0, {kuma}}}"),
            "auto"
        ));
        assert!(wait(
            &format!("{{name: kuma-sidecar, image: kumahq/kuma-dp:2.10.4, {kuma}}}"),
            "auto"
        ));
        // The Cloud SQL operator's quitquitquit: always behind the wait.
        assert!(wait("{name: csql-shop-db, image: gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.14.2, lifecycle: {preStop: {httpGet: {port: 9091, path: /quitquitquit, host: localhost}}}}", "auto"));
        // No hook: nothing to hold.
        assert!(!wait(
            "{name: linkerd-proxy, image: cr.l5d.io/linkerd/proxy:edge-26.8.1}",
            "auto"
        ));
        assert!(!wait("{name: daprd, lifecycle: {preStop: null}}", "auto"));
        // The setting, for every container or per mesh.
        assert!(wait("{name: linkerd-proxy}", "wait"));
        assert!(!wait(
            "{name: csql-a, lifecycle: {preStop: {httpGet: {port: 9091}}}}",
            "skip"
        ));
        assert!(!wait(
            &format!("{{name: istio-proxy, image: istio/proxyv2:1.24.0, {drain}}}"),
            "{istio: skip}"
        ));
        assert!(wait(
            &format!("{{name: istio-proxy, image: istio/proxyv2:1.27.1, {drain}}}"),
            "{istio: wait, other: skip}"
        ));
        assert!(!wait(
            "{name: logger, lifecycle: {preStop: {exec: {command: [flush]}}}}",
            "{istio: wait, other: skip}"
        ));
        assert!(wait(
            "{name: logger, lifecycle: {preStop: {exec: {command: [flush]}}}}",
            "{istio: skip}"
        ));
    }

    #[test]
    fn native_sidecars_setting_errors_name_the_choices() {
        let e =
            crate::config::parse("graceful-wait:\n  native-sidecars: {istoi: wait}\n").unwrap_err();
        assert!(
            e.message.contains("no mesh 'istoi'") && e.message.contains("istio, linkerd"),
            "{}",
            e.message
        );
        let e = crate::config::parse("graceful-wait:\n  native-sidecars: always\n").unwrap_err();
        assert!(
            e.message.contains("none of auto, wait and skip"),
            "{}",
            e.message
        );
    }
}
