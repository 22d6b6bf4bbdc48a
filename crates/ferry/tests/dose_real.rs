//! `ferry check --format dose-yaml` against `dose-distcheck -e -f` on a
//! whole real archive (`shared/data/debian/sid-main-amd64-Packages.xz`, or
//! the suite `FERRY_DOSE_SUITE` names under `FERRY_DEBIAN_DATA`; skipped
//! with a message when absent) and on random archives made to break
//! packages in many ways at once: the same broken packages, and for each
//! the same root causes (each missing dependency: the package and the
//! dependency nothing satisfies; each conflict: its two packages). dose's
//! chains to a cause are shortest paths it picks among equal ones, and
//! are not compared.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use ferry_testkit::{skip_unless, Need};

type Key = (String, String, String);

/// Root causes per broken package, read from dose's YAML report layout
/// (which ferry writes too): `pkg:` of a `missing` with its
/// `unsat-dependency`, `pkg1:`/`pkg2:` of a `conflict`.
fn root_causes(yaml: &str) -> BTreeMap<Key, BTreeSet<String>> {
    let mut out: BTreeMap<Key, BTreeSet<String>> = BTreeMap::new();
    let mut key: Key = Default::default();
    let (mut section, mut fields) = (String::new(), Vec::<String>::new());
    let mut conflict_first = String::new();
    let mut flush = |section: &str, fields: &mut Vec<String>, key: &Key, first: &mut String| {
        match section {
            "pkg" if fields.len() >= 2 => {
                out.entry(key.clone()).or_default().insert(format!(
                    "missing {} {}",
                    fields[0],
                    fields[fields.len() - 1]
                ));
            }
            "pkg1" if !fields.is_empty() => *first = fields[0].clone(),
            "pkg2" if !fields.is_empty() => {
                out.entry(key.clone())
                    .or_default()
                    .insert(format!("conflict {} {}", first, fields[0]));
            }
            _ => {}
        }
        fields.clear();
    };
    for line in yaml.lines() {
        if let Some(v) = line.strip_prefix("  package: ") {
            flush(&section, &mut fields, &key, &mut conflict_first);
            section.clear();
            key = (v.to_string(), String::new(), String::new());
        } else if let Some(v) = line.strip_prefix("  version: ") {
            key.1 = v.to_string();
        } else if let Some(v) = line.strip_prefix("  architecture: ") {
            key.2 = v.to_string();
        } else if let Some(header) = line
            .strip_prefix("     ")
            .and_then(|h| h.strip_suffix(':'))
            .filter(|h| !h.starts_with(' '))
        {
            flush(&section, &mut fields, &key, &mut conflict_first);
            section = header.to_string();
        } else if let Some(v) = line.strip_prefix("      package: ") {
            fields.push(v.to_string());
        } else if let Some(v) = line.strip_prefix("      unsat-dependency: ") {
            fields.push(v.to_string());
        } else if !line.starts_with("      ") {
            flush(&section, &mut fields, &key, &mut conflict_first);
            section.clear();
        }
    }
    flush(&section, &mut fields, &key, &mut conflict_first);
    out
}

fn archive() -> Option<PathBuf> {
    let dir = std::env::var_os("FERRY_DEBIAN_DATA").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/debian"),
        PathBuf::from,
    );
    let suite = std::env::var("FERRY_DOSE_SUITE").unwrap_or_else(|_| "sid".into());
    let xz = dir.join(format!("{suite}-main-amd64-Packages.xz"));
    xz.exists().then_some(xz)
}

#[test]
fn the_scanner_reads_both_kinds_of_cause() {
    let yaml = "report:\n -\n  package: a\n  version: 1\n  architecture: amd64\n  status: broken\n  reasons:\n   -\n    missing:\n     pkg:\n      package: b\n      version: 2\n      architecture: amd64\n      unsat-dependency: c:amd64\n     depchains:\n      -\n       depchain:\n        -\n         package: a\n   -\n    conflict:\n     pkg1:\n      package: d\n      version: 1\n     pkg2:\n      package: e\n      version: 1\n";
    let causes = root_causes(yaml);
    let a = &causes[&("a".into(), "1".into(), "amd64".into())];
    assert_eq!(
        a.iter().collect::<Vec<_>>(),
        ["conflict d e", "missing b c:amd64"]
    );
}

/// Root causes per broken package of Packages file `path`, by dose and by
/// ferry (native amd64, `foreign` architectures); `None` when dose refuses
/// the input (exit code 64 and up).
type Causes = BTreeMap<Key, BTreeSet<String>>;

fn both(path: &Path, foreign: &[&str]) -> Option<(Causes, Causes)> {
    let mut dose = Command::new("dose-distcheck");
    dose.args(["--deb-native-arch=amd64", "-e", "-f"]);
    if !foreign.is_empty() {
        dose.arg(format!("--deb-foreign-archs={}", foreign.join(",")));
    }
    let dose = dose
        .arg(format!("deb://{}", path.display()))
        .output()
        .unwrap();
    if dose.status.code().is_none_or(|c| c >= 64) {
        return None;
    }
    let mut ours = Command::new(env!("CARGO_BIN_EXE_ferry"));
    ours.args(["--quiet", "check", "--arch", "amd64"]);
    if !foreign.is_empty() {
        ours.arg(format!("--foreign-arch={}", foreign.join(",")));
    }
    let ours = ours
        .args(["--failures", "--explain", "--format", "dose-yaml"])
        .arg(path)
        .output()
        .unwrap();
    Some((
        root_causes(&String::from_utf8_lossy(&dose.stdout)),
        root_causes(&String::from_utf8_lossy(&ours.stdout)),
    ))
}

/// The packages whose root causes differ, dose's and ferry's side by side.
fn differences(dose: &Causes, ours: &Causes) -> Vec<String> {
    dose.iter()
        .filter(|(k, causes)| ours.get(*k) != Some(causes))
        .map(|(k, causes)| format!("{k:?}: dose {causes:?}, ferry {:?}", ours.get(k)))
        .collect()
}

#[test]
fn dose_yaml_root_causes_match_dose_for_every_broken_package_of_a_real_archive() {
    skip_unless!(Need::Tool("dose-distcheck"), Need::Tool("xz"));
    let Some(xz) = archive() else {
        ferry_testkit::skip!("no sid-main-amd64-Packages.xz (set FERRY_DEBIAN_DATA)");
    };
    let work = tempfile::tempdir().unwrap();
    let plain = work.path().join("Packages");
    let text = Command::new("xz").arg("-dc").arg(&xz).output().unwrap();
    std::fs::write(&plain, text.stdout).unwrap();
    let (dose, ours) = both(&plain, &[]).expect("dose-distcheck reads the archive");
    // sid has hundreds; a stable release a handful, still compared.
    assert!(!dose.is_empty(), "dose reported no broken package");
    let dose_keys: BTreeSet<&Key> = dose.keys().collect();
    let our_keys: BTreeSet<&Key> = ours.keys().collect();
    assert_eq!(dose_keys, our_keys, "the broken packages differ");
    let differ = differences(&dose, &ours);
    eprintln!(
        "{}: {} broken, root causes differ for {}",
        xz.display(),
        dose.len(),
        differ.len()
    );
    // A package with several unmet dependencies gets the one dose's solver
    // finds false first, and ferry replays that order (`dose_reasons` in
    // ferry-solve); before it did, 8 of sid's 746 differed.
    assert!(
        differ.is_empty(),
        "root causes differ:\n{}",
        differ.join("\n")
    );
}

/// splitmix64: a seeded generator, so that a failing archive comes back
/// with the same seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

/// An archive where most packages lack something: names that sort
/// around each other as dose sorts them (`a` `a-b` `a1` `a+x`), several
/// versions, arch:all, a foreign architecture with Multi-Arch, `:any`,
/// versioned and virtual Provides, Pre-Depends and alternatives, so that
/// a broken package often has several unmet dependencies and alternatives
/// broken in turn — the cases where which reason dose names depends on
/// its solver's order. No Conflicts field: most breakage is for lack of a
/// dependency (two versions of a name still conflict).
fn random_archive(rng: &mut Rng) -> String {
    const REAL: [&str; 12] = [
        "a", "a-b", "a1", "a+x", "ab", "b", "b-dev", "b.d", "lib-x", "lib1", "libx", "x",
    ];
    const GONE: [&str; 3] = ["gone", "a-gone", "lib-gone"];
    const VIRTUAL: [&str; 3] = ["v", "v-1", "va"];
    let atom = |rng: &mut Rng| {
        let name = match rng.below(10) {
            0..=5 => rng.pick(&REAL),
            6 | 7 => rng.pick(&GONE),
            _ => rng.pick(&VIRTUAL),
        };
        let qualifier = if rng.chance(15) { ":any" } else { "" };
        let constraint = rng.pick(&["", "", "", " (>= 2)", " (<< 2)", " (= 1)"]);
        format!("{name}{qualifier}{constraint}")
    };
    let field = |rng: &mut Rng, label: &str, groups: usize| {
        let groups: Vec<String> = (0..groups)
            .map(|_| {
                let n = 1 + rng.below(3);
                (0..n).map(|_| atom(rng)).collect::<Vec<_>>().join(" | ")
            })
            .collect();
        if groups.is_empty() {
            String::new()
        } else {
            format!("{label}: {}\n", groups.join(", "))
        }
    };
    let mut text = String::new();
    for name in REAL {
        let (archs, multi_arch): (&[&str], &str) = match rng.below(10) {
            0..=4 => (&["amd64"], rng.pick(&["", "", "allowed"])),
            5 | 6 => (&["all"], rng.pick(&["", "foreign"])),
            7 => (&["i386"], "foreign"),
            _ => (&["amd64", "i386"], "same"),
        };
        let versions: &[&str] = if rng.chance(30) { &["1", "2"] } else { &["1"] };
        for version in versions {
            for arch in archs {
                text.push_str(&format!(
                    "Package: {name}\nVersion: {version}\nArchitecture: {arch}\n"
                ));
                if !multi_arch.is_empty() {
                    text.push_str(&format!("Multi-Arch: {multi_arch}\n"));
                }
                if rng.chance(20) {
                    text.push_str(&field(rng, "Pre-Depends", 1));
                }
                let groups = rng.below(5);
                text.push_str(&field(rng, "Depends", groups));
                if rng.chance(30) {
                    let provided = rng.pick(&VIRTUAL);
                    let v = rng.pick(&["", " (= 1)", " (= 2)"]);
                    text.push_str(&format!("Provides: {provided}{v}\n"));
                }
                text.push('\n');
            }
        }
    }
    text
}

#[test]
fn dose_yaml_root_causes_match_dose_on_random_archives() {
    skip_unless!(Need::Tool("dose-distcheck"));
    let rounds: usize = std::env::var("FERRY_RANDOM_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(150);
    let seed: u64 = std::env::var("FERRY_RANDOM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_261_202);
    let work = tempfile::tempdir().unwrap();
    let path = work.path().join("Packages");
    let mut rng = Rng(seed);
    let (mut compared, mut missing, mut several) = (0, 0, 0);
    for round in 0..rounds {
        let text = random_archive(&mut rng);
        std::fs::write(&path, &text).unwrap();
        let Some((dose, ours)) = both(&path, &["i386"]) else {
            continue;
        };
        compared += 1;
        let dose_keys: BTreeSet<&Key> = dose.keys().collect();
        let our_keys: BTreeSet<&Key> = ours.keys().collect();
        assert_eq!(
            dose_keys, our_keys,
            "round {round}: the broken packages differ:\n{text}"
        );
        // Broken for lack of dependencies alone: what dose's level-0
        // propagation decides, which ferry replays. Where a conflict is
        // involved, dose names what its conflict analysis happened to
        // learn, which ferry's search does not replay (sid has no
        // package where the two differ).
        let for_lack: Causes = dose
            .into_iter()
            .filter(|(_, causes)| causes.iter().all(|c| c.starts_with("missing ")))
            .collect();
        missing += for_lack.len();
        several += for_lack.values().filter(|c| c.len() > 1).count();
        let differ = differences(&for_lack, &ours);
        assert!(
            differ.is_empty(),
            "round {round} (seed {seed}): root causes differ:\n{}\n{text}",
            differ.join("\n")
        );
    }
    eprintln!(
        "{compared} random archives, {missing} packages broken for lack of dependencies ({several} with several root causes): the same root causes"
    );
    assert!(compared * 2 > rounds, "dose refused most archives");
}
