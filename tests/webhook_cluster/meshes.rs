//! Every mesh's proxy stand-in (`scenarios::meshes`) hooked by the webhook
//! alone: pods that ask for it by annotation (`graceful-wait.io/wait: auto`
//! and the proxy's container name), created through the API server, each
//! terminated by the real kubelet as many times as the command line's.

use super::*;
use cluster::play::play;

/// Per mesh: the pods the webhook hooked, terminated; every callback must
/// arrive. The rows of docs/meshes.md's table, "by the webhook".
pub fn every_mesh(cluster: &Cluster, upstream: &str, report: &mut Report) {
    let mut table = Vec::new();
    let mut failures = Vec::new();
    for (i, m) in meshes().into_iter().enumerate() {
        let annotations = json!({
            "graceful-wait.io/wait": "auto",
            "graceful-wait.io/container": m.name,
        });
        let scenario = Scenario {
            name: m.scenario_name("the webhook"),
            workload: None,
            spec: Box::new(move |up| mesh_pod(&meshes()[i], up)),
            runs: runs(20),
            expect: Expect::All,
            callbacks: 1,
        };
        let (measured, f) = play(
            cluster,
            &format!("gw-mesh-{i}"),
            &scenario,
            upstream,
            &annotations,
        );
        let row = measured.row(scenario.name);
        println!("{row}");
        table.push(row);
        failures.extend(f);
    }
    report.say(format!(
        "every mesh's stand-in hooked by the webhook (annotation auto), terminated by the kubelet:\n{TABLE_HEAD}\n{}",
        table.join("\n")
    ));
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
