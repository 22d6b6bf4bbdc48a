//! `ferry generate man DIR` and `ferry generate completions SHELL | --dir DIR`:
//! man pages and shell completion scripts made from the clap definitions in
//! `cli.rs`, so that they can never disagree with the parser. Hidden: it is
//! for packagers (debian/rules calls it), not for people running migrations.
//!
//! The command tree is walked generically, so a subcommand added to `cli.rs`
//! gets its man page and completions without a change here.

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;
use serde::Serialize;

use crate::cli::{Cli, GenerateCommand, Global};
use crate::exit::Exit;
use crate::render::{self, Failure};

/// The shells whose completion directories Debian packages install into.
const PACKAGED_SHELLS: [Shell; 3] = [Shell::Bash, Shell::Zsh, Shell::Fish];

pub fn run(command: GenerateCommand, global: &Global) -> Result<Exit, Failure> {
    let written = match command {
        GenerateCommand::Man { dir } => man_pages(&dir)?,
        GenerateCommand::Completions { dir: Some(dir), .. } => completion_files(&dir)?,
        GenerateCommand::Completions {
            shell: Some(shell),
            dir: None,
        } => {
            print_completions(shell)?;
            return Ok(Exit::Ok);
        }
        // clap's `required_unless_present` makes this unreachable from the
        // command line; say so rather than panic if that ever changes.
        GenerateCommand::Completions {
            shell: None,
            dir: None,
        } => return Err(Failure::bad_input("give a SHELL or --dir DIR")),
    };
    render::output(&Written { written }, global);
    Ok(Exit::Ok)
}

/// The files a run wrote: a path a line for people.
#[derive(Debug, Serialize)]
pub struct Written {
    pub written: Vec<PathBuf>,
}

impl fmt::Display for Written {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for path in &self.written {
            writeln!(f, "{}", path.display())?;
        }
        Ok(())
    }
}

/// The command tree as people see it: built (so that subcommands carry their
/// full names, `ferry-sources`, and the global flags), without the `help`
/// pseudo-subcommand, which would otherwise get a page of its own.
fn documented_command() -> clap::Command {
    let mut command = Cli::command().disable_help_subcommand(true);
    command.build();
    command
}

/// Writes `ferry.1` and one page per visible subcommand, at every depth.
pub fn man_pages(dir: &Path) -> Result<Vec<PathBuf>, Failure> {
    create_dir(dir)?;
    let root = documented_command();
    // Every page's footer names the program and its version, `ferry 0.1.0`,
    // not the subcommand (`compare 0.1.0`), as man-pages(7) asks.
    let source = format!(
        "{} {}",
        root.get_name(),
        root.get_version().unwrap_or_default()
    );
    let mut written = Vec::new();
    write_man_pages(&root, &source, dir, &mut written)?;
    Ok(written)
}

fn write_man_pages(
    command: &clap::Command,
    source: &str,
    dir: &Path,
    written: &mut Vec<PathBuf>,
) -> Result<(), Failure> {
    let man = clap_mangen::Man::new(command.clone())
        .source(source.to_string())
        .manual("ferry manual");
    let path = dir.join(man.get_filename());
    let page = render_page(&man, command)
        .map_err(|e| Failure::failed(format!("cannot render {}: {e}", path.display())))?;
    fs::write(&path, page).map_err(|e| write_failure(&path, &e))?;
    written.push(path);
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_man_pages(sub, source, dir, written)?;
    }
    Ok(())
}

/// A page: clap's NAME, SYNOPSIS, DESCRIPTION, OPTIONS and SUBCOMMANDS
/// from the definitions, then the written EXIT STATUS, FILES, EXAMPLES and
/// SEE ALSO (`manual.rs`), then clap's VERSION.
fn render_page(man: &clap_mangen::Man, command: &clap::Command) -> std::io::Result<Vec<u8>> {
    let mut page = Vec::new();
    man.render_title(&mut page)?;
    man.render_name_section(&mut page)?;
    man.render_synopsis_section(&mut page)?;
    man.render_description_section(&mut page)?;
    if command.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut page)?;
    }
    if command.get_subcommands().any(|s| !s.is_hide_set()) {
        man.render_subcommands_section(&mut page)?;
    }
    page.extend_from_slice(
        super::manual::sections(man.get_filename().trim_end_matches(".1")).as_bytes(),
    );
    if command.get_version().is_some() {
        man.render_version_section(&mut page)?;
    }
    Ok(page)
}

/// Writes the bash, zsh and fish scripts under clap_complete's file names
/// (`ferry.bash`, `_ferry`, `ferry.fish`).
pub fn completion_files(dir: &Path) -> Result<Vec<PathBuf>, Failure> {
    create_dir(dir)?;
    let mut command = documented_command();
    let bin_name = command.get_name().to_string();
    PACKAGED_SHELLS
        .iter()
        .map(|&shell| {
            clap_complete::generate_to(shell, &mut command, &bin_name, dir)
                .map_err(|e| write_failure(dir, &e))
        })
        .collect()
}

fn print_completions(shell: Shell) -> Result<(), Failure> {
    let mut command = documented_command();
    let bin_name = command.get_name().to_string();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, bin_name, &mut script);
    std::io::stdout()
        .write_all(&script)
        .map_err(|e| Failure::failed(format!("cannot write to standard output: {e}")))
}

fn create_dir(dir: &Path) -> Result<(), Failure> {
    fs::create_dir_all(dir).map_err(|e| write_failure(dir, &e))
}

fn write_failure(path: &Path, error: &std::io::Error) -> Failure {
    Failure::failed(format!("cannot write {}: {error}", path.display()))
        .hint("check that the directory exists and is writable")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every visible command at every depth, named as its man page is.
    fn visible_names(command: &clap::Command, prefix: &str, out: &mut Vec<String>) {
        let name = if prefix.is_empty() {
            command.get_name().to_string()
        } else {
            format!("{prefix}-{}", command.get_name())
        };
        for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
            visible_names(sub, &name, out);
        }
        out.push(name);
    }

    #[test]
    fn one_man_page_per_visible_command_and_none_for_hidden_ones() {
        let dir = tempfile::tempdir().unwrap();
        let written = man_pages(dir.path()).unwrap();
        let mut files: Vec<String> = written
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        let mut expected = Vec::new();
        visible_names(&documented_command(), "", &mut expected);
        let mut expected: Vec<String> = expected.into_iter().map(|n| n + ".1").collect();
        files.sort();
        expected.sort();
        assert_eq!(files, expected);
        for must in ["ferry.1", "ferry-version.1", "ferry-sources.1"] {
            assert!(files.iter().any(|f| f == must), "{must} missing: {files:?}");
        }
        assert!(!files
            .iter()
            .any(|f| f.contains("generate") || f.contains("help")));
        let top = fs::read_to_string(dir.path().join("ferry.1")).unwrap();
        assert!(top.starts_with(".ie"), "not roff: {top}");
        assert!(
            top.contains("ferry\\-sources(1)"),
            "no link to ferry-sources(1)"
        );
        // Every page has the sections a user follows, in man-pages(7) order.
        for file in &files {
            let page = fs::read_to_string(dir.path().join(file)).unwrap();
            let mut at = 0;
            for section in [
                ".SH NAME",
                ".SH SYNOPSIS",
                ".SH DESCRIPTION",
                ".SH \"EXIT STATUS\"",
                ".SH FILES",
                ".SH EXAMPLES",
                ".SH \"SEE ALSO\"",
            ] {
                let found = page[at..].find(section);
                assert!(found.is_some(), "{file}: no {section} after byte {at}");
                at += found.unwrap_or(0);
            }
            let words = file.trim_end_matches(".1").replace('-', " ");
            let examples = &page[page.find(".SH EXAMPLES").unwrap()..];
            assert!(
                examples.contains(&words),
                "{file}: no example runs `{words}`: {examples}"
            );
        }
    }

    #[test]
    fn man_reads_every_page_without_a_warning() {
        if std::process::Command::new("man")
            .arg("--version")
            .output()
            .is_err()
        {
            ferry_testkit::skip!("man is not installed");
        }
        let dir = tempfile::tempdir().unwrap();
        for path in man_pages(dir.path()).unwrap() {
            let out = std::process::Command::new("man")
                .args(["--warnings", "-E", "UTF-8", "-l"])
                .arg(&path)
                .env("MANWIDTH", "80")
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{}: {stderr}", path.display());
            assert!(stderr.trim().is_empty(), "{}: {stderr}", path.display());
            // man overstrikes bold text (`X\bX`) when not on a terminal.
            let mut text = String::new();
            for c in String::from_utf8_lossy(&out.stdout).chars() {
                if c == '\u{8}' {
                    text.pop();
                } else {
                    text.push(c);
                }
            }
            assert!(
                text.contains("EXIT STATUS") && text.contains("EXAMPLES"),
                "{text}"
            );
        }
    }

    #[test]
    fn completion_scripts_for_bash_zsh_and_fish() {
        let dir = tempfile::tempdir().unwrap();
        let written = completion_files(dir.path()).unwrap();
        let mut names: Vec<String> = written
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["_ferry", "ferry.bash", "ferry.fish"]);
        for path in &written {
            let script = fs::read_to_string(path).unwrap();
            assert!(
                script.contains("sources"),
                "{} lacks `sources`",
                path.display()
            );
        }
    }

    #[test]
    fn unwritable_directory_is_a_failure_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        fs::write(&file, "").unwrap();
        let failure = man_pages(&file).unwrap_err();
        assert_eq!(failure.exit_code(), Exit::Failed);
    }

    #[test]
    fn written_files_for_people_and_as_json() {
        let written = Written {
            written: vec!["man/ferry.1".into(), "man/ferry-check.1".into()],
        };
        insta::assert_snapshot!(written.to_string());
        insta::assert_json_snapshot!(written);
    }
}
