//! The pod lab: what a pod is made of, without Kubernetes.
//!
//! - The pod is a network namespace (`ip netns add`, loopback up). A second
//!   namespace, joined by a veth pair (10.99.0.1 in the pod, 10.99.0.2 outside),
//!   holds the external service, so a callback really leaves the pod.
//! - A container is a process in its own mount and PID namespace, chrooted into
//!   a root that holds only what its image would: the app's root holds one
//!   static executable; the proxy's root holds nginx (the host's /usr, bound
//!   read-only) and the binary's volume at /graceful-wait, filled by
//!   `graceful-wait install` run as the init container would run it and
//!   read-only everywhere else; the done marker's volume is at
//!   /graceful-wait-done, writable in the app, read-only in the proxy.
//! - Every container and hook runs as PodSecurity "restricted" would have it
//!   (see restricted.rs): a non-root user, no capabilities, `no_new_privs`,
//!   the runtime's default seccomp profile and a read-only root; only the
//!   volumes (and the proxy's /tmp, an emptyDir) are writable.
//! - The kubelet's termination order is `support::kubelet`'s, the one the
//!   podman tests use too: every container's preStop starts at once (run
//!   inside that container's namespaces with nsenter), each container gets
//!   SIGTERM when its own hook ends and SIGKILL when what is left of the
//!   grace period (at least 2 s) has passed; native sidecars are stopped only
//!   after every main container has exited.
//!
//! The proxy is Debian's nginx standing in for Envoy: on SIGTERM it closes its
//! listeners and exits within milliseconds, so new and in-flight requests fail —
//! what Envoy does under pilot-agent once the proxy's own SIGTERM arrives.
//! Everything the lab creates is removed on drop, also when a test fails.

mod restricted;

use crate::support::kubelet::{self, Stopped};
pub use crate::support::kubelet::{terminate, Member, Timeline};
use crate::support::{container_in, Netns, HANG_GUARD};
pub use restricted::filter_without;
use restricted::{filter, read_only_root, Restricted};
use std::{
    fs,
    io::{BufRead, BufReader, Read},
    os::unix::fs::{symlink, PermissionsExt},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{
        mpsc::{channel, Receiver, RecvTimeoutError},
        Arc, Condvar, Mutex,
    },
    thread,
    time::{Duration, Instant, SystemTime},
};

pub use crate::support::roles::PROXY_PORT;
const EXTERNAL: &str = "10.99.0.2:8080";
/// The user nginx runs as, and its hook with it (the kubelet runs an exec
/// hook as its container's user): Istio's proxy uid.
const PROXY_USER: (u32, u32) = (1337, 1337);
/// The app's user.
const APP_USER: (u32, u32) = (1000, 1000);
/// The init container's user: distroless's `nonroot`.
const INIT_USER: (u32, u32) = (65532, 65532);

/// What each test needs beyond root: nginx, nsenter, and the seccomp filter
/// (python3-seccomp).
pub fn lab_or_skip(test: &str) -> bool {
    if !crate::support::root_or_skip(test) {
        return false;
    }
    if let Err(why) = restricted::filter() {
        crate::support::skipped(test, &why);
        return false;
    }
    for tool in ["nginx", "nsenter"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            crate::support::skipped(
                test,
                &format!("`{tool}` is not installed (tests/run installs nginx-light and util-linux as root)"),
            );
            return false;
        }
    }
    true
}

/// The roles this test binary plays when re-run inside the lab (`GW_ROLE`).
pub fn role_main() {
    match std::env::var("GW_ROLE").as_deref() {
        Ok("restricted") => restricted::enter(),
        Ok("probe") => restricted::probe(),
        _ => crate::support::roles::main(),
    }
}

// ---------------------------------------------------------------- the lab

/// Lines a process prints, on a channel.
fn lines_of(child: &mut Child) -> Receiver<String> {
    let out = child.stdout.take().unwrap();
    let (tx, rx) = channel();
    thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn expect(lines: &Receiver<String>, prefix: &str, what: &str) -> String {
    let until = Instant::now() + HANG_GUARD;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(l) if l.contains(prefix) => return l,
            Ok(_) => {}
            Err(e) => panic!("{what} never printed {prefix:?}: {e}"),
        }
    }
}

fn sh(script: &str) {
    let status = Command::new("sh").args(["-ec", script]).status().unwrap();
    assert!(status.success(), "lab setup failed: {script}");
}

/// The pod, the outside world, and the shared volume.
pub struct Lab {
    pub pod: Netns,
    _ext: Netns,
    work: tempfile::TempDir,
    external: Child,
    callbacks: Receiver<String>,
    /// The binary's emptyDir, filled by `graceful-wait install`; read-only
    /// in every other container.
    pub shared: PathBuf,
    /// The done marker's emptyDir: written by the wrapped app, read by the
    /// proxy's file wait.
    pub marker: PathBuf,
    /// With shareProcessNamespace: the pod's `pause` process, PID 1 of the
    /// PID namespace every container joins.
    pause: Option<(Child, i32)>,
}

impl Lab {
    pub fn new(tag: &str) -> Lab {
        let pod = Netns::new(&format!("{tag}p"));
        let ext = Netns::new(&format!("{tag}x"));
        // veth names (15 characters at most) must be unique on the host while
        // they are created, before each end moves into its namespace.
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let id = format!(
            "{:x}x{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let (a, b) = (format!("gwa{id}"), format!("gwb{id}"));
        sh(&format!(
            "ip link add {a} type veth peer name {b}
             ip link set {a} netns {p}; ip link set {b} netns {x}
             ip -n {p} addr add 10.99.0.1/24 dev {a}; ip -n {p} link set {a} up
             ip -n {x} addr add 10.99.0.2/24 dev {b}; ip -n {x} link set {b} up",
            p = pod.0,
            x = ext.0
        ));
        let mut external = Command::new("ip")
            .args(["netns", "exec", &ext.0])
            .arg(std::env::current_exe().unwrap())
            .args(crate::support::HELPER_ARGS)
            .env("GW_ROLE", "external")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let callbacks = lines_of(&mut external);
        expect(&callbacks, "GW_EXT ready", "the external service");
        let work = tempfile::Builder::new()
            .prefix("gw-lab-")
            .tempdir()
            .unwrap();
        fs::set_permissions(work.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let shared = work.path().join("shared");
        fs::create_dir(&shared).unwrap();
        // An emptyDir is world-writable.
        fs::set_permissions(&shared, fs::Permissions::from_mode(0o777)).unwrap();
        let marker = work.path().join("marker");
        fs::create_dir(&marker).unwrap();
        fs::set_permissions(&marker, fs::Permissions::from_mode(0o777)).unwrap();
        Lab {
            pod,
            _ext: ext,
            work,
            external,
            callbacks,
            shared,
            marker,
            pause: None,
        }
    }

    /// A pod with `shareProcessNamespace: true`: a `pause` process is PID 1 of
    /// one PID namespace that every container then joins.
    pub fn new_shared(tag: &str) -> Lab {
        let mut lab = Lab::new(tag);
        let pause = lab.work.path().join("pause");
        fs::copy("/bin/sleep", &pause).unwrap();
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &lab.pod.0,
                "unshare",
                "-p",
                "-f",
                "--kill-child",
                "--mount-proc",
            ])
            .arg(&pause)
            .arg("infinity")
            .spawn()
            .unwrap();
        let pid = first_child(child.id() as i32, "pause");
        lab.pause = Some((child, pid));
        lab
    }

    /// The command that starts a container rooted at `root`: its own mount
    /// namespace and /proc, and its own PID namespace — or the pod's shared one.
    fn container(&self, root: &Path) -> Command {
        let proc = format!("--mount-proc={}/proc", root.display());
        let mut cmd = match &self.pause {
            None => {
                let mut c = Command::new("ip");
                c.args([
                    "netns",
                    "exec",
                    &self.pod.0,
                    "unshare",
                    "-m",
                    "-p",
                    "-f",
                    "--kill-child",
                    &proc,
                ]);
                c
            }
            Some((_, pid)) => {
                let mut c = Command::new("nsenter");
                c.args([
                    "-t",
                    &pid.to_string(),
                    "-p",
                    "-n",
                    "--",
                    "unshare",
                    "-m",
                    &proc,
                ]);
                c
            }
        };
        cmd.stdin(Stdio::null());
        cmd
    }

    /// The init container: `graceful-wait install /install` from a root that
    /// holds only the image (the binary at /graceful-wait), as uid 65532,
    /// with the shared volume mounted at /install — what the injector writes.
    pub fn run_init_container(&self, args: &[String]) {
        let root = self.work.path().join("init-root");
        fs::create_dir_all(root.join("proc")).unwrap();
        fs::create_dir_all(root.join("install")).unwrap();
        fs::copy(crate::support::bin(), root.join("graceful-wait")).unwrap();
        let r = root.display();
        let script = format!(
            "mount --bind {shared} {r}/install\n{ro}\nexec \"$@\"",
            shared = self.shared.display(),
            ro = read_only_root(&root)
        );
        let argv: Vec<String> = std::iter::once("/graceful-wait".to_string())
            .chain(args.iter().cloned())
            .collect();
        let init = Restricted {
            root: &root,
            user: INIT_USER,
            argv: &argv,
            role: None,
            seccomp: filter().unwrap(),
        };
        let status = Command::new("unshare")
            .args([
                "-m",
                "-p",
                "-f",
                "--kill-child",
                &format!("--mount-proc={r}/proc"),
            ])
            .args(["sh", "-ec", &script, "sh"])
            .args(init.argv())
            .envs(init.env())
            .stdin(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "the init container failed: {status}");
        let installed = self.shared.join("graceful-wait");
        let mode = fs::metadata(&installed)
            .expect("install left no binary")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o555, "installed with mode {mode:o}");
    }

    /// The proxy container: nginx forwarding 127.0.0.1:15001 to the external
    /// service, run as an unprivileged user with its own temp dirs.
    pub fn start_proxy(&self) -> Container {
        let root = self.work.path().join("proxy-root");
        for d in [
            "proc",
            "usr",
            "tmp",
            "etc",
            "graceful-wait",
            "graceful-wait-done",
            "dev",
        ] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        // The root is read-only; nginx writes its pid file and temp files to
        // /tmp, an emptyDir (as an Envoy container under readOnlyRootFilesystem
        // needs one too).
        let tmp = self.work.path().join("proxy-tmp");
        fs::create_dir_all(&tmp).unwrap();
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o1777)).unwrap();
        for (link, to) in [
            ("lib", "usr/lib"),
            ("lib64", "usr/lib64"),
            ("bin", "usr/bin"),
            ("sbin", "usr/sbin"),
        ] {
            symlink(to, root.join(link)).unwrap();
        }
        fs::write(
            root.join("etc/nginx.conf"),
            format!(
                "daemon off;\nmaster_process on;\nworker_processes 1;\npid /tmp/nginx.pid;\nerror_log /tmp/error.log;\n\
                 events {{ worker_connections 64; }}\n\
                 http {{\n  access_log off;\n  client_body_temp_path /tmp/body;\n  proxy_temp_path /tmp/proxy;\n  fastcgi_temp_path /tmp/fastcgi;\n  uwsgi_temp_path /tmp/uwsgi;\n  scgi_temp_path /tmp/scgi;\n\
                 \x20 server {{ listen 127.0.0.1:{PROXY_PORT}; location / {{ proxy_pass http://{EXTERNAL}; }} }}\n}}\n"
            ),
        )
        .unwrap();
        let r = root.display();
        let script = format!(
            "mount --bind /usr {r}/usr; mount -o remount,bind,ro {r}/usr
             mount --bind {tmp} {r}/tmp
             mount --bind {shared} {r}/graceful-wait; mount -o remount,bind,ro {r}/graceful-wait
             mount --bind {marker} {r}/graceful-wait-done; mount -o remount,bind,ro {r}/graceful-wait-done
             {ro}
             exec \"$@\"",
            tmp = tmp.display(),
            shared = self.shared.display(),
            marker = self.marker.display(),
            ro = read_only_root(&root)
        );
        let argv = [
            "/usr/sbin/nginx",
            "-p",
            "/tmp",
            "-e",
            "/tmp/error.log",
            "-c",
            "/etc/nginx.conf",
        ]
        .map(String::from);
        let nginx = Restricted {
            root: &root,
            user: PROXY_USER,
            argv: &argv,
            role: None,
            seccomp: filter().unwrap(),
        };
        // Its stdout is the container's log (`kubectl logs istio-proxy`):
        // the hooks copy their lines there.
        let mut child = self
            .container(&root)
            .args(["sh", "-ec", &script, "sh"])
            .args(nginx.argv())
            .envs(nginx.env())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let log = lines_of(&mut child);
        // nginx writes its pid file once its listener is open. There is no
        // event to wait on, so look for the file, bounded by the hang guard.
        let pid_file = tmp.join("nginx.pid");
        let until = Instant::now() + HANG_GUARD;
        while !pid_file.exists() {
            assert!(
                Instant::now() < until,
                "nginx did not start: {}",
                fs::read_to_string(tmp.join("error.log")).unwrap_or_default()
            );
            thread::sleep(Duration::from_millis(5));
        }
        let proxy = Container::new("istio-proxy", child, Some(log), root, PROXY_USER);
        proxy.assert_restricted();
        proxy
    }

    /// The app container: a root holding one static executable, the binary's
    /// volume at /graceful-wait (read-only) and the marker's volume at
    /// /graceful-wait-done (writable), as the injector mounts them.
    pub fn start_app(&self, app: &App) -> Container {
        let root = self.work.path().join(format!("app-root-{}", app.port));
        fs::create_dir_all(root.join("proc")).unwrap();
        fs::create_dir_all(root.join("graceful-wait")).unwrap();
        fs::create_dir_all(root.join("graceful-wait-done")).unwrap();
        fs::copy(std::env::current_exe().unwrap(), root.join("app")).unwrap();
        // The container's command: the app, or the app in its wrapper.
        let mut argv: Vec<String> = app.wrapper.clone().unwrap_or_else(|| vec!["/app".into()]);
        argv.extend(crate::support::HELPER_ARGS.map(String::from));
        let r = root.display();
        let script = format!(
            "mount --bind {shared} {r}/graceful-wait; mount -o remount,bind,ro {r}/graceful-wait\n\
             mount --bind {marker} {r}/graceful-wait-done\n\
             {ro}\n\
             exec \"$@\"",
            shared = self.shared.display(),
            marker = self.marker.display(),
            ro = read_only_root(&root)
        );
        let restricted = Restricted {
            root: &root,
            user: APP_USER,
            argv: &argv,
            role: Some("app"),
            seccomp: filter().unwrap(),
        };
        let mut cmd = self.container(&root);
        cmd.args(["sh", "-ec", &script, "sh"])
            .args(restricted.argv())
            .envs(restricted.env())
            .env("GW_APP_PORT", app.port.to_string())
            .env("GW_WORK_MS", app.work.as_millis().to_string())
            .env("POD_NAME", "lab-pod-0")
            .stdout(Stdio::piped());
        if app.stubborn {
            cmd.env("GW_STUBBORN", "1");
        }
        if app.close_first {
            cmd.env("GW_CLOSE_FIRST", "1");
        }
        let mut child = cmd.spawn().unwrap();
        let lines = lines_of(&mut child);
        expect(&lines, "GW_APP ready", "the app");
        let app = Container::new("app", child, Some(lines), root, APP_USER);
        app.assert_restricted();
        app
    }

    /// Callbacks the external service has received so far (for "none
    /// arrived": a line still on its way is missed, which errs toward none).
    pub fn callbacks(&self) -> Vec<String> {
        self.callbacks
            .try_iter()
            .filter_map(|l| callback_of(&l))
            .collect()
    }

    /// Callbacks the external service has received, once there are `n` (or
    /// the hang guard has passed). The service prints a callback's line
    /// before it answers, but the thread that passes its lines on may lag
    /// behind the app's exit: a delivered callback is waited for, not missed.
    pub fn callbacks_expecting(&self, n: usize) -> Vec<String> {
        let until = Instant::now() + HANG_GUARD;
        let mut got = self.callbacks();
        while got.len() < n {
            match self
                .callbacks
                .recv_timeout(until.saturating_duration_since(Instant::now()))
            {
                Ok(line) => got.extend(callback_of(&line)),
                Err(_) => break,
            }
        }
        got.extend(self.callbacks());
        got
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.external.kill();
        let _ = self.external.wait();
        // Killing PID 1 of the shared PID namespace kills all that is left in it.
        if let Some((mut child, pid)) = self.pause.take() {
            // SAFETY: kill(2) on the pause process this lab started.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The body of the external service's `GW_CALLBACK <body>` line.
fn callback_of(line: &str) -> Option<String> {
    line.split_once("GW_CALLBACK ").map(|(_, b)| b.to_string())
}

/// The first child of `pid` (what unshare or nsenter forked).
fn first_child(pid: i32, name: &str) -> i32 {
    let task = procfs::process::Process::new(pid)
        .and_then(|p| p.task_main_thread())
        .unwrap();
    let until = Instant::now() + HANG_GUARD;
    loop {
        if let Some(&child) = task.children().unwrap_or_default().first() {
            return child as i32;
        }
        assert!(Instant::now() < until, "{name}: never forked its process");
        thread::sleep(Duration::from_millis(2));
    }
}

/// How the lab's app behaves.
#[derive(Clone, Debug)]
pub struct App {
    pub port: u16,
    /// Never stops listening.
    pub stubborn: bool,
    /// Stops accepting at once on SIGTERM, then works and calls back.
    pub close_first: bool,
    /// Work after SIGTERM, before the callback.
    pub work: Duration,
    /// The container's command when it is wrapped (ends with "/app").
    pub wrapper: Option<Vec<String>>,
}

impl App {
    pub fn on(port: u16) -> App {
        App {
            port,
            stubborn: false,
            close_first: false,
            work: Duration::from_millis(300),
            wrapper: None,
        }
    }
}

/// When a container exited, and how.
type ExitSlot = Arc<(Mutex<Option<(Instant, ExitStatus)>>, Condvar)>;

pub struct Container {
    pub name: &'static str,
    /// The host pid of the container's PID 1.
    pub pid1: i32,
    /// Its root (host path), and the user its processes and hooks run as.
    root: PathBuf,
    user: (u32, u32),
    /// The seccomp filter its hooks run under: the lab's RuntimeDefault
    /// unless a test sets an older runtime's.
    pub hook_seccomp: PathBuf,
    unshare_pid: i32,
    exit: ExitSlot,
    output: Option<Mutex<Receiver<String>>>,
}

impl Container {
    fn new(
        name: &'static str,
        mut child: Child,
        output: Option<Receiver<String>>,
        root: PathBuf,
        user: (u32, u32),
    ) -> Container {
        let unshare_pid = child.id() as i32;
        // `ip netns exec` execs unshare (or nsenter), which forks the
        // container's first process.
        let pid1 = first_child(unshare_pid, name);
        let exit: ExitSlot = Arc::new((Mutex::new(None), Condvar::new()));
        let slot = exit.clone();
        thread::spawn(move || {
            let status = child.wait().unwrap();
            *slot.0.lock().unwrap() = Some((Instant::now(), status));
            slot.1.notify_all();
        });
        Container {
            name,
            pid1,
            root,
            user,
            hook_seccomp: filter().unwrap().to_path_buf(),
            unshare_pid,
            exit,
            output: output.map(Mutex::new),
        }
    }

    /// The container's PID 1 (its command, once started) runs as the
    /// restricted profile has it: its user, no capability in any set,
    /// no_new_privs, a seccomp filter.
    fn assert_restricted(&self) {
        let status = procfs::process::Process::new(self.pid1)
            .and_then(|p| p.status())
            .unwrap();
        let state = (
            status.euid,
            status.capinh,
            status.capprm,
            status.capeff,
            status.capbnd,
            status.capamb,
            status.nonewprivs,
            status.seccomp,
        );
        assert_eq!(
            state,
            (self.user.0, 0, 0, 0, Some(0), Some(0), Some(1), Some(2)),
            "{}: (euid, capinh, capprm, capeff, capbnd, capamb, no_new_privs, seccomp mode)",
            self.name
        );
    }

    /// Runs `argv` as an exec hook would run in this container (its
    /// namespaces, root, user and restrictions), `role` as its GW_ROLE.
    fn exec(&self, argv: &[String], role: Option<&str>) -> Command {
        let pid = self.pid1.to_string();
        let hook = Restricted {
            root: &self.root,
            user: self.user,
            argv,
            role,
            seccomp: &self.hook_seccomp,
        };
        let mut cmd = Command::new("nsenter");
        cmd.args(["-t", &pid, "-m", "-p", "-n", "--"])
            .args(hook.argv())
            .envs(hook.env())
            .stdin(Stdio::null());
        cmd
    }

    /// What a process in this container may do (see `restricted::probe`):
    /// the `GW_PROBE` lines of the lab's probe run here as a hook would be.
    /// Needs the test binary in the root, as the app's is at /app.
    pub fn probe(&self) -> Vec<String> {
        let mut argv = vec!["/app".to_string()];
        argv.extend(crate::support::HELPER_ARGS.map(String::from));
        let out = self.exec(&argv, Some("probe")).output().unwrap();
        assert!(
            out.status.success(),
            "the probe failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            // libtest's "test helper_process ... " may precede the first.
            .filter_map(|l| l.split_once("GW_PROBE ").map(|(_, p)| p.to_string()))
            .collect()
    }

    fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill(2) on a pid this lab started.
        unsafe { libc::kill(self.pid1, sig) };
    }

    /// Waits for the exit until `deadline`; None if it is still running.
    fn wait_until(&self, deadline: Instant) -> Option<(Instant, ExitStatus)> {
        let (lock, cvar) = &*self.exit;
        let mut slot = lock.lock().unwrap();
        while slot.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            slot = cvar.wait_timeout(slot, left).unwrap().0;
        }
        *slot
    }

    /// Every line the container printed on its stdout, to the end: for a
    /// container that has exited. Its exit is seen before the thread reading
    /// its pipe has passed on the last lines, so this waits for the pipe's
    /// end (every writer gone), bounded by the hang guard.
    pub fn said(&self) -> Vec<String> {
        let Some(output) = &self.output else {
            return Vec::new();
        };
        let output = output.lock().unwrap();
        let until = Instant::now() + HANG_GUARD;
        let mut said = Vec::new();
        loop {
            match output.recv_timeout(until.saturating_duration_since(Instant::now())) {
                Ok(line) if line.trim().is_empty() => {}
                Ok(line) => said.push(line),
                Err(RecvTimeoutError::Disconnected) => return said,
                Err(RecvTimeoutError::Timeout) => panic!(
                    "{}: its stdout never ended (is it still running?); so far: {said:?}",
                    self.name
                ),
            }
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        // unshare --kill-child takes the container with it; in a shared PID
        // namespace the container's own process is killed too.
        // SAFETY: kill(2) on processes this lab started.
        unsafe {
            libc::kill(self.pid1, libc::SIGKILL);
            libc::kill(self.unshare_pid, libc::SIGKILL);
        }
        let _ = self.wait_until(Instant::now() + HANG_GUARD);
    }
}

impl kubelet::Container for Container {
    fn name(&self) -> &str {
        self.name
    }

    /// An exec preStop: the command vector run inside the container's
    /// namespaces and root, as its user and under its restrictions; killed
    /// at the deadline as the kubelet gives up on it.
    fn run_hook(&self, hook: &[String], deadline: Instant) -> String {
        use wait_timeout::ChildExt;
        let mut child = self
            .exec(hook, None)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut err = child.stderr.take().unwrap();
        let reader = thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        let status = child
            .wait_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap();
        let result = match status {
            Some(s) => format!(
                "exit {}",
                s.code()
                    .map_or_else(|| format!("signal {s}"), |c| c.to_string())
            ),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                "killed at the grace deadline".into()
            }
        };
        let log = reader.join().unwrap_or_default();
        let last = log.lines().last().unwrap_or_default().to_string();
        // Warnings too: under the restricted profile, one would say that a
        // source is unavailable (netlink sock_diag, pidfds) and a fallback is used.
        let warnings: Vec<&str> = log.lines().filter(|l| l.contains(" WARN ")).collect();
        if warnings.is_empty() {
            format!("{result} ({last})")
        } else {
            format!("{result} ({last}) warnings: {}", warnings.join(" | "))
        }
    }

    fn stop(&self, grace: Duration) -> Stopped {
        self.signal(libc::SIGTERM);
        let deadline = Instant::now() + grace;
        let mut killed = false;
        let exited = self.wait_until(deadline).or_else(|| {
            killed = true;
            self.signal(libc::SIGKILL);
            self.wait_until(Instant::now() + HANG_GUARD)
        });
        let (when, status) = exited.expect("container survived SIGKILL");
        Stopped {
            at: SystemTime::now() - Instant::now().saturating_duration_since(when),
            status: status.to_string(),
            killed,
        }
    }
}

/// The pod spec of the first workload in a manifest the injector wrote.
fn pod_spec(manifest: &Path) -> serde_json::Value {
    let text = fs::read_to_string(manifest).unwrap();
    let mut docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text).unwrap();
    docs.swap_remove(0)["spec"]["template"]["spec"].take()
}

fn strings(list: &serde_json::Value) -> Option<Vec<String>> {
    list.as_array()?
        .iter()
        .map(|w| w.as_str().map(str::to_string))
        .collect()
}

/// The `command` of `container` in the first workload of a manifest.
pub fn command_from(manifest: &Path, container: &str) -> Option<Vec<String>> {
    strings(&container_in(&pod_spec(manifest), container)?["command"])
}

/// The preStop command of `container` in the first workload of a manifest,
/// as the injector wrote it.
pub fn pre_stop_from(manifest: &Path, container: &str) -> Option<Vec<String>> {
    strings(
        &container_in(&pod_spec(manifest), container)?["lifecycle"]["preStop"]["exec"]["command"],
    )
}

/// The init container's args in a manifest the injector wrote.
pub fn init_args_from(manifest: &Path) -> Vec<String> {
    let spec = pod_spec(manifest);
    let init = container_in(&spec, "graceful-wait-install")
        .expect("no graceful-wait-install init container");
    strings(&init["args"]).expect("the init container has args")
}

/// The pod spec of the pod the injector's Istio test merged from the
/// `graceful-wait` injection template (injector/tests/istio.rs keeps it
/// current): Istio's injected pod with the template applied, as istiod would.
pub fn istio_template_pod() -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lab/istio-template-pod.json");
    let pod: serde_json::Value = serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap();
    pod["spec"].clone()
}

/// A container's preStop command and the installer's args in a pod spec.
pub fn hook_and_installer(spec: &serde_json::Value, container: &str) -> (Vec<String>, Vec<String>) {
    let hook = strings(
        &container_in(spec, container).expect("no such container")["lifecycle"]["preStop"]["exec"]
            ["command"],
    )
    .expect("no exec preStop");
    let init = strings(&container_in(spec, "graceful-wait-install").expect("no installer")["args"])
        .expect("the installer has args");
    (hook, init)
}

/// Golden case `name`'s expected output.
pub fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config/test")
        .join(name)
        .join("expected.yaml")
}
