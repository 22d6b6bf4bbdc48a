//! `ferry takeover plan` on the command line: on this very machine
//! (read-only) it answers 0 or 3 with a plan in JSON; on a fake machine
//! (`--root`) a blocked plan is not saved and a clean one is; a config
//! with a typo and a file that is no image are exit 2, located.

use std::path::Path;

use ferry_testkit::{partitioned_image, skip_unless, Need};

mod disk_images;
use disk_images::{ferry, s, MIB};

const GPT: &str = "label: gpt\nstart=2048, size=16384, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=\"boot\"\nstart=18432, size=100000, type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, name=\"root\"\n";

/// An x86_64 BIOS machine whose / is /dev/vda1 on a 1 GiB disk, with a
/// watchdog, memory to spare and the tools under usr/bin.
fn fake_machine(dir: &Path) {
    let w = |rel: &str, text: &str| {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    w("proc/sys/kernel/arch", "x86_64\n");
    w("proc/meminfo", "MemAvailable: 4000000 kB\n");
    w("proc/self/mounts", "/dev/vda1 / ext4 rw 0 0\n");
    w("dev/watchdog", "");
    w("sys/devices/virtual/block/vda/size", "2097152\n");
    w("sys/devices/virtual/block/vda/vda1/partition", "1\n");
    std::fs::create_dir_all(dir.join("sys/class/block")).unwrap();
    std::os::unix::fs::symlink(
        "../../devices/virtual/block/vda",
        dir.join("sys/class/block/vda"),
    )
    .unwrap();
    std::os::unix::fs::symlink(
        "../../devices/virtual/block/vda/vda1",
        dir.join("sys/class/block/vda1"),
    )
    .unwrap();
}

#[test]
fn a_config_with_a_typo_is_exit_2_at_its_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("takeover.toml");
    std::fs::write(
        &config,
        "strategy = \"ram\"\n\n[watchdog]\nrequier = true\n",
    )
    .unwrap();
    let out = ferry(&[
        "takeover",
        "plan",
        "--image",
        "/nonexistent.img",
        "--config",
        s(&config),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:4:1", config.display())),
        "{stderr}"
    );
    assert!(stderr.contains("requier"), "{stderr}");
    let out = ferry(&[
        "takeover",
        "plan",
        "--image",
        "/nonexistent.img",
        "--config",
        s(&config),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let error: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (
            error["error"]["line"].as_u64(),
            error["error"]["column"].as_u64()
        ),
        (Some(4), Some(1))
    );
}

#[test]
fn a_file_that_is_no_image_is_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("notes.txt");
    std::fs::write(&image, "not an image").unwrap();
    let out = ferry(&["takeover", "plan", "--image", s(&image)]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("notes.txt"));
}

#[test]
fn on_this_machine_the_plan_is_read_only_json_with_exit_0_or_3() {
    skip_unless!(Need::Tool("sfdisk"));
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("os.img");
    partitioned_image(&image, 64 * MIB, GPT).unwrap();
    let out = ferry(&["takeover", "plan", "--image", s(&image), "--json"]);
    let code = out.status.code();
    assert!(
        matches!(code, Some(0) | Some(3)),
        "{code:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["format"], 1);
    assert_eq!(plan["blocked"].as_bool(), Some(code == Some(3)));
    assert_eq!(plan["image"]["size"].as_u64(), Some(64 * MIB));
    assert_eq!(
        plan["fingerprint"]["architecture"].as_str(),
        Some(std::env::consts::ARCH)
    );
    assert!(plan["findings"].as_array().is_some_and(|f| !f.is_empty()));
}

#[test]
fn a_blocked_plan_is_not_saved_and_a_clean_one_is() {
    skip_unless!(Need::Tool("sfdisk"));
    let dir = tempfile::tempdir().unwrap();
    let system = dir.path().join("machine");
    fake_machine(&system);
    let image = dir.path().join("os.img");
    partitioned_image(&image, 64 * MIB, GPT).unwrap();
    let saved = dir.path().join("plan.json");
    // No tools on the fake machine: blocked.
    let out = ferry(&[
        "--root",
        s(&system),
        "takeover",
        "plan",
        "--image",
        s(&image),
        "--save",
        s(&saved),
    ]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("BLOCKER  [missing-command:ldd]"),
        "{stdout}"
    );
    assert!(!saved.exists(), "a blocked plan is not saved");

    for tool in ["ldd", "sfdisk", "grub-reboot"] {
        use std::os::unix::fs::PermissionsExt;
        let path = system.join("usr/bin").join(tool);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let config = dir.path().join("takeover.toml");
    std::fs::write(
        &config,
        "[target]\nroot_partition = 2\ndata_partition = 2\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args([
            "--root",
            s(&system),
            "takeover",
            "plan",
            "--image",
            s(&image),
            "--config",
            s(&config),
            "--save",
            s(&saved),
            "--json",
        ])
        .env("PATH", "/usr/bin")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["saved"].as_str(), Some(s(&saved)));
    let file: serde_json::Value = serde_json::from_slice(&std::fs::read(&saved).unwrap()).unwrap();
    assert_eq!(file["format"], 1);
    assert_eq!(file["target"]["device"], "/dev/vda");
    assert_eq!(file["image"]["architecture"], "x86_64");
}

/// ferry as PID 1 of a PID namespace (a container's first process, or
/// `cargo run`, which execs) with no takeover staged is the CLI, not stage
/// 2: stage 2 would reboot, which in a namespace kills it with SIGHUP.
#[test]
fn as_pid_1_without_a_staged_takeover_ferry_is_the_cli() {
    skip_unless!(Need::Root, Need::Tool("unshare"));
    let out = std::process::Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc"])
        .arg(env!("CARGO_BIN_EXE_ferry"))
        .args(["version", "compare", "1.0", "lt", "2.0"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
