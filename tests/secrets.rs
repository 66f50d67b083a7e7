//! Secrets stay out of logs: a token in every position a user may put one —
//! URL credentials, query values, `$VARIABLE`-expanded parts of URLs,
//! headers, bodies, the wrapped or chained command's arguments — never
//! appears in what graceful-wait writes, as text or JSON, on stderr or in
//! the `--log-copy` file.

mod support;
use support::*;

const TOKEN: &str = "s3cr3t-T0KEN-42";

#[test]
#[ignore = "re-exec entry point: the tests run it as their helper process"]
fn helper_process() {
    helper_main();
}

/// Runs graceful-wait with the token in the environment as $SECRET, in both
/// log formats, and returns (status, everything it wrote) for each.
fn outputs(args: &[&str]) -> Vec<(i32, String)> {
    let mut out = Vec::new();
    for format in ["text", "json"] {
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("log");
        let mut all = vec!["--log-format", format, "--log-copy", copy.to_str().unwrap()];
        all.extend_from_slice(args);
        let mut cmd = graceful_wait(&all);
        cmd.env("SECRET", TOKEN);
        let (code, stderr) = run(&mut cmd);
        let copied = std::fs::read_to_string(&copy).unwrap_or_default();
        out.push((code, format!("{stderr}\n{copied}")));
    }
    out
}

fn assert_no_token(what: &str, args: &[&str], want_code: i32) {
    for (code, log) in outputs(args) {
        assert_eq!(code, want_code, "{what}: {log}");
        assert!(!log.contains(TOKEN), "{what}: the token leaked:\n{log}");
        assert!(!log.is_empty(), "{what}: nothing was logged");
    }
}

#[test]
fn a_token_in_a_callback_never_reaches_the_logs() {
    let server = TestServer::start(Answer::Always(200));
    let base = server.url("");
    let with_query = format!("{base}/done?token={TOKEN}&pod=x");
    let with_var = format!("{base}/$SECRET/done");
    let with_credentials = base.replace("http://", &format!("http://user:{TOKEN}@"));
    assert_no_token("query", &["callback", "--url", &with_query], 0);
    assert_no_token("expanded path", &["callback", "--url", &with_var], 0);
    assert_no_token(
        "header and body",
        &[
            "callback",
            "--url",
            &with_query,
            "--header",
            "Authorization: Bearer $SECRET",
            "--data",
            "{\"token\": \"$SECRET\"}",
        ],
        0,
    );
    // Credentials in a URL are refused (they would travel in the clear),
    // without repeating them.
    assert_no_token("credentials", &["callback", "--url", &with_credentials], 2);
    let malformed = format!("Bearer {TOKEN}");
    assert_no_token(
        "a malformed header",
        &["callback", "--url", &base, "--header", &malformed],
        2,
    );
    // The server did get the token: it was sent, only not logged.
    assert!(server.requests().iter().any(|r| r.path.contains(TOKEN)));
}

#[test]
fn a_token_in_a_wait_or_a_command_never_reaches_the_logs() {
    let server = TestServer::start(Answer::Always(200));
    let health = format!("{}?token={TOKEN}", server.url("/health"));
    assert_no_token(
        "http wait",
        &["http", "--url", &health, "--timeout", "300ms"],
        124,
    );
    let with_credentials = health.replace("http://", &format!("http://u:{TOKEN}@"));
    assert_no_token(
        "http wait credentials",
        &["http", "--url", &with_credentials],
        2,
    );
    let port = free_port().to_string();
    assert_no_token(
        "chained command",
        &["tcp", "--port", &port, "--", "sh", "-c", "exit 0", TOKEN],
        0,
    );
    assert_no_token(
        "wrapped command and wait-ready",
        &[
            "exec",
            "--wait-ready",
            &health,
            "--",
            "sh",
            "-c",
            "exit 0",
            TOKEN,
        ],
        0,
    );
}
