//! A real single-node Kubernetes for the tests (`tests/cluster/up`, beside
//! this file): the API server, the controllers, the scheduler and a real
//! kubelet on containerd, built from their Go modules. Tests apply objects
//! with kubectl and let the kubelet terminate the pods, as users do.
//!
//! [`Cluster::up_or_skip`] brings the cluster up (or reuses one that is up)
//! and, when it brought it up, takes it down when dropped — a failed
//! assertion unwinds through that drop too. `GW_CLUSTER_KEEP_UP=1` leaves it
//! up for a look afterwards (`tests/cluster/down` then takes it down).

#![allow(dead_code)] // each test uses its own part

pub mod lab;
pub mod mesh;
pub mod play;

use crate::support::skip::{self, skipped};
use serde_json::Value;
use std::{
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::mpsc::{channel, Receiver},
    thread,
    time::{Duration, Instant, SystemTime},
};

/// A bound on waiting for a pod's line or a pod's state; it guards against a
/// hang and is never what a test asserts.
pub const HANG_GUARD: Duration = Duration::from_secs(120);

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn script(name: &str) -> PathBuf {
    repo().join("tests/cluster").join(name)
}

/// The cluster, up.
pub struct Cluster {
    pub kubeconfig: PathBuf,
    /// This test brought it up, so takes it down.
    owned: bool,
}

impl Cluster {
    /// Up (or reused), or None with a SKIPPED line where it cannot run here.
    pub fn up_or_skip(test: &str) -> Option<Self> {
        if !skip::is_root() {
            skipped(
                test,
                "needs root (the kubelet and containerd run as root), as CI runs it",
            );
            return None;
        }
        if !Path::new("/usr/local/go/bin/go").exists() && !skip::have("go", &["version"]) {
            skipped(
                test,
                "Go is not installed: the cluster is built from Go modules (tests/cluster/build)",
            );
            return None;
        }
        let state = std::env::var_os("GW_CLUSTER_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo().join("target/cluster/state"));
        let was_up = state.join("pids").is_file();
        let out = Command::new(script("up"))
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "tests/cluster/up failed (its reason is on stderr above)"
        );
        let last = String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or_default()
            .to_string();
        let kubeconfig = PathBuf::from(
            last.strip_prefix("export KUBECONFIG=")
                .unwrap_or_else(|| panic!("up's last line is not an export: {last:?}")),
        );
        Some(Self {
            kubeconfig,
            owned: !was_up && std::env::var("GW_CLUSTER_KEEP_UP").as_deref() != Ok("1"),
        })
    }

    pub fn kubectl(&self) -> Command {
        let mut cmd = Command::new(repo().join("target/cluster/bin/kubectl"));
        cmd.env("KUBECONFIG", &self.kubeconfig).stdin(Stdio::null());
        cmd
    }

    /// kubectl ARGS, which must succeed; its output.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.kubectl().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// kubectl ARGS; the whole output, success or not.
    pub fn run(&self, args: &[&str]) -> Output {
        self.kubectl().args(args).output().unwrap()
    }

    /// `kubectl get ... -o json`, parsed.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        serde_json::from_str(&self.ok(&all)).unwrap()
    }

    /// `kubectl apply -f -` of `objects` (a JSON object or a kind: List).
    pub fn apply(&self, objects: &Value) -> String {
        self.apply_args(objects, &[])
    }

    pub fn apply_args(&self, objects: &Value, args: &[&str]) -> String {
        let mut child = self
            .kubectl()
            .args(["apply", "-f", "-"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(&serde_json::to_vec(objects).unwrap())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "kubectl apply: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            serde_json::to_string_pretty(objects).unwrap()
        );
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// `kubectl create -f - -o json` of `object`: the object as the API
    /// server stored it (after every admission webhook), and kubectl's
    /// stderr (the warnings webhooks returned); Err with stderr when the
    /// API server refused it.
    pub fn create(&self, object: &Value) -> Result<(Value, String), String> {
        let mut child = self
            .kubectl()
            .args(["create", "-o", "json", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(&serde_json::to_vec(object).unwrap())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if !out.status.success() {
            return Err(stderr);
        }
        Ok((serde_json::from_slice(&out.stdout).unwrap(), stderr))
    }

    /// Helm (`target/tools/bin/NAME`: helm3 or helm4, as tests/run unpacks
    /// them) against this cluster, its caches in `home`.
    pub fn helm(&self, name: &str, home: &Path) -> Command {
        let mut cmd = Command::new(repo().join("target/tools/bin").join(name));
        cmd.env("KUBECONFIG", &self.kubeconfig)
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_DATA_HOME", home.join("data"))
            .stdin(Stdio::null());
        cmd
    }

    /// An image built with podman and imported into the node's containerd
    /// (`tests/cluster/image`): `localhost/NAME:test`.
    pub fn image(&self, name: &str, context: &Path, file: &Path, target: Option<&str>) -> String {
        let mut cmd = Command::new(script("image"));
        cmd.arg(name).arg(context).arg(file);
        if let Some(t) = target {
            cmd.arg(t);
        }
        let out = cmd.stdin(Stdio::null()).output().unwrap();
        assert!(
            out.status.success(),
            "tests/cluster/image {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A namespace of the test's own, made anew (a leftover is deleted
    /// first), with PodSecurity `level` enforced.
    pub fn namespace(&self, name: &str, level: &str) {
        let _ = self.run(&[
            "delete",
            "namespace",
            name,
            "--ignore-not-found",
            "--wait=true",
        ]);
        self.ok(&["create", "namespace", name]);
        self.ok(&[
            "label",
            "namespace",
            name,
            &format!("pod-security.kubernetes.io/enforce={level}"),
        ]);
        // The controllers make its default ServiceAccount; a pod is refused
        // until it exists.
        self.until(&format!("the default ServiceAccount of {name}"), || {
            self.run(&["get", "serviceaccount", "default", "-n", name])
                .status
                .success()
        });
    }

    /// Polls `done` every 100 ms until it holds (another process's state,
    /// which offers no event here); panics naming `what` after the hang
    /// guard.
    pub fn until(&self, what: &str, mut done: impl FnMut() -> bool) {
        let end = Instant::now() + HANG_GUARD;
        while !done() {
            assert!(Instant::now() < end, "{what}: not within {HANG_GUARD:?}");
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// The pods of `namespace` that run and are not being deleted, by name.
    pub fn live_pods(&self, namespace: &str) -> Vec<Value> {
        let list = self.json(&["get", "pods", "-n", namespace]);
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
            .filter(|p| p["status"]["phase"] == "Running")
            .cloned()
            .collect()
    }

    /// A container's log lines as they come, with the runtime's timestamps
    /// (`kubectl logs -f --timestamps`), until the container exits.
    pub fn follow(&self, namespace: &str, pod: &str, container: &str) -> Lines {
        let mut child = self
            .kubectl()
            .args([
                "logs",
                "-f",
                "--timestamps",
                "-n",
                namespace,
                pod,
                "-c",
                container,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let (tx, rx) = channel();
        let out = child.stdout.take().unwrap();
        thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Lines {
            child,
            rx,
            seen: Vec::new(),
        }
    }

    /// The events of `namespace`.
    pub fn events(&self, namespace: &str) -> Vec<Event> {
        let list = self.json(&["get", "events", "-n", namespace]);
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| Event {
                pod: text(&e["involvedObject"]["name"]),
                on: text(&e["involvedObject"]["fieldPath"]),
                reason: text(&e["reason"]),
                message: text(&e["message"]),
            })
            .collect()
    }
}

/// What the kubelet (or a controller) said about an object.
#[derive(Debug)]
pub struct Event {
    /// The object's name.
    pub pod: String,
    /// The container it names (`spec.containers{NAME}`), empty for the pod.
    pub on: String,
    pub reason: String,
    pub message: String,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.owned {
            let _ = Command::new(script("down")).stdin(Stdio::null()).status();
        }
    }
}

/// The lines of a running `kubectl logs -f --timestamps`.
pub struct Lines {
    child: Child,
    rx: Receiver<String>,
    /// Every line read so far, in order.
    pub seen: Vec<String>,
}

impl Lines {
    /// Blocks until a line contains `text` (bounded by the hang guard).
    pub fn expect(&mut self, text: &str) -> String {
        let until = Instant::now() + HANG_GUARD;
        loop {
            match self
                .rx
                .recv_timeout(until.saturating_duration_since(Instant::now()))
            {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if l.contains(text) {
                        return l;
                    }
                }
                Err(e) => panic!("never saw {text:?} ({e}); saw {:?}", self.seen),
            }
        }
    }

    /// Every line until the container's log ends (it exited), bounded by
    /// the hang guard.
    pub fn read_to_end(&mut self) -> &[String] {
        let until = Instant::now() + HANG_GUARD;
        while let Ok(l) = self
            .rx
            .recv_timeout(until.saturating_duration_since(Instant::now()))
        {
            self.seen.push(l);
        }
        &self.seen
    }

    /// The runtime's time of the first line that contains `text`.
    pub fn at(&self, text: &str) -> Option<SystemTime> {
        self.seen
            .iter()
            .find(|l| l.contains(text))
            .and_then(|l| crate::scenarios::rfc3339(l))
    }
}

impl Drop for Lines {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
