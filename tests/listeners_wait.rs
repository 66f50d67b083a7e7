//! `graceful-wait listeners`, the wait with no configuration, against real
//! listeners owned by different users in a network namespace of their own
//! (root: `ip netns`, `setpriv`; SKIPPED elsewhere): Istio's proxy (uid 1337)
//! on its usual ports must never hold it; the app's listeners (uid 1000,
//! IPv4 and IPv6, several ports) must, until the last one closes.

mod support;
use support::*;

#[test]
#[ignore = "re-exec entry point: the tests run it as their helper process"]
fn helper_process() {
    helper_main();
}

/// Istio's proxy's listeners: admin, outbound, inbound, agent, health, Prometheus.
const PROXY_PORTS: [u16; 6] = [15000, 15001, 15006, 15020, 15021, 15090];

struct Pod {
    ns: Netns,
    _proxy: Vec<HelperProcess>,
}

impl Pod {
    fn new(tag: &str) -> Pod {
        let ns = Netns::new(tag);
        let proxy = PROXY_PORTS
            .iter()
            .map(|p| HelperProcess::listen("proxy", *p, &as_user(&ns, "1337")))
            .collect();
        Pod { ns, _proxy: proxy }
    }

    /// graceful-wait in the pod's network namespace, as root (as the
    /// kubelet's exec would run it as the proxy's user, netlink needs no
    /// privilege either way; the tests of `tcp` run unprivileged).
    fn wait(&self, args: &[&str]) -> std::process::Command {
        let mut argv: Vec<&str> = self.ns.exec().to_vec();
        argv.push(bin());
        argv.extend_from_slice(args);
        command(&argv)
    }
}

/// `ip netns exec NS setpriv --reuid UID …`: a process of that user in the pod.
fn as_user<'a>(ns: &'a Netns, uid: &'a str) -> Vec<&'a str> {
    let mut prefix = ns.exec().to_vec();
    prefix.extend(["setpriv", "--reuid", uid, "--regid", uid, "--clear-groups"]);
    prefix
}

#[test]
fn the_proxy_never_holds_it_the_app_does_until_its_last_listener_closes() {
    if !root_or_skip("the_proxy_never_holds_it_the_app_does_until_its_last_listener_closes") {
        return;
    }
    let pod = Pod::new("lsn");
    // Only the proxy listens: nothing to wait for.
    for source in SOURCES {
        let (code, log) =
            run(&mut pod.wait(&["listeners", "--source", source, "--timeout", "10s"]));
        assert_eq!(
            code, 0,
            "{source}: the proxy's listeners held the wait: {log}"
        );
    }
    let app = as_user(&pod.ns, "1000");
    let app_v4 = HelperProcess::listen("app", 8080, &app);
    let app_v6 = HelperProcess::listen_on("app", "[::]:9090", &app);
    for source in SOURCES {
        let (code, log) =
            run(&mut pod.wait(&["listeners", "--source", source, "--timeout", "300ms"]));
        assert_eq!(code, 124, "{source}: {log}");
        assert!(
            log.contains("listening: 8080 (uid 1000), 9090 (uid 1000)"),
            "{source}: {log}"
        );
        assert!(
            PROXY_PORTS
                .iter()
                .all(|p| !log.contains(&format!("{p} (uid"))),
            "{source}: a proxy port was counted: {log}"
        );
    }
    // Woken by each close (looks an hour apart): one port, then the other.
    let mut w =
        Watched::spawn(&mut pod.wait(&["listeners", "--interval", "1h", "--timeout", "1h"]));
    w.expect_line("waiting: listening: 8080 (uid 1000), 9090 (uid 1000)");
    drop(app_v4);
    w.expect_line("waiting: listening: 9090 (uid 1000)");
    drop(app_v6);
    let (code, log) = w.finish();
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("no listener left but uid [1337]'s"), "{log}");
}

#[test]
fn other_sidecars_are_excluded_by_their_uid() {
    if !root_or_skip("other_sidecars_are_excluded_by_their_uid") {
        return;
    }
    let pod = Pod::new("lsx");
    let _vault_agent = HelperProcess::listen("vault", 8200, &as_user(&pod.ns, "100"));
    let (code, log) = run(&mut pod.wait(&["listeners", "--timeout", "300ms"]));
    assert_eq!(code, 124, "{log}");
    assert!(log.contains("8200 (uid 100)"), "{log}");
    let (code, log) =
        run(&mut pod.wait(&["listeners", "--exclude-uid", "1337,100", "--timeout", "10s"]));
    assert_eq!(code, 0, "{log}");
}
