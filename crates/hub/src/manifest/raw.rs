//! The manifest as serde reads it from TOML, before validation.
//!
//! Every key is optional here so that a missing key gets the manifest's own message, naming the
//! key and an example, rather than serde's "missing field".

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawManifest {
    pub name: Option<String>,
    pub description: Option<String>,
    pub command: Option<String>,
    #[serde(default)]
    pub args: Vec<String>,
    pub cwd: Option<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub mounts: Vec<RawMount>,
    #[serde(default)]
    pub state: RawState,
    #[serde(default)]
    pub limits: RawLimits,
    #[serde(default)]
    pub network: RawNetwork,
    #[serde(default)]
    pub tools: RawTools,
    #[serde(default)]
    pub data: RawData,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawData {
    pub confidential: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMount {
    pub source: Option<String>,
    pub target: Option<String>,
    pub writable: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawState {
    pub persistent: Option<bool>,
}

/// Resource limits. `pids` is signed and `cpu` a float so that a negative or fractional value
/// reaches validation and gets a range message instead of a type error.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLimits {
    pub memory: Option<String>,
    pub pids: Option<i64>,
    pub cpu: Option<f64>,
    pub call_timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNetwork {
    pub mode: Option<String>,
    pub allow: Option<Vec<String>>,
    pub max_connections: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTools {
    pub expose: Option<Vec<String>>,
    #[serde(default)]
    pub destructive: Vec<String>,
}
