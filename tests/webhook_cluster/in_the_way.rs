//! Never in the way: the webhook down, pointed nowhere, killed, drained;
//! pods it refuses; hostile pods. No pod creation may fail.

use super::*;

/// The webhook down, pointing nowhere, killed mid-admission, drained; a pod
/// it refuses; hostile pods: no creation fails.
pub fn never_in_the_way(cluster: &Cluster, upstream: &str, report: &mut Report) {
    let spec = admitted_only(plain(upstream));
    let fail_open = |c: &Cluster| {
        metric_sum(
            &c.ok(&["get", "--raw", "/metrics"]),
            "apiserver_admission_webhook_fail_open_count",
            &[("name", HOOK_NAME)],
        )
    };

    // Scaled to 0: no endpoint; the API server fails open at once.
    let opened = fail_open(cluster);
    cluster.ok(&[
        "scale",
        "deployment",
        WEBHOOK,
        "-n",
        RELEASE_NS,
        "--replicas=0",
    ]);
    cluster.until("the webhook's pods gone", || {
        cluster.json(&[
            "get",
            "pods",
            "-n",
            RELEASE_NS,
            "-l",
            &format!("app.kubernetes.io/name={WEBHOOK}"),
        ])["items"]
            .as_array()
            .unwrap()
            .is_empty()
    });
    let began = Instant::now();
    let (pod, _) = cluster
        .create(&annotated_pod(HOOKED, "webhook-down", spec.clone()))
        .expect("a pod is created while the webhook is down");
    let down = began.elapsed();
    assert!(hook(&pod, "istio-proxy").is_none());
    cluster.ok(&["delete", "pod", "-n", HOOKED, "webhook-down"]);
    cluster.ok(&[
        "scale",
        "deployment",
        WEBHOOK,
        "-n",
        RELEASE_NS,
        "--replicas=2",
    ]);
    ready_without_helm(cluster, "scaled back");

    // The Service pointing nowhere (a selector no pod has).
    let selector =
        cluster.json(&["get", "service", WEBHOOK, "-n", RELEASE_NS])["spec"]["selector"].clone();
    cluster.ok(&[
        "patch",
        "service",
        WEBHOOK,
        "-n",
        RELEASE_NS,
        "--type=merge",
        "-p",
        &json!({"spec": {"selector": {"app.kubernetes.io/name": "nowhere"}}}).to_string(),
    ]);
    let began = Instant::now();
    let (pod, _) = cluster
        .create(&annotated_pod(HOOKED, "service-nowhere", spec.clone()))
        .expect("a pod is created while the Service points nowhere");
    let nowhere = began.elapsed();
    assert!(hook(&pod, "istio-proxy").is_none());
    cluster.ok(&["delete", "pod", "-n", HOOKED, "service-nowhere"]);
    cluster.ok(&[
        "patch",
        "service",
        WEBHOOK,
        "-n",
        RELEASE_NS,
        "--type=merge",
        "-p",
        &json!({"spec": {"selector": selector}}).to_string(),
    ]);
    let opened = fail_open(cluster) - opened;
    assert!(
        opened >= 2.0,
        "apiserver_admission_webhook_fail_open_count rose by {opened}"
    );
    let log =
        std::fs::read_to_string(state_dir().join("logs/kube-apiserver.log")).unwrap_or_default();
    let said = log
        .lines()
        .rev()
        .find(|l| l.contains("failing open") && l.contains(HOOK_NAME))
        .map(|l| l.split_once("] ").map_or(l, |(_, m)| m).to_string())
        .unwrap_or_default();
    assert!(
        !said.is_empty(),
        "the API server's log does not say it failed open"
    );
    report.say(format!(
        "webhook scaled to 0: a pod created in {:.0} ms, unhooked; Service pointing nowhere: {:.0} ms; the API server counted {opened} in apiserver_admission_webhook_fail_open_count and logged: {said} (no event and no warning reach the creator: the API server's dispatcher only logs, counts and adds an audit annotation when it fails open)",
        down.as_secs_f64() * 1000.0,
        nowhere.as_secs_f64() * 1000.0,
    ));
    wait_serving(cluster, upstream);

    // A pod it refuses, and one with a wrong annotation: admitted
    // unchanged, and kubectl prints why.
    let mut refused = spec.clone();
    container(&mut refused, "istio-proxy")["lifecycle"] =
        json!({"preStop": {"httpGet": {"scheme": "HTTPS", "path": "/quitquitquit", "port": 9091}}});
    let (pod, warned) = cluster
        .create(&annotated_pod(HOOKED, "refused", refused))
        .unwrap();
    assert!(hook(&pod, "istio-proxy").is_none());
    assert!(
        warned.contains("graceful-wait"),
        "no warning for a refused pod: {warned:?}"
    );
    cluster.ok(&["delete", "pod", "-n", HOOKED, "refused"]);
    let (_, warned_bad) = cluster
        .create(&bare(
            HOOKED,
            "bad-annotation",
            spec.clone(),
            json!({"annotations": {"graceful-wait.io/wait": "{tcp: not-a-port}"}}),
        ))
        .unwrap();
    assert!(warned_bad.contains("graceful-wait"), "{warned_bad:?}");
    cluster.ok(&["delete", "pod", "-n", HOOKED, "bad-annotation"]);
    report.say(format!(
        "refused and malformed pods admitted unchanged; kubectl printed: {} | {}",
        warned.trim(),
        warned_bad.trim()
    ));

    // A webhook pod killed mid-admission, then the node drained.
    let (created, hooked) = create_while(cluster, &spec, "killed", 40, || {
        let victim = webhook_pods(cluster)[0]["metadata"]["name"]
            .as_str()
            .unwrap()
            .to_string();
        cluster.ok(&[
            "delete",
            "pod",
            "-n",
            RELEASE_NS,
            &victim,
            "--grace-period=0",
            "--force",
        ]);
    });
    assert_eq!(
        created, 40,
        "pods failed to be created while a webhook pod was killed"
    );
    report.say(format!(
        "a webhook pod force-deleted while 40 pods were being created: all 40 created, {hooked} hooked, {} unhooked",
        40 - hooked
    ));
    ready_without_helm(cluster, "after the kill");
    // Harder: a webhook process SIGKILLed on the node while it serves (no
    // shutdown delay, connections cut); the kubelet restarts it.
    let opened = fail_open(cluster);
    let (created, hooked) = create_while(cluster, &spec, "sigkilled", 40, || {
        let pids = std::process::Command::new("pgrep")
            .args(["-f", "graceful-inject serve"])
            .output()
            .unwrap();
        let pid = String::from_utf8_lossy(&pids.stdout)
            .lines()
            .next()
            .expect("a webhook process on the node")
            .to_string();
        assert!(std::process::Command::new("kill")
            .args(["-KILL", &pid])
            .status()
            .unwrap()
            .success());
    });
    let opened = fail_open(cluster) - opened;
    assert_eq!(
        created, 40,
        "pods failed to be created while a webhook process was killed"
    );
    report.say(format!(
        "a webhook process SIGKILLed on the node while 40 pods were being created: all 40 created, {hooked} hooked, {} unhooked; the API server failed open {opened} times",
        40 - hooked
    ));
    ready_without_helm(cluster, "after the SIGKILL");
    let mut drain_said = String::new();
    let (created, hooked) = create_while(cluster, &spec, "drained", 40, || {
        let out = cluster.run(&[
            "drain",
            "127.0.0.1",
            "--pod-selector",
            &format!("app.kubernetes.io/name={WEBHOOK}"),
            "--delete-emptydir-data",
            "--ignore-daemonsets",
            "--timeout=20s",
        ]);
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let evicted = said.lines().filter(|l| l.ends_with(" evicted")).count();
        let refused = said.contains("would violate the pod's disruption budget");
        drain_said = format!(
            "{evicted} webhook pod evicted, {}, drain exit {}",
            if refused {
                "the other's eviction refused by the PodDisruptionBudget until the drain's timeout"
            } else {
                "no eviction refused"
            },
            out.status.code().unwrap_or(-1)
        );
    });
    cluster.ok(&["uncordon", "127.0.0.1"]);
    assert_eq!(
        created, 40,
        "pods failed to be created while the node was drained"
    );
    ready_without_helm(cluster, "after the drain");
    report.say(format!(
        "the node drained (webhook pods only, 20 s) while 40 pods were created: all 40 created, {hooked} hooked; {drain_said}"
    ));

    // Hostile pods through the API server.
    let restarted = restarts(cluster);
    hostile(cluster, &spec, restarted, report);
}

/// Restarts of the webhook's containers so far.
pub fn restarts(cluster: &Cluster) -> u64 {
    cluster.json(&["get", "pods", "-n", RELEASE_NS])["items"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| {
            p["status"]["containerStatuses"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .map(|c| c["restartCount"].as_u64().unwrap_or(0))
        .sum()
}

/// Waits until the webhook hooks a pod again (its endpoints are back in
/// the API server's view).
pub fn wait_serving(cluster: &Cluster, upstream: &str) {
    let spec = admitted_only(plain(upstream));
    let mut n = 0;
    cluster.until("the webhook serves again", || {
        n += 1;
        let name = format!("serving-{n}");
        let (pod, _) = cluster
            .create(&annotated_pod(HOOKED, &name, spec.clone()))
            .unwrap();
        cluster.ok(&["delete", "pod", "-n", HOOKED, &name, "--wait=false"]);
        hook(&pod, "istio-proxy").is_some()
    });
}

/// Creates `count` admitted-only pods, one after another, and runs
/// `meanwhile` on this thread once five are in, so the fault lands
/// mid-stream; (created, hooked).
pub fn create_while(
    cluster: &Cluster,
    spec: &Value,
    prefix: &str,
    count: usize,
    meanwhile: impl FnOnce(),
) -> (usize, usize) {
    let (mut created, mut hooked) = (0, 0);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        let worker = s.spawn(move || {
            let (mut c, mut h) = (0, 0);
            for i in 0..count {
                let pod = annotated_pod(HOOKED, &format!("{prefix}-{i}"), spec.clone());
                if let Ok((pod, _)) = cluster.create(&pod) {
                    c += 1;
                    if hook(&pod, "istio-proxy").is_some() {
                        h += 1;
                    }
                }
                let _ = tx.send(());
            }
            (c, h)
        });
        for _ in 0..5 {
            rx.recv().unwrap();
        }
        meanwhile();
        (created, hooked) = worker.join().unwrap();
    });
    let _ = cluster.run(&["delete", "pods", "-n", HOOKED, "--all", "--wait=false"]);
    (created, hooked)
}

/// Pods no manifest author would write, through the API server: the
/// webhook must neither crash nor make a pod the API server refuses.
pub fn hostile(cluster: &Cluster, spec: &Value, restarted: u64, report: &mut Report) {
    let mut cases: Vec<(&str, Value)> = Vec::new();
    let mut huge = spec.clone();
    container(&mut huge, "test-tcp-svc")["command"] = json!((0..200)
        .map(|i| format!("{i}-{}", "x".repeat(4000)))
        .collect::<Vec<_>>());
    cases.push(("an 800 KB command", huge));
    let mut unicode = spec.clone();
    container(&mut unicode, "istio-proxy")["env"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "GREETING", "value": "grüße, 世界, 🚀, \u{202e}rtl"}));
    container(&mut unicode, "istio-proxy")["args"] = json!(["--ünïcödé", "\u{0}"]);
    cases.push(("unicode (and a NUL) in args and env", unicode));
    let mut many = spec.clone();
    let app = container(&mut many, "test-tcp-svc").clone();
    let list = many["containers"].as_array_mut().unwrap();
    for i in 0..98 {
        let mut c = app.clone();
        c["name"] = format!("app-{i}").into();
        list.push(c);
    }
    cases.push(("100 containers", many));
    for (kind, pre_stop) in [
        (
            "exec",
            json!({"exec": {"command": ["/bin/sh", "-c", "while netstat -ltn | grep -q 20000; do sleep 1; done"]}}),
        ),
        (
            "httpGet",
            json!({"httpGet": {"path": "/drain", "port": 15000}}),
        ),
        ("tcpSocket", json!({"tcpSocket": {"port": 15000}})),
        ("sleep", json!({"sleep": {"seconds": 5}})),
    ] {
        let mut s = spec.clone();
        container(&mut s, "istio-proxy")["lifecycle"] = json!({"preStop": pre_stop});
        cases.push((kind, s));
    }
    let mut said = Vec::new();
    for (i, (what, s)) in cases.into_iter().enumerate() {
        let name = format!("hostile-{i}");
        let meta = json!({"annotations": {"graceful-wait.io/wait": "auto", "note": "ünïcödé ✓"}});
        match cluster.create(&bare(HOOKED, &name, s, meta)) {
            Ok((pod, _)) => {
                said.push(format!(
                    "{what}: {}",
                    if hook(&pod, "istio-proxy").is_some() {
                        "hooked"
                    } else {
                        "unchanged"
                    }
                ));
                cluster.ok(&["delete", "pod", "-n", HOOKED, &name, "--wait=false"]);
            }
            // The API server's own validation may refuse what it refuses
            // without any webhook (a NUL in an argument is valid; this
            // names the reason if not); the webhook must not be the cause.
            Err(e) => {
                assert!(
                    !e.contains("graceful-wait"),
                    "{what}: refused because of the webhook: {e}"
                );
                said.push(format!(
                    "{what}: refused by the API server's validation ({})",
                    e.lines().next().unwrap_or_default()
                ));
            }
        }
    }
    let decisions = webhook_log(cluster);
    let errors = decisions
        .lines()
        .filter(|l| l.contains("\"decision\":\"error\"") && l.contains("internal error"))
        .count();
    // A crash would show as a restart of a webhook container; an internal
    // error is a pod left unhooked with a warning of it (the API
    // server's re-invocation once gave one for every pod: its pod has keys
    // sorted and defaults filled in).
    assert_eq!(
        restarts(cluster),
        restarted,
        "the webhook restarted:\n{decisions}"
    );
    assert_eq!(errors, 0, "the webhook answered with errors:\n{decisions}");
    report.say(format!(
        "hostile pods through the API server: {}; internal errors logged: {errors}; webhook restarts: 0",
        said.join("; ")
    ));
}
