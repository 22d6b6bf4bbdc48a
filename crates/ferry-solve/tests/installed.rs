//! The migration gate: which installed packages would have no installable
//! version once the system uses other repositories.

use ferry_deb::package::parse_binary_packages;
use ferry_solve::{add_installed, installed_without_installable_version, Reason, Universe};

const REPOSITORY: &str = "\
Package: base
Version: 2
Architecture: amd64
Essential: yes
Breaks: oldtool (<< 2)

Package: newer
Version: 2
Architecture: all
";

const STATUS: &str = "\
Package: oldtool
Status: install ok installed
Version: 1
Architecture: amd64

Package: newer
Status: install ok installed
Version: 1
Architecture: amd64

Package: app
Status: install ok installed
Version: 1
Architecture: amd64
Depends: helper

Package: helper
Status: install ok installed
Version: 1
Architecture: amd64

Package: removed
Status: deinstall ok config-files
Version: 1
Architecture: amd64
Depends: nothing-at-all
";

#[test]
fn installed_packages_without_an_installable_version_are_found_and_explained() {
    let mut packages = parse_binary_packages(REPOSITORY).unwrap();
    let status = parse_binary_packages(STATUS).unwrap();
    // `helper` goes with the migration: it can no longer satisfy `app`.
    let installed = add_installed(&mut packages, status, |name| name == "helper");
    assert_eq!(
        installed.len(),
        3,
        "only installed packages, minus what leaves"
    );
    let universe = Universe::new(&packages, "amd64", &[]);

    let findings = installed_without_installable_version(&universe, &installed);
    let names: Vec<&str> = findings
        .iter()
        .map(|f| f.installed.package.as_str())
        .collect();
    assert_eq!(names, ["oldtool", "app"], "newer 1 has newer 2 (arch:all)");

    match &findings[0].reasons[0] {
        Reason::Conflict {
            pkg1,
            pkg2,
            chain2,
            unsat_conflict,
            ..
        } => {
            assert_eq!(
                (pkg1.package.as_str(), pkg2.package.as_str()),
                ("base", "oldtool")
            );
            assert_eq!(unsat_conflict, "oldtool (<< 2)");
            assert!(chain2.is_empty(), "oldtool is the package itself");
        }
        other => panic!("expected the essential package's Breaks, got {other:?}"),
    }
    match &findings[1].reasons[0] {
        Reason::Missing {
            chain,
            unsat_dependency,
        } => {
            assert_eq!(unsat_dependency, "helper");
            assert_eq!(chain[0].package.package, "app");
        }
        other => panic!("expected a missing dependency, got {other:?}"),
    }
}
