//! The admission webhook in a real Kubernetes: installed by its Helm chart
//! (Helm 4 and Helm 3, each certificate mode that runs here), by
//! `kubectl apply -k` and by `self-signed.sh`; called by the real API
//! server for pods the controllers create; out of the way when it is down,
//! killed or drained; in both orders with a mesh's injector; and measured
//! where the API server measures it.
//!
//! The steps are `the_api_server_calls_the_webhook_the_chart_installs`
//! below, in order; `install.rs` (the ways in and the checks every install
//! gets), `in_the_way.rs`, `orders.rs` and `load.rs` hold them, `pods.rs`
//! the pods they show the webhook.
//!
//! Needs root and Go, as `tests/real_cluster.rs` (the same cluster, images
//! and receiver); SKIPPED otherwise. `tests/run` runs it with `GW_BINARY`
//! and `GW_INJECT_BINARY` naming the release builds.

#[path = "../cluster/mod.rs"]
mod cluster;
#[path = "../scenarios/mod.rs"]
mod scenarios;
#[path = "../support/mod.rs"]
mod support;

mod in_the_way;
mod install;
mod load;
mod meshes;
mod orders;
mod pods;

use cluster::{
    lab::{callbacks, images, on_node, senders, start_receiver},
    mesh::MeshInjector,
    Cluster,
};
use scenarios::*;
use serde_json::{json, Value};
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Instant,
};
use support::*;

use in_the_way::*;
use install::*;
use load::*;
use meshes::*;
use orders::*;
use pods::*;

#[test]
#[ignore = "re-exec entry point: the tests run it as their helper process"]
fn helper_process() {
    helper_main();
    roles::main();
}

/// The release's namespace, as the chart's README installs it.
const RELEASE_NS: &str = "graceful-wait";
/// The chart's fixed names.
const WEBHOOK: &str = "graceful-inject-webhook";
const CONFIGURATION: &str = "graceful-wait";
const HOOK_NAME: &str = "pods.graceful-wait.io";
/// A namespace the webhook serves, and one labelled out.
const HOOKED: &str = "gw-hooked";
const OPTED_OUT: &str = "gw-opted-out";
/// The node never matches it: pods only admitted, never run.
const NOWHERE: &str = "graceful-wait.test/nowhere";

/// The chart's default config, the installer from the local image.
const CONFIG: &str = "graceful-wait:\n  image: localhost/graceful-wait:test\n\
deployment:\n  \"*\":\n    istio-proxy: auto\nstatefulset:\n  \"*\":\n    istio-proxy: auto\n";
/// The config a `helm upgrade` changes to.
const CONFIG_TCP: &str = "graceful-wait:\n  image: localhost/graceful-wait:test\n\
deployment:\n  \"*\":\n    istio-proxy: {tcp: 20000}\n";

/// What the test found, section by section, printed at the end (and kept
/// in `GW_WEBHOOK_REPORT` when set) for docs/webhook.md.
#[derive(Default)]
struct Report(Vec<String>);

impl Report {
    fn say(&mut self, line: String) {
        println!("webhook in cluster: {line}");
        self.0.push(line);
    }
}

#[test]
#[ignore = "needs root, Go, the release builds and minutes: tests/run runs it with GW_BINARY and GW_INJECT_BINARY"]
fn the_api_server_calls_the_webhook_the_chart_installs() {
    let test = "the_api_server_calls_the_webhook_the_chart_installs";
    for var in ["GW_BINARY", "GW_INJECT_BINARY"] {
        assert!(
            std::env::var_os(var).is_some(),
            "run with {var} naming the release build, as tests/run does"
        );
    }
    let helm_home = tempfile::tempdir().unwrap();
    for helm in ["helm3", "helm4"] {
        if !skip::have(
            repo().join("target/tools/bin").join(helm).to_str().unwrap(),
            &["version"],
        ) {
            skipped(
                test,
                &format!("{helm} is not in target/tools/bin (tests/run unpacks it from PyPI)"),
            );
            return;
        }
    }
    let Some(cluster) = Cluster::up_or_skip(test) else {
        return;
    };
    // What an interrupted run left (a cluster kept up): the configurations
    // are cluster-wide.
    cluster.ok(&[
        "delete",
        "mutatingwebhookconfiguration",
        CONFIGURATION,
        "a-mesh-injector",
        "z-mesh-injector",
        "--ignore-not-found",
    ]);
    images(&cluster);
    webhook_image(&cluster);
    let upstream = start_receiver(&cluster);
    let mut report = Report::default();

    // Helm 4 with the generated certificate: every check, the load.
    let home = helm_home.path();
    let how = install(&cluster, "helm4", "generate", home, &upstream, &mut report);
    if std::env::var("GW_WEBHOOK_LOAD_ONLY").as_deref() == Ok("1") {
        // benches/webhook-cluster.sh: the figures alone.
        let on = load(&cluster, &upstream, "on");
        uninstall(&cluster, "helm4", home, &how, &upstream, &mut report);
        let off = load(&cluster, &upstream, "off");
        report.say(load_table(&on, &off));
        return;
    }
    every_mesh(&cluster, &upstream, &mut report);
    if std::env::var("GW_WEBHOOK_MESHES_ONLY").as_deref() == Ok("1") {
        // Every mesh's stand-in alone.
        uninstall(&cluster, "helm4", home, &how, &upstream, &mut report);
        return;
    }
    dry_run(&cluster, &upstream, &mut report);
    never_in_the_way(&cluster, &upstream, &mut report);
    in_every_order(&cluster, &upstream, &mut report);
    let load_on = load(&cluster, &upstream, "on");
    upgrade(&cluster, "helm4", &upstream, home, &mut report);
    uninstall(&cluster, "helm4", home, &how, &upstream, &mut report);
    let load_off = load(&cluster, &upstream, "off");
    report.say(load_table(&load_on, &load_off));

    // The other Helm and certificate pairs: install, the checks, upgrade,
    // uninstall.
    for (helm, mode) in [
        ("helm3", "generate"),
        ("helm4", "existing"),
        ("helm3", "existing"),
    ] {
        let home = tempfile::tempdir().unwrap();
        let how = install(&cluster, helm, mode, home.path(), &upstream, &mut report);
        upgrade(&cluster, helm, &upstream, home.path(), &mut report);
        uninstall(&cluster, helm, home.path(), &how, &upstream, &mut report);
    }
    tag_shipped_images();
    with_self_signed(&cluster, &upstream, &mut report);
    if let Err(why) = with_kustomize(&cluster, &upstream, &mut report) {
        skipped(
            test,
            &format!("kubectl apply -k: cert-manager's CRDs: {why}"),
        );
    }
    if let Some(path) = std::env::var_os("GW_WEBHOOK_REPORT") {
        std::fs::write(path, report.0.join("\n")).unwrap();
    }
}

/// The test cluster's state folder (`tests/cluster/up`'s `GW_CLUSTER_DIR`).
fn state_dir() -> PathBuf {
    std::env::var_os("GW_CLUSTER_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/cluster/state"))
}
