//! The config: the original tool's format unchanged, plus typed waits, globs and one
//! reserved key for settings. Read with the same span-keeping YAML reader as
//! manifests, so every error names its line and column.
//!
//! ```yaml
//! graceful-wait:                  # reserved: settings (all optional)
//!   drain-margin: 5s
//! deployment:                     # kind, lower case
//!   test-tcp-svc:                 # resource name, or a glob (api-*)
//!     test-tcp-svc: ["/bin/sh", "-c", "/bin/graceful_termination.sh"]   # preStop command
//!     istio-proxy: {tcp: 20000}   # typed wait
//! ```

//!
//! Its rooms: this file holds the model and reads the file's layout;
//! [`hook`] reads a container's value (the hook grammar), [`settings`](mod@settings) the
//! reserved key, and [`read`] the values every option is made of.

mod hook;
mod read;
mod settings;
pub use settings::MESHES;

use crate::yaml::{for_each_document, Kind, Pos, YamlError};
use hook::parse_hook;
pub(crate) use read::dns_label;
use read::{err, map, text};
use settings::settings;
use std::time::Duration;

/// Workload kinds, as config keys (lower case) and as manifest `kind`s.
pub const KINDS: &[(&str, &str)] = &[
    ("deployment", "Deployment"),
    ("statefulset", "StatefulSet"),
    ("daemonset", "DaemonSet"),
    ("replicaset", "ReplicaSet"),
    ("replicationcontroller", "ReplicationController"),
    ("job", "Job"),
    ("cronjob", "CronJob"),
    ("pod", "Pod"),
    ("deploymentconfig", "DeploymentConfig"),
];

pub const SETTINGS_KEY: &str = "graceful-wait";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Where the binary is mounted in hooked containers.
    pub binary_dir: String,
    /// The init container's image (holds the static binary).
    pub image: String,
    /// The shared emptyDir volume's name.
    pub volume: String,
    /// The init container's name.
    pub init_name: String,
    /// Kept from the grace period for the proxy's own drain after the wait.
    pub drain_margin: Duration,
    /// What a native sidecar's hook gets (`native-sidecars:`).
    pub native_sidecars: NativeSidecars,
    /// The emptyDir that carries the app's done marker: written by the
    /// wrapped app, read by the proxy's file wait. The binary's own volume
    /// stays read-only everywhere but in the installer.
    pub marker_volume: String,
    /// Where the hooks also write their log lines (`--log-copy`): by default
    /// the container's main process's stdout, so `kubectl logs` shows them
    /// (a hook's own output is not kept). None: off.
    pub log_copy: Option<String>,
    /// A pod with no `istio-proxy` gets a stub of one for Istio's injector
    /// to merge onto its sidecar (`missing-proxy: stub`); by default the
    /// container is skipped as not found.
    pub stub_missing_proxy: bool,
}

/// The hooks' default `--log-copy`: PID 1's stdout, the container's log.
pub const CONTAINER_LOG: &str = "/proc/1/fd/1";

impl Default for Settings {
    fn default() -> Self {
        Settings {
            binary_dir: "/graceful-wait".into(),
            image: "ghcr.io/graceful-wait/graceful-wait:0.1.0".into(),
            volume: "graceful-wait".into(),
            init_name: "graceful-wait-install".into(),
            drain_margin: Duration::from_secs(5),
            native_sidecars: NativeSidecars::default(),
            marker_volume: "graceful-wait-done".into(),
            log_copy: Some(CONTAINER_LOG.into()),
            stub_missing_proxy: false,
        }
    }
}

/// Whether a native sidecar (an init container with `restartPolicy:
/// Always`) gets a wait in front of its own preStop. Its preStop runs when
/// termination starts, beside the app's shutdown: what the hook does decides
/// ([`crate::plan::mesh::native_sidecar`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NativeSidecars {
    /// The choice for every native sidecar the mesh table does not name
    /// below (`native-sidecars: wait`, or `other:` in the mapping).
    pub all: NativeChoice,
    /// Per mesh, by its key in the mesh table (`native-sidecars: {istio: wait}`).
    pub per_mesh: Vec<(String, NativeChoice)>,
}

impl NativeSidecars {
    /// The choice for the mesh `key` (None: a container no mesh's).
    pub fn choice(&self, key: Option<&str>) -> NativeChoice {
        key.and_then(|k| self.per_mesh.iter().find(|(m, _)| m == k))
            .map_or(self.all, |(_, c)| *c)
    }
}

/// One native-sidecar choice.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NativeChoice {
    /// Decided from the hook: none, or an inbound-only drain, is left at
    /// termination start; anything else goes behind the wait.
    #[default]
    Auto,
    /// The wait in front of whatever the hook is.
    Wait,
    /// The hook left alone.
    Skip,
}

impl Settings {
    pub fn binary(&self) -> String {
        format!("{}/graceful-wait", self.binary_dir.trim_end_matches('/'))
    }
}

/// What to wait for (or send), as the typed config value says it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WaitFor {
    Tcp(Vec<u16>),
    Http {
        url: String,
        down_status: Option<String>,
    },
    /// No ESTABLISHED connection left on the port(s).
    Connections(Vec<u16>),
    /// A marker file appears (the wrapper's --done-file).
    File(String),
    /// The app's processes are gone; needs shareProcessNamespace.
    Process {
        names: Vec<String>,
        exclude_uids: Vec<u32>,
    },
    /// Nothing listens in the pod but these users' sockets (the proxy's).
    Listeners(Vec<u32>),
    /// Chosen per pod from its probes (`plan::auto`): http, tcp or listeners.
    Auto,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wait {
    pub what: WaitFor,
    pub timeout: Option<Duration>,
    pub interval: Option<Duration>,
}

/// Termination callbacks sent from a preStop (`graceful-wait callback`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Callback {
    pub urls: Vec<String>,
    pub method: Option<String>,
    pub data: Option<String>,
    pub timeout: Option<Duration>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hook {
    /// The original tool's meaning: this exec command becomes the preStop.
    Command(Vec<String>),
    /// A graceful-wait wait; an existing exec preStop is chained after it.
    Wait(Wait),
    /// `graceful-wait callback` as the preStop; an existing exec preStop is
    /// chained after it.
    Callback(Callback),
    /// Wrap the container's `command` in `graceful-wait exec`.
    Wrap(Wrap),
}

/// Options of `graceful-wait exec` for a wrapped container.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Wrap {
    pub done_file: Option<String>,
    pub on_term: Vec<String>,
    pub on_exit: Vec<String>,
    pub wait_ready: Option<String>,
    pub quit_proxy: Option<String>,
}

#[derive(Clone, Debug)]
pub struct ContainerRule {
    pub name: String,
    pub hook: Hook,
    /// Where the hook stands in the config, for errors found later (`None`
    /// for a hook that was not read from a config file).
    pub pos: Option<Pos>,
}

#[derive(Clone, Debug)]
pub struct Rule {
    pub kind: &'static str,
    pub name: String,
    pub containers: Vec<ContainerRule>,
}

#[derive(Clone, Debug, Default)]
pub struct Config {
    pub settings: Settings,
    pub rules: Vec<Rule>,
}

impl Config {
    /// The rule for a workload: an exact name wins over a glob; among globs,
    /// the first in the file.
    pub fn rule_for(&self, kind: &str, name: &str) -> Option<&Rule> {
        let of_kind = || self.rules.iter().filter(move |r| r.kind == kind);
        of_kind()
            .find(|r| r.name == name)
            .or_else(|| of_kind().find(|r| is_glob(&r.name) && glob_match(&r.name, name)))
    }
}

/// Whether a name in the config is a glob (`*`, `?`), for resources and
/// containers alike.
pub fn is_glob(p: &str) -> bool {
    p.contains(['*', '?'])
}

/// `*` any run of characters, `?` one character; nothing else is special.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// One container's value written on its own, as in the webhook's pod
/// annotation (`auto`, `{tcp: 8080}`, …): the same syntax and checks as in a
/// config file. A marker path must still be in a folder of its own.
pub fn hook_from_text(src: &str) -> Result<Hook, YamlError> {
    let mut hook = None;
    for_each_document(src, |doc| {
        if hook.is_some() {
            return Err(YamlError {
                pos: doc.root.as_ref().map(|r| r.pos),
                message: "one value, not several documents".into(),
            });
        }
        let Some(root) = doc.root else {
            return Ok(());
        };
        hook = Some((parse_hook(&root)?, root.pos));
        Ok(())
    })?;
    let Some((hook, pos)) = hook else {
        return Err(YamlError {
            pos: None,
            message: "empty: give a wait such as auto or {tcp: 8080}".into(),
        });
    };
    let config = Config {
        rules: vec![Rule {
            kind: "pod",
            name: String::new(),
            containers: vec![ContainerRule {
                name: String::new(),
                hook: hook.clone(),
                pos: Some(pos),
            }],
        }],
        ..Config::default()
    };
    markers_in_their_own_folder(&config)?;
    Ok(hook)
}

/// Parses a config file's text.
pub fn parse(src: &str) -> Result<Config, YamlError> {
    let mut config = Config::default();
    let mut documents = 0;
    for_each_document(src, |doc| {
        documents += 1;
        if documents > 1 {
            return Err(YamlError {
                pos: doc.root.as_ref().map(|r| r.pos),
                message: "a config holds one YAML document".into(),
            });
        }
        let Some(root) = doc.root else { return Ok(()) };
        if matches!(root.kind, Kind::Scalar(ref s, _) if s.is_empty()) {
            return Ok(());
        }
        for (key, value) in map(&root, "the config")? {
            let k = text(key, "a kind")?;
            if k == SETTINGS_KEY {
                config.settings = settings(value)?;
                continue;
            }
            let Some(&(kind, _)) = KINDS.iter().find(|(c, _)| *c == k) else {
                let known: Vec<&str> = KINDS.iter().map(|(c, _)| *c).collect();
                return Err(err(key, format!("unknown kind '{k}'; use one of {} (lower case), or '{SETTINGS_KEY}' for settings", known.join(", "))));
            };
            for (name, containers) in map(value, &format!("'{k}'"))? {
                let name = text(name, "a resource name")?.to_string();
                let mut rule = Rule {
                    kind,
                    name: name.clone(),
                    containers: Vec::new(),
                };
                for (c, hook) in map(containers, &format!("'{k}/{name}'"))? {
                    let container = text(c, "a container name")?.to_string();
                    rule.containers.push(ContainerRule {
                        name: container,
                        hook: parse_hook(hook)?,
                        pos: Some(hook.pos),
                    });
                }
                config.rules.push(rule);
            }
        }
        Ok(())
    })?;
    markers_in_their_own_folder(&config)?;
    Ok(config)
}

/// A done marker (a wrapped app's `done-file`, a `file` wait) lives on its own
/// volume, mounted at the marker's folder: that folder cannot be the binary's
/// (read-only everywhere) or `/`.
fn markers_in_their_own_folder(config: &Config) -> Result<(), YamlError> {
    let binary_dir = config.settings.binary_dir.trim_end_matches('/');
    for c in config.rules.iter().flat_map(|r| &r.containers) {
        let marker = match &c.hook {
            Hook::Wait(Wait {
                what: WaitFor::File(path),
                ..
            }) => Some(path),
            Hook::Wrap(w) => w.done_file.as_ref(),
            _ => None,
        };
        let Some(path) = marker else { continue };
        let folder = marker_folder(path);
        if folder == binary_dir || folder.is_empty() {
            return Err(YamlError {
                pos: c.pos,
                message: format!(
                    "the marker {path} must be in a folder of its own, e.g. /graceful-wait-done/app.done: it is mounted from its own volume, and {} holds the binary, read-only",
                    if folder.is_empty() { "/" } else { binary_dir }
                ),
            });
        }
    }
    Ok(())
}

/// The folder a marker file is in (where its volume is mounted).
pub fn marker_folder(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(dir, _)| dir)
}

#[cfg(test)]
mod tests {
    use super::hook::{TYPED_HELP, WAIT_KINDS};
    use super::*;

    const SEED: &str = r#"deployment:
  test-tcp-svc:
      test-tcp-svc: ["/bin/sh", "-c", "/bin/graceful_termination.sh"]
      istio-proxy: [ '/bin/sh', '-c', 'while [ 1==1 ]; do netstat -tulpn | grep LISTEN | grep :20000; if [ $? -gt 0 ]; then  break; fi; sleep 1; done']
  http-svc:
      http-svc: ["/bin/sh", "-c", "/bin/graceful_termination.sh"]
      istio-proxy: [ '/bin/sh', '-c', 'while [ 1==1 ]; do curl localhost:3000/health; if [ $? -gt 0 ]; then  break; fi; sleep 1; done']
"#;

    #[test]
    fn reads_the_original_format_unchanged() {
        let c = parse(SEED).unwrap();
        assert_eq!(c.rules.len(), 2);
        let r = c.rule_for("deployment", "test-tcp-svc").unwrap();
        assert_eq!(
            r.containers[0].hook,
            Hook::Command(vec![
                "/bin/sh".into(),
                "-c".into(),
                "/bin/graceful_termination.sh".into()
            ])
        );
        assert_eq!(c.settings, Settings::default());
    }

    #[test]
    fn log_copy_is_on_by_default_and_can_be_turned_off() {
        let settings = |text: &str| parse(text).map(|c| c.settings.log_copy);
        assert_eq!(
            settings("deployment: {}\n").unwrap(),
            Some(CONTAINER_LOG.into())
        );
        assert_eq!(settings("graceful-wait:\n  log-copy: off\n").unwrap(), None);
        assert_eq!(
            settings("graceful-wait:\n  log-copy: /proc/1/fd/2\n").unwrap(),
            Some("/proc/1/fd/2".into())
        );
        assert!(settings("graceful-wait:\n  log-copy: out.log\n").is_err());
    }

    #[test]
    fn every_wait_kind_is_accepted_and_named_in_help_and_errors() {
        let sample = |kind: &str| match kind {
            "tcp" | "connections" => "8080",
            "http" => "localhost:8080/health",
            "listeners" => "1337",
            "file" => "/graceful-wait-done/app.done",
            "process" => "app",
            other => panic!("no sample value for the wait kind {other}: add one"),
        };
        let none = parse("deployment:\n  a:\n    istio-proxy: {timeout: 20s}\n").unwrap_err();
        for kind in WAIT_KINDS {
            let text = format!(
                "deployment:\n  a:\n    istio-proxy: {{{kind}: {}}}\n",
                sample(kind)
            );
            assert!(parse(&text).is_ok(), "{kind}: {:?}", parse(&text).err());
            assert!(
                TYPED_HELP.contains(&format!("{{{kind}: ")),
                "{kind} in the help"
            );
            assert!(none.message.contains(kind), "{kind} in: {}", none.message);
        }
        // A name that is no wait is refused with the help.
        let unknown = parse("deployment:\n  a:\n    istio-proxy: {sockets: 80}\n").unwrap_err();
        assert!(
            unknown.message.contains("unknown wait option"),
            "{}",
            unknown.message
        );
        for (kind, text) in [
            ("tcp", "deployment:\n  a:\n    istio-proxy: {tcp: []}\n"),
            (
                "connections",
                "deployment:\n  a:\n    istio-proxy: {connections: []}\n",
            ),
        ] {
            let e = parse(text).unwrap_err();
            assert!(
                e.message
                    .contains(&format!("{kind}: give at least one port")),
                "{kind}: {}",
                e.message
            );
        }
    }

    #[test]
    fn auto_and_listeners() {
        let c = parse("deployment:\n  \"*\":\n    istio-proxy: auto\n  b:\n    istio-proxy: {listeners: [1337, 100], timeout: 20s}\n").unwrap();
        let hook = |name: &str| {
            c.rule_for("deployment", name).unwrap().containers[0]
                .hook
                .clone()
        };
        assert!(matches!(
            hook("a"),
            Hook::Wait(Wait {
                what: WaitFor::Auto,
                ..
            })
        ));
        assert!(
            matches!(hook("b"), Hook::Wait(Wait { what: WaitFor::Listeners(u), .. }) if u == vec![1337, 100])
        );
        let e = parse("deployment:\n  a:\n    istio-proxy: {listeners: root}\n").unwrap_err();
        assert!(e.message.contains("'root' is not a uid"), "{}", e.message);
        let e = parse("deployment:\n  a:\n    istio-proxy: automatic\n").unwrap_err();
        assert!(e.message.contains("auto"), "{}", e.message);
    }

    #[test]
    fn typed_waits_settings_and_globs() {
        let c = parse(
            "graceful-wait:\n  drain-margin: 10s\n  native-sidecars: wait\ndeployment:\n  api-*:\n    istio-proxy: {tcp: [8080, 9090], timeout: 20s}\n  api-exact:\n    istio-proxy: {http: localhost:3000/health, down-status: 500-599, interval: 200ms}\n",
        )
        .unwrap();
        assert_eq!(c.settings.drain_margin, Duration::from_secs(10));
        assert_eq!(
            c.settings.native_sidecars.choice(Some("istio")),
            NativeChoice::Wait
        );
        let glob = c.rule_for("deployment", "api-v2").unwrap();
        assert_eq!(glob.name, "api-*");
        assert_eq!(
            glob.containers[0].hook,
            Hook::Wait(Wait {
                what: WaitFor::Tcp(vec![8080, 9090]),
                timeout: Some(Duration::from_secs(20)),
                interval: None
            })
        );
        assert_eq!(
            c.rule_for("deployment", "api-exact").unwrap().name,
            "api-exact",
            "exact wins over glob"
        );
        assert!(c.rule_for("statefulset", "api-v2").is_none());
    }

    #[test]
    fn errors_name_line_and_column() {
        let cases = [
            (
                "deploymnet:\n  x:\n    c: [a]\n",
                (1, 1),
                "unknown kind 'deploymnet'",
            ),
            (
                "deployment:\n  x:\n    c: {tcp: 70000}\n",
                (3, 14),
                "not a port",
            ),
            (
                "deployment:\n  x:\n    c: {tcp: 1, timeout: soon}\n",
                (3, 26),
                "timeout",
            ),
            (
                "deployment:\n  x:\n    c: {tcpp: 1}\n",
                (3, 9),
                "unknown wait option",
            ),
            (
                "deployment:\n  x:\n    c: 5\n",
                (3, 8),
                "command list, auto, or a typed wait",
            ),
            (
                "deployment:\n  x:\n    c: [a]\n    c: [b]\n",
                (4, 5),
                "duplicate key",
            ),
            ("graceful-wait:\n  volum: x\n", (2, 3), "unknown setting"),
            (
                "deployment:\n  x:\n    c: {http: example.com/x}\n",
                (3, 15),
                "neither localhost",
            ),
            (
                "deployment:\n  x:\n    c: {tcp: 1, interval: 0}\n",
                (3, 27),
                "at least 1ms",
            ),
            (
                "deployment:\n  x:\n    c: {tcp: 1, interval: 500us}\n",
                (3, 27),
                "at least 1ms",
            ),
            (
                "deployment:\n  x:\n    c: {tcp: 1, timeout: 500000000000y}\n",
                (3, 26),
                "maximum",
            ),
            (
                "deployment:\n  x:\n    c: {callback: \"ftp://h/x\"}\n",
                (3, 19),
                "scheme 'ftp'",
            ),
            (
                "deployment:\n  x:\n    c: {callback: \"https://h/\", method: \"P O S T\"}\n",
                (3, 41),
                "not an HTTP method",
            ),
            (
                "deployment:\n  x:\n    c: {wrap: {on-exit: [\"https://ok/\", \"gopher://h/\"]}}\n",
                (3, 41),
                "scheme 'gopher'",
            ),
            (
                "deployment:\n  x:\n    c: {wrap: {done-file: app.done}}\n",
                (3, 27),
                "absolute path",
            ),
            (
                "deployment:\n  x:\n    c: {file: /}\n",
                (3, 15),
                "absolute path",
            ),
            ("graceful-wait:\n  binary-dir: /\n", (2, 15), "other than /"),
            (
                "graceful-wait:\n  binary-dir: /a/../b\n",
                (2, 15),
                "other than /",
            ),
            ("graceful-wait:\n  volume: Bad_Name\n", (2, 11), "DNS-1123"),
            (
                "graceful-wait:\n  init-container: \"\"\n",
                (2, 19),
                "DNS-1123",
            ),
            (
                "graceful-wait:\n  image: \"\"\n",
                (2, 10),
                "not an image reference",
            ),
            (
                "deployment:\n  x:\n    c: {file: /graceful-wait/app.done}\n",
                (3, 8),
                "folder of its own",
            ),
            (
                "deployment:\n  x:\n    c: {callback: \"https://h/x\", interval: 1s}\n",
                (3, 8),
                "interval and down-status go with waits",
            ),
            (
                "deployment:\n  x:\n    c: {tcp: 1, callback: \"https://h/x\"}\n",
                (3, 8),
                "either a wait or a callback",
            ),
            (
                "deployment: {}\n---\ndeployment:\n  x:\n    c: auto\n",
                (3, 1),
                "one YAML document",
            ),
        ];
        for (src, (line, col), text) in cases {
            let e = parse(src).unwrap_err();
            assert_eq!(e.pos, Some(Pos { line, col }), "{src}: {e:?}");
            assert!(e.message.contains(text), "{src}: {e:?}");
        }
    }

    #[test]
    fn the_app_following_values() {
        let c = parse(
            "deployment:\n  a:\n    istio-proxy: {file: /graceful-wait-done/app.done}\n    app: {wrap: {done-file: /graceful-wait-done/app.done, on-exit: [\"https://h/x\"]}}\n  b:\n    istio-proxy: {process: {name: [java], exclude-uid: 1337}}\n    app: {callback: \"https://hooks/$POD_NAME\", data: done}\n  c:\n    istio-proxy: {connections: 8080}\n",
        )
        .unwrap();
        let a = &c.rule_for("deployment", "a").unwrap().containers;
        assert_eq!(
            a[0].hook,
            Hook::Wait(Wait {
                what: WaitFor::File("/graceful-wait-done/app.done".into()),
                timeout: None,
                interval: None
            })
        );
        assert!(
            matches!(&a[1].hook, Hook::Wrap(w) if w.done_file.as_deref() == Some("/graceful-wait-done/app.done") && w.on_exit == ["https://h/x"])
        );
        let b = &c.rule_for("deployment", "b").unwrap().containers;
        assert!(
            matches!(&b[0].hook, Hook::Wait(Wait { what: WaitFor::Process { names, exclude_uids }, .. }) if names == &["java"] && exclude_uids == &[1337])
        );
        assert!(
            matches!(&b[1].hook, Hook::Callback(Callback { data: Some(d), .. }) if d == "done")
        );
        let cc = &c.rule_for("deployment", "c").unwrap().containers;
        assert!(
            matches!(&cc[0].hook, Hook::Wait(Wait { what: WaitFor::Connections(p), .. }) if p == &[8080])
        );
    }

    #[test]
    fn globs() {
        assert!(glob_match("api-*", "api-v1"));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("a?c*", "abcdef"));
        assert!(!glob_match("api-*", "web-api-1"));
        assert!(!glob_match("a?c", "ac"));
    }
}
