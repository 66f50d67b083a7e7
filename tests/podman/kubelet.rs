//! Pods in real containers, terminated as the kubelet terminates them.
//!
//! - Images: `lab` holds this test binary alone (at /app), which plays the
//!   app, the proxy stand-in and the external service (`support::roles`),
//!   as a distroless image would — no shell, no netstat, no curl;
//!   `lab-shell` adds Debian's static busybox (`sh`, `netstat`, `wget`), as
//!   the images the original tool's shell loops need.
//! - A pod is played from a pod spec with `podman kube play` on podman's
//!   bridge network, where the external service runs as a container of its
//!   own, so a callback leaves the pod.
//! - [`Pod::terminate`] is the kubelet's order, which podman does not follow
//!   (`pod stop` runs no preStop hook; `kube down` kills at once): see its
//!   comment.

#![allow(dead_code)] // each test uses its own part

use crate::podman::Podman;
use crate::scenarios::{lab_context, LAB_IMAGE, LAB_SHELL_IMAGE};
use crate::support::HELPER_ARGS;
use serde_json::{json, Value};
use std::{
    path::PathBuf,
    process::Stdio,
    sync::Mutex,
    thread,
    time::{Duration, Instant, SystemTime},
};

/// `lab` (this test binary alone) and `lab-shell` (with busybox).
pub fn build_lab_images(podman: &Podman) {
    let (ctx, file) = lab_context();
    podman.build(ctx.path(), &file, Some("lab"), LAB_IMAGE);
    podman.build(ctx.path(), &file, Some("lab-shell"), LAB_SHELL_IMAGE);
}

/// The external service, a container on podman's bridge network; its
/// address.
pub fn start_receiver(podman: &Podman) -> String {
    let mut args = vec![
        "-d",
        "--name",
        "receiver",
        "--user",
        "65534",
        "-e",
        "GW_ROLE=external",
        LAB_IMAGE,
        "/app",
    ];
    args.extend(HELPER_ARGS);
    podman.run_restricted(&args);
    let mut logs = podman.follow("receiver");
    logs.expect("GW_EXT ready");
    let ip = podman.text(&[
        "inspect",
        "--format",
        "{{.NetworkSettings.IPAddress}}",
        "receiver",
    ]);
    assert!(!ip.is_empty(), "the receiver has no address");
    format!("{ip}:8080")
}

/// The callbacks the external service has received so far.
pub fn callbacks(podman: &Podman) -> usize {
    let out = podman.ok(&["logs", "receiver"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("GW_CALLBACK"))
        .count()
}

/// Plays `spec` as pod `name` and waits until every container that
/// announces itself (`GW_APP ready`, `GW_PROXY ready`) has.
pub fn play<'a>(podman: &'a Podman, name: &str, spec: &Value) -> Pod<'a> {
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec});
    let file = podman.dir.path().join(format!("{name}.json"));
    std::fs::write(&file, serde_json::to_vec_pretty(&pod).unwrap()).unwrap();
    podman.ok(&["kube", "play", file.to_str().unwrap()]);
    // The kubelet makes an emptyDir 0777; kube play makes it a volume
    // owned by one container's user, which a uid-1000 app then cannot
    // write its done marker to. Made as the kubelet makes it.
    for volume in podman
        .text(&["volume", "ls", "--format", "{{.Name}}"])
        .lines()
    {
        let at = podman.text(&["volume", "inspect", "--format", "{{.Mountpoint}}", volume]);
        std::fs::set_permissions(at, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    }
    // Main containers, and native sidecars (restartable init
    // containers); other init containers have run to completion.
    let main = spec["containers"].as_array().into_iter().flatten();
    let sidecars = spec["initContainers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["restartPolicy"] == "Always");
    let mut members = Vec::new();
    for (c, native_sidecar) in main.map(|c| (c, false)).chain(sidecars.map(|c| (c, true))) {
        let container = format!("{name}-{}", c["name"].as_str().unwrap());
        let role = c["env"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["name"] == "GW_ROLE")
            .and_then(|e| e["value"].as_str());
        match role {
            Some("app") => drop(podman.follow(&container).expect("GW_APP ready")),
            Some("proxy") => drop(podman.follow(&container).expect("GW_PROXY ready")),
            _ => {}
        }
        members.push(Member {
            container,
            pre_stop: c["lifecycle"]["preStop"]["exec"]["command"]
                .as_array()
                .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect()),
            native_sidecar,
        });
    }
    Pod {
        podman,
        name: name.to_string(),
        file,
        members,
    }
}

/// A container of a played pod, as the kubelet stops it.
pub struct Member {
    pub container: String,
    pub pre_stop: Option<Vec<String>>,
    pub native_sidecar: bool,
}

/// A played pod.
pub struct Pod<'a> {
    podman: &'a Podman,
    pub name: String,
    file: PathBuf,
    pub members: Vec<Member>,
}

/// What happened during a termination, as the driver saw it.
#[derive(Debug, Default)]
pub struct Timeline {
    /// (wall-clock time, container, event)
    pub events: Vec<(SystemTime, String, String)>,
}

impl Timeline {
    pub fn at(&self, container: &str, event: &str) -> Option<SystemTime> {
        self.events
            .iter()
            .find(|(_, c, e)| c.ends_with(container) && e.starts_with(event))
            .map(|e| e.0)
    }

    pub fn has(&self, container: &str, event: &str) -> bool {
        self.at(container, event).is_some()
    }
}

impl std::fmt::Display for Timeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let start = self.events.first().map(|e| e.0);
        for (t, c, e) in &self.events {
            let ms = start
                .and_then(|s| t.duration_since(s).ok())
                .unwrap_or_default()
                .as_secs_f64()
                * 1000.0;
            writeln!(f, "{ms:9.1} ms  {c}: {e}")?;
        }
        Ok(())
    }
}

impl Pod<'_> {
    /// The kubelet's termination of this pod (kuberuntime_container.go,
    /// `killContainersWithSyncResult` → `killContainer`):
    /// - every container is stopped at once, each on its own;
    /// - a container's exec preStop runs in that container (CRI `ExecSync`;
    ///   here `podman exec`) and may take at most the grace period;
    /// - when its own hook has ended (any status), the container is stopped
    ///   with what is left of the grace period, at least 2 s (CRI
    ///   `StopContainer`; here `podman stop -t`, which sends SIGTERM, then
    ///   SIGKILL when that runs out);
    /// - native sidecars (restartable init containers) are stopped after
    ///   every main container has exited.
    ///
    /// Each container is stopped on its own, never the pod: with a shared
    /// PID namespace the pod's infra process would take every container
    /// with it.
    pub fn terminate(&self, grace: Duration) -> Timeline {
        let start = Instant::now();
        let deadline = start + grace;
        let log = Mutex::new(Vec::new());
        let note = |who: &str, what: String| {
            log.lock()
                .unwrap()
                .push((SystemTime::now(), who.to_string(), what))
        };
        let stop = |m: &Member| {
            if let Some(hook) = &m.pre_stop {
                note(&m.container, format!("preStop started: {}", hook.join(" ")));
                let status = self.exec_until(&m.container, hook, deadline);
                note(&m.container, format!("preStop ended: {status}"));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let seconds = left.as_secs().max(2);
            note(&m.container, "SIGTERM".into());
            let out = self
                .podman
                .cmd()
                .args(["stop", "-t", &seconds.to_string(), &m.container])
                .output()
                .unwrap();
            let said = String::from_utf8_lossy(&out.stderr);
            if said.contains("SIGKILL") {
                note(&m.container, "SIGKILL (grace period over)".into());
            }
            let finished: u128 = self
                .podman
                .text(&[
                    "inspect",
                    "--format",
                    "{{.State.FinishedAt.UnixNano}}",
                    &m.container,
                ])
                .parse()
                .unwrap_or(0);
            let when = SystemTime::UNIX_EPOCH + Duration::from_nanos(finished as u64);
            let code =
                self.podman
                    .text(&["inspect", "--format", "{{.State.ExitCode}}", &m.container]);
            log.lock()
                .unwrap()
                .push((when, m.container.clone(), format!("exited: {code}")));
        };
        thread::scope(|s| {
            let mains: Vec<_> = self
                .members
                .iter()
                .filter(|m| !m.native_sidecar)
                .map(|m| s.spawn(|| stop(m)))
                .collect();
            for h in mains {
                h.join().unwrap();
            }
            let sidecars: Vec<_> = self
                .members
                .iter()
                .filter(|m| m.native_sidecar)
                .map(|m| s.spawn(|| stop(m)))
                .collect();
            for h in sidecars {
                h.join().unwrap();
            }
        });
        let mut events = log.into_inner().unwrap();
        events.sort_by_key(|e| e.0);
        Timeline { events }
    }

    /// `podman exec` of a hook, given up at `deadline` as the kubelet gives
    /// up on a hook (the container's stop then ends it).
    fn exec_until(&self, container: &str, hook: &[String], deadline: Instant) -> String {
        use wait_timeout::ChildExt;
        let mut child = self
            .podman
            .cmd()
            .args(["exec", container])
            .args(hook)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        match child
            .wait_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap()
        {
            Some(status) => match status.code() {
                Some(code) => format!("exit {code}"),
                None => format!("{status}"),
            },
            None => {
                let _ = child.kill();
                let _ = child.wait();
                "still running at the grace deadline".into()
            }
        }
    }

    /// A container's whole output so far.
    pub fn logs(&self, container: &str) -> String {
        let out = self.podman.ok(&["logs", container]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }
}

impl Drop for Pod<'_> {
    fn drop(&mut self) {
        // kube down, then the pod's emptyDir volumes: podman names them as
        // the spec does, so the next pod would otherwise find this one's
        // done marker.
        let _ = self
            .podman
            .cmd()
            .args(["kube", "down"])
            .arg(&self.file)
            .output();
        let _ = self.podman.cmd().args(["volume", "prune", "-f"]).output();
    }
}
