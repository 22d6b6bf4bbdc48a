//! `ferry version compare` behaves like `dpkg --compare-versions`: exit 0
//! when the relation holds, 1 when not, 2 with a readable error on bad input.

use std::process::{Command, Output};

fn ferry(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .output()
        .unwrap()
}

fn dpkg_holds(a: &str, op: &str, b: &str) -> Option<bool> {
    Command::new("dpkg")
        .args(["--compare-versions", a, op, b])
        .status()
        .ok()
        .map(|s| s.success())
}

#[test]
fn exit_codes_match_dpkg_for_every_operator() {
    let pairs = [
        ("1.0~rc1", "1.0"),
        ("1:0.9", "2.0"),
        ("1.0", "1.0-0"),
        ("2.10", "2.9"),
    ];
    for (a, b) in pairs {
        for op in [
            "lt", "le", "eq", "ne", "ge", "gt", "<<", "<=", "=", ">=", ">>",
        ] {
            let code = ferry(&["version", "compare", a, op, b]).status.code();
            let expected = match dpkg_holds(a, op, b) {
                Some(holds) => holds,
                None => {
                    ferry_testkit::skip!("dpkg is not available");
                }
            };
            assert_eq!(code, Some(if expected { 0 } else { 1 }), "{a} {op} {b}");
        }
    }
}

#[test]
fn bad_input_exits_2_and_says_what_was_expected() {
    let out = ferry(&["version", "compare", "1.0", "less", "2.0"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown operator `less`"), "{stderr}");
    assert!(
        stderr.contains("expected: one of lt le eq ne ge gt"),
        "{stderr}"
    );

    let out = ferry(&["version", "compare", "1.0-", "lt", "2.0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("revision"));
}

#[test]
fn json_output_states_the_answer() {
    let out = ferry(&["--json", "version", "compare", "1.0", "lt", "1.1"]);
    assert_eq!(out.status.code(), Some(0));
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["holds"], true);

    let out = ferry(&["version", "compare", "x", "lt", "1", "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["error"]["exit_code"], 2);
}
