//! Recognises the shell loops people write as a proxy's preStop (the seed's
//! `netstat | grep :PORT` and `curl URL` loops and their variations) and says
//! which `graceful-wait` call means the same. Conservative: only a script that
//! is nothing but one such loop is recognised; anything else stays as written.

use crate::config::{Wait, WaitFor};
use regex::Regex;
use std::sync::OnceLock;

struct Patterns {
    whole_loop: Regex,
    port_grep: Regex,
    nc: Regex,
    url: Regex,
    exits_when_down: Regex,
    inner_done: Regex,
}

fn patterns() -> &'static Patterns {
    static P: OnceLock<Patterns> = OnceLock::new();
    P.get_or_init(|| Patterns {
        // `while COND; do BODY; done`, and nothing after. (`until` loops wait
        // for something to come *up*: the opposite meaning, not recognised.)
        whole_loop: Regex::new(r"(?s)^\s*while\s+(?P<cond>.*?);?\s*\bdo\b(?P<body>.*)[;\n]\s*done\s*;?\s*$").unwrap(),
        inner_done: Regex::new(r"[;\n]\s*done\b").unwrap(),
        // netstat/ss listing piped to a grep for :PORT
        port_grep: Regex::new(r"\b(netstat|ss)\b[^|]*\|.*\bgrep\b[^|;]*:(\d{1,5})\b").unwrap(),
        nc: Regex::new(r"\bnc\s+(?:-\w+\s+)*-z\w*\s+(?:-\w+\s+)*\S+\s+(\d{1,5})\b").unwrap(),
        url: Regex::new(r"\b(curl|wget)\b(?:\s+(?:-{1,2}[\w-]+(?:[= ](?:[^\s-]\S*))?))*?\s+'?((?:https?://)?(?:localhost|127\.0\.0\.1|\[::1\])(?::\d{1,5})?(?:/[^\s;'|&]*)?)").unwrap(),
        // The body leaves the loop when the check fails: `|| break`, or
        // `if [ $? -gt 0 ]` / `-ne 0` / `!= 0` ... `break`, or `if ! CHECK; then break`.
        exits_when_down: Regex::new(r"(?s)\|\|\s*break\b|\$\?\s*(?:-gt|-ne|!=)\s*0.*\bbreak\b|\bif\s+!\s.*\bbreak\b").unwrap(),
    })
}

/// The wait a shell-loop command stands for, if it is one.
pub fn recognise(argv: &[String]) -> Option<Wait> {
    let [shell, flag, script] = argv else {
        return None;
    };
    let shell_name = shell.rsplit('/').next().unwrap_or(shell);
    if !matches!(shell_name, "sh" | "bash" | "ash" | "dash") || flag != "-c" {
        return None;
    }
    let p = patterns();
    let parts = p.whole_loop.captures(script)?;
    let (cond, body) = (&parts["cond"], &parts["body"]);
    // A `done` inside means a second loop, or commands after this one.
    if p.inner_done.is_match(body) {
        return None;
    }
    // Either the body breaks out when the check fails (the seed's form), or
    // the check is the loop condition and the body does nothing but sleep.
    let checks_in_body = p.exits_when_down.is_match(body) && !body.contains("&& break");
    let checks_in_cond = !body.contains("break")
        && body
            .trim()
            .trim_end_matches(';')
            .trim()
            .starts_with("sleep");
    if !checks_in_body && !checks_in_cond {
        return None;
    }
    let script = if checks_in_body { body } else { cond };
    let port = |s: &str| s.parse::<u16>().ok().filter(|p| *p > 0);
    let what = if let Some(c) = p.port_grep.captures(script) {
        WaitFor::Tcp(vec![port(&c[2])?])
    } else if let Some(c) = p.nc.captures(script) {
        WaitFor::Tcp(vec![port(&c[1])?])
    } else if let Some(c) = p.url.captures(script) {
        let url = c[2].to_string();
        graceful_wait_shared::url::parse_local(&url).ok()?;
        WaitFor::Http {
            url,
            down_status: None,
        }
    } else {
        return None;
    };
    // The loop's `sleep` is not carried over: graceful-wait's 100ms default
    // reacts faster than any shell loop, which is the point of replacing it.
    Some(Wait {
        what,
        timeout: None,
        interval: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Vec<String> {
        vec!["/bin/sh".into(), "-c".into(), script.into()]
    }

    fn tcp(p: u16) -> Option<Wait> {
        Some(Wait {
            what: WaitFor::Tcp(vec![p]),
            timeout: None,
            interval: None,
        })
    }

    fn http(u: &str) -> Option<Wait> {
        Some(Wait {
            what: WaitFor::Http {
                url: u.into(),
                down_status: None,
            },
            timeout: None,
            interval: None,
        })
    }

    #[test]
    fn the_seeds_loops() {
        assert_eq!(
            recognise(&sh("while [ 1==1 ]; do netstat -tulpn | grep LISTEN | grep :20000; if [ $? -gt 0 ]; then  break; fi; sleep 1; done")),
            tcp(20000)
        );
        assert_eq!(
            recognise(&sh("while [ 1==1 ]; do curl localhost:3000/health; if [ $? -gt 0 ]; then  break; fi; sleep 1; done")),
            http("localhost:3000/health")
        );
    }

    #[test]
    fn the_variations_people_write() {
        assert_eq!(
            recognise(&sh(
                "while true; do ss -ltn | grep -q ':8080 ' || break; sleep 2; done"
            )),
            tcp(8080)
        );
        assert_eq!(
            recognise(&sh("while nc -z localhost 9000; do sleep 0.5; done")),
            tcp(9000)
        );
        assert_eq!(
            recognise(&sh("while curl -s localhost:3000/; do sleep 1; done")),
            http("localhost:3000/")
        );
        assert_eq!(
            recognise(&sh(
                "while true; do nc -z localhost 9000 || break; sleep 1; done"
            )),
            tcp(9000)
        );
        assert_eq!(
            recognise(&[
                "bash".into(),
                "-c".into(),
                "while true; do curl -sf http://127.0.0.1:8080/ready || break; sleep 1; done"
                    .into()
            ]),
            http("http://127.0.0.1:8080/ready")
        );
        assert_eq!(
            recognise(&sh(
                "while true; do wget -q -O /dev/null localhost:3000/health || break; sleep 1; done"
            )),
            http("localhost:3000/health")
        );
    }

    #[test]
    fn anything_else_stays_as_written() {
        for script in [
            "/bin/graceful_termination.sh",
            "while true; do netstat -tulpn | grep :20000 || break; sleep 1; done; /bin/notify.sh",
            "while true; do curl localhost:3000/health || break; sleep 1; done; /bin/notify-done",
            "while true; do curl localhost:3000/health || break; done; while true; do sleep 1; done",
            "sleep 10",
            "while true; do curl example.com/x || break; done",
            "while true; do netstat -tulpn | grep :99999 || break; done",
            "until curl localhost:3000/health; do sleep 1; done",
            "while true; do curl localhost:3000/health && break; sleep 1; done",
            "while true; do nc -z localhost 9000; sleep 1; done",
        ] {
            assert_eq!(recognise(&sh(script)), None, "{script}");
        }
        assert_eq!(recognise(&["/bin/drain".to_string()]), None);
    }
}
