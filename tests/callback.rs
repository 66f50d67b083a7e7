//! `graceful-wait callback` against real listeners: delivery, retries with a
//! stable Idempotency-Key, deadlines, final refusals, several URLs, HTTPS.

mod support;
use std::process::Command;
use support::*;

#[test]
#[ignore = "re-exec entry point: the tests run it as their helper process"]
fn helper_process() {
    helper_main();
}

fn callback(args: &[&str]) -> std::process::Command {
    let mut all = vec!["callback"];
    all.extend_from_slice(args);
    let mut cmd = graceful_wait(&all);
    cmd.env("POD_NAME", "web-7d9f").env("POD_NAMESPACE", "shop");
    cmd
}

#[test]
fn delivers_with_expanded_body_headers_and_a_key() {
    let server = TestServer::start(Answer::Always(200));
    let url = server.url("/hooks/$POD_NAMESPACE/${POD_NAME}");
    let (code, log) = run(&mut callback(&[
        "--url",
        &url,
        "--header",
        "X-Pod: $POD_NAME",
        "--data",
        "{\"pod\":\"$POD_NAME\"}",
    ]));
    assert_eq!(code, 0, "{log}");
    let seen = server.requests();
    assert_eq!(seen.len(), 1);
    let r = &seen[0];
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/hooks/shop/web-7d9f")
    );
    assert_eq!(r.body, "{\"pod\":\"web-7d9f\"}");
    assert_eq!(r.header("x-pod"), Some("web-7d9f"));
    assert!(
        r.header("idempotency-key")
            .is_some_and(|k| k.starts_with("gw-")),
        "{r:?}"
    );
}

#[test]
fn retries_until_delivered_with_the_same_key() {
    let server = TestServer::start(Answer::FailFirst(2));
    let (code, log) = run(&mut callback(&[
        "--url",
        &server.url("/done"),
        "--data",
        "x",
    ]));
    assert_eq!(code, 0, "{log}");
    let seen = server.requests();
    assert_eq!(seen.len(), 3, "two failures, then delivered: {log}");
    let keys: Vec<_> = seen
        .iter()
        .map(|r| r.header("idempotency-key").unwrap().to_string())
        .collect();
    assert!(keys.iter().all(|k| *k == keys[0]), "{keys:?}");
    // A second run of the hook (the kubelet may run it again) sends the same key too.
    let (code, _) = run(&mut callback(&[
        "--url",
        &server.url("/done"),
        "--data",
        "x",
    ]));
    assert_eq!(code, 0);
    assert_eq!(
        server.requests()[3].header("idempotency-key").unwrap(),
        keys[0]
    );
}

#[test]
fn a_server_that_never_answers_ends_at_the_deadline() {
    let server = TestServer::start(Answer::Never);
    let (code, log) = run(&mut callback(&[
        "--url",
        &server.url("/x"),
        "--timeout",
        "1s",
        "--request-timeout",
        "200ms",
    ]));
    assert_eq!(code, 124, "{log}");
    assert!(server.requests().len() >= 2, "it retried: {log}");
}

#[test]
fn a_4xx_is_final() {
    let server = TestServer::start(Answer::Always(404));
    let (code, log) = run(&mut callback(&[
        "--url",
        &server.url("/x"),
        "--timeout",
        "30s",
    ]));
    assert_eq!(code, 1, "{log}");
    assert_eq!(server.requests().len(), 1, "a 404 is not retried: {log}");
}

#[test]
fn several_urls_go_out_together() {
    let a = TestServer::start(Answer::Always(204));
    let b = TestServer::start(Answer::FailFirst(1));
    let (code, log) = run(&mut callback(&[
        "--url",
        &a.url("/a"),
        "--url",
        &b.url("/b"),
    ]));
    assert_eq!(code, 0, "{log}");
    assert_eq!((a.requests().len(), b.requests().len()), (1, 2));
    assert_ne!(
        a.requests()[0].header("idempotency-key"),
        b.requests()[0].header("idempotency-key")
    );
}

#[test]
fn https_with_the_images_ca_bundle() {
    let server = TestServer::start_https(Answer::Always(200));
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("ca.pem");
    std::fs::write(&bundle, server.cert_pem.as_ref().unwrap()).unwrap();
    let (code, log) =
        run(callback(&["--url", &server.url("/tls"), "--timeout", "5s"])
            .env("SSL_CERT_FILE", &bundle));
    assert_eq!(code, 0, "{log}");
    assert_eq!(server.requests()[0].path, "/tls");
    // Without that CA the certificate is not trusted: never "delivered",
    // and final at once, as a 4xx is (a deadline this long would outlast the
    // hang guard of `run` if it were retried).
    let (code, log) = run(&mut callback(&[
        "--url",
        &server.url("/tls"),
        "--timeout",
        "5m",
    ]));
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("callback failed for good"), "{log}");
    assert!(log.contains("does not verify"), "the reason: {log}");
    // Asked to, it keeps trying until its deadline.
    let (code, log) = run(&mut callback(&[
        "--url",
        &server.url("/tls"),
        "--timeout",
        "1s",
        "--retry-untrusted",
    ]));
    assert_ne!(code, 0, "{log}");
    assert!(log.contains("not delivered before the deadline"), "{log}");
    assert_eq!(
        server.requests().len(),
        1,
        "an untrusted server never got the request"
    );
}

#[test]
fn an_unset_variable_is_a_usage_error() {
    let (code, log) = run(&mut graceful_wait(&[
        "callback",
        "--url",
        "localhost:1/$NO_SUCH_VAR",
    ]));
    assert_eq!(code, 2, "{log}");
    assert!(log.contains("$NO_SUCH_VAR, which is not set"), "{log}");
}

#[test]
fn host_names_resolve_through_the_pods_dns_without_nss() {
    if !root_or_skip("host_names_resolve_through_the_pods_dns_without_nss") {
        return;
    }
    // A pod of its own: a network namespace with a DNS server and the
    // callback's target in it, and a resolv.conf naming that server, bound
    // over /etc/resolv.conf in a mount namespace of the binary's own.
    let ns = Netns::new("dns");
    let _dns = HelperProcess::dns("hooks.lab.test", &ns.exec());
    let target = HelperProcess::listen("hooks", 0, &ns.exec());
    let dir = tempfile::tempdir().unwrap();
    let resolv = dir.path().join("resolv.conf");
    std::fs::write(
        &resolv,
        "nameserver 127.0.0.1\nsearch lab.test\noptions ndots:1\n",
    )
    .unwrap();
    let mount = format!(
        "mount --bind {} /etc/resolv.conf && exec \"$@\"",
        resolv.display()
    );
    let run_in_pod = |url: &str| {
        let mut argv: Vec<String> = ns.exec().iter().map(|s| s.to_string()).collect();
        argv.extend(
            [
                "unshare",
                "-m",
                "sh",
                "-c",
                &mount,
                "sh",
                bin(),
                "callback",
                "--url",
                url,
                "--timeout",
                "3s",
            ]
            .map(String::from),
        );
        run(Command::new(&argv[0]).args(&argv[1..]))
    };
    let (code, log) = run_in_pod(&format!("http://hooks.lab.test:{}/done", target.port));
    assert_eq!(code, 0, "{log}");
    // The search domain applies, as in a pod's resolv.conf.
    let (code, log) = run_in_pod(&format!("http://hooks:{}/done", target.port));
    assert_eq!(code, 0, "{log}");
    // A name the DNS does not know is never "delivered".
    let (code, log) = run_in_pod(&format!("http://nowhere.lab.test:{}/done", target.port));
    assert_eq!(code, 124, "{log}");
    assert!(log.contains("cannot resolve nowhere.lab.test"), "{log}");
}

#[test]
fn a_chained_command_runs_after_the_callbacks() {
    // The injector keeps an app's existing preStop behind its callbacks.
    let server = TestServer::start(Answer::Always(200));
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let touch = format!("touch {}", marker.display());
    let (code, log) = run(&mut callback(&[
        "--url",
        &server.url("/done"),
        "--",
        "sh",
        "-c",
        &touch,
    ]));
    assert_eq!(code, 0, "{log}");
    assert!(marker.exists(), "{log}");
    assert_eq!(server.requests().len(), 1);
    // Delivered, then the chained command's own status.
    let (code, log) = run(&mut callback(&[
        "--url",
        &server.url("/done"),
        "--",
        "false",
    ]));
    assert_eq!(code, 1, "{log}");
}

/// The chained part of workload `name`'s proxy hook in golden case
/// chain-kubelet-actions, as written there, with this test's binary and
/// `address` (the server's base URL) in place of the written one.
fn chained_part(name: &str, written_address: &str, address: &str) -> Vec<String> {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("config/test/chain-kubelet-actions/expected.yaml"),
    )
    .unwrap();
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text).unwrap();
    let doc = docs
        .iter()
        .find(|d| d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in chain-kubelet-actions"));
    let proxy = &doc["spec"]["template"]["spec"]["containers"][1];
    let written: Vec<String> = proxy["lifecycle"]["preStop"]["exec"]["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    let dashes = written.iter().position(|w| w == "--").unwrap();
    let chained: Vec<String> = written[dashes + 1..]
        .iter()
        .enumerate()
        .map(|(i, w)| match i {
            0 => bin().to_string(),
            _ => w.replace(written_address, address),
        })
        .collect();
    assert_eq!(chained[1], "callback", "{written:?}");
    chained
}

/// An `httpGet` preStop (the Cloud SQL proxy operator's /quitquitquit) is
/// chained by the injector as a callback behind the wait
/// (config/test/chain-kubelet-actions): run as it is written there, graceful-wait
/// sends the same GET, with its header, once the wait is over — not before.
#[test]
fn a_chained_http_get_hook_is_sent_once_the_wait_is_over() {
    let server = TestServer::start(Answer::Always(200));
    // The chained part as written, the binary and the proxy's address this
    // test's; the wait in front of it one this test controls.
    let chained = chained_part(
        "reports",
        "http://localhost:9091/quitquitquit",
        &server.url("/quitquitquit"),
    );
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("done");
    let mut argv = vec![
        "file",
        "--exists",
        marker.to_str().unwrap(),
        "--timeout",
        "20s",
        "--",
    ];
    argv.extend(chained.iter().map(String::as_str));
    let mut w = Watched::spawn(&mut graceful_wait(&argv));
    w.expect_line("waiting: ");
    assert!(
        server.requests().is_empty(),
        "sent before the wait was over"
    );
    std::fs::write(&marker, "").unwrap();
    let (code, log) = w.finish();
    assert_eq!(code, 0, "{log}");
    let seen = server.requests();
    assert_eq!(seen.len(), 1, "{log}");
    assert_eq!(
        (seen[0].method.as_str(), seen[0].path.as_str()),
        ("GET", "/quitquitquit")
    );
    assert_eq!(seen[0].header("x-reason"), Some("pod terminating"));
}

/// What the kubelet sends as written — a `$` in the path or a header —
/// arrives as written after the wait too (the injector writes `$$`, which
/// the callback takes for a literal `$`, never a variable).
#[test]
fn a_chained_http_get_sends_dollar_signs_as_written() {
    let server = TestServer::start(Answer::Always(200));
    let chained = chained_part("ledger", "http://[::1]:9091", &server.url(""));
    let argv: Vec<&str> = chained[1..].iter().map(String::as_str).collect();
    let (code, log) = run(&mut graceful_wait(&argv));
    assert_eq!(code, 0, "{log}");
    let seen = server.requests();
    assert_eq!(seen.len(), 1, "{log}");
    assert_eq!(seen[0].path, "/quitquitquit?by=$HOSTNAME");
    assert_eq!(seen[0].header("x-cost"), Some("$5"));
}
