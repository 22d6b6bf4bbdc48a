//! `ferry version compare A OP B`: dpkg's ordering on the command line.

use std::fmt;

use ferry_deb::{DpkgArgument, DpkgRelation, VersionRef};
use serde::Serialize;

use crate::cli::{Global, VersionCommand};
use crate::exit::Exit;
use crate::render::{self, Failure};

/// The question and its answer. People get the answer as the exit code
/// alone, as from `dpkg --compare-versions`, so that the command drops
/// into shell conditions; `--json` states it. `warnings` are dpkg's: an
/// obsolete operator, a version dpkg compares although its syntax is bad.
#[derive(Debug, Serialize)]
pub struct Comparison<'a> {
    pub a: &'a str,
    pub op: &'a str,
    pub b: &'a str,
    pub holds: bool,
    pub warnings: Vec<String>,
}

impl fmt::Display for Comparison<'_> {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        Ok(())
    }
}

pub fn run(command: VersionCommand, global: &Global) -> Result<Exit, Failure> {
    let VersionCommand::Compare { a, op, b } = command;
    let comparison = compare(&a, &op, &b)?;
    // As dpkg: warnings on stderr, the answer in the exit code.
    if !global.json {
        for warning in &comparison.warnings {
            eprintln!("warning: {warning}");
        }
    }
    render::output(&comparison, global);
    Ok(if comparison.holds {
        Exit::Ok
    } else {
        Exit::Failed
    })
}

/// `A OP B` as `dpkg --compare-versions` answers it: the same relations
/// (`<` and `>` with a warning), an empty version as no version, the same
/// versions compared with a warning and the same refused (exit 2).
fn compare<'a>(a: &'a str, op: &'a str, b: &'a str) -> Result<Comparison<'a>, Failure> {
    let relation = DpkgRelation::parse(op).ok_or_else(|| {
        Failure::bad_input(format!("unknown operator `{op}`")).expected(
            "one of lt le eq ne ge gt (or << <= = >= >>), lt-nl le-nl ge-nl gt-nl, or the obsolete < >",
        )
    })?;
    let mut warnings = Vec::new();
    if relation.obsolete {
        warnings.push(format!(
            "--compare-versions used with obsolete relation operator '{op}'"
        ));
    }
    let mut parse = |text: &'a str| -> Result<Option<VersionRef<'a>>, Failure> {
        let argument = DpkgArgument::parse(text).map_err(|e| {
            Failure::bad_input(format!("`{text}` is not a valid Debian version: {e}"))
                .expected("[epoch:]upstream[-revision], e.g. 1:2.36-9 (or an empty version)")
        })?;
        if let DpkgArgument::Warned(_, warning) = &argument {
            warnings.push(format!("version '{text}' has bad syntax: {warning}"));
        }
        Ok(argument.version())
    };
    let (va, vb) = (parse(a)?, parse(b)?);
    Ok(Comparison {
        a,
        op,
        b,
        holds: relation.holds(va, vb),
        warnings,
    })
}

#[cfg(test)]
mod tests {
    //! What people and scripts see of a comparison, reviewed as snapshots.

    use super::*;

    #[test]
    fn a_bad_operator_is_bad_input() {
        let failure = compare("1.0", "less", "2.0").unwrap_err();
        assert_eq!(failure.exit_code(), Exit::BadInput);
        insta::assert_json_snapshot!(render::ErrorOutput::from(&failure));
    }

    #[test]
    fn comparison_for_people_is_the_exit_code_alone() {
        let comparison = compare("1:0.9", "gt", "2.0").unwrap();
        assert!(comparison.holds);
        assert_eq!(comparison.to_string(), "");
    }

    #[test]
    fn comparison_as_json() {
        insta::assert_json_snapshot!(compare("1.0~rc1", "lt", "1.0").unwrap());
    }
}
