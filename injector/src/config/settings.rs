//! The reserved key `graceful-wait:`: settings for every hook the config
//! writes.

use super::read::*;
use super::{Settings, SETTINGS_KEY};
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
            "native-sidecars" => {
                s.wait_on_native_sidecars = match text(value, "native-sidecars")? {
                    "skip" => false,
                    "wait" => true,
                    other => return Err(err(value, format!("native-sidecars: '{other}' is neither skip nor wait"))),
                }
            }
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
