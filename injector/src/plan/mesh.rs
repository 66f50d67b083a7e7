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

use crate::yaml::Node;

/// One mesh's proxy.
#[derive(Debug, PartialEq, Eq)]
pub struct Proxy {
    pub mesh: &'static str,
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
}

/// Every proxy known, by mesh. The order matters only where two could
/// match one container: the first wins.
pub const PROXIES: &[Proxy] = &[
    Proxy {
        mesh: "Istio",
        names: &["istio-proxy"],
        name_prefix: None,
        images: &["istio/proxyv2", "istio/proxy"],
        uid: Some(1337),
        ports: &[
            15000, 15001, 15004, 15006, 15008, 15020, 15021, 15053, 15090,
        ],
    },
    Proxy {
        mesh: "Linkerd",
        names: &["linkerd-proxy"],
        name_prefix: None,
        images: &["linkerd/proxy"],
        uid: Some(2102),
        ports: &[4140, 4143, 4190, 4191],
    },
    Proxy {
        mesh: "Consul",
        names: &["consul-dataplane"],
        name_prefix: Some("consul-dataplane-"),
        images: &["consul-dataplane"],
        uid: Some(5995),
        ports: &[19000, 20000, 20100, 20200, 20600, 21000, 15001],
    },
    Proxy {
        mesh: "Kuma",
        names: &["kuma-sidecar"],
        name_prefix: None,
        images: &["kuma-dp", "kong-mesh-dp"],
        uid: Some(5678),
        ports: &[15001, 15006, 15053, 9901, 9902, 9001, 5670],
    },
    Proxy {
        mesh: "App Mesh",
        names: &[],
        name_prefix: None,
        images: &["aws-appmesh-envoy"],
        uid: Some(1337),
        ports: &[9901, 15000, 15001],
    },
    Proxy {
        mesh: "Open Service Mesh",
        names: &[],
        name_prefix: None,
        images: &["openservicemesh/", "envoy-distroless"],
        uid: Some(1500),
        ports: &[15000, 15001, 15003, 15010, 15901, 15902, 15903, 15904],
    },
    Proxy {
        mesh: "Dapr",
        names: &["daprd"],
        name_prefix: None,
        images: &["dapr/daprd"],
        uid: None,
        ports: &[3500, 3501, 9090, 50001, 50002],
    },
    Proxy {
        mesh: "Cloud SQL Auth Proxy",
        names: &["cloud-sql-proxy"],
        name_prefix: Some("csql-"),
        images: &["cloud-sql-proxy"],
        uid: None,
        ports: &[5432, 3306, 1433, 9090, 9091, 9801],
    },
    Proxy {
        mesh: "AlloyDB Auth Proxy",
        names: &["alloydb-auth-proxy"],
        name_prefix: None,
        images: &["alloydb-auth-proxy"],
        uid: None,
        ports: &[5432, 9090, 9091],
    },
];

/// The proxy `container` is, by its name, or by its image where its name is
/// no mesh's (App Mesh's and OSM's are plain `envoy`, as anyone's may be).
pub fn recognise(container: &Node) -> Option<&'static Proxy> {
    let name = container.get("name").and_then(Node::as_str)?;
    let image = container
        .get("image")
        .and_then(Node::as_str)
        .unwrap_or_default();
    PROXIES
        .iter()
        .find(|p| p.names.contains(&name) || p.name_prefix.is_some_and(|pre| name.starts_with(pre)))
        .or_else(|| {
            PROXIES
                .iter()
                .find(|p| p.images.iter().any(|i| image.contains(i)))
        })
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
}
