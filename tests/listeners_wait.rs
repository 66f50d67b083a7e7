//! `graceful-wait listeners`, the wait with no configuration, against real
//! listeners in a network namespace of their own (root: `ip netns`,
//! `unshare`, `nsenter`, `setpriv`; SKIPPED elsewhere):
//!
//! - with no options, run in the proxy's container (a PID namespace and
//!   /proc of its own, or a cgroup of its own in a shared PID namespace), the
//!   proxy's own listeners never hold it and the app's do, under the same
//!   uid (65532, distroless's); a listener of the container whose owner the
//!   hook may not inspect holds it, and the log says why;
//! - with `--exclude-uid`, by users: Istio's proxy (uid 1337) on its usual
//!   ports must never hold it; the app's listeners (uid 1000, IPv4 and IPv6,
//!   several ports) must, until the last one closes.

mod support;
use support::cgroup::Cgroup;
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
        let (code, log) = run(&mut pod.wait(&[
            "listeners",
            "--exclude-uid",
            "1337",
            "--source",
            source,
            "--timeout",
            "10s",
        ]));
        assert_eq!(
            code, 0,
            "{source}: the proxy's listeners held the wait: {log}"
        );
    }
    let app = as_user(&pod.ns, "1000");
    let app_v4 = HelperProcess::listen("app", 8080, &app);
    let app_v6 = HelperProcess::listen_on("app", "[::]:9090", &app);
    for source in SOURCES {
        let (code, log) = run(&mut pod.wait(&[
            "listeners",
            "--exclude-uid",
            "1337",
            "--source",
            source,
            "--timeout",
            "300ms",
        ]));
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
    let mut w = Watched::spawn(&mut pod.wait(&[
        "listeners",
        "--exclude-uid",
        "1337",
        "--interval",
        "1h",
        "--timeout",
        "1h",
    ]));
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
    let (code, log) =
        run(&mut pod.wait(&["listeners", "--exclude-uid", "1337", "--timeout", "300ms"]));
    assert_eq!(code, 124, "{log}");
    assert!(log.contains("8200 (uid 100)"), "{log}");
    let (code, log) =
        run(&mut pod.wait(&["listeners", "--exclude-uid", "1337,100", "--timeout", "10s"]));
    assert_eq!(code, 0, "{log}");
}

/// distroless's `nonroot`: the proxy's and the app's uid alike in the
/// zero-config tests, the case that breaks a rule by uid.
const SHARED_UID: &str = "65532";

/// A container of the pod: a PID namespace and /proc of its own, in the
/// pod's network namespace; its first process listens on `addr` as `uid`.
struct Container {
    first: HelperProcess,
    /// The host pid of its first process.
    pid: i32,
}

/// `setpriv` as `uid`, to put after a namespace prefix.
fn as_uid(uid: &str) -> [&str; 7] {
    [
        "setpriv",
        "--reuid",
        uid,
        "--regid",
        uid,
        "--clear-groups",
        "--",
    ]
}

/// The child `pid` forked (unshare's and nsenter's, which fork into the PID
/// namespace they enter).
fn forked_by(pid: i32) -> i32 {
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap();
    children
        .split_whitespace()
        .next()
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("{pid} forked nothing"))
}

impl Container {
    fn start(ns: &Netns, uid: &str, addr: &str) -> Container {
        let mut prefix = ns.exec().to_vec();
        prefix.extend(["unshare", "--pid", "--fork", "--mount-proc"]);
        prefix.extend(as_uid(uid));
        let first = HelperProcess::listen_on("container", addr, &prefix);
        let pid = forked_by(first.pid());
        Container { first, pid }
    }

    /// `nsenter` into this container's network, PID and mount namespaces
    /// (its /proc), as `uid` (root if None).
    fn enter(&self, uid: Option<&str>) -> Vec<String> {
        let mut argv: Vec<String> = [
            "nsenter",
            "--target",
            &self.pid.to_string(),
            "--net",
            "--pid",
            "--mount",
        ]
        .map(String::from)
        .to_vec();
        if let Some(uid) = uid {
            argv.extend(as_uid(uid).map(String::from));
        }
        argv
    }

    /// Another process of this container, listening on `addr`.
    fn also(&self, uid: Option<&str>, addr: &str) -> HelperProcess {
        let prefix = self.enter(uid);
        let prefix: Vec<&str> = prefix.iter().map(String::as_str).collect();
        HelperProcess::listen_on("process", addr, &prefix)
    }

    /// graceful-wait as this container's preStop: in its namespaces, as `uid`.
    fn hook(&self, uid: &str, args: &[&str]) -> std::process::Command {
        let mut argv = self.enter(Some(uid));
        argv.push(bin().to_string());
        argv.extend(args.iter().map(|a| a.to_string()));
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        command(&argv)
    }
}

/// Runs the zero-config wait in `proxy` while the app listens on 8080 and
/// after it stops: held by the app's listener alone (not by the proxy's,
/// under the same uid), then released by its close.
fn zero_config_holds_for_the_app_alone(proxy: &Container, app: HelperProcess) {
    for source in SOURCES {
        let (code, log) = run(&mut proxy.hook(
            SHARED_UID,
            &["listeners", "--source", source, "--timeout", "300ms"],
        ));
        assert_eq!(code, 124, "{source}: {log}");
        assert!(
            log.contains(&format!("waiting: listening: 8080 (uid {SHARED_UID})")),
            "{source}: {log}"
        );
        assert!(
            log.contains("but this container's own sockets"),
            "{source}: {log}"
        );
    }
    let mut w = Watched::spawn(&mut proxy.hook(
        SHARED_UID,
        &["listeners", "--interval", "1h", "--timeout", "1h"],
    ));
    w.expect_line(&format!("waiting: listening: 8080 (uid {SHARED_UID})"));
    drop(app);
    let (code, log) = w.finish();
    assert_eq!(code, 0, "{log}");
    assert!(
        log.contains("no listener left but this container's own"),
        "{log}"
    );
}

#[test]
fn zero_config_the_proxys_own_sockets_never_hold_it_whatever_its_uid() {
    let test = "zero_config_the_proxys_own_sockets_never_hold_it_whatever_its_uid";
    if !root_or_skip(test) {
        return;
    }
    let ns = Netns::new("lso");
    // The proxy: three listeners in two processes, as the app's uid.
    let proxy = Container::start(&ns, SHARED_UID, "0.0.0.0:15000");
    let _agent = proxy.also(Some(SHARED_UID), "0.0.0.0:15020");
    let _admin = proxy.also(Some(SHARED_UID), "[::]:15090");
    // Only the proxy listens: nothing to wait for.
    for source in SOURCES {
        let (code, log) = run(&mut proxy.hook(
            SHARED_UID,
            &["listeners", "--source", source, "--timeout", "10s"],
        ));
        assert_eq!(
            code, 0,
            "{source}: the proxy's own listeners held it: {log}"
        );
    }
    // The app, a container of its own, under the same uid.
    let app = Container::start(&ns, SHARED_UID, "0.0.0.0:8080");
    zero_config_holds_for_the_app_alone(&proxy, app.first);
    drop(proxy.first);
}

#[test]
fn zero_config_in_a_shared_pid_namespace_goes_by_cgroup() {
    let test = "zero_config_in_a_shared_pid_namespace_goes_by_cgroup";
    if !root_or_skip(test) {
        return;
    }
    let ns = Netns::new("lsc");
    let proxy = Container::start(&ns, SHARED_UID, "0.0.0.0:15000");
    // The app in the proxy's PID namespace (shareProcessNamespace: true),
    // in a cgroup of its own, as its container puts it.
    let cgroup = Cgroup::new("lsc");
    let app = proxy.also(Some(SHARED_UID), "0.0.0.0:8080");
    cgroup.take(forked_by(app.pid()));
    zero_config_holds_for_the_app_alone(&proxy, app);
    drop(proxy);
    drop(cgroup);
}

#[test]
fn zero_config_a_listener_whose_owner_cannot_be_read_holds_it() {
    let test = "zero_config_a_listener_whose_owner_cannot_be_read_holds_it";
    if !root_or_skip(test) {
        return;
    }
    let ns = Netns::new("lsu");
    let proxy = Container::start(&ns, SHARED_UID, "0.0.0.0:15000");
    // A process of the proxy's container that the hook, as another user,
    // may not inspect.
    let _root = proxy.also(None, "0.0.0.0:15021");
    let (code, log) = run(&mut proxy.hook(SHARED_UID, &["listeners", "--timeout", "300ms"]));
    assert_eq!(code, 124, "{log}");
    assert!(log.contains("listening: 15021 (uid 0)"), "{log}");
    assert!(
        log.contains("cannot read the sockets of a process of this container"),
        "{log}"
    );
}
