//! The items the injector adds to a pod: the init container that installs
//! the binary, the volumes, the read-only mounts, the preStop handler and
//! Istio's stub container. Istio's injection template is built from the same
//! items.

use crate::config::Settings;
use crate::plan::istio::{PROXY, STUB_IMAGE};
use crate::yaml::emit::{map, string, Value};
use crate::yaml::Node;

/// The `exec` mapping and the `command` list of a preStop that holds
/// nothing else (`preStop: {exec: {command: [...]}}` in block style): there
/// a new command replaces the list alone, and the text around it — a
/// comment above `command:` — stays.
pub fn command_alone<'n, 'a>(pre_stop: &'n Node<'a>) -> Option<(&'n Node<'a>, &'n Node<'a>)> {
    let only = |m: &'n Node<'a>, key: &str| -> Option<&'n Node<'a>> {
        let entries = m.as_map()?;
        match entries {
            [(k, v)] if !m.flow && k.as_str() == Some(key) => Some(v),
            _ => None,
        }
    };
    let exec = only(pre_stop, "exec")?;
    let command = only(exec, "command")?;
    command.as_seq()?;
    Some((exec, command))
}

/// A `preStop` handler that runs `command`.
pub fn pre_stop(command: &[String]) -> Value {
    map(vec![(
        "exec",
        map(vec![(
            "command",
            Value::Seq(command.iter().map(|w| string(w.as_str())).collect()),
        )]),
    )])
}

/// The binary's volume as a hooked container mounts it: read-only.
pub fn binary_mount_item(settings: &Settings) -> Value {
    map(vec![
        ("name", string(&settings.volume)),
        ("mountPath", string(&settings.binary_dir)),
        ("readOnly", literal("true")),
    ])
}

/// Where the init container mounts the volume. Not `binary-dir`: the image
/// keeps its binary at `/graceful-wait`, which a mount there would hide.
pub const INSTALL_DIR: &str = "/install";

/// The init container that copies the binary into the shared volume. It meets
/// the PodSecurity "restricted" profile and asks for little.
pub fn init_container(settings: &Settings) -> Value {
    map(vec![
        ("name", string(&settings.init_name)),
        ("image", string(&settings.image)),
        (
            "args",
            Value::Seq(vec![string("install"), string(INSTALL_DIR)]),
        ),
        (
            "volumeMounts",
            Value::Seq(vec![map(vec![
                ("name", string(&settings.volume)),
                ("mountPath", string(INSTALL_DIR)),
            ])]),
        ),
        (
            "resources",
            map(vec![
                (
                    "requests",
                    map(vec![("cpu", string("10m")), ("memory", string("16Mi"))]),
                ),
                (
                    "limits",
                    map(vec![("cpu", string("100m")), ("memory", string("32Mi"))]),
                ),
            ]),
        ),
        (
            "securityContext",
            map(vec![
                ("allowPrivilegeEscalation", literal("false")),
                (
                    "capabilities",
                    map(vec![("drop", Value::Seq(vec![string("ALL")]))]),
                ),
                ("readOnlyRootFilesystem", literal("true")),
                ("runAsNonRoot", literal("true")),
                ("runAsUser", literal("65532")),
                ("runAsGroup", literal("65532")),
                (
                    "seccompProfile",
                    map(vec![("type", string("RuntimeDefault"))]),
                ),
            ]),
        ),
    ])
}

/// A boolean or number, written plain.
pub fn literal(v: &str) -> Value {
    Value::Literal(v.to_string())
}

/// The done marker's volume, at the marker's folder: writable where the
/// wrapped app writes the marker, read-only where a hook only reads it.
pub fn marker_mount_item(settings: &Settings, folder: &str, read_only: bool) -> Value {
    map(vec![
        ("name", string(&settings.marker_volume)),
        ("mountPath", string(folder)),
        (
            "readOnly",
            literal(if read_only { "true" } else { "false" }),
        ),
    ])
}

/// A pod volume of ours: an `emptyDir`.
pub fn empty_dir(name: &str) -> Value {
    map(vec![
        ("name", string(name)),
        ("emptyDir", Value::Map(vec![])),
    ])
}

/// The `istio-proxy` stub Istio's injector merges onto the sidecar it adds:
/// a name, a placeholder image, the preStop and the mounts.
pub fn istio_stub(command: &[String], mounts: Vec<Value>) -> Value {
    map(vec![
        ("name", string(PROXY)),
        ("image", string(STUB_IMAGE)),
        ("lifecycle", map(vec![("preStop", pre_stop(command))])),
        ("volumeMounts", Value::Seq(mounts)),
    ])
}
