//! The new OS's report-in deadline (strategy flasher): a unit carried into
//! the new OS that reboots it unless `ferry takeover confirm` made it the
//! default in time, and the note it leaves on the old root for the old
//! OS's `ferry takeover status`.
//!
//! The deadline is armed by the boot, not by the new OS: grub's one-shot
//! entry passes `ferry.takeover_deadline=SECONDS` on the kernel command
//! line only while the takeover is not committed, and the unit runs only
//! when it is there. A confirmed OS boots without it, so the unit can never
//! reboot it in a loop, and a new OS that cannot write its own root (a
//! read-only image) needs nothing removed.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::flasher::COMMITTED_VAR;
use crate::steps::{OldRoot, OLD_ROOT_RECORD};

/// The kernel argument grub's one-shot entry passes (`NAME=SECONDS`).
pub const KERNEL_ARG: &str = "ferry.takeover_deadline";
/// The unit's name in the new OS.
pub const UNIT: &str = "ferry-takeover-deadline.service";
const UNIT_DIR: &str = "etc/systemd/system";
/// Early: `sysinit.target` is reached on every boot that gets to systemd,
/// even one that later stalls in a service.
const WANTED_BY: &str = "sysinit.target";
const SCRIPT: &str = "etc/ferry/takeover-deadline";
/// The note the unit leaves on the old root when it reboots.
const PASSED_NOTE: &str = "deadline-passed";

/// What the deadline unit left on the old root when it rebooted the new OS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadlinePassed {
    /// The deadline, in seconds from the new OS's boot.
    pub seconds: u32,
    /// The new OS's clock when it gave up (UTC, as `date -u` wrote it).
    pub new_os_time: String,
}

/// Why the deadline cannot be armed in the new root.
#[derive(Debug, thiserror::Error)]
pub enum ArmError {
    #[error(
        "the new OS has no systemd ({0}): its report-in deadline cannot be armed; \
         set [confirm] deadline_seconds = 0 to boot it without one"
    )]
    NoSystemd(PathBuf),
    #[error("`{0}` cannot be written into a shell script safely")]
    Unsafe(String),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Only these characters go into the script unquoted by the shell.
fn shell_safe(text: &str) -> Result<&str, ArmError> {
    let safe = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._:-+".contains(&b));
    if safe {
        Ok(text)
    } else {
        Err(ArmError::Unsafe(text.to_string()))
    }
}

/// The script the unit runs: wait out the deadline, and unless the old
/// root's grub environment says committed, leave a note there and reboot.
pub fn script(id: &str, old: &OldRoot) -> Result<String, ArmError> {
    let id = shell_safe(id)?;
    let device = old.device.to_string_lossy();
    let device = shell_safe(&device)?;
    let fstype = shell_safe(&old.fstype)?;
    Ok(format!(
        r#"#!/bin/sh
# Written by ferry takeover run (strategy flasher), takeover {id}.
# This OS was booted once by grub with {KERNEL_ARG}=SECONDS; unless
# `ferry takeover confirm` makes it grub's default within SECONDS of its
# boot, this reboots the machine and, the one-shot boot being spent, the
# old OS comes back. A note on the old root tells its `ferry takeover status`.
id='{id}'
device='{device}'
fstype='{fstype}'
say() {{ echo "ferry-takeover deadline: $*"; }}
seconds=
for arg in $(cat /proc/cmdline); do
  case $arg in {KERNEL_ARG}=*) seconds=${{arg#*=}} ;; esac
done
case $seconds in
  '' | *[!0-9]*) say "no {KERNEL_ARG}=SECONDS on the kernel command line: nothing to do"; exit 0 ;;
esac
say "this OS reboots into the old one unless \`ferry takeover confirm\` runs within $seconds s of its boot"
uptime=$(cut -d. -f1 /proc/uptime)
[ "$uptime" -ge "$seconds" ] || sleep $((seconds - uptime))
old=/run/ferry-takeover-deadline
mkdir -p "$old"
if mount -o ro -t "$fstype" "$device" "$old"; then
  if grep -qx '{COMMITTED_VAR}=committed' "$old/boot/grub/grubenv"; then
    umount "$old"
    say "confirmed in time: this OS stays"
    exit 0
  fi
  umount "$old"
fi
say "not confirmed within $seconds s: rebooting into the old OS"
if mount -t "$fstype" "$device" "$old"; then
  mkdir -p "$old/{OLD_ROOT_RECORD}"
  printf 'id=%s\nseconds=%s\nnew_os_time=%s\n' "$id" "$seconds" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    >"$old/{OLD_ROOT_RECORD}/{PASSED_NOTE}"
  sync
  umount "$old"
else
  say "the old root $device cannot be mounted: no note for its status"
fi
systemctl reboot --force
"#
    ))
}

/// The unit, enabled for `sysinit.target`; it runs only on a boot whose
/// command line carries the deadline.
pub fn unit(id: &str) -> String {
    format!(
        "# Written by ferry takeover run (strategy flasher), takeover {id}.\n\
         [Unit]\n\
         Description=ferry takeover: reboot into the old OS unless this OS is confirmed in time\n\
         DefaultDependencies=no\n\
         ConditionKernelCommandLine={KERNEL_ARG}\n\
         Conflicts=shutdown.target\n\
         Before=shutdown.target\n\
         \n\
         [Service]\n\
         Type=simple\n\
         ExecStart=/{SCRIPT}\n\
         StandardOutput=journal+console\n\
         StandardError=journal+console\n\
         \n\
         [Install]\n\
         WantedBy={WANTED_BY}\n"
    )
}

/// Whether the tree at `root` boots with systemd. Links are not followed
/// outside it: `lib` is looked at only where it is a directory.
fn has_systemd(root: &Path) -> bool {
    let usr = root.join("usr/lib/systemd/systemd");
    let lib_dir = root.join("lib");
    usr.is_file()
        || (fs::symlink_metadata(&lib_dir).is_ok_and(|m| m.is_dir())
            && lib_dir.join("systemd/systemd").is_file())
}

/// Writes the script, the unit and its enablement into the new root
/// mounted at `new_root`; returns the files written.
pub fn arm(new_root: &Path, id: &str, old: &OldRoot) -> Result<Vec<PathBuf>, ArmError> {
    if !has_systemd(new_root) {
        return Err(ArmError::NoSystemd(
            new_root.join("usr/lib/systemd/systemd"),
        ));
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ArmError::Io { path, source }
    };
    let script_path = new_root.join(SCRIPT);
    let unit_path = new_root.join(UNIT_DIR).join(UNIT);
    let wants = new_root.join(UNIT_DIR).join(format!("{WANTED_BY}.wants"));
    let link = wants.join(UNIT);
    for dir in [script_path.parent(), Some(wants.as_path())]
        .into_iter()
        .flatten()
    {
        fs::create_dir_all(dir).map_err(io(dir))?;
    }
    ferry_journal::write_atomic(&script_path, script(id, old)?.as_bytes())
        .map_err(io(&script_path))?;
    fs::set_permissions(&script_path, fs::Permissions::from_mode(0o755))
        .map_err(io(&script_path))?;
    ferry_journal::write_atomic(&unit_path, unit(id).as_bytes()).map_err(io(&unit_path))?;
    match fs::remove_file(&link) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(&link)(e)),
    }
    std::os::unix::fs::symlink(Path::new("/").join(UNIT_DIR).join(UNIT), &link)
        .map_err(io(&link))?;
    Ok(vec![script_path, unit_path])
}

/// The deadline on a kernel command line, if grub armed one.
pub fn armed(cmdline: &str) -> Option<u32> {
    cmdline
        .split_whitespace()
        .find_map(|a| a.strip_prefix(KERNEL_ARG)?.strip_prefix('='))
        .and_then(|n| n.parse().ok())
}

/// The note the deadline unit left on the old root at `root` for takeover
/// `id`, if it rebooted that takeover's new OS.
pub fn passed(root: &Path, id: &str) -> Option<DeadlinePassed> {
    let text = fs::read_to_string(root.join(OLD_ROOT_RECORD).join(PASSED_NOTE)).ok()?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
            .map(str::trim)
    };
    if field("id")? != id {
        return None;
    }
    Some(DeadlinePassed {
        seconds: field("seconds")?.parse().ok()?,
        new_os_time: field("new_os_time")?.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn old() -> OldRoot {
        OldRoot {
            device: PathBuf::from("/dev/vda1"),
            fstype: "ext4".into(),
        }
    }

    #[test]
    fn the_script_is_valid_shell_and_names_the_old_root() {
        let text = script("20261202T120000Z-1", &old()).unwrap();
        assert!(text.contains("device='/dev/vda1'"), "{text}");
        assert!(
            text.contains("grep -qx 'ferry_takeover=committed'"),
            "{text}"
        );
        assert!(text.contains("systemctl reboot --force"), "{text}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        fs::write(&path, &text).unwrap();
        let out = Command::new("sh").arg("-n").arg(&path).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn anything_a_shell_would_read_as_code_is_refused() {
        let mut bad = old();
        bad.device = PathBuf::from("/dev/vda1'; reboot '");
        assert!(matches!(script("x", &bad), Err(ArmError::Unsafe(_))));
        assert!(matches!(script("a b", &old()), Err(ArmError::Unsafe(_))));
        assert!(matches!(script("$(x)", &old()), Err(ArmError::Unsafe(_))));
    }

    #[test]
    fn without_the_kernel_argument_the_script_does_nothing() {
        // Run for real with /proc/cmdline as this machine has it (which
        // has no deadline): it must exit 0 at once without mounting or
        // rebooting anything.
        let cmdline = fs::read_to_string("/proc/cmdline").unwrap_or_default();
        if armed(&cmdline).is_some() {
            ferry_testkit::skip!("this machine's own command line carries {KERNEL_ARG}");
        }
        let out = Command::new("sh")
            .arg("-c")
            .arg(script("t-1", &old()).unwrap())
            .output()
            .unwrap();
        assert!(out.status.success());
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!(
                "ferry-takeover deadline: no {KERNEL_ARG}=SECONDS on the kernel command line: nothing to do\n"
            )
        );
    }

    #[test]
    fn the_unit_runs_only_with_the_argument_and_systemd_accepts_it() {
        let text = unit("t-1");
        assert!(text.contains(&format!("ConditionKernelCommandLine={KERNEL_ARG}\n")));
        assert!(text.contains("WantedBy=sysinit.target\n"));
        ferry_testkit::skip_unless!(ferry_testkit::Need::Tool("systemd-analyze"));
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("usr/lib/systemd")).unwrap();
        fs::write(root.join("usr/lib/systemd/systemd"), "").unwrap();
        let written = arm(root, "t-1", &old()).unwrap();
        assert_eq!(written.len(), 2);
        let mode = fs::metadata(root.join(SCRIPT))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
        let link = root
            .join("etc/systemd/system/sysinit.target.wants")
            .join(UNIT);
        assert_eq!(
            fs::read_link(&link).unwrap(),
            Path::new("/etc/systemd/system").join(UNIT)
        );
        // systemd-analyze verify reads the unit as systemd would; ExecStart
        // must exist on this host for it, so check a copy pointing at sh.
        let host_unit = dir.path().join(UNIT);
        fs::write(
            &host_unit,
            unit("t-1").replace(&format!("/{SCRIPT}"), "/bin/true"),
        )
        .unwrap();
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&host_unit)
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(
            !said.lines().any(|l| l.contains(UNIT)),
            "systemd-analyze verify: {said}"
        );
        // Arming twice (a retried carry) replaces the link.
        arm(root, "t-2", &old()).unwrap();
        assert!(fs::read_to_string(root.join(SCRIPT))
            .unwrap()
            .contains("t-2"));
    }

    #[test]
    fn a_new_os_without_systemd_is_refused_not_silently_unguarded() {
        let dir = tempfile::tempdir().unwrap();
        let e = arm(dir.path(), "t-1", &old()).unwrap_err();
        assert!(matches!(e, ArmError::NoSystemd(_)), "{e}");
        assert!(e.to_string().contains("deadline_seconds = 0"), "{e}");
        assert!(!dir.path().join(SCRIPT).exists());
    }

    #[test]
    fn the_command_line_says_whether_a_deadline_is_armed() {
        assert_eq!(
            armed("root=LABEL=root ro panic=10 ferry.takeover_deadline=600"),
            Some(600)
        );
        assert_eq!(armed("root=LABEL=root ro"), None);
        assert_eq!(armed("ferry.takeover_deadline_x=5"), None);
        assert_eq!(armed("ferry.takeover_deadline=soon"), None);
    }

    #[test]
    fn the_note_counts_only_for_its_takeover() {
        let dir = tempfile::tempdir().unwrap();
        let note = dir.path().join(OLD_ROOT_RECORD).join(PASSED_NOTE);
        fs::create_dir_all(note.parent().unwrap()).unwrap();
        fs::write(
            &note,
            "id=t-1\nseconds=90\nnew_os_time=2026-12-02T12:00:00Z\n",
        )
        .unwrap();
        assert_eq!(
            passed(dir.path(), "t-1"),
            Some(DeadlinePassed {
                seconds: 90,
                new_os_time: "2026-12-02T12:00:00Z".into()
            })
        );
        assert_eq!(passed(dir.path(), "t-2"), None);
        fs::write(&note, "id=t-1\nseconds=x\n").unwrap();
        assert_eq!(passed(dir.path(), "t-1"), None);
    }
}
