//! Every kept fuzz corpus replayed on stable Rust: each file of
//! `fuzz/corpus/<target>/` goes through the same function the fuzz target
//! calls (ferry_fuzz_entry), so an input that once crashed a parser stays
//! fixed. A missing or empty corpus fails; a panic names its file.

use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target)
}

/// Feeds every file of `dir` to `entry`; the files whose input panicked,
/// with the panic's message, or why the corpus could not be read.
fn replay(dir: &Path, entry: ferry_fuzz_entry::Entry) -> Result<usize, String> {
    let listing = fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut files: Vec<PathBuf> = listing
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    files.retain(|f| f.is_file());
    files.sort();
    if files.is_empty() {
        return Err(format!("{}: no corpus file", dir.display()));
    }
    let mut panicked = Vec::new();
    for file in &files {
        let data = fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| entry(&data))) {
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panicked.push(format!("{}: {message}", file.display()));
        }
    }
    if panicked.is_empty() {
        Ok(files.len())
    } else {
        Err(format!(
            "{} of {} inputs panicked:\n{}",
            panicked.len(),
            files.len(),
            panicked.join("\n")
        ))
    }
}

fn replay_target(target: &str) {
    let Some((_, entry)) = ferry_fuzz_entry::TARGETS.iter().find(|(t, _)| *t == target) else {
        panic!("{target} is not in ferry_fuzz_entry::TARGETS");
    };
    match replay(&corpus_dir(target), *entry) {
        Ok(count) => eprintln!("{target}: {count} inputs replayed"),
        Err(why) => panic!("fuzz corpus {target}: {why}"),
    }
}

macro_rules! replay_tests {
    ($($target:ident),+ $(,)?) => {
        $(
            #[test]
            fn $target() {
                replay_target(stringify!($target));
            }
        )+

        /// Every target has a test above, and every corpus a target.
        #[test]
        fn every_target_and_corpus_is_replayed() {
            let tested = [$(stringify!($target)),+];
            let targets: Vec<&str> = ferry_fuzz_entry::TARGETS.iter().map(|(t, _)| *t).collect();
            assert_eq!(tested.to_vec(), targets);
            let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
            let mut kept: Vec<String> = fs::read_dir(&corpus)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            kept.sort();
            assert_eq!(kept, targets);
        }
    };
}

replay_tests!(
    bmap,
    deb822,
    disk_image,
    fleet_api,
    grub_cfg,
    hints,
    ifupdown,
    meta_release,
    mqtt_hint,
    name_map,
    nm_keyfile,
    os_release,
    packages,
    profile,
    relation,
    release,
    sources,
    version,
    wpa_supplicant,
);

#[test]
fn a_missing_or_empty_corpus_fails() {
    let dir = tempfile::tempdir().unwrap();
    let err = replay(&dir.path().join("absent"), |_| ()).unwrap_err();
    assert!(err.contains("absent"), "{err}");
    let err = replay(dir.path(), |_| ()).unwrap_err();
    assert!(err.contains("no corpus file"), "{err}");
}

#[test]
fn a_panic_names_its_file() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("fine"), "a").unwrap();
    fs::write(dir.path().join("crash-1234"), "boom").unwrap();
    let err = replay(dir.path(), |data| assert!(data != b"boom", "it went boom")).unwrap_err();
    assert!(err.starts_with("1 of 2 inputs panicked"), "{err}");
    assert!(err.contains("crash-1234: it went boom"), "{err}");
    assert!(!err.contains("fine"), "{err}");
}
