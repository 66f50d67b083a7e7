//! Every exit status a mode's `--help` documents (the tables of
//! `graceful_wait_shared::exit_status`, which also print that help) is what a
//! run that should produce it exits with: one case a row of every table, and
//! a test that fails when a row has no case. The waits share one table; the
//! tcp wait stands for them.

mod support;
use graceful_wait_shared::exit_status::{self, Status, Table};
use std::net::TcpListener;
use support::*;

#[test]
#[ignore = "re-exec entry point: the tests run it as their helper process"]
fn helper_process() {
    helper_main();
}

/// One documented row, and how to make a run end with it.
struct Case {
    table: &'static Table,
    status: Status,
    what: &'static str,
    run: fn() -> (i32, String),
}

fn tcp_free_port() -> (i32, String) {
    let port = free_port().to_string();
    run(&mut graceful_wait(&[
        "tcp",
        "--port",
        &port,
        "--timeout",
        "5s",
    ]))
}

fn tcp_looks_failing() -> (i32, String) {
    let empty = tempfile::tempdir().unwrap();
    let port = free_port().to_string();
    run(&mut graceful_wait(&[
        "tcp",
        "--port",
        &port,
        "--source",
        "proc",
        "--proc-net",
        empty.path().to_str().unwrap(),
        "--timeout",
        "300ms",
    ]))
}

fn tcp_bad_port() -> (i32, String) {
    run(&mut graceful_wait(&["tcp", "--port", "0"]))
}

fn tcp_held_port() -> (i32, String) {
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = port_of(&held).to_string();
    run(&mut graceful_wait(&[
        "tcp",
        "--port",
        &port,
        "--timeout",
        "300ms",
    ]))
}

fn callback_to(answer: u16, timeout: &str) -> (i32, String) {
    let server = TestServer::start(Answer::Always(answer));
    run(&mut graceful_wait(&[
        "callback",
        "--url",
        &server.url("/x"),
        "--timeout",
        timeout,
    ]))
}

fn exec(args: &[&str]) -> (i32, String) {
    let mut all = vec!["exec"];
    all.extend_from_slice(args);
    run(&mut graceful_wait(&all))
}

fn exec_sigterm_while_waiting() -> (i32, String) {
    let never = TestServer::start(Answer::Always(503));
    let mut w = Watched::spawn(&mut graceful_wait(&[
        "exec",
        "--wait-ready",
        &never.url("/"),
        "--",
        "true",
    ]));
    w.expect_line("waiting for the proxy to be ready");
    // SAFETY: kill(2) on the wrapper this test started.
    unsafe { libc::kill(w.pid(), libc::SIGTERM) };
    w.finish()
}

fn install_into(prepare: fn(&std::path::Path)) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    prepare(dir.path());
    run(&mut graceful_wait(&[
        "install",
        dir.path().to_str().unwrap(),
    ]))
}

const CASES: &[Case] = &[
    Case {
        table: &exit_status::WAIT,
        status: Status::Is(exit_status::OK),
        what: "nothing listens on the port",
        run: tcp_free_port,
    },
    Case {
        table: &exit_status::WAIT,
        status: Status::Is(exit_status::FAILED),
        what: "every look fails until the deadline",
        run: tcp_looks_failing,
    },
    Case {
        table: &exit_status::WAIT,
        status: Status::Is(exit_status::USAGE),
        what: "port 0",
        run: tcp_bad_port,
    },
    Case {
        table: &exit_status::WAIT,
        status: Status::Is(exit_status::DEADLINE),
        what: "the port is held past the deadline",
        run: tcp_held_port,
    },
    Case {
        table: &exit_status::CALLBACK,
        status: Status::Is(exit_status::OK),
        what: "a 200",
        run: || callback_to(200, "5s"),
    },
    Case {
        table: &exit_status::CALLBACK,
        status: Status::Is(exit_status::FAILED),
        what: "a 404, final",
        run: || callback_to(404, "5s"),
    },
    Case {
        table: &exit_status::CALLBACK,
        status: Status::Is(exit_status::USAGE),
        what: "an unsupported scheme",
        run: || run(&mut graceful_wait(&["callback", "--url", "ftp://h/x"])),
    },
    Case {
        table: &exit_status::CALLBACK,
        status: Status::Is(exit_status::DEADLINE),
        what: "a 503 until the deadline",
        run: || callback_to(503, "500ms"),
    },
    Case {
        table: &exit_status::EXEC,
        status: Status::Cmds,
        what: "CMD exits 7",
        run: || exec(&["--", "sh", "-c", "exit 7"]),
    },
    Case {
        table: &exit_status::EXEC,
        status: Status::Is(exit_status::FAILED),
        what: "--wait-ready gives up",
        run: || {
            let never = TestServer::start(Answer::Always(503));
            exec(&[
                "--wait-ready",
                &never.url("/"),
                "--ready-timeout",
                "300ms",
                "--",
                "true",
            ])
        },
    },
    Case {
        table: &exit_status::EXEC,
        status: Status::Is(exit_status::USAGE),
        what: "no CMD",
        run: || exec(&[]),
    },
    Case {
        table: &exit_status::EXEC,
        status: Status::Is(exit_status::CANNOT_RUN),
        what: "CMD is a folder",
        run: || exec(&["--", "/tmp"]),
    },
    Case {
        table: &exit_status::EXEC,
        status: Status::Is(exit_status::NOT_FOUND),
        what: "CMD does not exist",
        run: || exec(&["--", "/no/such/app"]),
    },
    Case {
        table: &exit_status::EXEC,
        status: Status::Is(exit_status::TERMINATED),
        what: "SIGTERM during --wait-ready",
        run: exec_sigterm_while_waiting,
    },
    Case {
        table: &exit_status::INSTALL,
        status: Status::Is(exit_status::OK),
        what: "an empty folder",
        run: || install_into(|_| {}),
    },
    Case {
        table: &exit_status::INSTALL,
        status: Status::Is(exit_status::FAILED),
        what: "a symlink at the target",
        run: || {
            install_into(|dir| {
                std::os::unix::fs::symlink("/etc/hostname", dir.join("graceful-wait")).unwrap()
            })
        },
    },
    Case {
        table: &exit_status::INSTALL,
        status: Status::Is(exit_status::USAGE),
        what: "no folder",
        run: || run(&mut graceful_wait(&["install"])),
    },
    Case {
        table: &exit_status::SLEEP,
        status: Status::Is(exit_status::OK),
        what: "a short pause",
        run: || run(&mut graceful_wait(&["sleep", "10ms"])),
    },
    Case {
        table: &exit_status::SLEEP,
        status: Status::Is(exit_status::USAGE),
        what: "no duration",
        run: || run(&mut graceful_wait(&["sleep", "soon"])),
    },
];

#[test]
fn every_documented_row_has_a_case() {
    for table in [
        &exit_status::WAIT,
        &exit_status::CALLBACK,
        &exit_status::EXEC,
        &exit_status::INSTALL,
        &exit_status::SLEEP,
    ] {
        for (status, meaning) in table.rows {
            assert!(
                CASES
                    .iter()
                    .any(|c| std::ptr::eq(c.table, table) && c.status == *status),
                "{status:?} ({meaning}) is documented but no case here produces it"
            );
        }
    }
}

#[test]
fn every_documented_status_is_what_its_case_exits_with() {
    for case in CASES {
        let (code, log) = (case.run)();
        match case.status {
            Status::Is(want) => assert_eq!(code, want, "{}: {log}", case.what),
            // CMD's own status passes through: the case's CMD exits 7.
            Status::Cmds => assert_eq!(code, 7, "{}: {log}", case.what),
        }
    }
}

#[test]
fn each_mode_s_help_lists_its_table() {
    for mode in graceful_wait_shared::cli::MODES {
        let Some(table) = exit_status::table_of(mode) else {
            continue;
        };
        let out = std::process::Command::new(bin())
            .args([mode, "--help"])
            .output()
            .unwrap();
        let help = String::from_utf8_lossy(&out.stdout);
        let flat = help.split_whitespace().collect::<Vec<_>>().join(" ");
        for (_, meaning) in table.rows {
            let meaning = meaning.split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(flat.contains(&meaning), "{mode} --help lacks {meaning:?}");
        }
    }
}
