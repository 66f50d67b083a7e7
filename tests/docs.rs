//! `graceful-wait completions`, `man` and `--version`, generated from the
//! clap definition that parses the command line: every shell's script names
//! every mode, the bash script parses (`bash -n`), the man page renders
//! (`man -l`) with a section for every mode, --version carries the git
//! revision. (graceful-inject's are tested in injector/tests/docs.rs.)

mod support;
use graceful_wait_shared::cli::MODES;
use support::{docs::*, *};

#[test]
#[ignore = "re-exec entry point: the tests run it as their helper process"]
fn helper_process() {
    helper_main();
}

#[test]
fn completions_for_every_shell_name_every_mode() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let script = stdout_of(&mut graceful_wait(&["completions", shell]));
        for mode in MODES {
            assert!(script.contains(mode), "{shell}: no {mode} in the script");
        }
        if shell == "bash" {
            bash_parses("graceful-wait", &script);
        }
    }
}

#[test]
fn the_man_page_renders_with_every_mode() {
    let page = stdout_of(&mut graceful_wait(&["man"]));
    let Some(text) = rendered("the_man_page_renders_with_every_mode", &page) else {
        return;
    };
    assert!(text.contains("SYNOPSIS"), "{text}");
    for mode in MODES {
        assert!(
            text.contains(&format!("graceful-wait {mode}")),
            "no section for {mode}"
        );
    }
}

#[test]
fn version_names_the_revision() {
    assert_version_has_revision(&stdout_of(&mut graceful_wait(&["--version"])));
}
