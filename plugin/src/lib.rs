//! # mf_priority.so — fluxacct's multi-factor priority jobtap plugin
//!
//! A drop-in replacement for flux-accounting's `mf_priority.so`, fed by a
//! fluxacct snapshot (`fluxacct_core::snapshot`); it also accepts
//! flux-accounting's stream of `rec_*_update` RPCs.
//!
//! * [`policy`] is the safe decision core: the snapshot, per-association counters, and
//!   every decision (accept, reject, hold, release, priority). It is unit
//!   tested without any C.
//! * [`jobin`] parses the job manager's IN arguments and counts resources.
//! * [`config`] turns flux-accounting's `export-json` object into a
//!   snapshot (the optional `config=` load conf).
//! * `ffi` (private) is the thin shim with all the `unsafe`: it exports
//!   `flux_plugin_init` and turns jobtap callbacks and service requests into
//!   calls on the core. It links neither libflux-core nor jansson; the
//!   broker provides the `flux_*` symbols at `dlopen` time.
//!
//! ## Loading
//!
//! ```text
//! cargo build --release
//! install -m 644 target/release/libmf_priority.so <libdir>/flux/job-manager/plugins/mf_priority.so
//! flux jobtap load -r .priority-default mf_priority.so snapshot=/var/lib/fluxacct/snapshot.mp
//! flux jobtap load mf_priority.so "config=$(flux account export-json)"
//! ```
//!
//! The instance owner (the user the broker, and so the plugin, runs as)
//! gets flux-accounting's synthetic association when the loaded data has
//! associations but none for it ([`policy::Policy::set_owner`]).
//!
//! ## Services (owner only)
//!
//! * `job-manager.mf_priority.load_snapshot` `{"path": "/abs/path"}` →
//!   `{"seq": N, "hash": "<hex>"}`: loads a snapshot, reprioritizes every
//!   pending job and releases held jobs that now have room. A missing,
//!   truncated, corrupt or unknown-version snapshot is refused with an error
//!   response and the current data stays in force.
//! * `job-manager.mf_priority.reprioritize`: reprioritizes every pending job
//!   and runs the release pass.
//! * flux-accounting's update RPCs `rec_update`, `rec_q_update`,
//!   `rec_proj_update`, `rec_bank_update`, `rec_fac_update`,
//!   `rec_config_update` (payloads in [`rpc`]), for tools that feed the
//!   plugin the old way: they change the data in force until the next
//!   snapshot load replaces it.

#![deny(unsafe_code)]

pub mod config;
#[allow(unsafe_code)] // The C shim: the plugin's only FFI.
mod ffi;
pub mod jobin;
pub mod policy;
pub mod rpc;

use std::path::Path;

use fluxacct_core::snapshot::{Snapshot, SnapshotError};
use serde_json::Value;

/// `ENOENT` (Linux errno): a snapshot file does not exist.
const ENOENT: i32 = 2;
/// `EINVAL` (Linux errno): an unusable snapshot, or the plugin cannot serve.
const EINVAL: i32 = 22;
/// `EPROTO` (Linux errno): a malformed request.
const EPROTO: i32 = 71;

/// Errors at the plugin's boundary.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// Callback arguments could not be used.
    #[error("unable to unpack plugin args: {0}")]
    Args(String),
    /// The load-time conf is unusable.
    #[error("{0}")]
    Config(String),
    /// A snapshot could not be loaded.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// A service request is malformed.
    #[error("{0}")]
    Request(String),
}

impl PluginError {
    /// The errno to answer a service request with.
    pub fn errnum(&self) -> i32 {
        match self {
            PluginError::Snapshot(SnapshotError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                ENOENT
            }
            PluginError::Request(_) | PluginError::Args(_) => EPROTO,
            _ => EINVAL,
        }
    }
}

/// Reads the data named by a load-time conf (the JSON text of
/// `flux_plugin_get_conf`): `snapshot` (a path) takes precedence over
/// `config` (an export-json object). `Ok(None)` when neither is given.
pub fn snapshot_from_conf(conf: &str) -> Result<Option<Snapshot>, PluginError> {
    let v: Value = serde_json::from_str(conf).map_err(|e| PluginError::Config(format!("plugin conf: {e}")))?;
    if let Some(path) = v.get("snapshot") {
        let path = path.as_str().ok_or_else(|| PluginError::Config("plugin conf: snapshot must be a path".into()))?;
        return Ok(Some(Snapshot::read(Path::new(path))?));
    }
    match v.get("config") {
        Some(c) if c.is_object() => Ok(Some(config::snapshot_from_export(c)?)),
        Some(Value::Null) | None => Ok(None),
        Some(_) => Err(PluginError::Config("plugin conf: config must be an object".into())),
    }
}

/// Parses a `load_snapshot` request payload `{"path": "/abs/path"}` and
/// reads the snapshot it names.
pub fn snapshot_from_request(payload: Option<&str>) -> Result<Snapshot, PluginError> {
    let bad = || PluginError::Request("load_snapshot: expected {\"path\": <absolute path>}".into());
    let v: Value = serde_json::from_str(payload.ok_or_else(bad)?).map_err(|_| bad())?;
    let path = v.get("path").and_then(Value::as_str).ok_or_else(bad)?;
    if !path.starts_with('/') {
        return Err(PluginError::Request(format!("load_snapshot: path must be absolute: {path}")));
    }
    Ok(Snapshot::read(Path::new(path))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conf_and_request_errors() {
        assert!(snapshot_from_conf("{}").unwrap().is_none());
        assert!(snapshot_from_conf("{\"config\": {}}").unwrap().is_some());
        assert!(snapshot_from_conf("{\"config\": 3}").is_err());
        assert!(snapshot_from_conf("{\"snapshot\": 3}").is_err());
        let e = snapshot_from_conf("{\"snapshot\": \"/nonexistent\"}").unwrap_err();
        assert_eq!(e.errnum(), 2);
        assert!(snapshot_from_conf("nope").is_err());
        assert_eq!(snapshot_from_request(None).unwrap_err().errnum(), 71);
        assert_eq!(snapshot_from_request(Some("{\"path\": \"rel\"}")).unwrap_err().errnum(), 71);
        assert_eq!(snapshot_from_request(Some("{\"path\": 1}")).unwrap_err().errnum(), 71);
        assert_eq!(snapshot_from_request(Some("{\"path\": \"/nonexistent\"}")).unwrap_err().errnum(), 2);
    }
}
