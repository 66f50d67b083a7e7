//! `graceful-wait http` against real listeners on loopback.

mod support;
use support::*;

#[test]
#[ignore = "re-exec entry point: the tests run it as their helper process"]
fn helper_process() {
    helper_main();
}

fn http(url: &str, extra: &[&str]) -> std::process::Command {
    let mut args = vec!["http", "--url", url];
    args.extend_from_slice(extra);
    graceful_wait(&args)
}

#[test]
fn returns_once_the_endpoint_stops_answering() {
    let server = TestServer::start(Answer::Always(200));
    let mut w = Watched::spawn(&mut http(&server.url("/health"), &[]));
    w.expect_line("waiting: answering (");
    server.close();
    let (code, log) = w.finish();
    assert_eq!(code, 0, "{log}");
    assert!(
        log.contains("condition met") && log.contains("refused"),
        "{log}"
    );
}

#[test]
fn an_answering_endpoint_keeps_it_waiting_until_the_deadline() {
    let server = TestServer::start(Answer::Always(200));
    let (code, log) = run(&mut http(&server.url("/health"), &["--timeout", "500ms"]));
    assert_eq!(code, 124, "{log}");
    assert!(log.contains("HTTP 200"), "{log}");
}

#[test]
fn a_503_while_draining_is_still_up_unless_asked() {
    let server = TestServer::start(Answer::Always(503));
    let (code, log) = run(&mut http(&server.url("/ready"), &["--timeout", "400ms"]));
    assert_eq!(code, 124, "503 counts as up by default: {log}");
    let (code, log) = run(&mut http(
        &server.url("/ready"),
        &["--timeout", "5s", "--down-status", "500-599"],
    ));
    assert_eq!(code, 0, "--down-status 500-599 makes 503 down: {log}");
    let (code, log) = run(&mut http(
        &server.url("/ready"),
        &["--timeout", "400ms", "--down-status", "404"],
    ));
    assert_eq!(code, 124, "503 is not in 404: {log}");
}

#[test]
fn an_endpoint_that_never_answers_does_not_hang_past_the_timeout() {
    let server = TestServer::start(Answer::Never);
    // Each request may take 10s, but the whole wait has 1s.
    let (code, log) = run(&mut http(
        &server.url("/"),
        &["--timeout", "1s", "--request-timeout", "10s"],
    ));
    assert_eq!(code, 124, "{log}");
}

#[test]
fn a_request_that_times_out_counts_as_up() {
    let server = TestServer::start(Answer::Never);
    let (code, log) = run(&mut http(
        &server.url("/"),
        &["--timeout", "1s", "--request-timeout", "100ms"],
    ));
    assert_eq!(code, 124, "{log}");
    assert!(log.contains("no answer within"), "{log}");
}

/// Accepted, then closed, reset, or answered with garbage: something still
/// listens, so the app is not gone — the wait holds to its deadline (124).
#[test]
fn an_answer_that_is_not_http_is_still_up() {
    for (answer, name) in [
        (Answer::Hangup, "closed without a response"),
        (Answer::Reset, "reset"),
        (Answer::Garbage, "garbage"),
    ] {
        let server = TestServer::start(answer);
        let (code, log) = run(&mut http(&server.url("/"), &["--timeout", "400ms"]));
        assert_eq!(code, 124, "{name}: {log}");
        assert!(log.contains("something still listens"), "{name}: {log}");
        assert!(!log.contains("condition met"), "{name}: {log}");
    }
}

#[test]
fn scheme_is_optional_and_localhost_needs_no_hosts_file() {
    // The helper listens on 0.0.0.0, so localhost reaches it over 127.0.0.1.
    let helper = HelperProcess::listen("app", 0, &[]);
    for url in [
        format!("localhost:{}/health", helper.port),
        format!("http://localhost:{}/", helper.port),
    ] {
        let (code, log) = run(&mut http(&url, &["--timeout", "300ms"]));
        assert_eq!(code, 124, "{url}: {log}");
    }
    let port = helper.port;
    drop(helper);
    let (code, log) = run(&mut http(
        &format!("localhost:{port}/health"),
        &["--timeout", "5s"],
    ));
    assert_eq!(code, 0, "{log}");
}

#[test]
fn bad_urls_are_usage_errors() {
    for url in [
        "https://localhost/",
        "example.com/health",
        "localhost:99999/",
        "::",
        // Found by fuzzing: once a panic (exit 134), now a usage error.
        "/a://b",
        "localhost/a b",
    ] {
        let (code, log) = run(&mut http(url, &[]));
        assert_eq!(code, 2, "{url}: {log}");
    }
    let (code, log) = run(&mut http("localhost:1", &["--down-status", "700"]));
    assert_eq!(code, 2, "{log}");
}
