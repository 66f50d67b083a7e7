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
//! - [`Pod::terminate`] is the kubelet's order (`support::kubelet`), which
//!   podman does not follow (`pod stop` runs no preStop hook; `kube down`
//!   kills at once).

#![allow(dead_code)] // each test uses its own part

use crate::podman::Podman;
use crate::scenarios::{lab_context, LAB_IMAGE, LAB_SHELL_IMAGE};
use crate::support::kubelet::{self, Container, Member, Stopped, Timeline};
use crate::support::HELPER_ARGS;
use serde_json::{json, Value};
use std::{
    path::PathBuf,
    process::Stdio,
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
            container: Played {
                podman,
                name: container,
            },
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

/// A container of a played pod, which podman stops as the kubelet's runtime
/// would: the hook with `podman exec`, the stop with `podman stop -t`.
pub struct Played<'a> {
    podman: &'a Podman,
    pub name: String,
}

impl Container for Played<'_> {
    fn name(&self) -> &str {
        &self.name
    }

    /// `podman exec` of a hook, given up at `deadline` as the kubelet gives
    /// up on a hook (the container's stop then ends it).
    fn run_hook(&self, hook: &[String], deadline: Instant) -> String {
        use wait_timeout::ChildExt;
        let mut child = self
            .podman
            .cmd()
            .args(["exec", &self.name])
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

    /// `podman stop -t` (whole seconds: SIGTERM, then SIGKILL when they run
    /// out), and the exit as podman recorded it.
    fn stop(&self, grace: Duration) -> Stopped {
        let out = self
            .podman
            .cmd()
            .args(["stop", "-t", &grace.as_secs().to_string(), &self.name])
            .output()
            .unwrap();
        let killed = String::from_utf8_lossy(&out.stderr).contains("SIGKILL");
        let finished: u64 = self
            .podman
            .text(&[
                "inspect",
                "--format",
                "{{.State.FinishedAt.UnixNano}}",
                &self.name,
            ])
            .parse()
            .unwrap_or(0);
        let code = self
            .podman
            .text(&["inspect", "--format", "{{.State.ExitCode}}", &self.name]);
        Stopped {
            at: SystemTime::UNIX_EPOCH + Duration::from_nanos(finished),
            status: code,
            killed,
        }
    }
}

/// A played pod.
pub struct Pod<'a> {
    podman: &'a Podman,
    pub name: String,
    file: PathBuf,
    pub members: Vec<Member<Played<'a>>>,
}

impl Pod<'_> {
    /// The kubelet's termination of this pod ([`kubelet::terminate`]). Each
    /// container is stopped on its own, never the pod: with a shared PID
    /// namespace the pod's infra process would take every container with it.
    pub fn terminate(&self, grace: Duration) -> Timeline {
        kubelet::terminate(&self.members, grace)
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
