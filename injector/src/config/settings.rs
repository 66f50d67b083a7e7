//! The reserved key `graceful-wait:`: settings for every hook the config
//! writes.

use super::read::*;
use super::{NativeChoice, NativeSidecars, Settings, SETTINGS_KEY};
use crate::yaml::{Node, YamlError};

pub(super) fn settings(node: &Node) -> Result<Settings, YamlError> {
    let mut s = Settings::default();
    for (key, value) in map(node, SETTINGS_KEY)? {
        match text(key, "a setting")? {
            "binary-dir" => {
                s.binary_dir = checked(value, "binary-dir", mount_path)?
                    .trim_end_matches('/')
                    .to_string()
            }
            "image" => {
                s.image = checked(value, "image", |v| {
                    if v.is_empty() || v.contains(char::is_whitespace) {
                        Err(format!("'{v}' is not an image reference"))
                    } else {
                        Ok(())
                    }
                })?
                .to_string()
            }
            "volume" => s.volume = checked(value, "volume", dns_label)?.to_string(),
            "init-container" => {
                s.init_name = checked(value, "init-container", dns_label)?.to_string()
            }
            "drain-margin" => s.drain_margin = dur(value, "drain-margin")?,
            "marker-volume" => {
                s.marker_volume = checked(value, "marker-volume", dns_label)?.to_string()
            }
            "log-copy" => {
                s.log_copy = match text(value, "log-copy")? {
                    "off" => None,
                    _ => Some(checked(value, "log-copy", mount_path)?.to_string()),
                }
            }
            "native-sidecars" => s.native_sidecars = native_sidecars(value)?,
            "missing-proxy" => {
                s.stub_missing_proxy = match text(value, "missing-proxy")? {
                    "skip" => false,
                    "stub" => true,
                    other => return Err(err(value, format!("missing-proxy: '{other}' is neither skip nor stub"))),
                }
            }
            other => {
                return Err(err(key, format!(
                    "unknown setting '{other}'; settings are binary-dir, image, volume, init-container, drain-margin, native-sidecars, marker-volume, log-copy, missing-proxy"
                )))
            }
        }
    }
    Ok(s)
}

/// The meshes a setting may name: the keys of the planning's mesh table
/// (`plan::mesh::PROXIES`, whose test holds the two lists equal).
pub const MESHES: &[&str] = &[
    "istio",
    "linkerd",
    "consul",
    "kuma",
    "app-mesh",
    "osm",
    "dapr",
    "cloud-sql-proxy",
    "alloydb-auth-proxy",
];

/// `native-sidecars: auto|wait|skip`, or per mesh: `{istio: skip, other: wait}`.
fn native_sidecars(value: &Node) -> Result<NativeSidecars, YamlError> {
    let choice = |v: &Node, what: &str| match text(v, what)? {
        "auto" => Ok(NativeChoice::Auto),
        "wait" => Ok(NativeChoice::Wait),
        "skip" => Ok(NativeChoice::Skip),
        other => Err(err(
            v,
            format!("{what}: '{other}' is none of auto, wait and skip"),
        )),
    };
    if value.as_map().is_none() {
        return Ok(NativeSidecars {
            all: choice(value, "native-sidecars")?,
            per_mesh: Vec::new(),
        });
    }
    let mut out = NativeSidecars::default();
    for (key, v) in map(value, "native-sidecars")? {
        let mesh = text(key, "a mesh")?;
        let c = choice(v, &format!("native-sidecars: {mesh}"))?;
        if mesh == "other" {
            out.all = c;
        } else if MESHES.contains(&mesh) {
            out.per_mesh.push((mesh.to_string(), c));
        } else {
            return Err(err(
                key,
                format!(
                    "native-sidecars: no mesh '{mesh}'; the meshes are {}, and other for any other container",
                    MESHES.join(", ")
                ),
            ));
        }
    }
    Ok(out)
}
