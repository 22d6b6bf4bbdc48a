//! Benchmark helper for `bench/parse-packages.sh`: reads a Packages file
//! (any compression) into memory, then times, best of ROUNDS, (1) splitting
//! it into paragraphs and fields only and (2) reading it into typed records
//! with every relation field parsed. Prints one JSON object.

use std::path::PathBuf;
use std::time::Instant;

use ferry_deb::deb822::{self, Paragraph, Syntax};
use ferry_deb::package::parse_binary_packages;

fn best_of<T>(rounds: usize, mut work: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::MAX;
    let mut last = None;
    for _ in 0..rounds {
        let start = Instant::now();
        let value = work();
        best = best.min(start.elapsed().as_secs_f64());
        last = Some(value);
    }
    (best, last.expect("at least one round"))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path: PathBuf = std::env::args_os()
        .nth(1)
        .ok_or("usage: parse_packages PACKAGES [ROUNDS]")?
        .into();
    let rounds: usize = std::env::args().nth(2).map_or(Ok(5), |r| r.parse())?;
    let text = ferry_deb::index::read_to_string(&path)?;

    let (split_seconds, paragraphs) = best_of(rounds, || {
        let mut reader = deb822::paragraphs(&text, Syntax::INDEX);
        let mut paragraph = Paragraph::default();
        let mut count = 0usize;
        while let Some(read) = reader.read_into(&mut paragraph) {
            read.map(|()| count += 1)?;
        }
        Ok::<_, deb822::SyntaxError>(count)
    });
    let paragraphs = paragraphs?;

    let (typed_seconds, packages) = best_of(rounds, || parse_binary_packages(&text));
    let packages = packages?;
    let groups: usize = packages.iter().map(|p| p.depends.groups.len()).sum();

    println!(
        "{{\"packages\": {}, \"paragraphs\": {paragraphs}, \"depends_groups\": {groups}, \"bytes\": {}, \
         \"split_seconds\": {split_seconds:.4}, \"typed_seconds\": {typed_seconds:.4}, \"rounds\": {rounds}}}",
        packages.len(),
        text.len()
    );
    Ok(())
}
