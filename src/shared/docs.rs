//! Shell completions and man pages, generated from the clap definitions
//! (clap_complete, clap_mangen): for `graceful-wait completions|man` and
//! `graceful-inject completions|man [--program graceful-wait]`. Behind the
//! `docs` feature, so the slim in-pod build carries none of it.

use crate::cli::Shell;

/// The completion script for `cmd`, for `shell`.
pub fn completions(mut cmd: clap::Command, shell: Shell) -> Vec<u8> {
    use clap_complete::Shell as S;
    let shell = match shell {
        Shell::Bash => S::Bash,
        Shell::Zsh => S::Zsh,
        Shell::Fish => S::Fish,
        Shell::Elvish => S::Elvish,
        Shell::Powershell => S::PowerShell,
    };
    let name = cmd.get_name().to_string();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, name, &mut out);
    out
}

/// The man page (roff) for `cmd`: the program's page, then for each
/// subcommand its description, synopsis and options.
pub fn man(cmd: clap::Command) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let name = cmd.get_name().to_string();
    clap_mangen::Man::new(cmd.clone()).render(&mut out)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let full = sub.clone().name(format!("{name} {}", sub.get_name()));
        let page = clap_mangen::Man::new(full);
        page.render_name_section(&mut out)?;
        page.render_synopsis_section(&mut out)?;
        page.render_description_section(&mut out)?;
        if sub.get_arguments().any(|a| !a.is_hide_set()) {
            page.render_options_section(&mut out)?;
        }
        page.render_extra_section(&mut out)?;
    }
    Ok(out)
}
