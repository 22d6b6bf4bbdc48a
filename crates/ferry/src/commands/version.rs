//! `ferry version compare A OP B`: dpkg's ordering on the command line.

use ferry_deb::{CompareOp, VersionRef};

use crate::cli::{Global, VersionCommand};
use crate::exit::Exit;
use crate::render::{self, Failure};

pub fn run(command: VersionCommand, global: &Global) -> Result<Exit, Failure> {
    let VersionCommand::Compare { a, op, b } = command;
    let op_value = CompareOp::parse(&op).ok_or_else(|| {
        Failure::bad_input(format!("unknown operator `{op}`"))
            .expected("one of lt le eq ne ge gt (or << <= = >= >>)")
    })?;
    fn parse(text: &str) -> Result<VersionRef<'_>, Failure> {
        VersionRef::parse(text).map_err(|e| {
            Failure::bad_input(format!("`{text}` is not a valid Debian version: {e}"))
                .expected("[epoch:]upstream[-revision], e.g. 1:2.36-9")
        })
    }
    let (va, vb) = (parse(&a)?, parse(&b)?);
    let holds = op_value.holds(va.cmp(&vb));
    if global.json {
        render::json(&serde_json::json!({ "a": a, "op": op, "b": b, "holds": holds }));
    }
    Ok(if holds { Exit::Ok } else { Exit::Failed })
}
