//! `ferry release check | fetch | upgrade | bundle`: whether the
//! meta-release index offers this system a newer release, getting and
//! verifying that release's signed bundle without changing the system,
//! upgrading to it (the bundle made into a migration, run by the migration
//! engine), and building a bundle for publishers. Deciding and verifying
//! live in `ferry_release`; this module wires flags and renders.
//!
//! Exit codes: `check` answers 0 (a newer release is offered) or 1 (up to
//! date, or the release is stopped by the publisher); a bad index, a bad
//! bundle or a refused signature is 2 and nothing is changed.

use std::io::Write;
use std::path::Path;

use ferry_apt::system::SystemRoot;
use ferry_deb::os_release::OsRelease;
use ferry_release::{offer, Config, MetaRelease, Offer, ReleaseEntry};
use ferry_release::{BundleError, SignWith};
use ferry_release::{ConfigError, CONFIG_PATH};

use super::{migrate, require_privileges, system_root};
use crate::cli::{Global, ReleaseArgs, ReleaseCommand, UpgradeArgs};
use crate::exit::Exit;
use crate::render::{self, Failure};

/// An index is a few kilobytes; this bounds what a hostile server can send.
const INDEX_LIMIT: u64 = 4 << 20;

pub fn run(command: ReleaseCommand, global: &Global) -> Result<Exit, Failure> {
    match command {
        ReleaseCommand::Check(args) => check(&args, global, &system_root(global)?),
        ReleaseCommand::Fetch { release, dir } => {
            fetch_bundle(&release, dir.as_deref(), global, &system_root(global)?)
        }
        ReleaseCommand::Upgrade(args) => {
            let root = system_root(global)?;
            if !args.dry_run {
                require_privileges("ferry release upgrade")?;
            }
            upgrade(&args, global, &root)
        }
        ReleaseCommand::Bundle {
            dir,
            key,
            gnupghome,
            output,
        } => build(&dir, &output, SignWith { key, gnupghome }, global),
    }
}

/// The index, the system's os-release and the configuration, read.
struct Context {
    config: Config,
    url: String,
    index: MetaRelease,
    os: OsRelease,
}

fn context(args: &ReleaseArgs, root: &SystemRoot) -> Result<Context, Failure> {
    let config = Config::read(root.path())
        .map_err(config_failure)?
        .with_overrides(args.meta_release.clone(), args.keyring.clone());
    let url = config.meta_release.clone().ok_or_else(|| {
        Failure::bad_input("no meta-release index is configured").hint(format!(
            "set `meta_release = \"URL\"` in {} under --root, or pass --meta-release URL",
            Path::new("/").join(CONFIG_PATH).display()
        ))
    })?;
    let body = ferry_fetch::fetch_bytes(&url, INDEX_LIMIT)
        .map_err(|e| Failure::failed(format!("cannot fetch the meta-release index: {e}")))?;
    let text = String::from_utf8(body).map_err(|e| {
        Failure::bad_input(format!(
            "the meta-release index is not UTF-8 (byte {})",
            e.utf8_error().valid_up_to()
        ))
        .at(Path::new(&url), None, None)
    })?;
    let index = MetaRelease::parse(&text).map_err(|e| {
        Failure::bad_input(format!("bad meta-release index: {e}"))
            .at(Path::new(&url), e.line(), None)
            .expected("deb822 paragraphs with Dist, Version, Date and Supported")
    })?;
    let os = OsRelease::read(root.path())
        .map_err(|e| Failure::bad_input(format!("cannot read os-release: {e}")))?;
    Ok(Context {
        config,
        url,
        index,
        os,
    })
}

fn config_failure(error: ConfigError) -> Failure {
    let failure = Failure::bad_input(error.to_string());
    match &error {
        ConfigError::Syntax {
            path, line, column, ..
        }
        | ConfigError::RelativeKeyring { path, line, column } => {
            failure.at(path, Some(*line), Some(*column))
        }
        ConfigError::Read { path, .. } => failure.at(path, None, None),
    }
}

fn decide<'a>(ctx: &'a Context, to: Option<&str>) -> Result<Offer<'a>, Failure> {
    offer(&ctx.index, &ctx.os, to).map_err(|e| {
        Failure::bad_input(e.to_string()).hint("see the releases the index lists with --json")
    })
}

fn entry_json(entry: &ReleaseEntry) -> serde_json::Value {
    serde_json::to_value(entry).unwrap_or(serde_json::Value::Null)
}

fn describe(entry: &ReleaseEntry) -> String {
    match &entry.name {
        Some(name) => format!("{} ({name}, {})", entry.dist, entry.version),
        None => format!("{} ({})", entry.dist, entry.version),
    }
}

fn current_text(current: Option<&ReleaseEntry>, os: &OsRelease) -> String {
    match current {
        Some(c) => describe(c),
        None => format!(
            "{} (not listed in the index)",
            os.pretty_name()
                .or(os.version_id())
                .unwrap_or("this system")
        ),
    }
}

fn check(args: &ReleaseArgs, global: &Global, root: &SystemRoot) -> Result<Exit, Failure> {
    let ctx = context(args, root)?;
    let offer = decide(&ctx, args.to.as_deref())?;
    if global.json {
        render::json(&offer_json(&ctx, &offer));
    } else {
        print!("{}", offer_text(&ctx, &offer));
    }
    Ok(match offer {
        Offer::Upgrade { .. } => Exit::Ok,
        Offer::UpToDate { .. } | Offer::Broken { .. } => Exit::Failed,
    })
}

fn offer_json(ctx: &Context, offer: &Offer<'_>) -> serde_json::Value {
    let (current, target, broken) = match offer {
        Offer::Upgrade { current, target } => (current, Some(*target), None),
        Offer::UpToDate { current } => (current, None, None),
        Offer::Broken {
            current,
            target,
            reason,
        } => (current, Some(*target), Some(*reason)),
    };
    serde_json::json!({
        "index": ctx.url,
        "upgrade": matches!(offer, Offer::Upgrade { .. }),
        "current": current.map(entry_json),
        "os_release": {
            "VERSION_ID": ctx.os.version_id(),
            "VERSION_CODENAME": ctx.os.version_codename(),
        },
        "target": target.map(entry_json),
        "upgrade_broken": broken,
    })
}

fn offer_text(ctx: &Context, offer: &Offer<'_>) -> String {
    match offer {
        Offer::Upgrade { current, target } => {
            let mut out = format!(
                "New release {} is available (this system: {}).\n",
                describe(target),
                current_text(*current, &ctx.os)
            );
            if let Some(description) = &target.description {
                out.push_str(&format!("  {description}\n"));
            }
            if let Some(notes) = target
                .release_notes_html
                .as_ref()
                .or(target.release_notes.as_ref())
            {
                out.push_str(&format!("  release notes: {notes}\n"));
            }
            match &target.bundle {
                Some(b) => out.push_str(&format!(
                    "  bundle: {} ({} bytes, sha256 {})\n",
                    ferry_fetch::resolve(&ctx.url, &b.url),
                    b.size,
                    b.sha256
                )),
                None => out.push_str(
                    "  the index gives no bundle for it: it cannot be upgraded to by ferry\n",
                ),
            }
            if !target.supported {
                out.push_str("  note: the index marks it unsupported\n");
            }
            out
        }
        Offer::UpToDate { current } => format!(
            "Up to date: no supported release later than {} in {}.\n",
            current_text(*current, &ctx.os),
            ctx.url
        ),
        Offer::Broken { target, reason, .. } => format!(
            "{} is listed, but its publisher has stopped upgrades to it: {reason}\n",
            describe(target)
        ),
    }
}

fn bundle_failure(error: BundleError, dir: &Path) -> Failure {
    let what = format!("the release bundle is refused: {error}");
    let failure = Failure::bad_input(what);
    match &error {
        BundleError::Sources {
            file, line, column, ..
        } => failure.at(&dir.join(file), Some(*line), Some(*column)),
        BundleError::Demoted { line, .. } => failure.at(&dir.join("demoted.cfg"), Some(*line), None),
        BundleError::Profile(e) => failure.at(&e.path, Some(e.line), Some(e.column)),
        BundleError::Signature(_) => failure
            .hint("only bundles signed by a valid key of the configured keyring are used; nothing was changed"),
        BundleError::Checksum { .. } | BundleError::Size { .. } => failure
            .hint("the download does not match the index; it was deleted and nothing was changed"),
        _ => failure.hint("nothing was changed"),
    }
}

/// The offered release, or the rendered reason there is none.
fn offered<'a>(
    ctx: &'a Context,
    to: Option<&str>,
    global: &Global,
) -> Result<Option<&'a ReleaseEntry>, Failure> {
    match decide(ctx, to)? {
        Offer::Upgrade { target, .. } => Ok(Some(target)),
        other => {
            if global.json {
                render::json(&offer_json(ctx, &other));
            } else {
                print!("{}", offer_text(ctx, &other));
            }
            Ok(None)
        }
    }
}

fn fetch_bundle(
    args: &ReleaseArgs,
    dir: Option<&Path>,
    global: &Global,
    root: &SystemRoot,
) -> Result<Exit, Failure> {
    let ctx = context(args, root)?;
    let Some(target) = offered(&ctx, args.to.as_deref(), global)? else {
        return Ok(Exit::Failed);
    };
    let obtained = obtain(&ctx, target, dir, global)?;
    show_bundle(&obtained.0, target, dir.is_some(), global);
    Ok(Exit::Ok)
}

/// Downloads (resuming a partial file in the work directory), checks and
/// unpacks the target's bundle. The work directory is `dir`, or a
/// temporary one kept alive by the returned guard.
fn obtain(
    ctx: &Context,
    target: &ReleaseEntry,
    dir: Option<&Path>,
    global: &Global,
) -> Result<(ferry_release::Obtained, Option<tempfile::TempDir>), Failure> {
    let reference = target.bundle.as_ref().ok_or_else(|| {
        Failure::bad_input(format!("the index gives no Bundle for {}", target.dist))
            .at(Path::new(&ctx.url), Some(target.line), None)
            .expected("Bundle, Bundle-Size, Bundle-SHA256 (and Bundle-Signature) fields")
    })?;
    let keyring = ctx.config.keyring.clone().ok_or_else(|| {
        Failure::bad_input("no keyring is configured to verify the bundle").hint(format!(
            "set `keyring = \"/path\"` in {} under --root, or pass --keyring PATH",
            Path::new("/").join(CONFIG_PATH).display()
        ))
    })?;
    let (work, temporary) = match dir {
        Some(dir) => (dir.to_path_buf(), None),
        None => {
            let temporary = tempfile::Builder::new()
                .prefix("ferry-release-")
                .tempdir()
                .map_err(|e| Failure::failed(format!("cannot make a work directory: {e}")))?;
            (temporary.path().to_path_buf(), Some(temporary))
        }
    };
    let quiet = global.json;
    let mut last = 0u64;
    let mut progress = |done: u64, total: Option<u64>| {
        if quiet || (done != total.unwrap_or(u64::MAX) && done < last + (256 << 10)) {
            return;
        }
        last = done;
        let total = total.map_or_else(|| "?".to_string(), |t| t.to_string());
        eprint!("\rdownloading bundle: {done}/{total} bytes");
        let _ = std::io::stderr().flush();
    };
    let obtained =
        ferry_release::obtain_bundle(reference, &ctx.url, &keyring, &work, &mut progress);
    if !quiet {
        eprintln!();
    }
    let obtained = obtained.map_err(|e| bundle_failure(e, &work.join("bundle")))?;
    Ok((obtained, temporary))
}

fn show_bundle(
    obtained: &ferry_release::Obtained,
    target: &ReleaseEntry,
    kept: bool,
    global: &Global,
) {
    if global.json {
        render::json(&serde_json::json!({
            "target": entry_json(target),
            "signed_by": obtained.verified,
            "sources": obtained.bundle.sources,
            "demoted": obtained.bundle.demoted,
            "profile": obtained.bundle.profile.as_ref().map(|p| p.name.clone()),
            "dir": kept.then(|| obtained.bundle.dir.clone()),
        }));
    } else {
        println!(
            "Bundle for {} verified ({} signature by {}).",
            describe(target),
            obtained.verified.tool,
            obtained.verified.signers.join(", ")
        );
        for sources in &obtained.bundle.sources {
            println!(
                "  sources: {} -> /{}",
                sources.name,
                sources.install_to.display()
            );
        }
        let demoted: Vec<&str> = obtained.bundle.demoted.iter().map(|p| p.as_str()).collect();
        println!(
            "  demoted: {}",
            if demoted.is_empty() {
                "none".to_string()
            } else {
                demoted.join(" ")
            }
        );
        if let Some(profile) = &obtained.bundle.profile {
            println!("  profile: {}", profile.name);
        }
        if kept {
            println!("  unpacked in {}", obtained.bundle.dir.display());
        }
    }
}

/// Where an upgrade keeps its download, under the root, so a second
/// attempt resumes a partial bundle instead of starting over.
fn upgrade_work_dir(root: &SystemRoot, target: &ReleaseEntry) -> std::path::PathBuf {
    let name: String = target
        .dist
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    root.host_path("var/cache/ferry/release").join(name)
}

fn upgrade(args: &UpgradeArgs, global: &Global, root: &SystemRoot) -> Result<Exit, Failure> {
    if args.dry_run {
        migrate::readable_for_plan(root, "ferry release upgrade --dry-run")?;
    }
    let ctx = context(&args.release, root)?;
    let Some(target) = offered(&ctx, args.release.to.as_deref(), global)? else {
        return Ok(Exit::Failed);
    };
    // A dry run writes nothing under the root, not even the download.
    let work = (!args.dry_run).then(|| upgrade_work_dir(root, target));
    if let Some(work) = &work {
        std::fs::create_dir_all(work)
            .map_err(|e| Failure::failed(format!("{}: {e}", work.display())))?;
    }
    let (obtained, _temporary) = obtain(&ctx, target, work.as_deref(), global)?;
    let migration = ferry_release::to_migration(&obtained.bundle, target);
    let profile = migration.profile;
    if args.dry_run {
        let sandbox = tempfile::Builder::new()
            .prefix("ferry-plan-")
            .tempdir()
            .map_err(|e| Failure::failed(format!("cannot create a temporary directory: {e}")))?;
        let plan = ferry_apt::plan::compute(root.path(), &profile, sandbox.path())
            .map_err(|e| Failure::failed(e.to_string()))?;
        if global.json {
            render::json(&serde_json::json!({
                "target": entry_json(target),
                "signed_by": obtained.verified,
                "blocked": plan.blocked(),
                "plan": plan,
            }));
        } else {
            println!(
                "Upgrade to {}: bundle verified ({} signature by {}).\n",
                describe(target),
                obtained.verified.tool,
                obtained.verified.signers.join(", ")
            );
            print!("{}", migrate::render_plan(&plan));
        }
        return Ok(if plan.blocked() {
            Exit::Blocked
        } else {
            Exit::Ok
        });
    }
    migrate::confirm(args.yes, &profile)?;
    migrate::warn_if_remote(global);
    migrate::detach_from_terminal_hangup();
    let options = ferry_apt::run::RunOptions {
        no_rollback: args.no_rollback,
        observer: migrate::test_observer(),
    };
    let mut progress = migrate::Lines { json: global.json };
    let outcome = ferry_apt::run::run(root.path(), &profile, &options, &mut progress)
        .map_err(migrate::run_failure)?;
    migrate::finish(outcome, global, args.no_rollback)
}

fn build(dir: &Path, output: &Path, sign: SignWith, global: &Global) -> Result<Exit, Failure> {
    let built =
        ferry_release::build_bundle(dir, output, &sign).map_err(|e| bundle_failure(e, dir))?;
    let name = |p: &Path| {
        p.file_name().map_or_else(
            || p.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        )
    };
    if global.json {
        render::json(&built);
    } else {
        println!("Bundle: {}", name(&built.archive));
        println!("Bundle-Size: {}", built.size);
        println!("Bundle-SHA256: {}", built.sha256);
        println!("Bundle-Signature: {}", name(&built.signature));
    }
    Ok(Exit::Ok)
}
