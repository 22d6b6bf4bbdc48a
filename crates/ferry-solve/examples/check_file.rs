//! Development helper: `check_file PACKAGES [ARCH]` prints the broken
//! packages as `name version arch`, one a line, and the time taken.
fn rss() -> String {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("VmRSS") || l.starts_with("VmHWM"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: check_file PACKAGES [ARCH]")?;
    let arch = std::env::args().nth(2).unwrap_or_else(|| "amd64".into());
    let start = std::time::Instant::now();
    let text = ferry_deb::index::read_to_string(std::path::Path::new(&path))?;
    eprintln!("after read: {}", rss());
    let packages = ferry_deb::package::parse_binary_packages_with(
        &text,
        ferry_deb::package::RelationFields::Installability,
    )?;
    let parsed = start.elapsed();
    eprintln!("after parse: {}", rss());
    let universe = ferry_solve::Universe::new(&packages, &arch, &[]);
    let built = start.elapsed();
    eprintln!("after universe: {}", rss());
    if let Some(name) = std::env::args().nth(3) {
        let id = (0..universe.len() as u32)
            .find(|&i| universe.records[i as usize].name == name)
            .ok_or("no such package")?;
        let prepared = ferry_solve::Prepared::new(&universe);
        let mut solver = ferry_solve::Solver::new(&universe, &prepared);
        println!("{:?}", solver.check(id));
        let cause = solver.explain(id);
        println!("{:#?}", universe.reason(&cause));
        return Ok(());
    }
    let reports = ferry_solve::check(&universe, None, false);
    let done = start.elapsed();
    eprintln!("after check: {}", rss());
    for r in reports.iter().filter(|r| r.status.is_broken()) {
        println!(
            "{} {} {}",
            r.package.package, r.package.version, r.package.architecture
        );
    }
    eprintln!(
        "{} packages, {} broken; parse {:?}, universe {:?}, check {:?}",
        reports.len(),
        reports.iter().filter(|r| r.status.is_broken()).count(),
        parsed,
        built - parsed,
        done - built
    );
    Ok(())
}
