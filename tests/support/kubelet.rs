//! The kubelet's termination order, once, for every runtime the tests drive
//! without a kubelet (the pod lab's namespaces, podman's containers). The
//! test cluster runs the real kubelet, which this mirrors
//! (`pkg/kubelet/kuberuntime/kuberuntime_container.go`,
//! `killContainersWithSyncResult` → `killContainer`):
//! - every container is stopped at once, each on its own;
//! - a container's exec preStop runs inside that container and may take at
//!   most the grace period (the kubelet gives up on it then);
//! - when its own hook has ended (any status, or given up), the container
//!   gets SIGTERM and what is left of the grace period — **at least 2 s**
//!   ([`MIN_GRACE_AFTER_HOOK`], `minimumGracePeriodInSeconds`) — then SIGKILL;
//! - native sidecars (restartable init containers) are stopped only after
//!   every main container has exited.

use std::{
    sync::Mutex,
    thread,
    time::{Duration, Instant, SystemTime},
};

/// What the kubelet still gives a container after its hook, however late the
/// hook ended.
pub const MIN_GRACE_AFTER_HOOK: Duration = Duration::from_secs(2);

/// How long a container whose hook has just ended has before SIGKILL: what
/// is left until `deadline`, at least [`MIN_GRACE_AFTER_HOOK`].
pub fn grace_after_hook(deadline: Instant) -> Duration {
    deadline
        .saturating_duration_since(Instant::now())
        .max(MIN_GRACE_AFTER_HOOK)
}

/// A container as the kubelet drives it through a runtime: the two things a
/// runtime does at termination.
pub trait Container: Sync {
    /// The container's name, as the timeline shows it.
    fn name(&self) -> &str;
    /// Runs an exec preStop inside the container, given up at `deadline`;
    /// how it ended, in words.
    fn run_hook(&self, hook: &[String], deadline: Instant) -> String;
    /// SIGTERM now, SIGKILL once `grace` has passed with the container still
    /// running; returns when it exited.
    fn stop(&self, grace: Duration) -> Stopped;
}

impl<C: Container> Container for &C {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn run_hook(&self, hook: &[String], deadline: Instant) -> String {
        (**self).run_hook(hook, deadline)
    }
    fn stop(&self, grace: Duration) -> Stopped {
        (**self).stop(grace)
    }
}

/// How a stopped container ended.
pub struct Stopped {
    /// When it exited (wall clock: a runtime may only know it that way).
    pub at: SystemTime,
    /// Its exit status, in words.
    pub status: String,
    /// Whether the grace period ran out and SIGKILL was sent.
    pub killed: bool,
}

/// One container of the pod at termination.
pub struct Member<C> {
    pub container: C,
    pub pre_stop: Option<Vec<String>>,
    pub native_sidecar: bool,
}

/// What happened during a termination, in order.
#[derive(Debug)]
pub struct Timeline {
    /// When termination started.
    pub start: SystemTime,
    /// (wall-clock time, container, event)
    pub events: Vec<(SystemTime, String, String)>,
}

impl Timeline {
    /// When `container`'s first event starting with `event` happened.
    pub fn when(&self, container: &str, event: &str) -> Option<SystemTime> {
        self.events
            .iter()
            .find(|(_, c, e)| c == container && e.starts_with(event))
            .map(|e| e.0)
    }

    /// How long after the start of termination it happened.
    pub fn at(&self, container: &str, event: &str) -> Option<Duration> {
        let when = self.when(container, event)?;
        Some(when.duration_since(self.start).unwrap_or_default())
    }

    pub fn has(&self, container: &str, event: &str) -> bool {
        self.when(container, event).is_some()
    }
}

impl std::fmt::Display for Timeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (t, c, e) in &self.events {
            let since = t.duration_since(self.start).unwrap_or_default();
            writeln!(f, "{:9.1} ms  {c}: {e}", since.as_secs_f64() * 1000.0)?;
        }
        Ok(())
    }
}

/// The kubelet's termination of a pod of `members` with `grace`: see the
/// module's comment.
pub fn terminate<C: Container>(members: &[Member<C>], grace: Duration) -> Timeline {
    let start = SystemTime::now();
    let deadline = Instant::now() + grace;
    let log = Mutex::new(Vec::new());
    let note = |when: SystemTime, who: &str, what: String| {
        log.lock().unwrap().push((when, who.to_string(), what))
    };
    let stop = |m: &Member<C>| {
        let c = &m.container;
        if let Some(hook) = &m.pre_stop {
            note(
                SystemTime::now(),
                c.name(),
                format!("preStop started: {}", hook.join(" ")),
            );
            let ended = c.run_hook(hook, deadline);
            note(
                SystemTime::now(),
                c.name(),
                format!("preStop ended: {ended}"),
            );
        }
        let grace = grace_after_hook(deadline);
        let sigterm = SystemTime::now();
        note(sigterm, c.name(), "SIGTERM".into());
        let stopped = c.stop(grace);
        if stopped.killed {
            note(
                sigterm + grace,
                c.name(),
                "SIGKILL (grace period over)".into(),
            );
        }
        note(stopped.at, c.name(), format!("exited: {}", stopped.status));
    };
    thread::scope(|s| {
        for native_sidecars in [false, true] {
            let stopping: Vec<_> = members
                .iter()
                .filter(|m| m.native_sidecar == native_sidecars)
                .map(|m| s.spawn(|| stop(m)))
                .collect();
            for h in stopping {
                h.join().unwrap();
            }
        }
    });
    let mut events = log.into_inner().unwrap();
    events.sort_by_key(|e| e.0);
    Timeline { start, events }
}
