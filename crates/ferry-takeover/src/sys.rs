//! The few system calls a takeover needs that std does not offer (mount,
//! pivot_root, reboot, swapoff, signals, a partition-table re-read), each a
//! thin wrapper returning `io::Result`, so the steps above read as steps.
//!
//! Stage 2 runs after the old root is gone: it cannot call `mount(8)` or
//! `swapoff(8)`, so these are system calls, not commands.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a path with a NUL byte"))
}

fn c_text(text: &str) -> io::Result<CString> {
    CString::new(text)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a string with a NUL byte"))
}

fn check(result: libc::c_int) -> io::Result<()> {
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// mount(2). `source`, `fstype` and `data` may be empty.
pub fn mount(
    source: &str,
    target: &Path,
    fstype: &str,
    flags: libc::c_ulong,
    data: &str,
) -> io::Result<()> {
    let source = c_text(source)?;
    let target = c_path(target)?;
    let fstype = c_text(fstype)?;
    let data = c_text(data)?;
    let ptr = |s: &CString| {
        if s.as_bytes().is_empty() {
            std::ptr::null()
        } else {
            s.as_ptr()
        }
    };
    // SAFETY: every pointer is a valid NUL-terminated string or null, as mount(2) accepts.
    check(unsafe {
        libc::mount(
            ptr(&source),
            target.as_ptr(),
            ptr(&fstype),
            flags,
            ptr(&data).cast(),
        )
    })
}

/// umount2(2).
pub fn umount(target: &Path, flags: libc::c_int) -> io::Result<()> {
    let target = c_path(target)?;
    // SAFETY: a valid NUL-terminated path.
    check(unsafe { libc::umount2(target.as_ptr(), flags) })
}

/// pivot_root(2): `new_root` becomes `/`, the old root moves to `put_old`.
pub fn pivot_root(new_root: &Path, put_old: &Path) -> io::Result<()> {
    let new_root = c_path(new_root)?;
    let put_old = c_path(put_old)?;
    // SAFETY: glibc has no wrapper; two valid NUL-terminated paths.
    let result =
        unsafe { libc::syscall(libc::SYS_pivot_root, new_root.as_ptr(), put_old.as_ptr()) };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// chroot(2).
pub fn chroot(path: &Path) -> io::Result<()> {
    let path = c_path(path)?;
    // SAFETY: a valid NUL-terminated path.
    check(unsafe { libc::chroot(path.as_ptr()) })
}

/// swapoff(2).
pub fn swapoff(path: &Path) -> io::Result<()> {
    let path = c_path(path)?;
    // SAFETY: a valid NUL-terminated path.
    check(unsafe { libc::swapoff(path.as_ptr()) })
}

/// sync(2).
pub fn sync() {
    // SAFETY: no arguments, cannot fail.
    unsafe { libc::sync() }
}

/// Restarts the machine at once (the caller synced what it needed).
pub fn reboot() -> io::Error {
    // SAFETY: reboot(2) with a valid command; returns only on failure.
    unsafe { libc::reboot(libc::RB_AUTOBOOT) };
    io::Error::last_os_error()
}

/// kill(2).
pub fn kill(pid: i32, signal: libc::c_int) -> io::Result<()> {
    // SAFETY: plain integers.
    check(unsafe { libc::kill(pid, signal) })
}

/// Reaps one child, blocking; None when there are no children left.
pub fn wait_any() -> Option<(i32, i32)> {
    let mut status = 0;
    // SAFETY: a valid pointer to an int.
    let pid = unsafe { libc::waitpid(-1, &mut status, 0) };
    (pid > 0).then_some((pid, status))
}

/// The kernel's process id of this process.
pub fn getpid() -> i32 {
    // SAFETY: cannot fail.
    unsafe { libc::getpid() }
}

/// The effective user id.
pub fn geteuid() -> u32 {
    // SAFETY: cannot fail.
    unsafe { libc::geteuid() }
}

/// Asks the kernel to re-read the partition table of the disk open as `fd`
/// (BLKRRPART), so the new partitions get their device nodes.
pub fn reread_partitions(fd: libc::c_int) -> io::Result<()> {
    const BLKRRPART: libc::c_ulong = 0x125f;
    // SAFETY: BLKRRPART takes no argument; fd is an open block device.
    check(unsafe { libc::ioctl(fd, BLKRRPART) })
}

/// execve(2) of `program` with `args` (argv[0] included) and `env`;
/// returns only on failure.
pub fn exec(program: &Path, args: &[&str], env: &[String]) -> io::Error {
    let Ok(program) = c_path(program) else {
        return io::Error::new(io::ErrorKind::InvalidInput, "a path with a NUL byte");
    };
    let Ok(args) = args
        .iter()
        .map(|a| c_text(a))
        .collect::<io::Result<Vec<_>>>()
    else {
        return io::Error::new(io::ErrorKind::InvalidInput, "an argument with a NUL byte");
    };
    let Ok(env) = env
        .iter()
        .map(|a| c_text(a))
        .collect::<io::Result<Vec<_>>>()
    else {
        return io::Error::new(
            io::ErrorKind::InvalidInput,
            "an environment with a NUL byte",
        );
    };
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = env.iter().map(|a| a.as_ptr()).collect();
    envp.push(std::ptr::null());
    // SAFETY: NUL-terminated strings in NULL-terminated arrays that outlive the call.
    unsafe { libc::execve(program.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    io::Error::last_os_error()
}
