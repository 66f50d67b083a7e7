//! How every lab container and hook runs: as PodSecurity "restricted" would
//! have it. A pod under that profile runs as a non-root user with every
//! capability dropped, `allowPrivilegeEscalation: false` (the kernel's
//! `no_new_privs`), the runtime's default seccomp profile, and — as most
//! hardened images ask — a read-only root filesystem.
//!
//! The container runtime does the last steps of a container's start as root
//! and then drops everything; the lab does the same with a step of its own,
//! this test binary re-run as [`enter`] (`GW_ROLE=restricted`): it is started
//! in the container's namespaces as root, turns into the container (chroot
//! into the container's root, give it its stdio pipes as runc does, drop
//! every capability, switch user, set `no_new_privs`, load the seccomp
//! filter) and executes the container's command. The seccomp filter is built by `runtime_default_seccomp.py` with
//! libseccomp (Debian: python3-seccomp) from the facts of the runtime's
//! default profile. The read-only root is made by the container's start
//! script (`read_only_root`).
//!
//! [`probe`] (`GW_ROLE=probe`) reports from inside what a process there may
//! do, so that a test can show the restrictions are really in force.

use std::{
    ffi::OsString,
    fs,
    io::Write,
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
};

/// The Python that has libseccomp's bindings: Debian's, which a pyenv or
/// venv `python3` earlier on PATH may hide.
const PYTHONS: [&str; 2] = ["/usr/bin/python3", "python3"];

/// The seccomp filter as a BPF program, written once per test process.
/// Err says why it cannot be built here.
pub fn filter() -> Result<&'static Path, String> {
    static FILTER: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    FILTER
        .get_or_init(|| build_filter(&[]))
        .as_ref()
        .map(PathBuf::as_path)
        .map_err(Clone::clone)
}

/// The filter of an older runtime's profile, which lacked `denied`.
pub fn filter_without(denied: &[&str]) -> PathBuf {
    build_filter(denied).unwrap()
}

fn build_filter(denied: &[&str]) -> Result<PathBuf, String> {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lab/runtime_default_seccomp.py");
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let out = std::env::temp_dir().join(format!("gw-lab-seccomp-{}-{n}.bpf", std::process::id()));
    let mut why = String::from("no python3");
    for python in PYTHONS {
        let mut cmd = Command::new(python);
        cmd.arg(&script).arg(&out);
        if !denied.is_empty() {
            cmd.args(["--deny", &denied.join(",")]);
        }
        match cmd.output() {
            Ok(o) if o.status.success() => return Ok(out),
            Ok(o) => why = String::from_utf8_lossy(&o.stderr).trim().to_string(),
            Err(e) => why = format!("{python}: {e}"),
        }
    }
    Err(format!(
        "cannot build the lab's seccomp filter (tests/run installs python3-seccomp as root): {}",
        why.lines().last().unwrap_or_default()
    ))
}

/// The lines of a container's start script, run as root in its mount
/// namespace after its volumes are mounted, that make its root read-only:
/// a recursive bind of the root onto itself, whose top mount (the root, not
/// the volumes in it) is then made read-only.
pub fn read_only_root(root: &Path) -> String {
    let r = root.display();
    format!("mount --rbind {r} {r}; mount -o remount,bind,ro {r}")
}

/// What runs a container's process under the profile: a command (this test
/// binary) to be started as root inside the container's namespaces, which
/// then becomes `uid:gid` in `root` and executes `argv`. `role` is the
/// `GW_ROLE` the executed program sees (the lab's roles), if any.
pub struct Restricted<'a> {
    pub root: &'a Path,
    pub user: (u32, u32),
    pub argv: &'a [String],
    pub role: Option<&'a str>,
    /// The seccomp filter (BPF): [`filter`]'s, or an older profile's.
    pub seccomp: &'a Path,
}

impl Restricted<'_> {
    /// The helper's command line, to follow `nsenter ... --` or `exec`.
    pub fn argv(&self) -> Vec<OsString> {
        let mut argv = vec![std::env::current_exe().unwrap().into_os_string()];
        argv.extend(crate::support::HELPER_ARGS.map(OsString::from));
        argv
    }

    /// The environment that tells the helper what to become.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("GW_ROLE", "restricted".to_string()),
            ("GW_RESTRICT_ROOT", self.root.display().to_string()),
            (
                "GW_RESTRICT_USER",
                format!("{}:{}", self.user.0, self.user.1),
            ),
            (
                "GW_RESTRICT_ARGV",
                serde_json::to_string(self.argv).unwrap(),
            ),
            ("GW_RESTRICT_SECCOMP", self.seccomp.display().to_string()),
        ];
        if let Some(role) = self.role {
            env.push(("GW_RESTRICT_ROLE", role.to_string()));
        }
        env
    }
}

/// `GW_ROLE=restricted`: become the container, then execute its command.
/// Any failure here is the lab's own, so it panics with what failed.
pub fn enter() -> ! {
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"));
    let root = var("GW_RESTRICT_ROOT");
    let (uid, gid) = var("GW_RESTRICT_USER")
        .split_once(':')
        .map(|(u, g)| (u.parse::<u32>().unwrap(), g.parse::<u32>().unwrap()))
        .unwrap();
    let argv: Vec<String> = serde_json::from_str(&var("GW_RESTRICT_ARGV")).unwrap();
    // Read before the chroot: the filter lives on the host.
    let program = seccomp_program(&fs::read(var("GW_RESTRICT_SECCOMP")).unwrap());

    nix::unistd::chroot(root.as_str()).expect("chroot into the container's root");
    std::env::set_current_dir("/").unwrap();
    // Capabilities are per thread and survive execve from this thread only
    // as the bounding, inheritable and ambient sets allow: empty all three.
    // Dropping the bounding set needs CAP_SETPCAP, so before the user switch.
    for set in [
        caps::CapSet::Ambient,
        caps::CapSet::Inheritable,
        caps::CapSet::Bounding,
    ] {
        caps::clear(None, set).unwrap_or_else(|e| panic!("clearing {set:?}: {e}"));
    }
    own_stdio(uid);
    let (u, g) = (
        nix::unistd::Uid::from_raw(uid),
        nix::unistd::Gid::from_raw(gid),
    );
    nix::unistd::setgroups(&[g]).unwrap();
    nix::unistd::setresgid(g, g, g).unwrap();
    // From root to a non-root uid the kernel clears the permitted and
    // effective sets: nothing is left.
    nix::unistd::setresuid(u, u, u).unwrap();
    nix::sys::prctl::set_no_new_privs().unwrap();
    load_seccomp(&program);

    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]);
    for name in [
        "GW_RESTRICT_ROOT",
        "GW_RESTRICT_USER",
        "GW_RESTRICT_ARGV",
        "GW_RESTRICT_SECCOMP",
        "GW_RESTRICT_ROLE",
    ] {
        cmd.env_remove(name);
    }
    match std::env::var("GW_RESTRICT_ROLE") {
        Ok(role) => cmd.env("GW_ROLE", role),
        Err(_) => cmd.env_remove("GW_ROLE"),
    };
    let err = cmd.exec();
    // As a container runtime reports it; the hook's status then says 127.
    eprintln!("restricted: cannot execute {}: {err}", argv[0]);
    std::process::exit(127)
}

/// What runc does for a container's stdio before it switches user
/// (`fixStdioPermissions`): the pipes were made outside, by root, so they are
/// given to the container's uid — or its processes could not reopen them
/// through /proc/1/fd/1, as `--log-copy` does. /dev/null is left alone.
fn own_stdio(uid: u32) {
    let null = nix::sys::stat::stat("/dev/null").map(|s| s.st_rdev).ok();
    for fd in 0..=2 {
        // SAFETY: fstat/fchown on this process's own stdio descriptors.
        unsafe {
            let mut st: libc::stat = std::mem::zeroed();
            if libc::fstat(fd, &mut st) != 0 || Some(st.st_rdev) == null || st.st_uid == uid {
                continue;
            }
            // The uid only, as runc: the gid may be the mount's choice.
            libc::fchown(fd, uid, u32::MAX);
        }
    }
}

/// libseccomp's exported program: an array of `struct sock_filter`.
fn seccomp_program(bytes: &[u8]) -> Vec<libc::sock_filter> {
    assert!(
        bytes.len() % 8 == 0 && !bytes.is_empty(),
        "not a BPF program"
    );
    bytes
        .chunks_exact(8)
        .map(|c| libc::sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect()
}

fn load_seccomp(program: &[libc::sock_filter]) {
    let prog = libc::sock_fprog {
        len: program.len().try_into().unwrap(),
        filter: program.as_ptr().cast_mut(),
    };
    // SAFETY: prog points at a valid program that outlives the call; with
    // no_new_privs set, an unprivileged thread may install a filter.
    let rc = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &prog as *const libc::sock_fprog,
        )
    };
    assert_eq!(
        rc,
        0,
        "loading the seccomp filter: {}",
        std::io::Error::last_os_error()
    );
}

/// `GW_ROLE=probe`: prints `GW_PROBE name=value` lines: the process's
/// security state from /proc/self/status and what a few calls that the
/// profile forbids (and some our binary needs) return.
pub fn probe() {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let mut out = Vec::new();
    for key in [
        "Uid",
        "CapInh",
        "CapPrm",
        "CapEff",
        "CapBnd",
        "CapAmb",
        "NoNewPrivs",
        "Seccomp",
    ] {
        let value = status
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}:")))
            .map(|v| v.split_whitespace().next().unwrap_or_default().to_string())
            .unwrap_or_else(|| "missing".into());
        out.push(format!("{key}={value}"));
    }
    let errno = |rc: libc::c_long| {
        if rc >= 0 {
            "ok".to_string()
        } else {
            std::io::Error::last_os_error()
                .raw_os_error()
                .map_or("?".into(), |e| e.to_string())
        }
    };
    // SAFETY: each call either fails or creates something this short-lived
    // process owns; none takes a pointer it could misuse (clone3 gets a
    // null argument, which it refuses before looking at it).
    unsafe {
        out.push(format!(
            "unshare={}",
            errno(libc::unshare(libc::CLONE_NEWNS).into())
        ));
        out.push(format!(
            "clone3={}",
            errno(libc::syscall(
                libc::SYS_clone3,
                std::ptr::null::<u8>(),
                0usize
            ))
        ));
        out.push(format!(
            "chroot={}",
            errno(libc::chroot(c"/".as_ptr()).into())
        ));
        out.push(format!(
            "vsock={}",
            errno(libc::socket(libc::AF_VSOCK, libc::SOCK_STREAM, 0).into())
        ));
        out.push(format!(
            "sock_diag={}",
            errno(libc::socket(libc::AF_NETLINK, libc::SOCK_DGRAM, libc::NETLINK_SOCK_DIAG).into())
        ));
        out.push(format!(
            "pidfd_open={}",
            errno(libc::syscall(libc::SYS_pidfd_open, libc::getpid(), 0))
        ));
        out.push(format!("inotify={}", errno(libc::inotify_init1(0).into())));
    }
    let write = fs::write("/probe", b"x").map_or_else(
        |e| e.raw_os_error().map_or("?".into(), |e| e.to_string()),
        |()| "ok".into(),
    );
    out.push(format!("write_root={write}"));
    let mut stdout = std::io::stdout().lock();
    for line in out {
        let _ = writeln!(stdout, "GW_PROBE {line}");
    }
    let _ = stdout.flush();
    std::process::exit(0);
}
