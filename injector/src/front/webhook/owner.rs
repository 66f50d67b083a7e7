//! Which workload a pod belongs to, from the pod alone (the webhook reads
//! nothing from the API server): the config is written per workload, and a
//! pod names only its direct owner.
//!
//! - ReplicaSet → its Deployment: the Deployment controller names a
//!   ReplicaSet `<deployment>-<pod-template-hash>` and puts the hash on the
//!   pod as the `pod-template-hash` label; a ReplicaSet of its own keeps its
//!   name.
//! - Job → its CronJob: the CronJob controller names a Job
//!   `<cronjob>-<scheduled time in minutes>`; the CronJob's rule is used when
//!   the config has one for that prefix, else the Job's.
//! - ReplicationController → its DeploymentConfig (OpenShift names it
//!   `<dc>-<version>` and labels the pod `deploymentconfig: <dc>`).
//! - StatefulSet, DaemonSet: their own name.
//! - A bare pod, or a controller the config cannot name: the pod itself
//!   (its name, or its generateName prefix).

use crate::config::Config;
use serde_json::Value;

pub fn workload(pod: &Value, config: &Config) -> (&'static str, String) {
    let meta = &pod["metadata"];
    let owners = meta["ownerReferences"].as_array();
    let owner = owners.and_then(|o| {
        o.iter()
            .find(|r| r["controller"] == true)
            .or_else(|| o.first())
    });
    let label = |key: &str| meta["labels"][key].as_str();
    if let Some(owner) = owner {
        let name = owner["name"].as_str().unwrap_or_default();
        match owner["kind"].as_str().unwrap_or_default() {
            "ReplicaSet" => {
                return match label("pod-template-hash")
                    .and_then(|hash| name.strip_suffix(hash)?.strip_suffix('-'))
                {
                    Some(deployment) => ("deployment", deployment.to_string()),
                    None => ("replicaset", name.to_string()),
                };
            }
            "Job" => {
                let cronjob = name
                    .rsplit_once('-')
                    .filter(|(prefix, time)| {
                        !prefix.is_empty()
                            && !time.is_empty()
                            && time.bytes().all(|b| b.is_ascii_digit())
                    })
                    .map(|(prefix, _)| prefix)
                    .filter(|prefix| config.rule_for("cronjob", prefix).is_some());
                return match cronjob {
                    Some(c) => ("cronjob", c.to_string()),
                    None => ("job", name.to_string()),
                };
            }
            "ReplicationController" => {
                return match label("deploymentconfig") {
                    Some(dc) if name.starts_with(&format!("{dc}-")) => {
                        ("deploymentconfig", dc.to_string())
                    }
                    _ => ("replicationcontroller", name.to_string()),
                };
            }
            "StatefulSet" => return ("statefulset", name.to_string()),
            "DaemonSet" => return ("daemonset", name.to_string()),
            _ => {}
        }
    }
    let name = meta["name"]
        .as_str()
        .or_else(|| meta["generateName"].as_str())
        .unwrap_or_default();
    ("pod", name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(owner_kind: &str, owner: &str, labels: Value) -> Value {
        json!({"metadata": {
            "generateName": format!("{owner}-"),
            "labels": labels,
            "ownerReferences": [{"kind": owner_kind, "name": owner, "controller": true}],
        }})
    }

    #[test]
    fn each_owner_kind_leads_to_the_workload_the_config_names() {
        let config = crate::config::parse("cronjob:\n  nightly:\n    istio-proxy: auto\n").unwrap();
        let cases = [
            (
                pod(
                    "ReplicaSet",
                    "web-7d9f8b6c5",
                    json!({"pod-template-hash": "7d9f8b6c5"}),
                ),
                ("deployment", "web"),
            ),
            (
                pod("ReplicaSet", "web-7d9f8b6c5", json!({})),
                ("replicaset", "web-7d9f8b6c5"),
            ),
            (
                pod("ReplicaSet", "my-rs", json!({"pod-template-hash": "abc"})),
                ("replicaset", "my-rs"),
            ),
            (pod("StatefulSet", "db", json!({})), ("statefulset", "db")),
            (pod("DaemonSet", "agent", json!({})), ("daemonset", "agent")),
            (
                pod("Job", "nightly-29000000", json!({})),
                ("cronjob", "nightly"),
            ),
            (
                pod("Job", "other-29000000", json!({})),
                ("job", "other-29000000"),
            ),
            (pod("Job", "migrate", json!({})), ("job", "migrate")),
            (
                pod(
                    "ReplicationController",
                    "app-3",
                    json!({"deploymentconfig": "app"}),
                ),
                ("deploymentconfig", "app"),
            ),
            (
                pod("ReplicationController", "rc", json!({})),
                ("replicationcontroller", "rc"),
            ),
            (pod("Rollout", "canary", json!({})), ("pod", "canary-")),
            (json!({"metadata": {"name": "solo"}}), ("pod", "solo")),
        ];
        for (p, (kind, name)) in cases {
            assert_eq!(workload(&p, &config), (kind, name.to_string()), "{p}");
        }
    }
}
