#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::*;

const ORIGIN: &str = "/etc/bulkhead/hub.toml";

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml(text, Path::new(ORIGIN))
}

fn error_message(text: &str) -> String {
    match parse(text) {
        Ok(config) => panic!("expected an error, parsed {config:?}"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn empty_file_gives_defaults() {
    let config = parse("").unwrap();
    assert_eq!(config, Config::default());
    assert_eq!(
        config.server.socket,
        PathBuf::from("/run/bulkhead/hub.sock")
    );
    assert_eq!(config.server.socket_gid, None);
    assert_eq!(config.server.tcp, None);
    assert_eq!(config.paths.apps, PathBuf::from("/etc/bulkhead/apps.d"));
    assert_eq!(config.paths.state, PathBuf::from("/var/lib/bulkhead"));
    assert_eq!(config.paths.spoke, PathBuf::new());
    assert_eq!(config.paths.app_bin, PathBuf::new());
    assert_eq!(config.spokes.idle_timeout, Duration::from_secs(300));
    assert_eq!(config.spokes.start_timeout, Duration::from_secs(20));
    assert_eq!(config.spokes.stop_grace, Duration::from_secs(1));
    assert_eq!(config.spokes.restart_backoff, Duration::from_millis(250));
    assert_eq!(config.spokes.restart_backoff_max, Duration::from_secs(30));
    assert_eq!(config.sandbox.uid_base, 2_000_000_000);
    assert_eq!(config.sandbox.uid_count, 65_536);
    assert_eq!(config.sandbox.tmp_size_bytes, 64 << 20);
    assert_eq!(config.sandbox.system_paths.len(), 9);
    assert_eq!(config.sandbox.system_paths[0], PathBuf::from("/usr"));
}

#[test]
fn shipped_config_matches_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/hub.toml");
    let config = Config::load(&path).unwrap();
    assert_eq!(config, Config::default());
}

#[test]
fn full_config_parses() {
    let text = r#"
[server]
socket = "/tmp/hub.sock"
socket_group = "0"
tcp = "127.0.0.1:7443"
token_file = "token"

[paths]
apps = "apps.d"
state = "/srv/bulkhead"
spoke = "/opt/bulkhead/bin/bulkhead-spoke"
app_bin = "../bin"

[spokes]
idle_timeout = "0s"
start_timeout = "1m"
stop_grace = "0s"
restart_backoff = "1s"
restart_backoff_max = "1s"

[sandbox]
uid_base = 100000
uid_count = 1000
tmp_size = "16M"
system_paths = ["/usr", "/lib//"]
"#;
    let config = parse(text).unwrap();
    assert_eq!(config.server.socket_gid, Some(0));
    assert_eq!(config.server.tcp, Some("127.0.0.1:7443".parse().unwrap()));
    assert_eq!(
        config.server.token_file,
        Some(PathBuf::from("/etc/bulkhead/token"))
    );
    assert_eq!(config.paths.apps, PathBuf::from("/etc/bulkhead/apps.d"));
    assert_eq!(config.paths.state, PathBuf::from("/srv/bulkhead"));
    assert_eq!(
        config.paths.spoke,
        PathBuf::from("/opt/bulkhead/bin/bulkhead-spoke")
    );
    assert_eq!(config.paths.app_bin, PathBuf::from("/etc/bulkhead/../bin"));
    assert_eq!(config.spokes.idle_timeout, Duration::ZERO);
    assert_eq!(config.spokes.start_timeout, Duration::from_secs(60));
    assert_eq!(config.spokes.stop_grace, Duration::ZERO);
    assert_eq!(config.sandbox.uid_base, 100_000);
    assert_eq!(config.sandbox.uid_count, 1000);
    assert_eq!(config.sandbox.tmp_size_bytes, 16 << 20);
    assert_eq!(
        config.sandbox.system_paths,
        [PathBuf::from("/usr"), PathBuf::from("/lib")]
    );
}

#[test]
fn relative_origin_resolves_against_current_dir() {
    let config =
        Config::from_toml("[paths]\napps = \"apps.d\"", Path::new("conf/hub.toml")).unwrap();
    let expected = std::env::current_dir().unwrap().join("conf/apps.d");
    assert_eq!(config.paths.apps, expected);
}

#[test]
fn empty_strings_mean_unset() {
    let text = "[server]\nsocket_group = \"\"\ntcp = \"\"\ntoken_file = \"\"\n[paths]\nspoke = \"\"\napp_bin = \"\"\n";
    assert_eq!(parse(text).unwrap(), Config::default());
}

#[test]
fn resolve_binaries_fills_defaults_only() {
    let mut config = Config::default();
    config.resolve_binaries(Path::new("/usr/libexec/bulkhead"));
    assert_eq!(
        config.paths.spoke,
        PathBuf::from("/usr/libexec/bulkhead/bulkhead-spoke")
    );
    assert_eq!(config.paths.app_bin, PathBuf::from("/usr/libexec/bulkhead"));

    let mut config = parse("[paths]\nspoke = \"/opt/spoke\"\napp_bin = \"/opt/apps\"").unwrap();
    config.resolve_binaries(Path::new("/usr/libexec/bulkhead"));
    assert_eq!(config.paths.spoke, PathBuf::from("/opt/spoke"));
    assert_eq!(config.paths.app_bin, PathBuf::from("/opt/apps"));
}

#[test]
fn unknown_key_is_rejected() {
    assert_eq!(
        error_message("[spokes]\nidle = \"5m\""),
        "/etc/bulkhead/hub.toml: unknown key \"spokes.idle\" at line 2; expected one of \
         idle_timeout, start_timeout, stop_grace, restart_backoff, restart_backoff_max"
    );
    assert!(error_message("[serve]\n").contains("unknown key \"serve\" at line 1"));
}

#[test]
fn tcp_needs_token() {
    let message = error_message("[server]\ntcp = \"127.0.0.1:7443\"");
    assert_eq!(
        message,
        "/etc/bulkhead/hub.toml: server.tcp: TCP needs a token: set server.token_file to a file \
         that holds the bearer token, or set tcp = \"\" to serve only the Unix socket"
    );
}

#[test]
fn tcp_address_forms() {
    let message = error_message("[server]\ntcp = \"localhost:7443\"\ntoken_file = \"/t\"");
    assert!(
        message.contains("server.tcp: invalid address \"localhost:7443\""),
        "{message}"
    );
    assert!(
        error_message("[server]\ntcp = \"127.0.0.1\"\ntoken_file = \"/t\"")
            .contains("invalid address")
    );
    let config = parse("[server]\ntcp = \"[::1]:7443\"\ntoken_file = \"/t\"").unwrap();
    assert_eq!(config.server.tcp, Some("[::1]:7443".parse().unwrap()));
}

#[test]
fn socket_group_forms() {
    let group = |value: &str| {
        parse(&format!("[server]\nsocket_group = \"{value}\"")).map(|c| c.server.socket_gid)
    };
    assert_eq!(group("1001").unwrap(), Some(1001));
    assert_eq!(group("root").unwrap(), Some(0));
    assert!(group("no-such-group.x")
        .unwrap_err()
        .to_string()
        .contains("group \"no-such-group.x\" not found in /etc/group"));
    assert!(group("99999999999")
        .unwrap_err()
        .to_string()
        .contains("above the maximum"));
    assert!(group("-x")
        .unwrap_err()
        .to_string()
        .contains("invalid group"));
    assert!(group("a b")
        .unwrap_err()
        .to_string()
        .contains("invalid group"));
}

#[test]
fn empty_required_path() {
    let message = error_message("[paths]\nstate = \"\"");
    assert_eq!(
        message,
        "/etc/bulkhead/hub.toml: paths.state: is empty; name a path, or remove the line to use \
         the default"
    );
    assert!(error_message("[server]\nsocket = \"\"").contains("server.socket: is empty"));
}

#[test]
fn duration_rules() {
    assert!(error_message("[spokes]\nstart_timeout = \"20\"")
        .contains("spokes.start_timeout: invalid duration \"20\""));
    assert!(
        error_message("[spokes]\nstart_timeout = \"0s\"").contains("below the minimum of 100ms")
    );
    assert!(
        error_message("[spokes]\nidle_timeout = \"2days\"").contains("above the maximum of 1day")
    );
    assert!(error_message("[spokes]\nrestart_backoff = \"0s\"")
        .contains("spokes.restart_backoff: 0s is below"));
    assert_eq!(
        error_message("[spokes]\nrestart_backoff = \"5s\"\nrestart_backoff_max = \"1s\""),
        "/etc/bulkhead/hub.toml: spokes.restart_backoff_max: 1s is below restart_backoff (5s); \
         raise it or lower restart_backoff"
    );
}

#[test]
fn uid_range_rules() {
    assert!(error_message("[sandbox]\nuid_base = 1000")
        .contains("sandbox.uid_base: 1000 is below the minimum of 65536"));
    assert!(error_message("[sandbox]\nuid_count = 0")
        .contains("sandbox.uid_count: 0 is below the minimum of 1"));
    assert_eq!(
        error_message("[sandbox]\nuid_base = 4294967000\nuid_count = 65536"),
        "/etc/bulkhead/hub.toml: sandbox.uid_count: uid_base + uid_count is 4295032536, above \
         the maximum of 4294967294; lower uid_base or uid_count"
    );
    let config = parse("[sandbox]\nuid_base = 4294901758\nuid_count = 65536").unwrap();
    assert_eq!(config.sandbox.uid_base, 4_294_901_758);
    assert!(error_message("[sandbox]\nuid_base = 4294901759\nuid_count = 65536").contains("above"));
    assert!(error_message("[sandbox]\nuid_base = -1").contains("below the minimum"));
}

#[test]
fn tmp_size_rules() {
    assert!(error_message("[sandbox]\ntmp_size = \"0\"")
        .contains("sandbox.tmp_size: 0B is below the minimum of 1MiB"));
    assert!(error_message("[sandbox]\ntmp_size = \"lots\"").contains("invalid size \"lots\""));
    assert!(error_message("[sandbox]\ntmp_size = \"2T\"").contains("above the maximum of 1TiB"));
}

#[test]
fn system_path_rules() {
    let paths = |list: &str| error_message(&format!("[sandbox]\nsystem_paths = [{list}]"));
    assert!(paths("\"usr\"").contains("sandbox.system_paths[0]: \"usr\" is not an absolute path"));
    assert!(paths("\"/usr\", \"/\"")
        .contains("sandbox.system_paths[1]: \"/\" would show the whole host"));
    assert!(paths("\"/proc/self\"").contains("under the host's /proc"));
    assert!(paths("\"/usr\", \"/usr/\"").contains("\"/usr/\" is listed twice"));
    assert!(paths("\"/usr/../etc\"").contains("\"..\" component"));
    let config = parse("[sandbox]\nsystem_paths = []").unwrap();
    assert!(config.sandbox.system_paths.is_empty());
}

#[test]
fn group_lookup_reads_group_file() {
    let dir = TempDir::new();
    let file = dir.write(
        "group",
        "# comment\nroot:x:0:\nagents:x:1234:alice,bob\nbroken:x:notanumber:\nshort\n",
        0o644,
    );
    assert_eq!(validate::check_group("agents", &file), Ok(1234));
    assert_eq!(validate::check_group("4321", &file), Ok(4321));
    let error = validate::check_group("broken", &file).unwrap_err();
    assert!(
        error.reason.contains("invalid gid \"notanumber\""),
        "{error:?}"
    );
    let error = validate::check_group("missing", &file).unwrap_err();
    assert!(error.reason.contains("not found"), "{error:?}");
    let error = validate::check_group("agents", &dir.0.join("absent")).unwrap_err();
    assert!(
        error.reason.contains("give a numeric gid instead"),
        "{error:?}"
    );
}

/// A folder under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let id = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("bulkhead-config-{}-{id}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    fn write(&self, name: &str, text: &str, mode: u32) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn load_resolves_against_file_folder() {
    let dir = TempDir::new();
    let path = dir.write("hub.toml", "[paths]\napps = \"apps.d\"\n", 0o644);
    let config = Config::load(&path).unwrap();
    assert_eq!(config.paths.apps, dir.0.join("apps.d"));
}

#[test]
fn load_missing_file() {
    let dir = TempDir::new();
    let error = Config::load(&dir.0.join("hub.toml")).unwrap_err();
    assert!(matches!(error, ConfigError::Read { .. }), "{error}");
    assert!(
        error.to_string().contains("failed to read the hub config"),
        "{error}"
    );
}

fn server_with_token(path: PathBuf) -> ServerConfig {
    ServerConfig {
        token_file: Some(path),
        ..ServerConfig::default()
    }
}

#[test]
fn token_read_first_line() {
    let dir = TempDir::new();
    let path = dir.write("token", "  0123456789abcdef0123 \nsecond line\n", 0o640);
    let token = server_with_token(path).read_token().unwrap();
    assert_eq!(token.as_deref(), Some("0123456789abcdef0123"));
    assert_eq!(ServerConfig::default().read_token().unwrap(), None);
}

#[test]
fn token_world_readable_rejected() {
    let dir = TempDir::new();
    let path = dir.write("token", "0123456789abcdef0123\n", 0o644);
    let error = server_with_token(path.clone()).read_token().unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "{}: the token file is readable by every user (mode 644); run chmod o-r on it",
            path.display()
        )
    );
}

#[test]
fn token_empty_or_short_rejected() {
    let dir = TempDir::new();
    let empty = dir.write("empty", "\nsecret-on-line-two\n", 0o600);
    let error = server_with_token(empty).read_token().unwrap_err();
    assert!(matches!(error, ConfigError::TokenEmpty { .. }), "{error}");

    let short = dir.write("short", "secret\n", 0o600);
    let error = server_with_token(short).read_token().unwrap_err();
    assert!(
        error
            .to_string()
            .contains("6 characters long, below the minimum of 16"),
        "{error}"
    );
}

#[test]
fn token_missing_or_folder_rejected() {
    let dir = TempDir::new();
    let error = server_with_token(dir.0.join("none"))
        .read_token()
        .unwrap_err();
    assert!(matches!(error, ConfigError::TokenRead { .. }), "{error}");

    std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o700)).unwrap();
    let error = server_with_token(dir.0.clone()).read_token().unwrap_err();
    assert!(error.to_string().contains("not a regular file"), "{error}");
}

#[test]
fn audit_records_arguments_only_when_asked() {
    assert!(!parse("").expect("parse").audit.record_arguments);
    assert!(parse("[audit]\nrecord_arguments = true\n").expect("parse").audit.record_arguments);
    assert!(error_message("[audit]\nrecord_args = true\n").contains("record_args"));
}

#[test]
fn flow_rules_default_on_and_allow_rules_parse() {
    let config = parse("").expect("parse");
    assert!(config.flow.rules.confidential);
    assert!(config.flow.rules.verbatim);
    assert!(config.flow.allow.is_empty());

    let text = "[flow]\nverbatim_rule = false\n[[flow.allow]]\nsource = \"a\"\ntool = \"send\"\n";
    let config = parse(text).expect("parse");
    assert!(!config.flow.rules.verbatim);
    assert_eq!(config.flow.allow[0].source, "a");
    assert_eq!(config.flow.allow[0].tool, "send");
    assert!(config.flow.allow[0].target.is_empty());
}

#[test]
fn flow_allow_rule_needs_source_or_target() {
    let message = error_message("[[flow.allow]]\ntool = \"send\"\n");
    assert!(message.contains("flow.allow[0]"), "{message}");
}

#[test]
fn flow_approval_timeout_defaults_to_a_minute() {
    assert_eq!(parse("").expect("parse").flow.approval_timeout, Duration::from_secs(60));
    let config = parse("[flow]\napproval_timeout = \"1500ms\"\n").expect("parse");
    assert_eq!(config.flow.approval_timeout, Duration::from_millis(1500));
}

#[test]
fn flow_approval_timeout_rejects_invalid_values() {
    let message = error_message("[flow]\napproval_timeout = \"soon\"\n");
    assert!(message.contains("flow.approval_timeout"), "{message}");
    let message = error_message("[flow]\napproval_timeout = \"10ms\"\n");
    assert!(message.contains("below the minimum of 100ms"), "{message}");
}

#[test]
fn egress_hosts_and_timeouts() {
    let config = parse(
        "[egress]\nconnect_timeout = \"2s\"\nheader_timeout = \"500ms\"\n\n[egress.hosts]\n\"API.Test.\" = \"127.0.0.1\"\n\"pair.test\" = [\"10.0.0.1\", \"::1\"]\n",
    )
    .unwrap();
    assert_eq!(config.egress.connect_timeout, Duration::from_secs(2));
    assert_eq!(config.egress.header_timeout, Duration::from_millis(500));
    let localhost: std::net::IpAddr = "127.0.0.1".parse().unwrap();
    assert_eq!(config.egress.hosts.get("api.test"), Some(&vec![localhost]));
    assert_eq!(config.egress.hosts.get("pair.test").map(Vec::len), Some(2));
}

#[test]
fn egress_errors() {
    assert_eq!(
        error_message("[egress.hosts]\n\"api.test\" = \"localhost\""),
        "/etc/bulkhead/hub.toml: egress.hosts.\"api.test\": \"localhost\" is not an IP address; write one such \
         as \"127.0.0.1\" or \"::1\""
    );
    assert!(error_message("[egress.hosts]\n\"api.test\" = []").contains("lists no address"));
    assert!(error_message("[egress.hosts]\n\"bad name\" = \"127.0.0.1\"").contains("contains whitespace"));
    assert!(error_message("[egress.hosts]\n\"api.test\" = \"127.0.0.1\"\n\"API.test\" = \"127.0.0.2\"").contains("a second time"));
    assert!(error_message("[egress]\nconnect_timeout = \"1ms\"").contains("egress.connect_timeout: 1ms is below the minimum of 100ms"));
    assert!(error_message("[egress]\nproxy = \"x\"").contains("proxy"));
}
