//! What graceful-inject knows of Istio's injector, in one place: the proxy's
//! name, the customization stub's image, the pod's opt-out and the
//! agent's drain request. The custom injection template that uses them is a
//! front end ([`crate::front::istio_template`]).
//!
//! Facts relied on (istio/istio, `manifests/charts/istio-control/
//! istio-discovery/files/injection-template.yaml` and `pkg/kube/inject/`):
//! the `sidecar` template decides the layout with
//! `$nativeSidecar := ne (index .ObjectMeta.Annotations "sidecar.istio.io/nativeSidecar" | default (printf "%t" .NativeSidecars)) "false"`;
//! in the native layout (and without `global.proxy.lifecycle`) it gives the
//! proxy the preStop `pilot-agent request --debug-port=<status port> POST
//! drain`, the status port being the pod's `status.sidecar.istio.io/port`
//! annotation or `global.proxy.statusPort`; in the classic layout it gives
//! no preStop. Templates are Go text/template with sprig's functions and
//! Istio's `annotation`; each template named in `inject.istio.io/templates`
//! is rendered and merged onto the pod with a strategic merge patch, in
//! order.

use crate::yaml::Node;

/// The container Istio injects.
pub const PROXY: &str = "istio-proxy";
/// A stub's image: Istio's injector replaces it with its own proxy image
/// when it merges the stub onto the sidecar (and nothing can pull it where
/// injection does not happen).
pub const STUB_IMAGE: &str = "auto";
/// Istio's default agent status port (`global.proxy.statusPort`).
const STATUS_PORT: &str = "15020";

/// Where the pod template refuses Istio's injection (`sidecar.istio.io/inject`
/// set to false, as an annotation or a label): no sidecar will come.
pub fn injection_refused(meta: Option<&Node>) -> Option<&'static str> {
    const KEY: &str = "sidecar.istio.io/inject";
    let says_false = |section: &str| {
        meta.and_then(|m| m.path(&[section, KEY]))
            .and_then(Node::as_str)
            .is_some_and(|v| v.eq_ignore_ascii_case("false"))
    };
    [("annotation", "annotations"), ("label", "labels")]
        .into_iter()
        .find(|(_, section)| says_false(section))
        .map(|(whose, _)| whose)
}

/// Istio's drain request, as its native-sidecar template writes it as the
/// proxy's preStop. The port is the pod's `status.sidecar.istio.io/port`
/// annotation, else Istio's default: a mesh-wide `global.proxy.statusPort`
/// is not visible from a manifest.
pub fn drain_request(meta: Option<&Node>) -> Vec<String> {
    let port = meta
        .and_then(|m| m.path(&["annotations", "status.sidecar.istio.io/port"]))
        .and_then(Node::as_str)
        .filter(|p| p.parse::<u16>().is_ok_and(|p| p > 0))
        .unwrap_or(STATUS_PORT);
    [
        "pilot-agent",
        "request",
        &format!("--debug-port={port}"),
        "POST",
        "drain",
    ]
    .map(str::to_string)
    .to_vec()
}
