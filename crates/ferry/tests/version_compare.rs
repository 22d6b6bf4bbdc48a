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

    // dpkg refuses an empty revision (it only warns about `x`).
    let out = ferry(&["version", "compare", "1.0-", "lt", "1", "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["error"]["exit_code"], 2);
}

/// A small deterministic generator (xorshift64*), so the cases are the
/// same on every run and a disagreement can be replayed.
struct Cases(u64);

impl Cases {
    fn next(&mut self, below: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % below
    }

    /// A version argument built from the pieces where dpkg's rules have
    /// edges: empty, `<unknown>`, epochs (signed, empty, huge), colons,
    /// hyphens, `~`, letters first, characters dpkg warns about, blanks.
    /// Never a leading `-`: dpkg and ferry both read that as an option.
    fn version(&mut self) -> String {
        const PIECES: [&str; 26] = [
            "0",
            "1",
            "9",
            "10",
            "007",
            "a",
            "Z",
            "~",
            "+",
            ".",
            "-",
            ":",
            "_",
            " ",
            "\t",
            "1:",
            "+1:",
            "0:",
            "2147483648:",
            "1.0",
            "~rc1",
            "-1",
            "-",
            "b2",
            "1.0-1",
            "<unknown>",
        ];
        let mut text = String::new();
        for _ in 0..self.next(5) {
            text.push_str(PIECES[self.next(PIECES.len())]);
        }
        if text.starts_with('-') {
            text.insert(0, '1');
        }
        text
    }

    fn op(&mut self) -> &'static str {
        const OPS: [&str; 21] = [
            "lt", "le", "eq", "ne", "ge", "gt", "<<", "<=", "=", ">=", ">>", "<", ">", "lt-nl",
            "le-nl", "ge-nl", "gt-nl", "eq-nl", "==", "LT", "",
        ];
        OPS[self.next(OPS.len())]
    }
}

/// Exit code and warning lines of a comparison.
fn outcome(output: &Output) -> (Option<i32>, usize) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let warnings = stderr.lines().filter(|l| l.contains("warning:")).count();
    (output.status.code(), warnings)
}

#[test]
fn generated_edge_cases_behave_as_dpkg_does() {
    if dpkg_holds("1", "lt", "2").is_none() {
        ferry_testkit::skip!("dpkg is not available");
    }
    let count: usize = std::env::var("FERRY_VERSION_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(600);
    let mut cases = Cases(0x9e37_79b9_7f4a_7c15);
    let mut disagreements = Vec::new();
    let mut seen = std::collections::BTreeMap::<Option<i32>, usize>::new();
    for _ in 0..count {
        let (a, op, b) = (cases.version(), cases.op(), cases.version());
        let dpkg = Command::new("dpkg")
            .args(["--compare-versions", &a, op, &b])
            .output()
            .unwrap();
        let ours = ferry(&["version", "compare", &a, op, &b]);
        let (dpkg_code, dpkg_warnings) = outcome(&dpkg);
        let (our_code, our_warnings) = outcome(&ours);
        *seen.entry(dpkg_code).or_default() += 1;
        // dpkg's warnings before a refusal are not compared: it may stop
        // at the first bad version before it reads the second.
        if dpkg_code != our_code || (dpkg_code != Some(2) && dpkg_warnings != our_warnings) {
            disagreements.push(format!(
                "{a:?} {op:?} {b:?}: dpkg exit {dpkg_code:?} with {dpkg_warnings} warnings, \
                 ferry exit {our_code:?} with {our_warnings}: {}",
                String::from_utf8_lossy(&ours.stderr).trim()
            ));
        }
    }
    // The generator must reach every outcome, or the test proves little.
    eprintln!("dpkg's exit codes over {count} cases: {seen:?}");
    for code in [Some(0), Some(1), Some(2)] {
        assert!(
            seen.get(&code).copied().unwrap_or(0) > count / 20,
            "{seen:?}"
        );
    }
    assert!(
        disagreements.is_empty(),
        "{} of {count} cases differ from dpkg:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
}

#[test]
fn dpkg_edges_by_name() {
    if dpkg_holds("1", "lt", "2").is_none() {
        ferry_testkit::skip!("dpkg is not available");
    }
    // An empty version is no version: earlier than any, later with -nl.
    assert_eq!(
        ferry(&["version", "compare", "", "lt", "1"]).status.code(),
        Some(0)
    );
    assert_eq!(
        ferry(&["version", "compare", "", "lt-nl", "1"])
            .status
            .code(),
        Some(1)
    );
    assert_eq!(
        ferry(&["version", "compare", "", "eq", "<unknown>"])
            .status
            .code(),
        Some(0)
    );
    // `<` is dpkg 1.0's `<=`: it holds for equal versions, with a warning.
    let out = ferry(&["version", "compare", "1", "<", "1"]);
    assert_eq!(outcome(&out), (Some(0), 1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("obsolete relation operator '<'"));
    // A version not starting with a digit is compared, with a warning.
    assert_eq!(
        outcome(&ferry(&["version", "compare", "a", "lt", "b"])),
        (Some(0), 2)
    );
    // Under --json the warnings are in the document, not on stderr.
    let out = ferry(&["--json", "version", "compare", "1", ">", "2"]);
    assert!(out.stderr.is_empty());
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["holds"], false);
    assert_eq!(value["warnings"].as_array().unwrap().len(), 1, "{value}");
}
