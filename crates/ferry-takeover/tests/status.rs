//! `takeover status` read from the records a takeover leaves: in the new
//! OS's data partition when it completed, in the old root when the old OS
//! came back.

use std::fs;
use std::path::Path;

use ferry_journal::{Step, StepState};
use ferry_takeover::steps::{TakeoverJournal, DATA_RECORD, OLD_ROOT_RECORD};
use ferry_takeover::{status, RunningOs, TakeoverStep, Verdict};

/// A journal with every step up to (not including) `upto` done, then
/// `last` applied to `upto`.
fn journal(upto: Option<TakeoverStep>, last: Option<Result<(), String>>) -> TakeoverJournal {
    let mut j = TakeoverJournal::new("takeover-1", "/root/t.toml", "ab");
    for &step in TakeoverStep::ALL {
        if Some(step) == upto {
            j.begin(step).unwrap();
            if let Some(result) = last {
                j.finish(step, result).unwrap();
            }
            break;
        }
        j.begin(step).unwrap();
        j.finish(step, Ok(())).unwrap();
    }
    j
}

fn write_record(root: &Path, dir: &str, journal: &TakeoverJournal) {
    let events = if dir == OLD_ROOT_RECORD {
        root.join("var/log/ferry/events.jsonl")
    } else {
        root.join(dir).join("events.jsonl")
    };
    let dir = root.join(dir);
    fs::create_dir_all(&dir).unwrap();
    fs::create_dir_all(events.parent().unwrap()).unwrap();
    journal.save(&dir.join("journal.json")).unwrap();
    fs::write(
        events,
        "{\"migration\":\"takeover-1\"}\n{\"migration\":\"takeover-1\"}\n{\"migration\":\"other\"}\n",
    )
    .unwrap();
}

fn mounts(root: &Path, points: &[&str]) {
    fs::create_dir_all(root.join("proc/self")).unwrap();
    let text: String = points
        .iter()
        .map(|p| format!("/dev/vda4 {p} ext4 rw 0 0\n"))
        .collect();
    fs::write(root.join("proc/self/mounts"), text).unwrap();
}

#[test]
fn no_record_is_none_not_an_error() {
    let root = tempfile::tempdir().unwrap();
    mounts(root.path(), &["/"]);
    assert_eq!(status(root.path()).unwrap(), None);
}

#[test]
fn a_completed_record_in_a_mounted_data_partition_is_the_new_os() {
    let root = tempfile::tempdir().unwrap();
    mounts(root.path(), &["/", "/mnt/data"]);
    let j = journal(None, None);
    write_record(root.path(), &format!("mnt/data/{DATA_RECORD}"), &j);
    let s = status(root.path()).unwrap().unwrap();
    assert_eq!((s.verdict, s.running), (Verdict::Completed, RunningOs::New));
    assert!(s.completed());
    assert_eq!(s.events, 2, "only this takeover's events count");
    assert_eq!(s.steps.len(), TakeoverStep::ALL.len());
    assert!(s
        .steps
        .iter()
        .all(|t| t.state == StepState::Done && t.seconds.is_some()));
}

#[test]
fn a_record_left_at_the_hand_off_on_the_old_root_is_an_interrupted_stage_2() {
    let root = tempfile::tempdir().unwrap();
    mounts(root.path(), &["/"]);
    write_record(
        root.path(),
        OLD_ROOT_RECORD,
        &journal(Some(TakeoverStep::Handoff), None),
    );
    let s = status(root.path()).unwrap().unwrap();
    assert_eq!(
        (s.verdict, s.running),
        (Verdict::Interrupted, RunningOs::Old)
    );
    assert!(!s.completed());
    assert!(s.summary.contains("nothing was written"), "{}", s.summary);
}

#[test]
fn a_failure_stage_2_left_in_the_old_root_says_nothing_was_written_and_why() {
    let root = tempfile::tempdir().unwrap();
    mounts(root.path(), &["/"]);
    let j = journal(
        Some(TakeoverStep::Unmount),
        Some(Err("/mnt/old_root is busy".into())),
    );
    write_record(root.path(), OLD_ROOT_RECORD, &j);
    let s = status(root.path()).unwrap().unwrap();
    assert_eq!(s.verdict, Verdict::FailedBeforeFlash);
    assert!(s.summary.contains("/mnt/old_root is busy"), "{}", s.summary);
    let unmount = s.steps.iter().find(|t| t.step == "unmount").unwrap();
    assert_eq!(unmount.state, StepState::Failed);
    assert_eq!(
        s.steps.iter().find(|t| t.step == "flash").unwrap().state,
        StepState::Pending
    );
}

#[test]
fn a_stage_1_refusal_is_a_failure_before_the_flash() {
    let root = tempfile::tempdir().unwrap();
    mounts(root.path(), &["/"]);
    let j = journal(
        Some(TakeoverStep::Stage),
        Some(Err("stage 2 needs 900 MiB of RAM".into())),
    );
    write_record(root.path(), OLD_ROOT_RECORD, &j);
    let s = status(root.path()).unwrap().unwrap();
    assert_eq!(s.verdict, Verdict::FailedBeforeFlash);
    assert_eq!(s.running, RunningOs::Old);
}

#[test]
fn a_data_partition_record_of_a_failed_carry_is_a_failure_after_the_flash() {
    let root = tempfile::tempdir().unwrap();
    mounts(root.path(), &["/", "/data"]);
    let j = journal(Some(TakeoverStep::Carry), Some(Err("disk full".into())));
    write_record(root.path(), &format!("data/{DATA_RECORD}"), &j);
    let s = status(root.path()).unwrap().unwrap();
    assert_eq!(s.verdict, Verdict::FailedAfterFlash);
    assert!(s.summary.contains("disk full"));
}

#[test]
fn a_corrupt_record_is_an_error_naming_the_file() {
    let root = tempfile::tempdir().unwrap();
    mounts(root.path(), &["/"]);
    let dir = root.path().join(OLD_ROOT_RECORD);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("journal.json"), "{ not json").unwrap();
    let e = status(root.path()).unwrap_err();
    assert!(e.path.ends_with("journal.json"), "{e}");
}

/// A flasher journal up to the confirmation, waiting for it.
fn flasher_waiting() -> ferry_takeover::flasher::FlasherJournal {
    use ferry_takeover::flasher::{FlasherJournal, FlasherStep};
    let mut j = FlasherJournal::new("takeover-1", "/root/t.toml", "ab");
    for &step in FlasherStep::ALL {
        j.begin(step).unwrap();
        if step == FlasherStep::Confirm {
            break;
        }
        j.finish(step, Ok(())).unwrap();
    }
    j
}

fn save_flasher(root: &Path, dir: &str, journal: &ferry_takeover::flasher::FlasherJournal) {
    let dir = root.join(dir);
    fs::create_dir_all(&dir).unwrap();
    journal.save(&dir.join("journal.json")).unwrap();
}

#[test]
fn a_flasher_takeover_waiting_for_confirmation_on_the_old_os_fell_back() {
    let root = tempfile::tempdir().unwrap();
    mounts(root.path(), &["/"]);
    save_flasher(root.path(), OLD_ROOT_RECORD, &flasher_waiting());
    let s = status(root.path()).unwrap().unwrap();
    assert_eq!((s.verdict, s.running), (Verdict::FellBack, RunningOs::Old));
    assert_eq!(s.steps.last().unwrap().step, "confirm");
    assert_eq!(s.deadline_passed, None);
    // The note the new OS's deadline unit leaves says why it fell back;
    // one of another takeover does not.
    let note = root.path().join(OLD_ROOT_RECORD).join("deadline-passed");
    fs::write(
        &note,
        "id=takeover-0\nseconds=90\nnew_os_time=2026-12-02T12:00:00Z\n",
    )
    .unwrap();
    let s = status(root.path()).unwrap().unwrap();
    assert_eq!(s.deadline_passed, None);
    fs::write(
        &note,
        "id=takeover-1\nseconds=90\nnew_os_time=2026-12-02T12:00:00Z\n",
    )
    .unwrap();
    let s = status(root.path()).unwrap().unwrap();
    assert_eq!(s.verdict, Verdict::FellBack);
    assert_eq!(s.deadline_passed.as_ref().map(|d| d.seconds), Some(90));
    assert!(
        s.summary.contains("within its deadline (90 s)"),
        "{}",
        s.summary
    );
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(
        json["deadline_passed"]["new_os_time"],
        "2026-12-02T12:00:00Z"
    );
}

#[test]
fn a_flasher_takeover_on_the_new_os_is_unconfirmed_then_completed() {
    let root = tempfile::tempdir().unwrap();
    mounts(root.path(), &["/", "/mnt/data"]);
    let mut j = flasher_waiting();
    save_flasher(root.path(), &format!("mnt/data/{DATA_RECORD}"), &j);
    let s = status(root.path()).unwrap().unwrap();
    assert_eq!(
        (s.verdict, s.running),
        (Verdict::Unconfirmed, RunningOs::New)
    );
    assert!(
        s.summary.contains("ferry takeover confirm"),
        "{}",
        s.summary
    );
    // Booted with the deadline on its command line: the summary says when
    // the machine goes back.
    fs::create_dir_all(root.path().join("proc")).unwrap();
    fs::write(
        root.path().join("proc/cmdline"),
        "root=LABEL=root panic=10 ferry.takeover_deadline=600\n",
    )
    .unwrap();
    let s = status(root.path()).unwrap().unwrap();
    assert!(s.summary.contains("within 600 s"), "{}", s.summary);
    j.finish(ferry_takeover::flasher::FlasherStep::Confirm, Ok(()))
        .unwrap();
    save_flasher(root.path(), &format!("mnt/data/{DATA_RECORD}"), &j);
    let s = status(root.path()).unwrap().unwrap();
    assert_eq!(s.verdict, Verdict::Completed);
}
