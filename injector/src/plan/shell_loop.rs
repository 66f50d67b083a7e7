//! Recognises the shell loops people write as a proxy's preStop (the original
//! Python tool's `netstat | grep :PORT` and `curl URL` loops and their common
//! variations) and says which `graceful-wait` call means the same.
//!
//! Only what is certain is converted. A script is recognised when it is, in
//! full, one loop of a form below around one check of a form below; anything
//! else (a second command, a negation, a loop that waits for something to come
//! *up*, several ports, another host, command substitution, an unknown flag)
//! stays as written. The table is `docs/injector.md`'s "Shell loops".
//!
//! Loops, each "repeat while the check succeeds" (the app is still up):
//!
//! | form | |
//! |---|---|
//! | `while CHECK; do sleep N; done` | the check is the condition |
//! | `while TRUE; do CHECK \|\| break; sleep N; done` | |
//! | `while TRUE; do CHECK; if [ $? -gt 0 ]; then break; fi; sleep N; done` | also `-ne 0`, `!= 0`: the original tool's form |
//! | `while TRUE; do if ! CHECK; then break; fi; sleep N; done` | |
//!
//! (`TRUE` is `true`, `:`, `[ 1==1 ]`, `[ 1 ]` or `[ 1 -eq 1 ]`; the `sleep` is
//! optional.) Checks, each "succeeds while the app is up":
//!
//! | check | generated wait |
//! |---|---|
//! | `netstat -FLAGS \| [grep LISTEN \|] grep [-q] [-w] :PORT` (FLAGS with `l` and `t`) | `tcp --port=PORT` |
//! | `ss -FLAGS \| [grep LISTEN \|] grep [-q] [-w] :PORT` (the same) | `tcp --port=PORT` |
//! | `nc -z [-w N] [-v] HOST PORT`, HOST `localhost`, `127.0.0.1` or `::1` | `tcp --port=PORT` |
//! | `curl [-s] [-S] [-o /dev/null] [-m N] URL` (URL on localhost) | `http --url=URL` |
//! | `curl -f …` / `wget [-q] [-O F] [-T N] URL`: fail on an HTTP error too | `http --url=URL --down-status=400-599` |

use crate::config::{Wait, WaitFor};

/// The wait a shell-loop command stands for, if it is certainly one.
pub fn recognise(argv: &[String]) -> Option<Wait> {
    let [shell, flag, script] = argv else {
        return None;
    };
    let shell_name = shell.rsplit('/').next().unwrap_or(shell);
    if !matches!(shell_name, "sh" | "bash" | "ash" | "dash") || flag != "-c" {
        return None;
    }
    // Anything the shell would compute before running is not certain.
    if script.contains(['`', '<', '>', '&']) && !only_safe_redirects(script) {
        return None;
    }
    if script.contains("$(") {
        return None;
    }
    let statements = statements(script)?;
    let check = loop_check(&statements)?;
    Some(Wait {
        what: check_wait(check)?,
        // The loop's `sleep` is not carried over: graceful-wait's 100ms default
        // reacts faster than any shell loop, which is the point of replacing it.
        timeout: None,
        interval: None,
    })
}

/// `>/dev/null`, `2>&1`, `2>/dev/null`, `&>/dev/null`, `|| `: the only
/// redirections and `&` a recognised loop may hold (they change no result).
fn only_safe_redirects(script: &str) -> bool {
    let rest = script
        .replace("&>/dev/null", "")
        .replace("2>&1", "")
        .replace("2>/dev/null", "")
        .replace(">/dev/null", "")
        .replace("> /dev/null", "")
        .replace("&&", "\u{0}");
    !rest.contains(['`', '<', '>', '&', '\u{0}'])
}

/// The script's statements: split at `;` and line breaks outside quotes,
/// trimmed, empty ones dropped. None when a quote is not closed.
fn statements(script: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quote = None;
    for c in script.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => {
                quote = None;
                current.push(c);
            }
            (Some(_), c) => current.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                current.push(c);
            }
            (None, ';' | '\n') => out.push(std::mem::take(&mut current)),
            (None, c) => current.push(c),
        }
    }
    if quote.is_some() {
        return None;
    }
    out.push(current);
    Some(
        out.into_iter()
            .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|s| !s.is_empty())
            .collect(),
    )
}

fn is_true(cond: &str) -> bool {
    matches!(cond, "true" | ":" | "[ 1==1 ]" | "[ 1 ]" | "[ 1 -eq 1 ]")
}

fn is_sleep(s: &str) -> bool {
    match s.strip_prefix("sleep ") {
        Some(n) => n.parse::<f64>().is_ok_and(|n| n >= 0.0),
        None => false,
    }
}

/// The check inside a loop of one of the recognised forms.
fn loop_check(statements: &[String]) -> Option<&str> {
    let (first, rest) = statements.split_first()?;
    let cond = first.strip_prefix("while ")?;
    let (last, body) = rest.split_last()?;
    if last != "done" {
        return None;
    }
    let (do_first, body_rest) = body.split_first()?;
    let do_first = do_first.strip_prefix("do ")?;
    let mut body: Vec<&str> = std::iter::once(do_first)
        .chain(body_rest.iter().map(String::as_str))
        .collect();
    if body.last().is_some_and(|s| is_sleep(s)) {
        body.pop();
    }
    if !is_true(cond) {
        // `while CHECK; do sleep N; done`
        return body.is_empty().then_some(cond);
    }
    match body.as_slice() {
        [check] => check.strip_suffix(" || break"),
        [check, test, "then break", "fi"] if is_failed_status(test) => Some(check),
        [test, "then break", "fi"] => test.strip_prefix("if ! "),
        _ => None,
    }
}

/// `if [ $? -gt 0 ]` (or `-ne 0`, `!= 0`): the previous command failed.
fn is_failed_status(test: &str) -> bool {
    matches!(
        test,
        "if [ $? -gt 0 ]" | "if [ $? -ne 0 ]" | "if [ $? != 0 ]" | "if [ \"$?\" -ne 0 ]"
    )
}

/// A shell word without its quotes.
fn unquote(word: &str) -> &str {
    for q in ['\'', '"'] {
        if let Some(inner) = word.strip_prefix(q).and_then(|w| w.strip_suffix(q)) {
            return inner;
        }
    }
    word
}

/// The words of a command (quotes kept, split at spaces outside them).
fn words(command: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quote) = (None, None);
    for (i, c) in command.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => {
                quote = Some(c);
                start.get_or_insert(i);
            }
            (None, ' ') => {
                if let Some(s) = start.take() {
                    out.push(&command[s..i]);
                }
            }
            (None, _) => {
                start.get_or_insert(i);
            }
        }
    }
    if let Some(s) = start {
        out.push(&command[s..]);
    }
    // Redirections that change nothing are not words of the command.
    out.retain(|w| !matches!(*w, ">/dev/null" | "2>&1" | "2>/dev/null" | "&>/dev/null"));
    out
}

/// The wait a check stands for.
fn check_wait(check: &str) -> Option<WaitFor> {
    let stages: Vec<&str> = check.split(" | ").map(str::trim).collect();
    if stages.iter().any(|s| s.contains('|')) {
        return None;
    }
    let first = words(stages[0]);
    match (first.first().copied()?, stages.len()) {
        ("netstat" | "ss", n) if n >= 2 => socket_listing(&first, &stages[1..]),
        ("nc", 1) => netcat(&first),
        ("curl", 1) => curl(&first),
        ("wget", 1) => wget(&first),
        _ => None,
    }
}

fn port(text: &str) -> Option<u16> {
    text.parse::<u16>().ok().filter(|p| *p > 0)
}

/// `netstat -tlnp | grep LISTEN | grep :PORT`: a TCP listener on PORT.
fn socket_listing(listing: &[&str], greps: &[&str]) -> Option<WaitFor> {
    // One flag word that asks for listening (l) TCP (t) sockets.
    let [_, flags] = listing else { return None };
    let flags = flags.strip_prefix('-')?;
    let listening_tcp = flags.contains('l') && flags.contains('t');
    if !listening_tcp || !flags.chars().all(|c| "tulnpaew".contains(c)) {
        return None;
    }
    let mut found = None;
    for grep in greps {
        let w = words(grep);
        let (name, rest) = w.split_first()?;
        if *name != "grep" {
            return None;
        }
        let mut patterns = rest
            .iter()
            .filter(|a| !matches!(**a, "-q" | "-w" | "-qw" | "-wq"));
        let pattern = unquote(patterns.next()?);
        if patterns.next().is_some() {
            return None; // -e A -e B, -E, files: not one pattern
        }
        if pattern == "LISTEN" {
            continue;
        }
        let digits = pattern.strip_prefix(':')?.trim_end_matches([' ', '$']);
        if found.replace(port(digits)?).is_some() {
            return None; // two port greps: not one port
        }
    }
    Some(WaitFor::Tcp(vec![found?]))
}

/// `nc -z [-w N] [-v] localhost PORT`.
fn netcat(w: &[&str]) -> Option<WaitFor> {
    let mut args = w[1..].iter().copied();
    let mut zero_io = false;
    let mut operands = Vec::new();
    while let Some(a) = args.next() {
        match a {
            "-z" => zero_io = true,
            "-zv" | "-vz" => zero_io = true,
            "-v" => {}
            "-w" => {
                args.next()?.parse::<u32>().ok()?;
            }
            a if a.starts_with('-') => return None,
            a => operands.push(a),
        }
    }
    let [host, p] = operands.as_slice() else {
        return None;
    };
    if !zero_io || !matches!(unquote(host), "localhost" | "127.0.0.1" | "::1") {
        return None;
    }
    Some(WaitFor::Tcp(vec![port(p)?]))
}

/// A URL on this pod, as the http wait takes it.
fn local_url(word: &str) -> Option<String> {
    let url = unquote(word);
    graceful_wait_shared::url::parse_local(url).ok()?;
    Some(url.to_string())
}

/// `curl [flags] URL`; with `-f` an HTTP error fails it too.
fn curl(w: &[&str]) -> Option<WaitFor> {
    let mut args = w[1..].iter().copied();
    let (mut fail, mut url) = (false, None);
    while let Some(a) = args.next() {
        match a {
            "-o" | "--output" => {
                if args.next()? != "/dev/null" {
                    return None;
                }
            }
            "-m" | "--max-time" | "--connect-timeout" => {
                args.next()?.parse::<f64>().ok()?;
            }
            "--fail" => fail = true,
            "--silent" | "--show-error" => {}
            a if a.starts_with("--") => return None,
            a if a.starts_with('-') => {
                let flags = &a[1..];
                if !flags.chars().all(|c| "sSf".contains(c)) {
                    return None;
                }
                fail |= flags.contains('f');
            }
            a if url.is_none() => url = Some(local_url(a)?),
            _ => return None,
        }
    }
    Some(http(url?, fail))
}

/// `wget [-q] [-O FILE] [-T N] URL`: wget fails on an HTTP error status.
fn wget(w: &[&str]) -> Option<WaitFor> {
    let mut args = w[1..].iter().copied();
    let mut url = None;
    while let Some(a) = args.next() {
        match a {
            "-q" | "--quiet" | "--spider" => {}
            "-O" => {
                args.next()?;
            }
            "-T" | "--timeout" => {
                args.next()?.parse::<f64>().ok()?;
            }
            a if a.starts_with('-') => return None,
            a if url.is_none() => url = Some(local_url(a)?),
            _ => return None,
        }
    }
    Some(http(url?, true))
}

fn http(url: String, fails_on_error_status: bool) -> WaitFor {
    WaitFor::Http {
        url,
        down_status: fails_on_error_status.then(|| "400-599".to_string()),
    }
}

/// Whether a command looks like a wait loop that was not recognised (for the
/// summary's note: it is kept as written).
pub fn looks_like_a_loop(argv: &[String]) -> bool {
    argv.iter()
        .any(|a| a.contains("while ") || a.contains("until "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Vec<String> {
        vec!["/bin/sh".into(), "-c".into(), script.into()]
    }

    fn wait(what: WaitFor) -> Option<Wait> {
        Some(Wait {
            what,
            timeout: None,
            interval: None,
        })
    }

    fn tcp(p: u16) -> Option<Wait> {
        wait(WaitFor::Tcp(vec![p]))
    }

    fn http(u: &str, down: Option<&str>) -> Option<Wait> {
        wait(WaitFor::Http {
            url: u.into(),
            down_status: down.map(str::to_string),
        })
    }

    /// Every row of the tables in the module's documentation.
    #[test]
    fn each_recognised_form() {
        let cases: &[(&str, Option<Wait>)] = &[
            // The original tool's loops.
            ("while [ 1==1 ]; do netstat -tulpn | grep LISTEN | grep :20000; if [ $? -gt 0 ]; then  break; fi; sleep 1; done", tcp(20000)),
            ("while [ 1==1 ]; do curl localhost:3000/health; if [ $? -gt 0 ]; then  break; fi; sleep 1; done", http("localhost:3000/health", None)),
            // The loop forms.
            ("while true; do ss -ltn | grep -q ':8080 ' || break; sleep 2; done", tcp(8080)),
            ("while nc -z localhost 9000; do sleep 0.5; done", tcp(9000)),
            ("while : ; do if ! nc -z 127.0.0.1 9000; then break; fi; sleep 1; done", tcp(9000)),
            ("while true; do nc -z -w 1 ::1 9000; if [ $? -ne 0 ]; then break; fi; done", tcp(9000)),
            // The checks.
            ("while curl -s localhost:3000/; do sleep 1; done", http("localhost:3000/", None)),
            ("while curl -sS -o /dev/null -m 2 http://127.0.0.1:8080/ready; do sleep 1; done", http("http://127.0.0.1:8080/ready", None)),
            ("while true; do curl -sf http://127.0.0.1:8080/ready || break; sleep 1; done", http("http://127.0.0.1:8080/ready", Some("400-599"))),
            ("while true; do wget -q -O /dev/null localhost:3000/health || break; sleep 1; done", http("localhost:3000/health", Some("400-599"))),
            ("while netstat -ltn | grep -qw :15000; do sleep 1; done", tcp(15000)),
            ("while [ 1 ]; do netstat -tlnp 2>/dev/null | grep ':443$' >/dev/null || break; sleep 1; done", tcp(443)),
        ];
        for (script, want) in cases {
            assert_eq!(&recognise(&sh(script)), want, "{script}");
        }
        assert_eq!(
            recognise(&[
                "bash".into(),
                "-c".into(),
                "while nc -z localhost 9000; do sleep 1; done".into()
            ]),
            tcp(9000)
        );
    }

    /// Near misses: each would change the meaning if converted.
    #[test]
    fn near_misses_stay_as_written() {
        for script in [
            // Waits for the port to come up, not down.
            "while ! nc -z localhost 9000; do sleep 1; done",
            "while ! netstat -tln | grep -q :8080; do sleep 1; done",
            "while true; do nc -z localhost 9000; if [ $? -ne 0 ]; then sleep 1; else break; fi; done",
            "until curl localhost:3000/health; do sleep 1; done",
            "while true; do curl localhost:3000/health && break; sleep 1; done",
            // Several ports.
            "while netstat -tln | grep -e :8080 -e :9090; do sleep 1; done",
            "while netstat -tln | grep -E ':8080|:9090'; do sleep 1; done",
            "while true; do netstat -tln | grep :8080 | grep :9090 || break; done",
            // Another host.
            "while nc -z db.example 5432; do sleep 1; done",
            "while curl example.com/x; do sleep 1; done",
            // Command substitution and anything computed.
            "while [ \"$(curl -s -o /dev/null -w '%{http_code}' localhost:3000/health)\" = 200 ]; do sleep 1; done",
            "while true; do test `netstat -tln | grep -c :8080` -gt 0 || break; done",
            // More than the loop.
            "while true; do netstat -tulpn | grep :20000 || break; sleep 1; done; /bin/notify.sh",
            "while true; do curl localhost:3000/health || break; sleep 1; done; /bin/notify-done",
            "/bin/graceful_termination.sh; while nc -z localhost 1; do sleep 1; done",
            // Not a wait at all, or not one check.
            "sleep 10",
            "while true; do nc -z localhost 9000; sleep 1; done",
            "while true; do curl localhost:3000/health || break; done; while true; do sleep 1; done",
            // Unknown flags, UDP, bad ports.
            "while curl --resolve x:80:127.0.0.1 localhost/; do sleep 1; done",
            "while netstat -uln | grep :53; do sleep 1; done",
            "while netstat -tulpn | grep :99999; do sleep 1; done",
            "while nc -zu localhost 53; do sleep 1; done",
            "while true; do curl -o out.html localhost:3000/ || break; done",
        ] {
            assert_eq!(recognise(&sh(script)), None, "{script}");
        }
        assert_eq!(recognise(&["/bin/drain".to_string()]), None);
        assert_eq!(
            recognise(&[
                "python3".into(),
                "-c".into(),
                "while nc -z localhost 1; do sleep 1; done".into()
            ]),
            None
        );
    }
}
