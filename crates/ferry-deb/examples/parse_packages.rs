//! Benchmark helper: reads a (decompressed or compressed) Packages file into
//! typed records and prints the time of the parse alone, as JSON, for
//! `bench/parse-packages.sh`. The file is read into memory before timing, as
//! apt_pkg's side of the benchmark reads an uncompressed file too.

use std::path::PathBuf;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path: PathBuf = std::env::args_os()
        .nth(1)
        .ok_or("usage: parse_packages PACKAGES [ROUNDS]")?
        .into();
    let rounds: usize = std::env::args().nth(2).map_or(Ok(5), |r| r.parse())?;
    let text = ferry_deb::index::read_to_string(&path)?;
    let mut best = f64::MAX;
    let mut count = 0;
    let mut depends = 0;
    for _ in 0..rounds {
        let start = Instant::now();
        let packages = ferry_deb::package::parse_binary_packages(&text)?;
        let elapsed = start.elapsed().as_secs_f64();
        best = best.min(elapsed);
        count = packages.len();
        depends = packages
            .iter()
            .map(|p| p.depends.groups.len())
            .sum::<usize>();
    }
    println!(
        "{{\"packages\": {count}, \"depends_groups\": {depends}, \"bytes\": {}, \"best_seconds\": {best:.4}, \"rounds\": {rounds}}}",
        text.len()
    );
    Ok(())
}
