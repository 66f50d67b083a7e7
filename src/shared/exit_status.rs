//! graceful-wait's exit statuses: the numbers, and what each mode documents
//! for them. The binary decides its statuses with these numbers (its
//! `exit.rs`), each mode's `--help` lists its table ([`epilogue`]), and a
//! test runs a case for every row of every table.

/// The condition was observed; an action succeeded.
pub const OK: i32 = 0;
/// A deadline found the looks failing; a callback refused for good; an
/// action failed.
pub const FAILED: i32 = 1;
/// A usage or configuration error (clap's own status for bad arguments).
pub const USAGE: i32 = 2;
/// The deadline passed while the looks worked, as `timeout(1)`.
pub const DEADLINE: i32 = 124;
/// A chained or wrapped command cannot run, as a shell says.
pub const CANNOT_RUN: i32 = 126;
/// A chained or wrapped command is not found, as a shell says.
pub const NOT_FOUND: i32 = 127;
/// SIGTERM ended `exec` before CMD started (128 + 15, as a shell says).
pub const TERMINATED: i32 = 128 + 15;

/// What a row of a table is about: a status, or the wrapped command's own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Is(i32),
    /// `exec`: whatever CMD exits with.
    Cmds,
}

/// One mode's exit statuses: a row a status, then what `-- CMD` changes.
pub struct Table {
    pub rows: &'static [(Status, &'static str)],
    pub note: &'static str,
}

/// The waits: tcp, listeners, http, connections, file, process.
pub const WAIT: Table = Table {
    rows: &[
        (Status::Is(OK), "the condition was observed: the app is gone"),
        (
            Status::Is(FAILED),
            "the deadline passed while looks were failing (the reason is logged), or a look failed for good; never 0 for a condition not observed",
        ),
        (Status::Is(USAGE), "usage error (at once)"),
        (
            Status::Is(DEADLINE),
            "--timeout passed while the looks worked but the condition did not hold",
        ),
    ],
    note: "With -- CMD: after a wait that ended 0, CMD's own status (128+N if it died of signal N; 126 it cannot run, 127 not found); otherwise the wait's status. CMD runs in every case.",
};

pub const CALLBACK: Table = Table {
    rows: &[
        (Status::Is(OK), "every callback was delivered (2xx)"),
        (
            Status::Is(FAILED),
            "a callback was refused for good (a 4xx other than 408/429, an https certificate that does not verify) or can never be sent from here (no DNS configuration, https in the slim build)",
        ),
        (
            Status::Is(USAGE),
            "usage error (a bad flag, header or method; an unsupported scheme, an unreadable @file, an unset $VARIABLE)",
        ),
        (
            Status::Is(DEADLINE),
            "--timeout passed before every callback was delivered",
        ),
    ],
    note: "With -- CMD: CMD runs after the callbacks, whatever their outcome; the status is CMD's when every callback was delivered, the callbacks' otherwise.",
};

pub const EXEC: Table = Table {
    rows: &[
        (
            Status::Cmds,
            "CMD's own status, 128+N if it died of signal N",
        ),
        (Status::Is(FAILED), "--wait-ready gave up (CMD not started)"),
        (Status::Is(USAGE), "usage error"),
        (
            Status::Is(CANNOT_RUN),
            "CMD could not be run (not executable)",
        ),
        (Status::Is(NOT_FOUND), "CMD was not found"),
        (
            Status::Is(TERMINATED),
            "SIGTERM arrived during --wait-ready (CMD not started)",
        ),
    ],
    note: "",
};

pub const INSTALL: Table = Table {
    rows: &[
        (
            Status::Is(OK),
            "installed, or the same binary was already there",
        ),
        (
            Status::Is(FAILED),
            "refused (a symlink or a non-file at the target) or failed",
        ),
        (Status::Is(USAGE), "usage error"),
    ],
    note: "",
};

pub const SLEEP: Table = Table {
    rows: &[
        (Status::Is(OK), "slept for DURATION"),
        (Status::Is(USAGE), "usage error (no duration, or not one)"),
    ],
    note: "",
};

/// Every mode with a table, by name.
pub fn table_of(mode: &str) -> Option<&'static Table> {
    match mode {
        "tcp" | "listeners" | "http" | "connections" | "file" | "process" => Some(&WAIT),
        "callback" => Some(&CALLBACK),
        "exec" => Some(&EXEC),
        "install" => Some(&INSTALL),
        "sleep" => Some(&SLEEP),
        _ => None,
    }
}

/// A mode's help epilogue: its examples, then its exit statuses, wrapped
/// for a terminal.
pub fn epilogue(table: &Table, examples: &[&str]) -> String {
    let mut out = String::from("Examples:\n");
    for example in examples {
        out.push_str(&format!("  {example}\n"));
    }
    out.push_str("\nExit status:\n");
    for (status, meaning) in table.rows {
        match status {
            Status::Is(n) => out.push_str(&wrap(&format!("  {n:<4} "), meaning, 7)),
            Status::Cmds => out.push_str(&wrap("  ", meaning, 2)),
        }
    }
    if !table.note.is_empty() {
        out.push_str(&wrap("  ", table.note, 2));
    }
    out.trim_end().to_string()
}

/// `lead` then `text`, in lines of at most 78 columns; continuation lines
/// indented by `indent`.
fn wrap(lead: &str, text: &str, indent: usize) -> String {
    let mut out = String::new();
    let mut line = lead.to_string();
    let mut empty = true;
    for word in text.split_whitespace() {
        if !empty && line.chars().count() + 1 + word.chars().count() > 78 {
            out.push_str(&line);
            out.push('\n');
            line = " ".repeat(indent);
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    out.push_str(&line);
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_of_a_table_is_in_its_help() {
        for table in [&WAIT, &CALLBACK, &EXEC, &INSTALL] {
            let help = epilogue(table, &["graceful-wait x"]);
            let flat = help.split_whitespace().collect::<Vec<_>>().join(" ");
            for (status, meaning) in table.rows {
                let meaning = meaning.split_whitespace().collect::<Vec<_>>().join(" ");
                let row = match status {
                    Status::Is(n) => format!("{n} {meaning}"),
                    Status::Cmds => meaning,
                };
                assert!(flat.contains(&row), "{row:?} not in\n{help}");
            }
            assert!(help.lines().all(|l| l.chars().count() <= 78), "{help}");
        }
    }
}
